package perf

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	// Consecutive buckets tile the value range with no gap or overlap.
	prevHi := uint64(0)
	for i := 0; i < nBuckets; i++ {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps back to %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
		if hi == ^uint64(0) {
			if i != nBuckets-1 {
				t.Fatalf("range ends at bucket %d of %d", i, nBuckets)
			}
			return
		}
	}
	t.Fatalf("buckets end at %d, before the largest uint64", prevHi)
}

func TestBucketPrecision(t *testing.T) {
	for _, v := range []uint64{0, 1, 255, 256, 257, 1000, 123456, 1e9, 1 << 62} {
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Fatalf("%d outside its bucket [%d,%d]", v, lo, hi)
		}
		if width := hi - lo; v > 0 && float64(width)/float64(v) > 1.0/halfSub {
			t.Fatalf("%d: bucket width %d is over 1/%d of the value", v, width, halfSub)
		}
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h Histogram
	if h.Percentile(50) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram reports non-zero figures")
	}
	// 1..10000 µs in random order.
	vals := make([]time.Duration, 10000)
	for i := range vals {
		vals[i] = time.Duration(i+1) * time.Microsecond
	}
	rand.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for _, v := range vals {
		h.Record(v)
	}
	if h.Count() != 10000 || h.Min() != time.Microsecond || h.Max() != 10*time.Millisecond {
		t.Fatalf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if got, want := h.Mean(), 5000500*time.Nanosecond; got != want {
		t.Fatalf("mean %v, want %v", got, want)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{50, 5 * time.Millisecond}, {95, 9500 * time.Microsecond}, {99, 9900 * time.Microsecond}, {99.9, 9990 * time.Microsecond}, {100, 10 * time.Millisecond}} {
		got := h.Percentile(c.q)
		if diff := float64(got-c.want) / float64(c.want); diff > 1.0/halfSub || diff < -1.0/halfSub {
			t.Errorf("p%v = %v, want %v within 0.8%%", c.q, got, c.want)
		}
	}
	if got := h.Percentile(0); got != time.Microsecond {
		t.Errorf("p0 = %v, want the minimum", got)
	}
}

func TestHistogramExactSmallValuesAndClamp(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{3, 3, 7, -5} {
		h.Record(v)
	}
	if h.Min() != 0 || h.Max() != 7 {
		t.Fatalf("min %v max %v (negative counts as 0)", h.Min(), h.Max())
	}
	if got := h.Percentile(75); got != 3 {
		t.Fatalf("p75 = %v, want 3", got)
	}
	// A single large value: the percentile is clamped to it, not the bucket's middle.
	var one Histogram
	one.Record(123456789)
	if got := one.Percentile(50); got != 123456789 {
		t.Fatalf("single value p50 = %d", got)
	}
}

func TestHistogramMergeAndReset(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Millisecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&Histogram{})
	for _, q := range []float64{1, 50, 99, 99.9} {
		if a.Percentile(q) != all.Percentile(q) {
			t.Fatalf("p%v merged %v, direct %v", q, a.Percentile(q), all.Percentile(q))
		}
	}
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Fatal("merged summary differs from direct")
	}
	var empty Histogram
	empty.Merge(&a)
	if empty.Count() != 1000 {
		t.Fatal("merge into empty histogram")
	}
	a.Reset()
	if a.Count() != 0 || a.Percentile(50) != 0 {
		t.Fatal("reset histogram is not empty")
	}
}

// fakeClock is a clock that moves only when slept on.
type fakeClock struct {
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	return nil
}

