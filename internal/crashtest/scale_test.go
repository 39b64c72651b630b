package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/storage"
)

// scaleParams returns the partitions and open-file limit of TestManyMorePartitionsThanFiles:
// 3,000 partitions with 1,024 descriptors, or SAMSA_SCALE partitions (with SAMSA_SCALE_NOFILE
// descriptors, default 20,000) for the long measurement.
func scaleParams(t *testing.T) (partitions, nofile int) {
	partitions, nofile = 3000, 1024
	if v := os.Getenv("SAMSA_SCALE"); v != "" {
		var err error
		if partitions, err = strconv.Atoi(v); err != nil {
			t.Fatalf("SAMSA_SCALE=%q: %v", v, err)
		}
		nofile = 20_000
		if v := os.Getenv("SAMSA_SCALE_NOFILE"); v != "" {
			if nofile, err = strconv.Atoi(v); err != nil {
				t.Fatalf("SAMSA_SCALE_NOFILE=%q: %v", v, err)
			}
		}
	}
	return partitions, nofile
}

// rss returns the resident set size of a process, from /proc.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.Join(strings.Fields(line[len("VmRSS:"):]), " ")
		}
	}
	return "?"
}

// segmentFDs counts the descriptors process pid holds on segment files under dir.
func segmentFDs(t *testing.T, pid int, dir string) int {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Skip("no /proc/PID/fd:", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && strings.HasPrefix(target, dir) &&
			(strings.HasSuffix(target, ".log") || strings.HasSuffix(target, ".index") || strings.HasSuffix(target, ".timeindex")) {
			n++
		}
	}
	return n
}

// partitionFiles returns the size and modification time of every file in the partition
// directories under dir (not the metadata log's) and of the log directory's clean-shutdown
// marker and journal, and how many partition logs a clean-shutdown marker vouches for (the
// log directory's, or a log's own).
func partitionFiles(t *testing.T, dir string) (files map[string]string, vouched int) {
	t.Helper()
	files = map[string]string{}
	state := storage.LoadDirState(dir, nil, nil)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			if e.Name() == "clean-shutdown" || e.Name() == "dirty-logs" {
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				files[e.Name()] = fmt.Sprint(fi.Size(), " ", fi.ModTime().UnixNano())
			}
			continue
		}
		if strings.HasPrefix(e.Name(), "__cluster_metadata") {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		own := false
		for _, f := range sub {
			fi, err := f.Info()
			if err != nil {
				t.Fatal(err)
			}
			files[filepath.Join(e.Name(), f.Name())] = fmt.Sprint(fi.Size(), " ", fi.ModTime().UnixNano())
			own = own || f.Name() == "clean-shutdown"
		}
		if own || state.Vouches(e.Name()) {
			vouched++
		}
	}
	return files, vouched
}

// stop sends SIGTERM and checks that the broker exits cleanly, logging how long it took.
func stop(t *testing.T, p *proc, what string) {
	t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.waitExit(t, 120*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, tail(p.stderr.String()))
	}
	t.Logf("%s %s", what, time.Since(start).Round(time.Millisecond))
	if strings.Contains(p.stderr.String(), "level=ERROR") {
		t.Fatalf("errors logged; stderr:\n%s", tail(p.stderr.String()))
	}
}

