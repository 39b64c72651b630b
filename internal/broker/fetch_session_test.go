package broker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeLog is what a partition would answer in a simulated fetch.
type fakeLog struct {
	hw, logStart int64
	records      int // bytes of records from the fetch offset
	err          int16
}

// sessionSim drives a fetchSessionCache without sockets: it serves a request's partitions (as
// begin decides) from fake logs named "topic-partition", then finishes the response.
type sessionSim struct {
	t    *testing.T
	c    *fetchSessionCache
	logs map[string]*fakeLog
	t0   time.Time
	// ids maps topic names to ids for v13+ requests.
	ids map[string][16]byte
}

func newSessionSim(t *testing.T, slots int) *sessionSim {
	return &sessionSim{t: t, c: newFetchSessionCache(slots, fetchSessionIdle), logs: map[string]*fakeLog{},
		t0: time.Unix(1_000_000, 0), ids: map[string][16]byte{"a": {1}, "b": {2}}}
}

func (s *sessionSim) log(name string) *fakeLog {
	l := s.logs[name]
	if l == nil {
		l = &fakeLog{}
		s.logs[name] = l
	}
	return l
}

// request builds a fetch naming parts ("a-0@5": topic a, partition 0, offset 5) and forgetting
// forget ("a-0").
func (s *sessionSim) request(version int16, id, epoch int32, parts, forget []string) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version, r.SessionID, r.SessionEpoch = version, id, epoch
	for _, p := range parts {
		name, off, _ := strings.Cut(p, "@")
		topic, part := splitTP(name)
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, s.ids[topic]
		if version >= 13 {
			rt.Topic = ""
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = part
		rp.FetchOffset, _ = strconv.ParseInt(off, 10, 64)
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
	}
	for _, p := range forget {
		topic, part := splitTP(p)
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID = topic, s.ids[topic]
		if version >= 13 {
			ft.Topic = ""
		}
		ft.Partitions = []int32{part}
		r.ForgottenTopics = append(r.ForgottenTopics, ft)
	}
	return r
}

func splitTP(name string) (string, int32) {
	topic, p, _ := strings.Cut(name, "-")
	n, _ := strconv.Atoi(p)
	return topic, int32(n)
}

// fetch serves r at t0+at and returns the response and the served partitions' names.
func (s *sessionSim) fetch(r *kmsg.FetchRequest, follower bool, at time.Duration) (*kmsg.FetchResponse, []string) {
	now := s.t0.Add(at)
	u := s.c.begin(r, follower, now)
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	resp.Version = r.Version
	if u.errCode != 0 {
		resp.ErrorCode = u.errCode
		return resp, nil
	}
	for _, rt := range u.topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		topic := rt.Topic
		for name, id := range s.ids {
			if id == rt.TopicID && r.Version >= 13 {
				topic = name
			}
		}
		for _, rp := range rt.Partitions {
			l := s.log(fmt.Sprintf("%s-%d", topic, rp.Partition))
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = l.err
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = l.hw, l.hw, l.logStart
			if l.err != 0 {
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			}
			if l.records > 0 && l.err == 0 {
				sp.RecordBatches = make([]byte, l.records)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	s.c.finish(&u, resp, nil, now)
	return resp, s.names(resp)
}

func (s *sessionSim) names(resp *kmsg.FetchResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		topic := t.Topic
		for name, id := range s.ids {
			if id == t.TopicID && resp.Version >= 13 {
				topic = name
			}
		}
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s-%d", topic, p.Partition))
		}
	}
	slices.Sort(out)
	return out
}

