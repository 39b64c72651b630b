package crashtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.etcd.io/bbolt"

	"github.com/samsa-io/samsa/internal/storage"
)

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	createTopic(t, p.addr, "term", 1)
	produceOneByOne(t, p.addr, "term", 0, 10)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("samsa exited with %v after SIGTERM; stderr:\n%s", err, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "stopped cleanly") {
		t.Fatalf("no clean-stop log line; stderr:\n%s", p.stderr.String())
	}
	if !storage.LoadDirState(dir, nil, nil).Vouches("term-0") {
		t.Fatal("partition log not marked clean: the log directory's clean-shutdown marker does not name it")
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

// hangDeadline is how long a process may take to exit before the test declares it hung. It is
// generous on purpose: the processes here should exit in well under a second.
const hangDeadline = 20 * time.Second

// exitCode returns a finished process's non-zero exit code, failing the test if it succeeded.
func exitCode(t *testing.T, p *proc, err error) int {
	t.Helper()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
		t.Fatalf("exit status %v, want a non-zero exit code; stderr:\n%s", err, p.stderr.String())
	}
	return exit.ExitCode()
}

func TestSecondProcessOnADirectoryInUseIsRefusedAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setting string // names the shared directory in the error
		second  func(shared string) []string
	}{
		{"same log.dirs", "log.dirs", func(shared string) []string {
			return []string{"log.dirs=" + shared}
		}},
		{"same metadata.log.dir", "metadata.log.dir", func(shared string) []string {
			return []string{"log.dirs=" + t.TempDir(), "metadata.log.dir=" + shared}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := t.TempDir()
			first := startServer(t, shared)

			second := spawn(t, tc.second(shared)...)
			exitCode(t, second, second.waitExit(t, hangDeadline))
			stderr := second.stderr.String()
			want := fmt.Sprintf("%s: %s is in use by another Samsa process (pid %d): failed to acquire lock on file .lock in %s",
				tc.setting, shared, first.cmd.Process.Pid, shared)
			if !strings.Contains(stderr, want) {
				t.Fatalf("stderr does not say %q:\n%s", want, stderr)
			}
			// The refused process bound nothing: its client port is free again.
			if c, err := net.Dial("tcp", second.addr); err == nil {
				c.Close()
				t.Errorf("the refused process's client port %s accepts connections", second.addr)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := serves(ctx, first.addr); err != nil {
				t.Fatalf("the first process no longer serves: %v; stderr:\n%s", err, first.stderr.String())
			}
		})
	}
}

// TestSIGTERMStopsABlockedStartUp holds the bbolt lock on the metadata directory's raft.db
// from this test process (as a tool inspecting the file would), so that a node whose
// directory locks are free blocks in start-up; SIGTERM must end it.
func TestSIGTERMStopsABlockedStartUp(t *testing.T) {
	metaDir := t.TempDir()
	raftDir := filepath.Join(metaDir, "__cluster_metadata-0")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		t.Fatal(err)
	}
	holder, err := bbolt.Open(filepath.Join(raftDir, "raft.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	p := spawn(t, "log.dirs="+t.TempDir(), "metadata.log.dir="+metaDir)
	// The client listener is bound before the controller starts: once it accepts connections,
	// start-up has reached the raft store.
	deadline := time.Now().Add(hangDeadline)
	for {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("samsa exited (%v) before blocking; stderr:\n%s", p.waitErr, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("samsa never bound its client port; stderr:\n%s", p.stderr.String())
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitCode(t, p, p.waitExit(t, hangDeadline))
	stderr := p.stderr.String()
	for _, want := range []string{"start-up stopped", "terminated signal received", "raft.db"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
}

// produceTo produces n records with values from..from+n-1 to one partition.
func produceTo(t *testing.T, addr, topic string, partition int32, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(fmt.Sprintf("%08d", i))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSIGKILLAfterCleanRestartRecoversChangedLogs checks the log directory's clean-shutdown
// marker with real processes: after a clean stop and a start, a partition produced to is
// journaled before its first write, so a SIGKILL then has the next start recover it (a
// corrupt batch is truncated), while the partition left alone opens clean.
func TestSIGKILLAfterCleanRestartRecoversChangedLogs(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	createTopic(t, p.addr, "vouch", 2)
	produceTo(t, p.addr, "vouch", 0, 0, 10)
	produceTo(t, p.addr, "vouch", 1, 0, 10)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, p.stderr.String())
	}
	state := storage.LoadDirState(dir, nil, nil)
	if !state.Vouches("vouch-0") || !state.Vouches("vouch-1") {
		t.Fatal("the clean-shutdown marker does not name both partitions")
	}

	p = startServer(t, dir)
	produceTo(t, p.addr, "vouch", 0, 10, 10)
	p.kill(t)
	// Corrupt the last batch's record: only a recovery checks the CRCs (a clean open reads
	// the batch headers of the active segment's tail), and truncates there.
	path := activeSegment(t, dir, "vouch-0")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	p = startServer(t, dir)
	got := consumeAll(t, p.addr, "vouch")
	if len(got) != 29 {
		t.Fatalf("%d records after the crash, want 29 (the corrupt one dropped)", len(got))
	}
	var recovered []string
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(line, "truncating log at a torn or corrupt batch") {
			recovered = append(recovered, line)
		}
	}
	if len(recovered) != 1 || !strings.Contains(recovered[0], "partition=0") {
		t.Fatalf("want one truncation, of partition 0 (journaled before it changed); got %q", recovered)
	}
}
