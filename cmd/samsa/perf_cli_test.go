package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// runPerf runs `samsa perf ...` in-process on a fresh command tree.
func runPerf(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := &cobra.Command{Use: "samsa", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newPerfCmd())
	var out bytes.Buffer
	root.SetArgs(append([]string{"perf"}, args...))
	root.SetOut(&out)
	root.SetErr(&out)
	err = root.ExecuteContext(ctx)
	return out.String(), err
}

// perfJSON is the JSON line the perf commands print with --json.
type perfJSON struct {
	Result struct {
		Records       int64   `json:"records"`
		Bytes         int64   `json:"bytes"`
		RecordsPerSec float64 `json:"records_per_sec"`
		Latency       *struct {
			P50Ms  float64 `json:"p50_ms"`
			P999Ms float64 `json:"p99_9_ms"`
			MaxMs  float64 `json:"max_ms"`
		} `json:"latency"`
	} `json:"result"`
	Produced int64 `json:"produced"`
	Received int64 `json:"received"`
}

func lastJSON(t *testing.T, out string) perfJSON {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var j perfJSON
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &j); err != nil {
		t.Fatalf("last line of %q: %v", out, err)
	}
	return j
}

func TestPerfProduceConsumeE2E(t *testing.T) {
	n := testcluster.Start(t)
	addr := n.Addr()

	// Produce creates the topic with the partitions asked for, and reports every record.
	out, err := runPerf(t, "produce", "--brokers", addr, "--topic", "perf", "--partitions", "3",
		"--records", "3000", "--record-size", "50", "--acks", "1", "--report-interval", "10ms", "--json")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	if !strings.Contains(out, "3000 records sent") || !strings.Contains(out, "ms 99.9th.") {
		t.Fatalf("produce summary missing:\n%s", out)
	}
	pj := lastJSON(t, out)
	if pj.Result.Records != 3000 || pj.Result.Bytes != 150000 || pj.Result.Latency == nil {
		t.Fatalf("produce JSON %+v", pj)
	}

	// A second produce with acks=all and a rate limit, into the existing topic.
	out, err = runPerf(t, "produce", "--brokers", addr, "--topic", "perf", "--records", "1000",
		"--record-size", "50", "--acks", "all", "--throughput", "20000", "--compression", "lz4", "--linger", "0")
	if err != nil || !strings.Contains(out, "1000 records sent") {
		t.Fatalf("produce acks=all: %v\n%s", err, out)
	}

	// Consume reads every record of the three partitions from the beginning.
	out, err = runPerf(t, "consume", "--brokers", addr, "--topic", "perf", "--records", "4000", "--json")
	if err != nil {
		t.Fatalf("consume: %v\n%s", err, out)
	}
	cj := lastJSON(t, out)
	if cj.Result.Records != 4000 || cj.Result.Bytes != 200000 || cj.Result.Latency != nil {
		t.Fatalf("consume JSON %+v", cj)
	}

	// Asking for more records than exist fails after the idle timeout.
	if out, err := runPerf(t, "consume", "--brokers", addr, "--topic", "perf", "--records", "4001", "--timeout", "500ms"); err == nil ||
		!strings.Contains(err.Error(), "after 4000 of 4001 records") {
		t.Fatalf("consume past the end: %v\n%s", err, out)
	}

	// E2e receives every record it produced and measures those after the warm-up.
	out, err = runPerf(t, "e2e", "--brokers", addr, "--topic", "perf-e2e", "--records", "600",
		"--throughput", "2000", "--warmup", "100ms", "--json")
	if err != nil {
		t.Fatalf("e2e: %v\n%s", err, out)
	}
	ej := lastJSON(t, out)
	if ej.Produced != 600 || ej.Received != 600 || ej.Result.Records == 0 || ej.Result.Records >= 600 || ej.Result.Latency == nil {
		t.Fatalf("e2e JSON %+v\n%s", ej, out)
	}
	if l := ej.Result.Latency; l.P50Ms <= 0 || l.P999Ms < l.P50Ms || l.MaxMs < l.P999Ms {
		t.Fatalf("e2e latencies out of order: %+v", *l)
	}
}

func TestPerfFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"produce"}, "--topic is required"},
		{[]string{"produce", "--topic", "t", "--records", "0"}, "invalid --records"},
		{[]string{"produce", "--topic", "t", "--acks", "2"}, "--acks"},
		{[]string{"produce", "--topic", "t", "--compression", "brotli"}, "--compression"},
		{[]string{"produce", "--topic", "t", "--batch-max-bytes", "10"}, "--batch-max-bytes"},
		{[]string{"produce", "--topic", "t", "--keys", "-1"}, "invalid --keys"},
		{[]string{"consume", "--topic", "t", "--timeout", "0s"}, "must be positive"},
		{[]string{"e2e", "--topic", "t", "--record-size", "4"}, "at least 8 bytes"},
	} {
		if _, err := runPerf(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

// TestPerfProduceKeys: --keys N gives every record one of N keys, the bytes reported count
// them.
func TestPerfProduceKeys(t *testing.T) {
	n := testcluster.Start(t)
	out, err := runPerf(t, "produce", "--brokers", n.Addr(), "--topic", "keyed", "--records", "500",
		"--record-size", "10", "--keys", "7", "--acks", "1", "--json")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	if pj := lastJSON(t, out); pj.Result.Records != 500 || pj.Result.Bytes != int64(500*(10+len("key-00000000"))) {
		t.Fatalf("produce JSON %+v", pj)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ConsumeTopics("keyed"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := map[string]int{}
	for got := 0; got < 500; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 500", got)
		}
		fs.EachRecord(func(r *kgo.Record) { keys[string(r.Key)]++; got++ })
	}
	for k := range keys {
		if !strings.HasPrefix(k, "key-0000000") || k > "key-00000006" {
			t.Fatalf("unexpected key %q in %v", k, keys)
		}
	}
	if len(keys) < 2 {
		t.Fatalf("500 records over %d keys, want them drawn from 7: %v", len(keys), keys)
	}
}

func TestPerfUnreachableBroker(t *testing.T) {
	if _, err := runPerf(t, "produce", "--brokers", closedAddr(t), "--topic", "t", "--records", "1"); err == nil ||
		!strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("got %v", err)
	}
}

// TestAckLatencyUsesTheSendTime: franz-go truncates a record's timestamp to milliseconds, so
// the latency is measured from the send time the record carries in its context.
func TestAckLatencyUsesTheSendTime(t *testing.T) {
	sent := time.Date(2026, 11, 22, 8, 0, 0, 900_000, time.UTC) // 0.9 ms past the millisecond
	acked := sent.Add(300 * time.Microsecond)
	r := &kgo.Record{Timestamp: sent, Context: &sentAt{context.Background(), sent}}
	r.Timestamp = r.Timestamp.Truncate(time.Millisecond) // what franz-go does when buffering
	if got := ackLatency(r, acked); got != 300*time.Microsecond {
		t.Fatalf("latency %v, want 300µs", got)
	}
	// A record without the send time falls back to its timestamp.
	if got := ackLatency(&kgo.Record{Timestamp: sent}, acked); got != 300*time.Microsecond {
		t.Fatalf("fallback latency %v", got)
	}
}