// order lists a session's partitions in its order, with their cached fetch offsets.
func (s *sessionSim) order(id int32) []string {
	s.c.mu.Lock()
	sess := s.c.mu.sessions[id]
	s.c.mu.Unlock()
	if sess == nil {
		return nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	var out []string
	for cp := sess.mu.head; cp != nil; cp = cp.next {
		topic := cp.key.topic
		for name, tid := range s.ids {
			if tid == cp.key.topicID && sess.usesTopicIDs {
				topic = name
			}
		}
		out = append(out, fmt.Sprintf("%s-%d@%d", topic, cp.key.partition, cp.fetchOffset))
	}
	return out
}

// One session's life, step by step: each step sends a fetch (after changing the fake logs)
// and checks the error, whether a session id came back, and the partitions answered.
func TestFetchSessionSteps(t *testing.T) {
	type step struct {
		name    string
		change  func(s *sessionSim)
		version int16 // 12 unless set
		id      int32 // -100: the session of the test; else as given
		epoch   int32 // -100: the next epoch of the session
		parts   []string
		forget  []string
		wantErr error
		// wantID: "open" a new session (remembered), "same" the session's id, "none" 0.
		wantID string
		want   []string // partitions answered
		order  []string // the session's partitions afterwards (nil: not checked)
	}
	const sess, next = -100, -100
	steps := []step{
		{name: "open", id: 0, epoch: 0, parts: []string{"a-0@0", "a-1@0", "b-0@0"}, wantID: "open",
			want: []string{"a-0", "a-1", "b-0"}, order: []string{"a-0@0", "a-1@0", "b-0@0"}},
		{name: "nothing changed", id: sess, epoch: next, wantID: "same", want: nil},
		{name: "records on a-1", change: func(s *sessionSim) { s.log("a-1").records, s.log("a-1").hw = 100, 5 },
			id: sess, epoch: next, wantID: "same", want: []string{"a-1"},
			order: []string{"a-0@0", "b-0@0", "a-1@0"}},
		{name: "a-1 named at its new offset", change: func(s *sessionSim) { s.log("a-1").records = 0 },
			id: sess, epoch: next, parts: []string{"a-1@5"}, wantID: "same", want: nil,
			order: []string{"a-0@0", "b-0@0", "a-1@5"}},
		{name: "epoch replayed", id: sess, epoch: 3, wantErr: kerr.InvalidFetchSessionEpoch, wantID: "none"},
		{name: "epoch skipped", id: sess, epoch: 9, wantErr: kerr.InvalidFetchSessionEpoch, wantID: "none"},
		{name: "unknown session", id: 12345, epoch: 1, wantErr: kerr.FetchSessionIDNotFound, wantID: "none"},
		{name: "session ids by name continued by id", version: 13, id: sess, epoch: next,
			wantErr: kerr.FetchSessionTopicIDError, wantID: "none"},
		{name: "high watermark moves", change: func(s *sessionSim) { s.log("b-0").hw = 3 },
			id: sess, epoch: next, wantID: "same", want: []string{"b-0"}},
		{name: "log start moves", change: func(s *sessionSim) { s.log("a-0").logStart = 1 },
			id: sess, epoch: next, wantID: "same", want: []string{"a-0"}},
		{name: "error always answered", change: func(s *sessionSim) { s.log("b-0").err = kerr.NotLeaderForPartition.Code },
			id: sess, epoch: next, wantID: "same", want: []string{"b-0"}},
		{name: "error again", id: sess, epoch: next, wantID: "same", want: []string{"b-0"}},
		{name: "error gone: answered once more", change: func(s *sessionSim) { s.log("b-0").err = 0 },
			id: sess, epoch: next, wantID: "same", want: []string{"b-0"}},
		{name: "then quiet", id: sess, epoch: next, wantID: "same", want: nil},
		{name: "add b-1, forget a-0", id: sess, epoch: next, parts: []string{"b-1@7"}, forget: []string{"a-0"},
			wantID: "same", want: []string{"b-1"}, order: []string{"b-0@0", "a-1@5", "b-1@7"}},
		{name: "forget what is not there", id: sess, epoch: next, forget: []string{"a-9"}, wantID: "same", want: nil},
		{name: "forget everything ends the session", id: sess, epoch: next, forget: []string{"b-0", "a-1", "b-1"},
			wantID: "none", want: nil},
		{name: "the ended session is gone", id: sess, epoch: next, wantErr: kerr.FetchSessionIDNotFound, wantID: "none"},
		{name: "open again", id: 0, epoch: 0, parts: []string{"a-0@1"}, wantID: "open", want: []string{"a-0"}},
		{name: "epoch 0 naming it: closes it, opens another", id: sess, epoch: 0, parts: []string{"a-1@5"},
			wantID: "open", want: []string{"a-1"}, order: []string{"a-1@5"}},
		{name: "epoch -1 naming it: closes it, no session", id: sess, epoch: -1, parts: []string{"a-1@5"},
			wantID: "none", want: []string{"a-1"}},
		{name: "closed", id: sess, epoch: 1, wantErr: kerr.FetchSessionIDNotFound, wantID: "none"},
		{name: "before v7 nothing is a session", version: 6, id: 0, epoch: 0, parts: []string{"a-0@0"},
			wantID: "none", want: []string{"a-0"}},
	}
	s := newSessionSim(t, 10)
	var id, epoch int32
	for i, st := range steps {
		if st.change != nil {
			st.change(s)
		}
		v := st.version
		if v == 0 {
			v = 12
		}
		rid, repoch := st.id, st.epoch
		if rid == sess {
			rid = id
		}
		if repoch == next {
			repoch = epoch
		}
		resp, got := s.fetch(s.request(v, rid, repoch, st.parts, st.forget), false, time.Duration(i)*time.Second)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != st.wantErr {
			t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
		}
		switch st.wantID {
		case "open":
			if resp.SessionID == 0 || resp.SessionID == id {
				t.Fatalf("%s: session id %d, want a new one (last %d)", st.name, resp.SessionID, id)
			}
			id, epoch = resp.SessionID, 1
		case "same":
			if resp.SessionID != id {
				t.Fatalf("%s: session id %d, want %d", st.name, resp.SessionID, id)
			}
			epoch++
		case "none":
			if resp.SessionID != 0 {
				t.Fatalf("%s: session id %d, want 0", st.name, resp.SessionID)
			}
		}
		if !slices.Equal(got, st.want) {
			t.Fatalf("%s: answered %v, want %v", st.name, got, st.want)
		}
		if st.order != nil {
			if o := s.order(id); !slices.Equal(o, st.order) {
				t.Fatalf("%s: session holds %v, want %v", st.name, o, st.order)
			}
		}
	}
	if st := s.c.stats(); st.Sessions != 0 || st.Partitions != 0 {
		t.Fatalf("stats after every session ended: %+v", st)
	}
}

// Sessions of v13+ fetches name topics by id: forgetting and updating go by id.
func TestFetchSessionTopicIDs(t *testing.T) {
	s := newSessionSim(t, 10)
	resp, got := s.fetch(s.request(16, 0, 0, []string{"a-0@0", "b-0@0"}, nil), false, 0)
	if resp.SessionID == 0 || !slices.Equal(got, []string{"a-0", "b-0"}) {
		t.Fatalf("open: session %d, answered %v", resp.SessionID, got)
	}
	id := resp.SessionID
	s.log("b-0").records, s.log("b-0").hw = 10, 4
	resp, got = s.fetch(s.request(16, id, 1, []string{"a-0@2"}, []string{"a-0"}), false, time.Second)
	// a-0 is named and forgotten in one request: named first, then forgotten (as Kafka).
	if resp.ErrorCode != 0 || !slices.Equal(got, []string{"b-0"}) {
		t.Fatalf("incremental: error %d, answered %v", resp.ErrorCode, got)
	}
	if o := s.order(id); !slices.Equal(o, []string{"b-0@0"}) {
		t.Fatalf("session holds %v", o)
	}
	if resp.Topics[0].TopicID != s.ids["b"] || resp.Topics[0].Topic != "" {
		t.Fatalf("answered topic %q %v, want b's id", resp.Topics[0].Topic, resp.Topics[0].TopicID)
	}
	resp, _ = s.fetch(s.request(12, id, 2, nil, nil), false, 2*time.Second)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != kerr.FetchSessionTopicIDError {
		t.Fatalf("a v12 fetch in a session of ids: %v", err)
	}
}

// A second request of a session that arrives while the first is being served takes the epoch;
// the first then answers INVALID_FETCH_SESSION_EPOCH (a duplicate, as Kafka says).
func TestFetchSessionDuplicateRequest(t *testing.T) {
	s := newSessionSim(t, 10)
	resp, _ := s.fetch(s.request(12, 0, 0, []string{"a-0@0"}, nil), false, 0)
	id := resp.SessionID
	r1 := s.request(12, id, 1, nil, nil)
	u1 := s.c.begin(r1, false, s.t0)
	if u1.errCode != 0 {
		t.Fatal(kerr.ErrorForCode(u1.errCode))
	}
	if resp, _ := s.fetch(s.request(12, id, 2, nil, nil), false, time.Second); resp.ErrorCode != 0 {
		t.Fatalf("the next epoch meanwhile: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	resp1 := r1.ResponseKind().(*kmsg.FetchResponse)
	s.c.finish(&u1, resp1, nil, s.t0)
	if resp1.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || resp1.SessionID != id {
		t.Fatalf("the overtaken request: error %v, session %d", kerr.ErrorForCode(resp1.ErrorCode), resp1.SessionID)
	}
}

// Eviction and expiry, with two slots: each case opens the sessions of before (at their
// times, with their sizes), then tries to open a new one and checks which survive.
func TestFetchSessionEviction(t *testing.T) {
	type sess struct {
		name     string
		follower bool
		size     int
		created  time.Duration // since t0
		used     time.Duration // last used (0: at creation)
	}
	type tc struct {
		name   string
		slots  int
		before []sess
		add    sess
		want   []string // sessions left, the new one named by add.name when it was opened
	}
	const idle = fetchSessionIdle
	for _, c := range []tc{
		{name: "free slot", slots: 2, before: []sess{{name: "c1", size: 3}},
			add: sess{name: "new", size: 1, created: time.Second}, want: []string{"c1", "new"}},
		{name: "no slots at all", slots: 0,
			add: sess{name: "new", size: 1}, want: nil},
		{name: "full of young consumers: a consumer gets none", slots: 2,
			before: []sess{{name: "c1", size: 1}, {name: "c2", size: 1}},
			add:    sess{name: "new", size: 50, created: time.Second}, want: []string{"c1", "c2"}},
		{name: "a follower evicts the smallest consumer", slots: 2,
			before: []sess{{name: "c1", size: 5}, {name: "c2", size: 2}},
			add:    sess{name: "f", follower: true, size: 1, created: time.Second}, want: []string{"c1", "f"}},
		{name: "a follower does not evict young followers", slots: 2,
			before: []sess{{name: "f1", follower: true, size: 1}, {name: "f2", follower: true, size: 1}},
			add:    sess{name: "f", follower: true, size: 9, created: time.Second}, want: []string{"f1", "f2"}},
		{name: "a bigger consumer evicts an old smaller one in use", slots: 2,
			before: []sess{{name: "c1", size: 2, used: idle + 10*time.Second}, {name: "c2", size: 4, used: idle + 10*time.Second}},
			add:    sess{name: "new", size: 3, created: idle + 20*time.Second}, want: []string{"c2", "new"}},
		{name: "as many partitions is not enough", slots: 2,
			before: []sess{{name: "c1", size: 2, used: idle + 10*time.Second}, {name: "c2", size: 4, used: idle + 10*time.Second}},
			add:    sess{name: "new", size: 2, created: idle + 20*time.Second}, want: []string{"c1", "c2"}},
		{name: "a consumer never evicts a follower", slots: 1,
			before: []sess{{name: "f1", follower: true, size: 1, used: idle + 10*time.Second}},
			add:    sess{name: "new", size: 100, created: idle + 20*time.Second}, want: []string{"f1"}},
		{name: "idle sessions expire, whatever the room", slots: 5,
			before: []sess{{name: "c1", size: 1}, {name: "f1", follower: true, size: 9}, {name: "c2", size: 1, used: 100 * time.Second}},
			add:    sess{name: "new", size: 1, created: idle + time.Second + 1}, want: []string{"c2", "new"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSessionSim(t, c.slots)
			ids := map[string]int32{}
			parts := func(n int) []string {
				var out []string
				for i := range n {
					out = append(out, fmt.Sprintf("a-%d@0", i))
				}
				return out
			}
			for _, b := range c.before {
				resp, _ := s.fetch(s.request(12, 0, 0, parts(b.size), nil), b.follower, b.created)
				if resp.SessionID == 0 {
					t.Fatalf("opening %s: no session", b.name)
				}
				ids[b.name] = resp.SessionID
				if b.used > 0 {
					if resp, _ := s.fetch(s.request(12, resp.SessionID, 1, nil, nil), b.follower, b.used); resp.ErrorCode != 0 {
						t.Fatalf("using %s: %v", b.name, kerr.ErrorForCode(resp.ErrorCode))
					}
				}
			}
			resp, _ := s.fetch(s.request(12, 0, 0, parts(c.add.size), nil), c.add.follower, c.add.created)
			if resp.SessionID != 0 {
				ids[c.add.name] = resp.SessionID
			}
			var left []string
			for name, id := range ids {
				if s.order(id) != nil {
					left = append(left, name)
				}
			}
			slices.Sort(left)
			if !slices.Equal(left, c.want) {
				t.Fatalf("sessions left %v, want %v", left, c.want)
			}
			st := s.c.stats()
			if st.Sessions != len(c.want) {
				t.Fatalf("stats: %d sessions, want %d", st.Sessions, len(c.want))
			}
			wantParts := 0
			for _, name := range c.want {
				for _, b := range append(c.before, c.add) {
					if b.name == name {
						wantParts += b.size
					}
				}
			}
			if st.Partitions != wantParts {
				t.Fatalf("stats: %d partitions cached, want %d", st.Partitions, wantParts)
			}
		})
	}
}