// TestManyMorePartitionsThanFiles runs a real broker whose open-file limit is far below three
// descriptors per partition: every partition is created, produced to and consumed from on
// random partitions, the broker restarts cleanly and everything is readable again, and a
// CreateTopics past the broker's partition budget is refused with POLICY_VIOLATION. What makes
// start-up and shutdown fast is checked too: after a clean restart no segment file is open
// until a partition is used, and a clean shutdown of partitions unchanged since the start
// writes nothing (the clean-shutdown marker of the log directory stays). The durations and
// RSS it logs are measurements, not assertions.
func TestManyMorePartitionsThanFiles(t *testing.T) {
	partitions, nofile := scaleParams(t)
	dir := t.TempDir()
	start := time.Now()
	p := startLimited(t, dir, nofile)
	t.Logf("%d partitions, ulimit -n %d: empty start-up %s", partitions, nofile, time.Since(start).Round(time.Millisecond))
	m := regexp.MustCompile(`max_partitions_per_broker=(\d+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no budget in the start-up log:\n%s", p.stderr.String())
	}
	budget, _ := strconv.Atoi(m[1])

	cl, adm := clients(t, p.addr)
	const perTopic = 5000
	var topics []string
	start = time.Now()
	for left := partitions; left > 0; left -= perTopic {
		name := fmt.Sprintf("scale%d", len(topics))
		n := min(left, perTopic)
		resp, err := adm.CreateTopics(context.Background(), int32(n), 1, nil, name)
		if err == nil {
			err = resp[name].Err
		}
		if err != nil {
			t.Fatalf("creating %s with %d partitions: %v", name, n, err)
		}
		topics = append(topics, name)
	}
	t.Logf("created %d partitions in %s; RSS %s", partitions, time.Since(start).Round(time.Millisecond), rss(p.cmd.Process.Pid))

	if over := budget - partitions + 1; over <= 10_000 {
		resp, err := adm.CreateTopics(context.Background(), int32(over), 1, nil, "over-budget")
		if err != nil {
			t.Fatal(err)
		}
		if r := resp["over-budget"]; r.Err != kerr.PolicyViolation || !strings.Contains(r.ErrMessage, "may host at most") {
			t.Fatalf("CreateTopics of %d partitions past the budget of %d: %v %q, want POLICY_VIOLATION", over, budget, r.Err, r.ErrMessage)
		}
	} else {
		t.Logf("budget %d: more than one request past it, not checked", budget)
	}

	// One record to each of 300 random partitions.
	rng := rand.New(rand.NewPCG(1, uint64(partitions)))
	want := map[string]string{} // topic/partition -> value
	var recs []*kgo.Record
	for len(recs) < 300 {
		ti := rng.IntN(len(topics))
		part := int32(rng.IntN(min(partitions-ti*perTopic, perTopic)))
		key := fmt.Sprintf("%s/%d", topics[ti], part)
		if _, dup := want[key]; dup {
			continue
		}
		want[key] = "value of " + key
		recs = append(recs, &kgo.Record{Topic: topics[ti], Partition: part, Value: []byte(want[key])})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v; stderr:\n%s", err, tail(p.stderr.String()))
	}
	cl.Close()
	consumeExactly(t, p.addr, want)

	stop(t, p, "shutdown")
	before, markers := partitionFiles(t, dir)

	start = time.Now()
	p = startLimited(t, dir, nofile)
	t.Logf("restart with %d partitions: serving after %s; RSS %s", partitions, time.Since(start).Round(time.Millisecond), rss(p.cmd.Process.Pid))
	if n := segmentFDs(t, p.cmd.Process.Pid, dir); n != 0 {
		t.Fatalf("%d segment files open after a clean restart before any partition is used", n)
	}
	stop(t, p, "shutdown of unused partitions")
	after, markersAfter := partitionFiles(t, dir)
	if markers < len(want) || markersAfter != markers {
		t.Fatalf("%d partition logs vouched for by clean-shutdown markers after a start and stop, %d before, want at least the %d produced to", markersAfter, markers, len(want))
	}
	for name, st := range after {
		if before[name] != st {
			t.Fatalf("%s changed by a start and a clean stop with no use: %q, was %q", name, st, before[name])
		}
	}

	start = time.Now()
	p = startLimited(t, dir, nofile)
	t.Logf("restart with %d partitions: serving after %s; RSS %s", partitions, time.Since(start).Round(time.Millisecond), rss(p.cmd.Process.Pid))
	consumeExactly(t, p.addr, want)
	if n := segmentFDs(t, p.cmd.Process.Pid, dir); n == 0 {
		t.Fatal("no segment file open after consuming: the descriptor count misses them")
	}
	if strings.Contains(p.stderr.String(), "level=ERROR") {
		t.Fatalf("errors logged after the restart; stderr:\n%s", tail(p.stderr.String()))
	}
}

// clients returns a producer client (manual partitioning) and an admin client on it.
func clients(t *testing.T, addr string) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// consumeExactly consumes the partitions named in want ("topic/partition") from the start and
// checks that each holds exactly its one value.
func consumeExactly(t *testing.T, addr string, want map[string]string) {
	t.Helper()
	parts := map[string]map[int32]kgo.Offset{}
	for key := range want {
		i := strings.LastIndexByte(key, '/')
		n, _ := strconv.Atoi(key[i+1:])
		if parts[key[:i]] == nil {
			parts[key[:i]] = map[int32]kgo.Offset{}
		}
		parts[key[:i]][int32(n)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[string]string{}
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d partitions", len(got), len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			key := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if _, dup := got[key]; dup || want[key] != string(r.Value) {
				t.Errorf("%s: unexpected record %q at offset %d", key, r.Value, r.Offset)
			}
			got[key] = string(r.Value)
		})
	}
}

// tail returns the last lines of a log, for failure messages.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}
