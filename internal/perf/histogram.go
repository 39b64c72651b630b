// Package perf holds the measuring parts of `samsa perf` and the bench: a log-linear latency
// histogram, a rate limiter that keeps a fixed records-per-second pace, a recorder that keeps
// totals and a progress window, and the report lines in the style of Kafka's perf tools.
package perf

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: every power-of-two range is split into 2^(subBits-1)
// buckets, so a recorded value is reported within 1/2^(subBits-1) (0.8%) of itself.
const subBits = 8

const (
	subCount = 1 << subBits // values below this have a bucket each
	halfSub  = subCount / 2 // buckets per power of two above subCount
	maxShift = 64 - subBits // largest shift of a uint64 value
	nBuckets = subCount + maxShift*halfSub
)

// Histogram records non-negative durations in log-linear buckets (as HdrHistogram does): exact
// below 256 ns, within 0.8% above. It keeps the exact count, sum, minimum and maximum. The zero
// value is ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts []int64 // allocated on the first Record
	count  int64
	sum    float64 // nanoseconds; a float so that long runs cannot overflow
	min    int64
	max    int64
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1
	m := v >> uint(shift)            // in [halfSub, subCount)
	return subCount + (shift-1)*halfSub + int(m-halfSub)
}

// bucketRange returns the smallest and largest value that fall into bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	j := i - subCount
	shift := uint(j/halfSub + 1)
	m := uint64(j%halfSub + halfSub)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one observation; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.counts == nil {
		h.counts = make([]int64, nBuckets)
	}
	h.counts[bucketOf(uint64(v))]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
	h.sum += float64(v)
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.count == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]int64, nBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
}

// Reset forgets every observation, keeping the bucket storage.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.count, h.sum, h.min, h.max = 0, 0, 0, 0
}

// Count returns the number of observations.
func (h *Histogram) Count() int64 { return h.count }

// Min returns the smallest observation (0 when empty).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest observation (0 when empty).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the average observation (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.count)))
}

// Percentile returns the value below or at which q percent of the observations fall (q in
// [0, 100]): the exact minimum or maximum at the ends, else the middle of its bucket clamped to
// them; 0 when empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := int64(math.Ceil(q / 100 * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	switch {
	case rank == 1:
		return time.Duration(h.min)
	case rank >= h.count:
		return time.Duration(h.max)
	}
	var seen int64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := int64(lo + (hi-lo)/2)
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
