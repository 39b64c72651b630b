package quota

import (
	"testing"
	"time"
)

// mutationStep is one mutation of a scripted scenario at a fake time (ms after the start).
type mutationStep struct {
	atMs       int64
	partitions float64
	// wantOK and wantThrottleMs are what the quota answers.
	wantOK         bool
	wantThrottleMs int64
}

// The scenarios of Kafka's StrictControllerMutationQuotaTest and
// PermissiveControllerMutationQuotaTest: a quota of 10 mutations/s over 10 samples of 1 s,
// a burst of 100.
func TestStrictMutationQuota(t *testing.T) {
	tests := []struct {
		name  string
		steps []mutationStep
	}{
		{"a burst is accepted whole, the next mutation refused until the tokens are back", []mutationStep{
			{0, 90, true, 0},       // tokens 10
			{0, 90, true, 0},       // tokens -80: accepted, the bucket was not empty
			{0, 1, false, 8000},    // refused: 80 tokens at 10/s
			{5000, 1, false, 3000}, // tokens -30
			{8000, 1, true, 0},     // tokens 0: accepted, -1
			{8000, 1, false, 100},  // tokens -1
		}},
		{"the bucket never holds more than the burst", []mutationStep{
			{0, 0, true, 0},
			{60_000, 100, true, 0}, // 100 after a minute idle, not 700
			{60_000, 1, true, 0},   // 0 left: still not below zero
			{60_000, 1, false, 100},
		}},
		{"a single mutation larger than the burst is accepted on a full bucket", []mutationStep{
			{0, 250, true, 0},
			{0, 1, false, 15_000},
			{15_000, 5, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewMutationSensors(Config{Samples: 10, Window: time.Second})
			q := Resolved{Key: Key{User: "alice"}, Limit: 10, OK: true}
			start := time.Unix(1_700_000_000, 0)
			for i, st := range tt.steps {
				th, ok := s.RecordStrict(q, st.partitions, start.Add(time.Duration(st.atMs)*time.Millisecond))
				if ok != st.wantOK || th.Milliseconds() != st.wantThrottleMs {
					t.Fatalf("step %d (%+v): ok %v throttle %v", i, st, ok, th)
				}
			}
		})
	}
}

func TestPermissiveMutationQuota(t *testing.T) {
	s := NewMutationSensors(Config{Samples: 10, Window: time.Second})
	q := Resolved{Key: Key{ClientID: "app"}, Limit: 10, OK: true}
	start := time.Unix(1_700_000_000, 0)
	at := func(ms int64) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	steps := []struct {
		atMs           int64
		partitions     float64
		wantThrottleMs int64
	}{
		{0, 90, 0},         // tokens 10
		{0, 90, 8000},      // -80: accepted and throttled
		{0, 20, 10_000},    // -100: accepted all the same
		{5000, 0, 5000},    // -50
		{10_000, 1, 100},   // 0 then -1
		{20_000, 50, 0},    // refilled to 99, 49 left
		{20_000, 60, 1100}, // -11
	}
	for i, st := range steps {
		if got := s.RecordPermissive(q, st.partitions, at(st.atMs)); got.Milliseconds() != st.wantThrottleMs {
			t.Fatalf("step %d (%+v): throttle %v", i, st, got)
		}
	}
}

func TestMutationQuotaUnrecordAndKeys(t *testing.T) {
	s := NewMutationSensors(Config{Samples: 2, Window: time.Second})
	alice := Resolved{Key: Key{User: "alice"}, Limit: 5, OK: true} // burst 10
	bob := Resolved{Key: Key{User: "bob"}, Limit: 5, OK: true}
	now := time.Unix(1_700_000_000, 0)
	if _, ok := s.RecordStrict(alice, 12, now); !ok {
		t.Fatal("a full bucket refused a mutation")
	}
	if _, ok := s.RecordStrict(alice, 1, now); ok {
		t.Fatal("an empty bucket accepted a mutation")
	}
	// Another key has its own bucket.
	if _, ok := s.RecordStrict(bob, 10, now); !ok {
		t.Fatal("bob was refused for alice's mutations")
	}
	// A failed mutation's partitions come back.
	s.Unrecord(alice, 12, now)
	if got := s.Tokens(alice, now); got != 10 {
		t.Fatalf("tokens after unrecord = %v, want 10", got)
	}
	// No quota: everything is accepted, nothing is recorded.
	none := Resolved{Key: Key{ClientID: "free"}}
	for range 3 {
		if th, ok := s.RecordStrict(none, 1e9, now); !ok || th != 0 {
			t.Fatalf("no quota: ok %v throttle %v", ok, th)
		}
		if th := s.RecordPermissive(none, 1e9, now); th != 0 {
			t.Fatalf("no quota, permissive: throttle %v", th)
		}
	}
	if s.Len() != 2 {
		t.Fatalf("%d buckets, want 2", s.Len())
	}
	// A lowered quota lowers the burst at the next refill.
	small := alice
	small.Limit = 1
	if got := s.Tokens(small, now.Add(time.Minute)); got != 2 {
		t.Fatalf("tokens with quota 1 = %v, want its burst 2", got)
	}
}
