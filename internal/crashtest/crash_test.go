// Package crashtest kills real `samsa server` processes with SIGKILL and checks that nothing
// acknowledged is lost and that torn or corrupt segment tails are truncated at start.
package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testbin"
)

var samsaBin string

// nofileEnv, when set in the environment of the test binary, makes it a wrapper: it lowers
// its RLIMIT_NOFILE to the value and execs the program named by its arguments (spawnLimited).
const nofileEnv = "CRASHTEST_EXEC_WITH_NOFILE"

func TestMain(m *testing.M) {
	if v := os.Getenv(nofileEnv); v != "" {
		execWithNofile(v)
	}
	testbin.Main("samsa-crashtest", &samsaBin, m.Run)
}

// proc is one `samsa server` process.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	exited chan struct{} // closed once the process has exited; waitErr is then its status
	// waitErr is cmd.Wait's result, set before exited is closed.
	waitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// spawn starts `samsa server` with loopback listeners on free ports and the given settings
// (key=value), without waiting for it to serve. The process is killed when the test ends.
func spawn(t *testing.T, settings ...string) *proc {
	t.Helper()
	return spawnLimited(t, 0, settings...)
}

// execWithNofile is the wrapper of spawnLimited: it sets RLIMIT_NOFILE (soft and hard) to
// nofile and replaces itself with os.Args[1:].
func execWithNofile(nofile string) {
	n, err := strconv.ParseUint(nofile, 10, 64)
	if err == nil {
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
	}
	if err == nil {
		os.Unsetenv(nofileEnv)
		err = syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	}
	fmt.Fprintln(os.Stderr, "crashtest wrapper:", err)
	os.Exit(2)
}

// spawnLimited is spawn with the process's open-file limit lowered to nofile (0: unchanged).
// The test binary itself sets the limit and execs samsa, so no external tool is needed.
func spawnLimited(t *testing.T, nofile int, settings ...string) *proc {
	t.Helper()
	return spawnAt(t, freePort(t), freePort(t), nofile, settings...)
}

// spawnAt is spawnLimited on the given client and controller ports (a restart on the same
// address, for clients that stay connected across it).
func spawnAt(t *testing.T, port, cport, nofile int, settings ...string) *proc {
	t.Helper()
	p := &proc{addr: fmt.Sprintf("127.0.0.1:%d", port), stderr: &syncBuffer{}, exited: make(chan struct{})}
	args := []string{"server", "--override",
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport)}
	for _, s := range settings {
		args = append(args, "--override", s)
	}
	p.cmd = exec.Command(samsaBin, args...)
	if nofile > 0 {
		p.cmd = exec.Command(os.Args[0], append([]string{samsaBin}, args...)...)
		p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", nofileEnv, nofile))
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
	return p
}

// startServer runs samsa on dir (with more settings, key=value) and waits until it answers a
// metadata request.
func startServer(t *testing.T, dir string, settings ...string) *proc {
	t.Helper()
	return startLimited(t, dir, 0, settings...)
}

// startLimited is startServer with the open-file limit lowered to nofile (0: unchanged).
func startLimited(t *testing.T, dir string, nofile int, settings ...string) *proc {
	t.Helper()
	p := spawnLimited(t, nofile, append([]string{"log.dirs=" + dir}, settings...)...)
	p.waitServing(t)
	return p
}