func TestLimiterPacesAndBatchesSleeps(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewLimiter(5000) // one event per 200µs
	l.now, l.sleep = clk.now, clk.sleep
	ctx := context.Background()
	for i := 0; i < 5000; i++ {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The last event (n=4999) is due at 999.8 ms; the loop takes no time itself, so the clock
	// has advanced by sleeps alone, each at least minSleep.
	elapsed := clk.t.Sub(time.Unix(1000, 0))
	if elapsed < 999*time.Millisecond || elapsed > 1000*time.Millisecond {
		t.Fatalf("5000 events at 5000/s took %v", elapsed)
	}
	for _, d := range clk.slept {
		if d < minSleep {
			t.Fatalf("slept %v, below %v", d, minSleep)
		}
	}
}

func TestLimiterDoesNotMakeUpForLostTime(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewLimiter(1000)
	l.now, l.sleep = clk.now, clk.sleep
	ctx := context.Background()
	_ = l.Wait(ctx)
	clk.t = clk.t.Add(time.Second) // the loop stalls for a second
	for i := 0; i < 1000; i++ {    // the missed events go through without sleeping
		_ = l.Wait(ctx)
	}
	if len(clk.slept) != 0 {
		t.Fatalf("slept %v while behind schedule", clk.slept)
	}
	_ = l.Wait(ctx)
	_ = l.Wait(ctx)
	if len(clk.slept) == 0 {
		t.Fatal("no sleep once back on schedule")
	}
}

func TestLimiterUnlimitedAndCanceled(t *testing.T) {
	l := NewLimiter(-1)
	if !l.Unlimited() {
		t.Fatal("rate -1 is limited")
	}
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx); err == nil {
		t.Fatal("canceled context did not stop the unlimited limiter")
	}
	slow := NewLimiter(0.001) // the second event is due in 1000 s
	_ = slow.Wait(context.Background())
	if err := slow.Wait(ctx); err == nil {
		t.Fatal("canceled context did not stop a sleeping limiter")
	}
}

func TestRecorderTotalsAndWindows(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := &Recorder{now: clk.now}
	r.Restart()
	for i := 0; i < 100; i++ {
		r.Record(1000, time.Duration(i+1)*time.Millisecond)
	}
	r.Error()
	clk.t = clk.t.Add(2 * time.Second)
	w := r.Window()
	if w.Records != 100 || w.RecordsPerSec != 50 || w.Errors != 1 || w.Latency == nil || w.Latency.MaxMs != 100 {
		t.Fatalf("first window %+v", w)
	}
	r.Record(1000, -1) // no latency
	clk.t = clk.t.Add(time.Second)
	w = r.Window()
	if w.Records != 1 || w.Latency != nil || w.Errors != 0 {
		t.Fatalf("second window %+v", w)
	}
	tot := r.Total()
	if tot.Records != 101 || tot.Bytes != 101000 || tot.Seconds != 3 || tot.Errors != 1 {
		t.Fatalf("total %+v", tot)
	}
	if got, want := tot.MBPerSec, 101000.0/MiB/3; got != want {
		t.Fatalf("MB/s %v, want %v", got, want)
	}
	if r.Records() != 101 {
		t.Fatal("Records")
	}
}

func TestReportLines(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond} {
		h.Record(d)
	}
	res := NewResult(3, 3*MiB, 2*time.Second, &h)
	got := SummaryLine("sent", res)
	for _, want := range []string{"3 records sent", "1.5 records/sec", "(1.50 MB/sec)", "2.00 ms avg latency", "3.00 ms max latency", "2.00 ms 50th", "3.00 ms 99.9th."} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	cons := NewResult(10, 10, time.Second, nil)
	if got := SummaryLine("received", cons); got != "10 records received, 10.0 records/sec (0.00 MB/sec)." {
		t.Errorf("consumer summary %q", got)
	}
	if got := ProgressLine("sent", res); !strings.HasSuffix(got, "3.00 ms max latency.") {
		t.Errorf("progress %q", got)
	}
	if zero := NewResult(0, 0, 0, nil); zero.RecordsPerSec != 0 || zero.MBPerSec != 0 {
		t.Errorf("zero elapsed: %+v", zero)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"records_per_sec"`, `"p99_9_ms"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
}
