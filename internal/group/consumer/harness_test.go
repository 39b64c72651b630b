package consumer

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tid is a deterministic topic id for a topic name in tests.
func tid(name string) TopicID {
	var id TopicID
	copy(id[:], "id:"+name)
	return id
}

func topic(name string, partitions int32) Topic {
	return Topic{Name: name, ID: tid(name), Partitions: partitions}
}

// harness drives a Groups with a fake clock, keeps every record it emitted, and after every
// operation checks the invariants, including that replaying the records rebuilds the state.
type harness struct {
	t      *testing.T
	s      *Groups
	cfg    Config
	topics []Topic
	now    time.Time
	log    []Record
	ids    int
}

func newHarness(t *testing.T, topics ...Topic) *harness {
	t.Helper()
	h := &harness{t: t, topics: topics, now: time.Unix(1_700_000_000, 0)}
	h.cfg = DefaultConfig()
	h.cfg.NewMemberID = func() string { h.ids++; return fmt.Sprintf("gen-%d", h.ids) }
	h.s = New(h.cfg, topics)
	return h
}

func (h *harness) setTopics(topics ...Topic) {
	h.topics = topics
	h.s.SetTopics(topics)
}

func (h *harness) record(recs []Record) {
	h.t.Helper()
	h.log = append(h.log, recs...)
	h.check()
}

func (h *harness) heartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp, recs := h.s.Heartbeat(h.now, "client-"+req.MemberID, "/127.0.0.1", req)
	if resp.ErrorCode != 0 && len(recs) != 0 {
		h.t.Fatalf("heartbeat failed with %v but emitted %d records", kerr.ErrorForCode(resp.ErrorCode), len(recs))
	}
	h.record(recs)
	return resp
}

// advance moves the clock and runs the expired timers.
func (h *harness) advance(d time.Duration) []Record {
	h.t.Helper()
	h.now = h.now.Add(d)
	recs := h.s.Tick(h.now)
	h.record(recs)
	return recs
}

// check verifies the invariants of every group.
func (h *harness) check() {
	h.t.Helper()
	for id, g := range h.s.groups {
		owner := make(map[topicPartition]string)
		for mid, m := range g.members {
			for _, a := range []Assignment{m.assigned, m.pendingRevocation} {
				for t, ps := range a {
					for _, p := range ps {
						tp := topicPartition{t, p}
						if other, ok := owner[tp]; ok {
							h.t.Fatalf("group %s: partition %v owned by %s and %s", id, tp, other, mid)
						}
						owner[tp] = mid
						if e := g.partitionEpoch(t, p); e != m.epoch {
							h.t.Fatalf("group %s: partition %v has epoch %d, its owner %s has %d", id, tp, e, mid, m.epoch)
						}
					}
				}
			}
		}
		n := 0
		for _, ps := range g.partitionEpochs {
			n += len(ps)
		}
		if n != len(owner) {
			h.t.Fatalf("group %s: %d partition epochs for %d owned partitions", id, n, len(owner))
		}
		targeted := make(map[topicPartition]string)
		for mid, a := range g.target {
			for t, ps := range a {
				for _, p := range ps {
					if other, ok := targeted[topicPartition{t, p}]; ok {
						h.t.Fatalf("group %s: partition %s-%d targeted to %s and %s", id, t, p, other, mid)
					}
					targeted[topicPartition{t, p}] = mid
				}
			}
		}
		if g.assignmentEpoch > g.epoch {
			h.t.Fatalf("group %s: assignment epoch %d above group epoch %d", id, g.assignmentEpoch, g.epoch)
		}
	}
	// Replaying the records rebuilds the same persistent state.
	rebuilt := New(h.cfg, h.topics)
	for i, r := range h.log {
		if err := rebuilt.Replay(r); err != nil {
			h.t.Fatalf("replaying record %d: %v", i, err)
		}
	}
	if got, want := dump(rebuilt), dump(h.s); got != want {
		h.t.Fatalf("state rebuilt from records differs:\nrebuilt:\n%s\nlive:\n%s", got, want)
	}
}

// dump renders the persistent state of a shard deterministically.
func dump(s *Groups) string {
	var b strings.Builder
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := s.groups[id]
		fmt.Fprintf(&b, "group %s epoch=%d hash=%d assignmentEpoch=%d\n", id, g.epoch, g.metadataHash, g.assignmentEpoch)
		for _, mid := range g.sortedMemberIDs() {
			m := g.members[mid]
			fmt.Fprintf(&b, "  member %s inst=%q rack=%q client=%q/%q topics=%v regex=%q assignor=%q rto=%d epoch=%d prev=%d state=%v assigned=%v pending=%v\n",
				mid, m.instanceID, m.rackID, m.clientID, m.clientHost, m.topicNames, m.regex, m.serverAssignor,
				m.rebalanceTimeout, m.epoch, m.previousEpoch, m.state, fmtAssignment(m.assigned), fmtAssignment(m.pendingRevocation))
			if c := m.classic; c != nil {
				fmt.Fprintf(&b, "    classic session=%d protocols=%v\n", c.sessionTimeout, c.protocols)
			}
		}
		tids := make([]string, 0, len(g.target))
		for mid := range g.target {
			tids = append(tids, mid)
		}
		sort.Strings(tids)
		for _, mid := range tids {
			fmt.Fprintf(&b, "  target %s %v\n", mid, fmtAssignment(g.target[mid]))
		}
	}
	return b.String()
}

