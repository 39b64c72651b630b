package main

import (
	"testing"
	"time"
)

func TestStopTheWorldAndGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(msv int) time.Time { return t0.Add(time.Duration(msv) * time.Millisecond) }
	end := at(1000)
	// Eager: members 0 and 1 own 2 partitions each; both revoke everything, then get
	// one partition each back while member 2 (new) gets the two others.
	m0 := []event{{at(100), 0, 0, false}, {at(100), 0, 1, false}, {at(400), 0, 0, true}}
	m1 := []event{{at(150), 1, 2, false}, {at(150), 1, 3, false}, {at(500), 1, 2, true}}
	m2 := []event{{at(420), 2, 1, true}, {at(450), 2, 3, true}}
	ivs := append(emptyIntervals(2, m0, t0, end), emptyIntervals(2, m1, t0, end)...)
	if got, want := unionLength(ivs), 400*time.Millisecond; got != want {
		t.Fatalf("stop-the-world %v, want %v (100..500)", got, want)
	}
	all := append(append(append([]event{}, m0...), m1...), m2...)
	if got, want := maxPartitionGap(4, all, t0, end), 350*time.Millisecond; got != want {
		t.Fatalf("max gap %v, want %v (partition 2: 150..500)", got, want)
	}
	// Cooperative: a member gives up one of two partitions and is never empty.
	coop := []event{{at(100), 0, 1, false}}
	if ivs := emptyIntervals(2, coop, t0, end); len(ivs) != 0 {
		t.Fatalf("cooperative member empty during %v", ivs)
	}
	// A member still empty at the end counts until the end.
	if got := unionLength(emptyIntervals(1, []event{{at(900), 0, 0, false}}, t0, end)); got != 100*time.Millisecond {
		t.Fatalf("trailing empty interval %v", got)
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{5, 1, 3, 2, 4})
	if s != (summary{Median: 3, Min: 1, Max: 5}) {
		t.Fatalf("%+v", s)
	}
	if s := summarize([]float64{4, 1, 3, 2}); s.Median != 2.5 {
		t.Fatalf("%+v", s)
	}
}