// waitServing waits until p answers a metadata request; the test fails if it exits first or
// does not within 30 s.
func (p *proc) waitServing(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if serves(ctx, p.addr) == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("samsa did not start; stderr:\n%s", p.stderr.String())
		case <-p.exited:
			t.Fatalf("samsa exited (%v) instead of starting; stderr:\n%s", p.waitErr, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serves reports whether the broker at addr answers a metadata request.
func serves(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = kadm.NewClient(cl).BrokerMetadata(ctx)
	return err
}

// waitExit waits up to timeout (a deadline to declare a hang, not a timing assertion) for the
// process to exit and returns its exit status.
func (p *proc) waitExit(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(timeout):
		t.Fatalf("samsa did not exit within %s; stderr:\n%s", timeout, p.stderr.String())
		return nil
	}
}

func createTopic(t *testing.T, addr, name string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(context.Background(), partitions, 1, nil, name)
	if err == nil {
		err = resp[name].Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// reader returns a client reading topic from the start, closed when the test ends.
func reader(t *testing.T, addr, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func consumeAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	cl := reader(t, addr, topic)
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	createTopic(t, p.addr, "crash", 3)

	producer, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("crash"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0),
		kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			v := fmt.Sprintf("%08d", i)
			producer.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 11)), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[string(r.Value)] = true
					mu.Unlock()
				}
			})
		}
	}()
	// Produce until a good number of records are acknowledged, then kill mid-stream.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill(t)
	stop()
	wg.Wait()
	producer.Close()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}

	p2 := startServer(t, dir)
	got := consumeAll(t, p2.addr, "crash")
	seen := map[string]bool{}
	lastByKey := map[string]string{}
	for _, r := range got {
		v := string(r.Value)
		if seen[v] {
			t.Fatalf("record %s appears twice", v)
		}
		seen[v] = true
		k := string(r.Key)
		if prev, ok := lastByKey[k]; ok && v < prev {
			t.Fatalf("key %s: %s after %s", k, v, prev)
		}
		lastByKey[k] = v
	}
	var missing []string
	for v := range acked {
		if !seen[v] {
			missing = append(missing, v)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged records lost after SIGKILL, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	t.Logf("%d records acknowledged before SIGKILL, %d in the log after restart, none lost", nAcked, len(got))
}

// produceOneByOne produces n records, one batch each.
func produceOneByOne(t *testing.T, addr, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := from; i < from+n; i++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(fmt.Sprintf("%08d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func activeSegment(t *testing.T, dir, topicPartition string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, topicPartition, "*.log"))
	if len(logs) == 0 {
		t.Fatalf("no segment in %s", topicPartition)
	}
	sort.Strings(logs)
	return logs[len(logs)-1]
}

func TestTornAndCorruptTailsAreTruncated(t *testing.T) {
	for _, tc := range []struct {
		name      string
		damage    func(t *testing.T, path string)
		survivors int
	}{
		{"torn tail", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Half a batch: a plausible header that promises more bytes than follow.
			f.Write([]byte{0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 200, 0, 0, 0, 0, 2, 1, 2, 3})
			f.Close()
		}, 100},
		{"corrupt last batch", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-2] ^= 0xff // inside the last record: the CRC no longer matches
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := startServer(t, dir)
			createTopic(t, p.addr, "torn", 1)
			produceOneByOne(t, p.addr, "torn", 0, 100)
			p.kill(t)
			tc.damage(t, activeSegment(t, dir, "torn-0"))

			p2 := startServer(t, dir)
			got := consumeAll(t, p2.addr, "torn")
			if len(got) != tc.survivors {
				t.Fatalf("%d records after recovery, want %d", len(got), tc.survivors)
			}
			for i, r := range got {
				if string(r.Value) != fmt.Sprintf("%08d", i) || r.Offset != int64(i) {
					t.Fatalf("record %d: offset %d value %s", i, r.Offset, r.Value)
				}
			}
			if logs := p2.stderr.String(); !strings.Contains(strings.ToLower(logs), "truncat") {
				t.Fatalf("no truncation log line; stderr:\n%s", logs)
			}
			// The broker keeps serving: new records follow the survivors.
			produceOneByOne(t, p2.addr, "torn", tc.survivors, 5)
			if got := consumeAll(t, p2.addr, "torn"); len(got) != tc.survivors+5 {
				t.Fatalf("%d records after producing more", len(got))
			}
		})
	}
}
