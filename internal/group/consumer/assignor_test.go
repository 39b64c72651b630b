package consumer

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// checkAssignment verifies that every partition of a subscribed topic goes to exactly one
// member subscribed to it, and nothing else is assigned.
func checkAssignment(t *testing.T, members []assignorMember, partitions map[TopicID]int32, out map[string]Assignment) {
	t.Helper()
	owner := make(map[topicPartition]string)
	for _, m := range members {
		a, ok := out[m.id]
		if !ok {
			t.Fatalf("no entry for member %s", m.id)
		}
		for tp, ps := range a {
			if !slices.Contains(m.topics, tp) {
				t.Fatalf("member %s got topic %v it does not subscribe to", m.id, tp)
			}
			for _, p := range ps {
				if p < 0 || p >= partitions[tp] {
					t.Fatalf("member %s got partition %d of a %d-partition topic", m.id, p, partitions[tp])
				}
				if o, ok := owner[topicPartition{tp, p}]; ok {
					t.Fatalf("partition %v-%d given to %s and %s", tp, p, o, m.id)
				}
				owner[topicPartition{tp, p}] = m.id
			}
		}
	}
	for tp, n := range partitions {
		subscribed := false
		for _, m := range members {
			subscribed = subscribed || slices.Contains(m.topics, tp)
		}
		for p := int32(0); p < n; p++ {
			if _, ok := owner[topicPartition{tp, p}]; !ok && subscribed {
				t.Fatalf("partition %v-%d not assigned", tp, p)
			}
		}
	}
}

func counts(out map[string]Assignment) (lo, hi int) {
	lo = -1
	for _, a := range out {
		n := a.count()
		if lo < 0 || n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	return lo, hi
}

func TestUniformAssignorHomogeneous(t *testing.T) {
	parts := map[TopicID]int32{tid("a"): 7, tid("b"): 5}
	var members []assignorMember
	for i := 0; i < 4; i++ {
		members = append(members, assignorMember{id: fmt.Sprintf("m%d", i), topics: []TopicID{tid("a"), tid("b")}})
	}
	sortIDs := func() { slices.SortFunc(members, func(a, b assignorMember) int { return cmpString(a.id, b.id) }) }
	sortIDs()
	out := uniformAssign(members, parts)
	checkAssignment(t, members, parts, out)
	if lo, hi := counts(out); hi-lo > 1 {
		t.Fatalf("unbalanced: %d..%d", lo, hi)
	}
	// Sticky: running again from the result moves nothing.
	for i := range members {
		members[i].current = out[members[i].id]
	}
	again := uniformAssign(members, parts)
	for id, a := range out {
		if !a.equal(again[id]) {
			t.Fatalf("member %s moved from %v to %v", id, fmtAssignment(a), fmtAssignment(again[id]))
		}
	}
	// A new member takes partitions; the others keep all but what they give it.
	members = append(members, assignorMember{id: "m9", topics: []TopicID{tid("a"), tid("b")}})
	grown := uniformAssign(members, parts)
	checkAssignment(t, members, parts, grown)
	if lo, hi := counts(grown); hi-lo > 1 {
		t.Fatalf("unbalanced after a join: %d..%d", lo, hi)
	}
	for id, a := range out {
		for tp, ps := range grown[id] {
			for _, p := range ps {
				if !a.has(tp, p) {
					t.Fatalf("member %s gained partition %v-%d when another member joined", id, tp, p)
				}
			}
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestUniformAssignorHeterogeneousRandom(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for iter := 0; iter < 200; iter++ {
		parts := make(map[TopicID]int32)
		var topics []TopicID
		for i := 0; i < 1+rnd.Intn(5); i++ {
			id := tid(fmt.Sprintf("t%d", i))
			parts[id] = int32(rnd.Intn(9))
			topics = append(topics, id)
		}
		var members []assignorMember
		for i := 0; i < 1+rnd.Intn(6); i++ {
			m := assignorMember{id: fmt.Sprintf("m%d", i)}
			for _, tp := range topics {
				if rnd.Intn(2) == 0 {
					m.topics = append(m.topics, tp)
				}
			}
			sortTopicIDs(m.topics)
			members = append(members, m)
		}
		out := uniformAssign(members, parts)
		checkAssignment(t, members, parts, out)
		// Feed a perturbed result back as the current assignment: still valid.
		for i := range members {
			members[i].current = out[members[(i+1)%len(members)].id]
		}
		checkAssignment(t, members, parts, uniformAssign(members, parts))
		checkAssignment(t, members, parts, rangeAssign(members, parts))
	}
}

func TestRangeAssigner(t *testing.T) {
	parts := map[TopicID]int32{tid("a"): 7, tid("b"): 7}
	members := []assignorMember{
		{id: "x", topics: []TopicID{tid("a"), tid("b")}},
		{id: "y", topics: []TopicID{tid("a"), tid("b")}},
		{id: "z", topics: []TopicID{tid("a"), tid("b")}},
	}
	sortTopicIDs(members[0].topics)
	out := rangeAssign(members, parts)
	checkAssignment(t, members, parts, out)
	want := map[string][]int32{"x": {0, 1, 2}, "y": {3, 4}, "z": {5, 6}}
	for id, ps := range want {
		if !slices.Equal(out[id][tid("a")], ps) || !slices.Equal(out[id][tid("b")], ps) {
			t.Fatalf("member %s: %v", id, fmtAssignment(out[id]))
		}
	}
	// Static members come first, by instance id.
	members[2].instanceID = "i-0"
	out = rangeAssign(members, parts)
	if !slices.Equal(out["z"][tid("a")], []int32{0, 1, 2}) {
		t.Fatalf("static member z: %v", fmtAssignment(out["z"]))
	}
	// Sticky within quotas: a member leaving keeps the others' partitions where they fit.
	members[2].instanceID = ""
	cur := rangeAssign(members, parts)
	two := []assignorMember{members[0], members[1]}
	two[0].current, two[1].current = cur["x"], cur["y"]
	out = rangeAssign(two, parts)
	checkAssignment(t, two, parts, out)
	if !slices.Equal(out["x"][tid("a")], []int32{0, 1, 2, 5}) || !slices.Equal(out["y"][tid("a")], []int32{3, 4, 6}) {
		t.Fatalf("after z left: x %v y %v", fmtAssignment(out["x"]), fmtAssignment(out["y"]))
	}
}
