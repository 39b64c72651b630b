package replica

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The follower's session, fetch by fetch: what each fetch names and forgets, and how the
// answers move the session id and epoch.
func TestFetchSessionClient(t *testing.T) {
	tp := func(p int32) TopicPartition { return TopicPartition{"t", p} }
	part := func(off int64) sessionPartition {
		return sessionPartition{topicID: [16]byte{1}, fetchOffset: off, maxBytes: 100, leaderEpoch: 3}
	}
	type step struct {
		name      string
		want      map[TopicPartition]sessionPartition
		full      bool
		id, epoch int32 // of the request
		send      []int32
		forget    []int32
		answer    func(r *kmsg.FetchResponse) // nil: no answer (the request failed)
		usable    bool
		nextID    int32
		nextEpoch int32
	}
	ok := func(id int32) func(r *kmsg.FetchResponse) { return func(r *kmsg.FetchResponse) { r.SessionID = id } }
	fail := func(code int16) func(r *kmsg.FetchResponse) {
		return func(r *kmsg.FetchResponse) { r.ErrorCode = code }
	}
	steps := []step{
		{name: "first fetch is full", want: map[TopicPartition]sessionPartition{tp(0): part(0), tp(1): part(0), tp(2): part(0)},
			full: true, id: 0, epoch: 0, send: []int32{0, 1, 2}, answer: ok(77), usable: true, nextID: 77, nextEpoch: 1},
		{name: "nothing moved: names nothing", want: map[TopicPartition]sessionPartition{tp(0): part(0), tp(1): part(0), tp(2): part(0)},
			id: 77, epoch: 1, answer: ok(77), usable: true, nextID: 77, nextEpoch: 2},
		{name: "partition 1 advanced", want: map[TopicPartition]sessionPartition{tp(0): part(0), tp(1): part(9), tp(2): part(0)},
			id: 77, epoch: 2, send: []int32{1}, answer: ok(77), usable: true, nextID: 77, nextEpoch: 3},
		{name: "partition 2 backs off, 3 joins", want: map[TopicPartition]sessionPartition{tp(0): part(0), tp(1): part(9), tp(3): part(4)},
			id: 77, epoch: 3, send: []int32{3}, forget: []int32{2}, answer: ok(77), usable: true, nextID: 77, nextEpoch: 4},
		{name: "evicted: FETCH_SESSION_ID_NOT_FOUND", want: map[TopicPartition]sessionPartition{tp(0): part(0), tp(1): part(9), tp(3): part(4)},
			id: 77, epoch: 4, answer: fail(kerr.FetchSessionIDNotFound.Code), nextID: 0, nextEpoch: 0},
		{name: "full again, new session", want: map[TopicPartition]sessionPartition{tp(0): part(0), tp(1): part(9), tp(3): part(4)},
			full: true, id: 0, epoch: 0, send: []int32{0, 1, 3}, answer: ok(88), usable: true, nextID: 88, nextEpoch: 1},
		{name: "out of step: INVALID_FETCH_SESSION_EPOCH", want: map[TopicPartition]sessionPartition{tp(0): part(0), tp(1): part(9), tp(3): part(4)},
			id: 88, epoch: 1, answer: fail(kerr.InvalidFetchSessionEpoch.Code), nextID: 88, nextEpoch: 0},
		{name: "full naming the old session closes it", want: map[TopicPartition]sessionPartition{tp(0): part(1)},
			full: true, id: 88, epoch: 0, send: []int32{0}, answer: ok(99), usable: true, nextID: 99, nextEpoch: 1},
		{name: "the request failed", want: map[TopicPartition]sessionPartition{tp(0): part(1)},
			id: 99, epoch: 1, answer: nil, nextID: 99, nextEpoch: 0},
		{name: "full: the leader has no room", want: map[TopicPartition]sessionPartition{tp(0): part(1)},
			full: true, id: 99, epoch: 0, send: []int32{0}, answer: ok(0), usable: true, nextID: 0, nextEpoch: 0},
		{name: "full again", want: map[TopicPartition]sessionPartition{tp(0): part(1)},
			full: true, id: 0, epoch: 0, send: []int32{0}, answer: ok(5), usable: true, nextID: 5, nextEpoch: 1},
		{name: "a recreated topic (new id) starts over", want: map[TopicPartition]sessionPartition{tp(0): {topicID: [16]byte{2}, fetchOffset: 0}},
			full: true, id: 5, epoch: 0, send: []int32{0}, answer: ok(6), usable: true, nextID: 6, nextEpoch: 1},
		{name: "an answer naming another session", want: map[TopicPartition]sessionPartition{tp(0): {topicID: [16]byte{2}, fetchOffset: 0}},
			id: 6, epoch: 1, answer: ok(7), nextID: 6, nextEpoch: 0},
	}
	var s fetchSessionClient
	for _, st := range steps {
		f := s.build(st.want)
		names := func(tps []TopicPartition) []int32 {
			var out []int32
			for _, tp := range tps {
				out = append(out, tp.Partition)
			}
			slices.Sort(out)
			return out
		}
		var forgot []TopicPartition
		for _, fp := range f.forget {
			forgot = append(forgot, fp.tp)
			if fp.topicID != [16]byte{1} {
				t.Fatalf("%s: forgot %v with topic id %v", st.name, fp.tp, fp.topicID)
			}
		}
		if f.full != st.full || f.id != st.id || f.epoch != st.epoch ||
			!slices.Equal(names(f.send), st.send) || !slices.Equal(names(forgot), st.forget) {
			t.Fatalf("%s: built %+v (send %v, forget %v), want full=%v id %d epoch %d send %v forget %v",
				st.name, f, names(f.send), names(forgot), st.full, st.id, st.epoch, st.send, st.forget)
		}
		usable := false
		if st.answer == nil {
			s.handleError()
		} else {
			resp := kmsg.NewPtrFetchResponse()
			st.answer(resp)
			usable = s.handleResponse(f, resp)
		}
		if usable != st.usable || s.id != st.nextID || s.epoch != st.nextEpoch {
			t.Fatalf("%s: usable %v, next id %d epoch %d; want %v, %d, %d", st.name, usable, s.id, s.epoch, st.usable, st.nextID, st.nextEpoch)
		}
		if len(s.parts) != len(st.want) {
			t.Fatalf("%s: session holds %d partitions, want %d", st.name, len(s.parts), len(st.want))
		}
	}
}
