package crashtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	createTopic(t, p.addr, "term", 1)
	produceOneByOne(t, p.addr, "term", 0, 10)
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("samsa exited with %v after SIGTERM; stderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("samsa did not exit within 30s of SIGTERM")
	}
	if !strings.Contains(p.stderr.String(), "stopped cleanly") {
		t.Fatalf("no clean-stop log line; stderr:\n%s", p.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "term-0", "clean-shutdown")); err != nil {
		t.Fatalf("partition log not marked clean: %v", err)
	}
	p2 := startServer(t, dir)
	if got := consumeAll(t, p2.addr, "term"); len(got) != 10 {
		t.Fatalf("%d records after a clean restart", len(got))
	}
}

func TestBadSettingsFailAtStartNamingTheSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--override", "log.retention.hourz=5"}, "log.retention.hourz"},
		{[]string{"--override", "num.partitions=zero"}, "num.partitions"},
		{[]string{"--override", "listeners=PLAINTEXT://127.0.0.1:bad"}, "listeners"},
		{[]string{"--config", "/nonexistent/server.properties"}, "server.properties"},
	} {
		cmd := exec.Command(samsaBin, append([]string{"server", "--override", "log.dirs=" + t.TempDir()}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("%v: exit %v, want a failure; output:\n%s", tc.args, err, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: output does not name %q:\n%s", tc.args, tc.want, out)
		}
	}
}
