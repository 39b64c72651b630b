package perf

import (
	"fmt"
	"sync"
	"time"
)

// MiB is the unit of the MB/sec figures, as in Kafka's perf tools.
const MiB = 1024 * 1024

// Latency is a latency distribution summarized in milliseconds.
type Latency struct {
	AvgMs  float64 `json:"avg_ms"`
	MaxMs  float64 `json:"max_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
}

// Summarize converts a histogram into milliseconds.
func Summarize(h *Histogram) Latency {
	return Latency{
		AvgMs:  ms(h.Mean()),
		MaxMs:  ms(h.Max()),
		P50Ms:  ms(h.Percentile(50)),
		P95Ms:  ms(h.Percentile(95)),
		P99Ms:  ms(h.Percentile(99)),
		P999Ms: ms(h.Percentile(99.9)),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Result is a run's (or a progress window's) figures. Latency is nil when the run measured
// none (a consumer).
type Result struct {
	Records       int64    `json:"records"`
	Bytes         int64    `json:"bytes"`
	Seconds       float64  `json:"seconds"`
	RecordsPerSec float64  `json:"records_per_sec"`
	MBPerSec      float64  `json:"mb_per_sec"`
	Latency       *Latency `json:"latency,omitempty"`
	Errors        int64    `json:"errors,omitempty"`
}

// NewResult computes the rates of records and bytes over elapsed.
func NewResult(records, bytes int64, elapsed time.Duration, h *Histogram) Result {
	r := Result{Records: records, Bytes: bytes, Seconds: elapsed.Seconds()}
	if s := elapsed.Seconds(); s > 0 {
		r.RecordsPerSec = float64(records) / s
		r.MBPerSec = float64(bytes) / MiB / s
	}
	if h != nil {
		l := Summarize(h)
		r.Latency = &l
	}
	return r
}

// ProgressLine formats a progress window as Kafka's producer perf test does, with verb "sent"
// or "received": "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency."
func ProgressLine(verb string, r Result) string {
	s := fmt.Sprintf("%d records %s, %.1f records/sec (%.2f MB/sec)", r.Records, verb, r.RecordsPerSec, r.MBPerSec)
	if r.Latency != nil {
		s += fmt.Sprintf(", %.2f ms avg latency, %.2f ms max latency", r.Latency.AvgMs, r.Latency.MaxMs)
	}
	return s + "."
}

// SummaryLine formats a whole run as the final line of Kafka's producer perf test, with the
// percentiles: "... A ms avg latency, X ms max latency, P ms 50th, P ms 95th, P ms 99th,
// P ms 99.9th."
func SummaryLine(verb string, r Result) string {
	s := fmt.Sprintf("%d records %s, %.1f records/sec (%.2f MB/sec)", r.Records, verb, r.RecordsPerSec, r.MBPerSec)
	if l := r.Latency; l != nil {
		s += fmt.Sprintf(", %.2f ms avg latency, %.2f ms max latency, %.2f ms 50th, %.2f ms 95th, %.2f ms 99th, %.2f ms 99.9th",
			l.AvgMs, l.MaxMs, l.P50Ms, l.P95Ms, l.P99Ms, l.P999Ms)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d errors", r.Errors)
	}
	return s + "."
}

// Recorder accumulates records, bytes and latencies from concurrent callers, both for the whole
// run and for the current progress window.
type Recorder struct {
	mu struct {
		sync.Mutex
		start, windowStart time.Time
		total, window      counts
	}
	now func() time.Time
}

type counts struct {
	records, bytes, errors int64
	lat                    Histogram
}

// NewRecorder returns a recorder whose run and first window start now.
func NewRecorder() *Recorder {
	r := &Recorder{now: time.Now}
	r.Restart()
	return r
}

// Restart forgets everything and starts the run and the window now.
func (r *Recorder) Restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.mu.start, r.mu.windowStart = now, now
	r.mu.total.reset()
	r.mu.window.reset()
}

func (c *counts) reset() {
	c.records, c.bytes, c.errors = 0, 0, 0
	c.lat.Reset()
}

// Record counts one record of size bytes and its latency (a negative latency records none).
func (r *Recorder) Record(bytes int, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range []*counts{&r.mu.total, &r.mu.window} {
		c.records++
		c.bytes += int64(bytes)
		if latency >= 0 {
			c.lat.Record(latency)
		}
	}
}

// Error counts one failed record.
func (r *Recorder) Error() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.total.errors++
	r.mu.window.errors++
}

// Records returns the number of records counted in the run so far.
func (r *Recorder) Records() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.total.records
}

// Window returns the figures of the current window and starts the next one.
func (r *Recorder) Window() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	res := r.mu.window.result(now.Sub(r.mu.windowStart))
	r.mu.windowStart = now
	r.mu.window.reset()
	return res
}

// Total returns the figures of the whole run, measured up to now.
func (r *Recorder) Total() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.total.result(r.now().Sub(r.mu.start))
}

func (c *counts) result(elapsed time.Duration) Result {
	var h *Histogram
	if c.lat.Count() > 0 {
		h = &c.lat
	}
	res := NewResult(c.records, c.bytes, elapsed, h)
	res.Errors = c.errors
	return res
}
