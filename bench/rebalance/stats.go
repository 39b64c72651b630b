package main

import (
	"slices"
	"sort"
	"time"
)

// event is one assignment change of one partition at one member, as seen by the member's
// OnPartitionsAssigned / OnPartitionsRevoked / OnPartitionsLost hooks.
type event struct {
	at       time.Time
	member   int
	part     int32
	assigned bool // false: revoked or lost
}

// interval is [from, to).
type interval struct{ from, to time.Time }

// emptyIntervals returns the intervals within [start, end) during which a member that owned
// `initial` partitions at start owned none, given its assignment events in order.
func emptyIntervals(initial int, evs []event, start, end time.Time) []interval {
	var out []interval
	n := initial
	var emptySince time.Time
	if n == 0 {
		emptySince = start
	}
	for _, e := range evs {
		if e.at.Before(start) {
			continue
		}
		if e.at.After(end) {
			break
		}
		was := n
		if e.assigned {
			n++
		} else if n > 0 {
			n--
		}
		switch {
		case was > 0 && n == 0:
			emptySince = e.at
		case was == 0 && n > 0:
			out = append(out, interval{emptySince, e.at})
		}
	}
	if n == 0 {
		out = append(out, interval{emptySince, end})
	}
	return out
}

// unionLength is the total length covered by the intervals.
func unionLength(ivs []interval) time.Duration {
	ivs = slices.Clone(ivs)
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].from.Before(ivs[j].from) })
	var total time.Duration
	var cur interval
	have := false
	for _, iv := range ivs {
		if !iv.to.After(iv.from) {
			continue
		}
		if !have {
			cur, have = iv, true
			continue
		}
		if !iv.from.After(cur.to) {
			if iv.to.After(cur.to) {
				cur.to = iv.to
			}
			continue
		}
		total += cur.to.Sub(cur.from)
		cur = iv
	}
	if have {
		total += cur.to.Sub(cur.from)
	}
	return total
}

// maxPartitionGap is the longest time within [start, end) any partition had no owner, given
// every member's events and that each of the n partitions had exactly one owner at start.
func maxPartitionGap(n int, evs []event, start, end time.Time) time.Duration {
	evs = slices.Clone(evs)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	owners := make([]int, n)
	since := make([]time.Time, n)
	for i := range owners {
		owners[i] = 1
	}
	var longest time.Duration
	for _, e := range evs {
		if e.at.Before(start) || e.at.After(end) || int(e.part) >= n || e.part < 0 {
			continue
		}
		p := e.part
		if e.assigned {
			if owners[p] == 0 {
				longest = max(longest, e.at.Sub(since[p]))
			}
			owners[p]++
		} else if owners[p] > 0 {
			owners[p]--
			if owners[p] == 0 {
				since[p] = e.at
			}
		}
	}
	for p, o := range owners {
		if o == 0 {
			longest = max(longest, end.Sub(since[p]))
		}
	}
	return longest
}

// summary is the median, min and max of a sample.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{Median: med, Min: s[0], Max: s[len(s)-1]}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
