package campaign

import (
	"testing"
	"time"
)

// history builds a clean history: producers a and b, four records each over two partitions,
// all acknowledged where the final log has them, and consumers that read all of it.
func history() ([]Ack, []Read, map[int32][]Record) {
	final := map[int32][]Record{}
	var acks []Ack
	var reads []Read
	t0 := time.Unix(1000, 0)
	for seq := range int64(4) {
		for _, prod := range []string{"a", "b"} {
			p := int32(seq % 2)
			v := Value{prod, seq}.String()
			off := int64(len(final[p]))
			final[p] = append(final[p], Record{off, v})
			acks = append(acks, Ack{Partition: p, Offset: off, Value: v, At: t0.Add(time.Duration(seq) * time.Second)})
			reads = append(reads, Read{p, off, v})
		}
	}
	return acks, reads, final
}

func kinds(r Report) map[string]int {
	m := map[string]int{}
	for _, a := range r.Anomalies {
		m[a.Kind]++
	}
	return m
}

func TestCheckClean(t *testing.T) {
	acks, reads, final := history()
	r := Check(acks, reads, final)
	if r.Failed() || len(r.Anomalies) > 0 || r.Acked != 8 || r.Final != 8 {
		t.Fatalf("clean history: %v %v", r, r.Anomalies)
	}
	// Unacknowledged records in the final log (a produce whose answer was lost) are fine.
	final[0] = append(final[0], Record{int64(len(final[0])), "c-0"})
	if r := Check(acks, reads, final); r.Failed() {
		t.Fatalf("an unacknowledged record is not an anomaly: %v %v", r, r.Anomalies)
	}
}

func TestCheckLost(t *testing.T) {
	acks, reads, final := history()
	// The last record of partition 1 is gone: lost, and its read is divergent.
	final[1] = final[1][:len(final[1])-1]
	r := Check(acks, reads, final)
	if r.Lost != 1 || r.Divergent != 1 || r.Duplicated+r.Reordered+r.Misplaced != 0 || !r.Failed() {
		t.Fatalf("%v %v", r, r.Anomalies)
	}
}

func TestCheckDuplicated(t *testing.T) {
	acks, reads, final := history()
	final[0] = append(final[0], Record{int64(len(final[0])), final[0][1].Value})
	r := Check(acks, reads, final)
	if r.Duplicated != 1 || r.Lost+r.Reordered+r.Misplaced+r.Divergent != 0 {
		t.Fatalf("%v %v", r, r.Anomalies)
	}
	// A copy on another partition is a duplicate too.
	acks, reads, final = history()
	final[1] = append(final[1], Record{int64(len(final[1])), final[0][0].Value})
	if r := Check(acks, reads, final); r.Duplicated != 1 {
		t.Fatalf("%v %v", r, r.Anomalies)
	}
}

func TestCheckReordered(t *testing.T) {
	acks, _, final := history()
	// Partition 0 holds a-0 b-0 a-2 b-2; swap a-0 and a-2 in the log and in the acks.
	final[0][0].Value, final[0][2].Value = final[0][2].Value, final[0][0].Value
	for i := range acks {
		switch acks[i].Value {
		case "a-0":
			acks[i].Offset = 2
		case "a-2":
			acks[i].Offset = 0
		}
	}
	r := Check(acks, nil, final)
	if r.Reordered != 1 || r.Lost+r.Duplicated+r.Misplaced+r.Divergent != 0 {
		t.Fatalf("%v %v", r, r.Anomalies)
	}
}

func TestCheckMisplaced(t *testing.T) {
	acks, _, final := history()
	acks[0].Offset = 7
	r := Check(acks, nil, final)
	if r.Misplaced != 1 || r.Lost+r.Duplicated+r.Reordered+r.Divergent != 0 {
		t.Fatalf("%v %v", r, r.Anomalies)
	}
}

func TestCheckDivergent(t *testing.T) {
	acks, reads, final := history()
	// A consumer read an unacknowledged record that a new leader then overwrote, one beyond
	// the final end, and one at a hole; each (partition, offset) counts once.
	reads = append(reads,
		Read{0, 1, "x-0"}, Read{0, 1, "x-0"},
		Read{1, 9, "x-1"},
	)
	final[0] = append(final[0], Record{10, "c-0"})
	reads = append(reads, Read{0, 5, "x-2"})
	r := Check(acks, reads, final)
	if r.Divergent != 3 || r.Lost+r.Duplicated+r.Reordered+r.Misplaced != 0 {
		t.Fatalf("%v %v", r, r.Anomalies)
	}
	if k := kinds(r); k["divergent"] != 3 {
		t.Fatalf("%v", k)
	}
}

func TestCheckAckedTwice(t *testing.T) {
	// One value acknowledged twice (a retried produce answered twice) counts once.
	acks, reads, final := history()
	acks = append(acks, acks[0])
	if r := Check(acks, reads, final); r.Failed() || r.Acked != 8 {
		t.Fatalf("%v %v", r, r.Anomalies)
	}
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
		v  Value
	}{
		{"kgo-1-42", true, Value{"kgo-1", 42}},
		{"py-0", true, Value{"py", 0}},
		{"nodash", false, Value{}},
		{"-3", false, Value{}},
		{"a-x", false, Value{}},
	} {
		v, ok := ParseValue(tc.in)
		if ok != tc.ok || v != tc.v {
			t.Errorf("ParseValue(%q) = %v, %v", tc.in, v, ok)
		}
	}
}

func TestFailoverTimes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	acks := []Ack{
		{Partition: 0, At: t0.Add(-time.Second)},
		{Partition: 1, At: t0.Add(time.Second)},
		{Partition: 0, At: t0.Add(5 * time.Second)},
		{Partition: 0, At: t0.Add(3 * time.Second)},
		// Acknowledged after the kill but sent before it: the old leader's answer in flight.
		{Partition: 0, At: t0.Add(time.Millisecond), Sent: t0.Add(-time.Millisecond)},
	}
	fs := FailoverTimes([]Kill{{Partition: 0, At: t0}, {Partition: 2, At: t0}, {Partition: 1, At: t0}}, acks)
	if fs[0].Took != 3*time.Second || fs[0].Missing || !fs[1].Missing || fs[2].Took != time.Second {
		t.Fatalf("%+v", fs)
	}
	lo, med, hi, missing := Summary(fs)
	if lo != time.Second || med != 3*time.Second || hi != 3*time.Second || missing != 1 {
		t.Fatalf("%v %v %v %d", lo, med, hi, missing)
	}
}