func fmtAssignment(a Assignment) string {
	var parts []string
	for _, t := range a.topics() {
		parts = append(parts, fmt.Sprintf("%s%v", strings.TrimRight(strings.TrimPrefix(string(t[:]), "id:"), "\x00"), a[t]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// client simulates a consumer that revokes and takes partitions as soon as it is told.
type client struct {
	h          *harness
	group      string
	id         string
	instance   *string
	version    int16
	epoch      int32
	owned      Assignment
	topics     []string
	regex      *string
	assignor   *string
	rebalance  int32
	lastResult *kmsg.ConsumerGroupHeartbeatResponse
}

func (h *harness) client(group, id string, topics ...string) *client {
	return &client{h: h, group: group, id: id, version: 1, topics: topics, rebalance: 30000, owned: Assignment{}}
}

func (c *client) static(instance string) *client { c.instance = &instance; return c }

func (c *client) request(epoch int32) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = c.version
	r.Group, r.MemberID, r.MemberEpoch = c.group, c.id, epoch
	r.InstanceID = c.instance
	r.RebalanceTimeoutMillis = c.rebalance
	if c.regex == nil {
		r.SubscribedTopicNames = append([]string{}, c.topics...)
	}
	r.SubscribedTopicRegex = c.regex
	r.ServerAssignor = c.assignor
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, tp := range c.owned.list() {
		t := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		t.TopicID, t.Partitions = tp.TopicID, tp.Partitions
		r.Topics = append(r.Topics, t)
	}
	return r
}

func (c *client) apply(resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	c.lastResult = resp
	if resp.ErrorCode != 0 {
		return resp
	}
	if resp.MemberID != nil {
		c.id = *resp.MemberID
	}
	c.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		a := Assignment{}
		for _, t := range resp.Assignment.Topics {
			a[t.TopicID] = t.Partitions
		}
		c.owned = a.normalized()
	}
	return resp
}

// join sends a (re)join: epoch 0, nothing owned.
func (c *client) join() *kmsg.ConsumerGroupHeartbeatResponse {
	c.h.t.Helper()
	c.owned = Assignment{}
	return c.apply(c.h.heartbeat(c.request(0)))
}

// beat sends a full heartbeat reporting the owned partitions.
func (c *client) beat() *kmsg.ConsumerGroupHeartbeatResponse {
	c.h.t.Helper()
	return c.apply(c.h.heartbeat(c.request(c.epoch)))
}

// keepalive sends a heartbeat with only the group, member id and epoch.
func (c *client) keepalive() *kmsg.ConsumerGroupHeartbeatResponse {
	c.h.t.Helper()
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = c.version
	r.Group, r.MemberID, r.MemberEpoch = c.group, c.id, c.epoch
	return c.apply(c.h.heartbeat(r))
}

func (c *client) leave() *kmsg.ConsumerGroupHeartbeatResponse {
	c.h.t.Helper()
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = c.version
	r.Group, r.MemberID, r.MemberEpoch = c.group, c.id, LeaveGroupMemberEpoch
	r.InstanceID = c.instance
	if c.instance != nil {
		r.MemberEpoch = LeaveGroupStaticMemberEpoch
	}
	return c.h.heartbeat(r)
}

func (c *client) leaveFor(epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
	c.h.t.Helper()
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = c.version
	r.Group, r.MemberID, r.MemberEpoch = c.group, c.id, epoch
	r.InstanceID = c.instance
	return c.h.heartbeat(r)
}

// converge heartbeats the clients in turns until the group is Stable.
func (h *harness) converge(group string, clients ...*client) {
	h.t.Helper()
	for round := 0; round < 20; round++ {
		for _, c := range clients {
			if resp := c.beat(); resp.ErrorCode != 0 {
				h.t.Fatalf("heartbeat of %s: %v", c.id, kerr.ErrorForCode(resp.ErrorCode))
			}
		}
		if h.s.Describe(group).State == StateStable {
			return
		}
	}
	h.t.Fatalf("group %s did not converge:\n%s", group, dump(h.s))
}

func expectErr(t *testing.T, resp *kmsg.ConsumerGroupHeartbeatResponse, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if resp.ErrorCode != wantCode {
		got := kerr.ErrorForCode(resp.ErrorCode)
		msg := ""
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		t.Fatalf("error = %v (%s), want %v", got, msg, want)
	}
}

func partitionsOf(a Assignment, name string) []int32 { return a[tid(name)] }

func ints(ps ...int32) []int32 { return ps }

func countAll(cs ...*client) int {
	n := 0
	for _, c := range cs {
		n += c.owned.count()
	}
	return n
}

func disjoint(t *testing.T, cs ...*client) {
	t.Helper()
	seen := make(map[topicPartition]string)
	for _, c := range cs {
		for tp, ps := range c.owned {
			for _, p := range ps {
				if o, ok := seen[topicPartition{tp, p}]; ok {
					t.Fatalf("clients %s and %s both own %v-%d", o, c.id, tp, p)
				}
				seen[topicPartition{tp, p}] = c.id
			}
		}
	}
}

var _ = slices.Equal[[]int32]
