package group

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// manualClock is a Clock whose time moves only when the test advances it; due timers fire
// in deadline order (then scheduling order) on the test's goroutine.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	seq     int
	f       func()
	stopped bool
	fired   bool
}

func (t *manualTimer) Stop() bool {
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

func newManualClock() *manualClock { return &manualClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &manualTimer{at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time forward by d, firing the timers that become due (including timers
// those callbacks schedule within the window).
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *manualTimer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.stopped || t.fired {
				continue
			}
			live = append(live, t)
			if !t.at.After(target) && (next == nil || t.at.Before(next.at) || t.at.Equal(next.at) && t.seq < next.seq) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.fired = true
		c.mu.Unlock()
		next.f()
	}
}

// harness drives one Shard with a manual clock and an in-memory store.
type harness struct {
	t       *testing.T
	clock   *manualClock
	shard   *Shard
	written []Record
	// failStore makes the next stores fail with this error.
	failStore error
	ids       int
}

func testSettings() Settings {
	s := DefaultSettings()
	s.InitialRebalanceDelay = 0
	return s
}

func newHarness(t *testing.T, set Settings) *harness {
	h := &harness{t: t, clock: newManualClock()}
	h.shard = h.newShard(set)
	h.shard.finishLoad()
	return h
}

func (h *harness) newShard(set Settings) *Shard {
	ts := newClockTimers(h.clock, &sync.Mutex{})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return newShard(0, set, logger, ts, h.store, func() string {
		h.ids++
		return fmt.Sprintf("id%d", h.ids)
	})
}

func (h *harness) store(recs []Record) error {
	if h.failStore != nil {
		return h.failStore
	}
	h.written = append(h.written, recs...)
	return nil
}

// pendingJoin collects the answer of a JoinGroup.
type pendingJoin struct {
	t     *testing.T
	res   *JoinResult
	calls int
}

func (p *pendingJoin) done(r JoinResult) {
	p.calls++
	p.res = &r
}

// result returns the response, failing the test if there is none (or more than one).
func (p *pendingJoin) result() JoinResult {
	p.t.Helper()
	if p.calls != 1 {
		p.t.Fatalf("join answered %d times, want 1", p.calls)
	}
	return *p.res
}

func (p *pendingJoin) waiting() bool { return p.calls == 0 }

type pendingSync struct {
	t     *testing.T
	res   *SyncResult
	calls int
}

func (p *pendingSync) done(r SyncResult) {
	p.calls++
	p.res = &r
}

func (p *pendingSync) result() SyncResult {
	p.t.Helper()
	if p.calls != 1 {
		p.t.Fatalf("sync answered %d times, want 1", p.calls)
	}
	return *p.res
}

// consumerMeta is a consumer-protocol subscription to topics.
func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

type joinOpt func(*JoinRequest)

func withInstance(id string) joinOpt { return func(r *JoinRequest) { r.InstanceID = &id } }
func withProtocols(ps ...Protocol) joinOpt {
	return func(r *JoinRequest) { r.Protocols = ps }
}
func withSession(d time.Duration) joinOpt   { return func(r *JoinRequest) { r.SessionTimeout = d } }
func withRebalance(d time.Duration) joinOpt { return func(r *JoinRequest) { r.RebalanceTimeout = d } }
func withV9() joinOpt                       { return func(r *JoinRequest) { r.SupportsSkipAssignment = true } }
func withoutKIP394() joinOpt                { return func(r *JoinRequest) { r.RequireKnownMemberID = false } }

func (h *harness) join(group, memberID string, opts ...joinOpt) *pendingJoin {
	req := JoinRequest{
		Group:                group,
		MemberID:             memberID,
		ClientID:             "client",
		ClientHost:           "/127.0.0.1",
		SessionTimeout:       10 * time.Second,
		RebalanceTimeout:     30 * time.Second,
		ProtocolType:         consumerProtocolType,
		Protocols:            []Protocol{{Name: "range", Metadata: consumerMeta("t")}},
		RequireKnownMemberID: true,
	}
	for _, o := range opts {
		o(&req)
	}
	p := &pendingJoin{t: h.t}
	h.shard.JoinGroup(req, p.done)
	return p
}

// joinNew joins a dynamic member the KIP-394 way (MEMBER_ID_REQUIRED, then rejoin) and
// returns the pending second join.
func (h *harness) joinNew(group string, opts ...joinOpt) (string, *pendingJoin) {
	h.t.Helper()
	first := h.join(group, "", opts...).result()
	if !errors.Is(first.Err, errMemberIDRequired) || first.MemberID == "" {
		h.t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED with an id", first)
	}
	return first.MemberID, h.join(group, first.MemberID, opts...)
}

func (h *harness) sync(group, memberID string, gen int32, assignments map[string][]byte, opts ...func(*SyncRequest)) *pendingSync {
	req := SyncRequest{Group: group, MemberID: memberID, Generation: gen, Assignments: assignments}
	for _, o := range opts {
		o(&req)
	}
	p := &pendingSync{t: h.t}
	h.shard.SyncGroup(req, p.done)
	return p
}

func (h *harness) heartbeat(group, memberID string, gen int32, instance ...string) error {
	req := HeartbeatRequest{Group: group, MemberID: memberID, Generation: gen}
	if len(instance) > 0 {
		req.InstanceID = &instance[0]
	}
	return h.shard.Heartbeat(req)
}

func (h *harness) state(group string) string { return h.shard.DescribeGroup(group).State }

func (h *harness) wantState(group, want string) {
	h.t.Helper()
	if got := h.state(group); got != want {
		h.t.Fatalf("group %s is %s, want %s", group, got, want)
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) || (want == nil && got != nil) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

// stableGroup forms a group of n dynamic members (the first is the leader) with the given
// per-member assignments, and returns the member ids and the generation.
func (h *harness) stableGroup(group string, n int, opts ...joinOpt) ([]string, int32) {
	h.t.Helper()
	var ids []string
	var joins []*pendingJoin
	for i := 0; i < n; i++ {
		id, p := h.joinNew(group, opts...)
		ids = append(ids, id)
		joins = append(joins, p)
	}
	h.clock.Advance(0) // the initial delay (0) ends the first join phase
	var gen int32
	var leader string
	for _, p := range joins {
		r := p.result()
		if r.Err != nil {
			h.t.Fatalf("join: %v", r.Err)
		}
		gen, leader = r.Generation, r.LeaderID
	}
	assign := map[string][]byte{}
	for _, id := range ids {
		assign[id] = []byte("assignment-of-" + id)
	}
	var syncs []*pendingSync
	for _, id := range ids {
		if id != leader {
			syncs = append(syncs, h.sync(group, id, gen, nil))
		}
	}
	ls := h.sync(group, leader, gen, assign).result()
	if ls.Err != nil {
		h.t.Fatalf("leader sync: %v", ls.Err)
	}
	for _, s := range syncs {
		if r := s.result(); r.Err != nil {
			h.t.Fatalf("follower sync: %v", r.Err)
		}
	}
	h.wantState(group, "Stable")
	return ids, gen
}
