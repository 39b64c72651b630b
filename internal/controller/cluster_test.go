package controller

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// clusterController starts a controller on a fake clock with brokers 1..n registered (fake
// endpoints, racks given by rack(id)) and unfenced.
func clusterController(t *testing.T, n int32, rack func(int32) string) (*Controller, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	cfg := testConfig(t, t.TempDir())
	cfg.Now = clock.Now
	c := startController(t, cfg)
	for id := int32(1); id <= n; id++ {
		b := metadata.Broker{ID: id, IncarnationID: metadata.UUID{byte(id)}, Endpoints: []metadata.Endpoint{
			{Listener: "PLAINTEXT", Host: "localhost", Port: 9000 + id, SecurityProtocol: "PLAINTEXT"}}}
		if rack != nil {
			b.Rack = rack(id)
		}
		if _, err := c.RegisterAndUnfence(testCtx(t), b); err != nil {
			t.Fatal(err)
		}
	}
	return c, clock
}

func heartbeat(t *testing.T, c *Controller, id int32, edit func(*HeartbeatRequest)) HeartbeatResult {
	t.Helper()
	req := HeartbeatRequest{BrokerID: id, BrokerEpoch: c.Image().Brokers[id].Epoch, CurrentMetadataOffset: int64(c.Image().Index)}
	if edit != nil {
		edit(&req)
	}
	res, err := c.BrokerHeartbeat(testCtx(t), req)
	if err != nil {
		t.Fatalf("heartbeat of %d: %v", id, err)
	}
	return res
}

// createTopic creates topic name with the given replica lists and returns it.
func createTopic(t *testing.T, c *Controller, name string, lists ...[]int32) *metadata.Topic {
	t.Helper()
	assign := make(map[int32][]int32, len(lists))
	for i, l := range lists {
		assign[int32(i)] = l
	}
	res := c.CreateTopics(testCtx(t), []CreateTopic{{Name: name, NumPartitions: -1, ReplicationFactor: -1, Assignments: assign}}, false)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	tp, _ := c.Image().Topic(name)
	return tp
}

func partitionOf(c *Controller, topic string, p int32) metadata.Partition {
	tp, _ := c.Image().Topic(topic)
	return tp.Partitions[p]
}

func TestRegisterBrokerEpochs(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	ctx := testCtx(t)
	b := metadata.Broker{ID: 5, IncarnationID: metadata.UUID{1}}
	e1, err := c.RegisterBroker(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	img := c.Image()
	if got := img.Brokers[5]; got.Epoch != e1 || e1 != int64(img.Index) || !got.Fenced {
		t.Fatalf("registration %+v, epoch %d, index %d: want epoch = index, fenced", got, e1, img.Index)
	}
	// Same incarnation: the same epoch, nothing written.
	if again, err := c.RegisterBroker(ctx, b); err != nil || again != e1 || c.Image().Index != img.Index {
		t.Fatalf("re-registration = %d, %v (index %d -> %d); want %d and no write", again, err, img.Index, c.Image().Index, e1)
	}
	// Not caught up: stays fenced.
	res, err := c.BrokerHeartbeat(ctx, HeartbeatRequest{BrokerID: 5, BrokerEpoch: e1, CurrentMetadataOffset: e1 - 1})
	if err != nil || res.IsCaughtUp || !res.IsFenced || !c.Image().Brokers[5].Fenced {
		t.Fatalf("behind heartbeat = %+v, %v", res, err)
	}
	// WantFence keeps it fenced even when caught up.
	res, err = c.BrokerHeartbeat(ctx, HeartbeatRequest{BrokerID: 5, BrokerEpoch: e1, CurrentMetadataOffset: e1, WantFence: true})
	if err != nil || !res.IsCaughtUp || !res.IsFenced {
		t.Fatalf("WantFence heartbeat = %+v, %v", res, err)
	}
	res, err = c.BrokerHeartbeat(ctx, HeartbeatRequest{BrokerID: 5, BrokerEpoch: e1, CurrentMetadataOffset: e1})
	if err != nil || !res.IsCaughtUp || res.IsFenced || c.Image().Brokers[5].Fenced {
		t.Fatalf("caught-up heartbeat = %+v, %v; broker %+v", res, err, c.Image().Brokers[5])
	}
	// A new incarnation while the current one heartbeats: refused.
	b.IncarnationID = metadata.UUID{2}
	if _, err := c.RegisterBroker(ctx, b); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("new incarnation during a live session: %v", err)
	}
	// Once the current one is fenced: new epoch, fenced; the old epoch is stale.
	if res, err := c.BrokerHeartbeat(ctx, HeartbeatRequest{BrokerID: 5, BrokerEpoch: e1, CurrentMetadataOffset: e1, WantFence: true}); err != nil || !res.IsFenced {
		t.Fatalf("fencing heartbeat = %+v, %v", res, err)
	}
	e2, err := c.RegisterBroker(ctx, b)
	if err != nil || e2 <= e1 || !c.Image().Brokers[5].Fenced {
		t.Fatalf("new incarnation: epoch %d (old %d), %v, %+v", e2, e1, err, c.Image().Brokers[5])
	}
	if _, err := c.BrokerHeartbeat(ctx, HeartbeatRequest{BrokerID: 5, BrokerEpoch: e1, CurrentMetadataOffset: e2}); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Errorf("heartbeat with the old epoch: %v", err)
	}
	if _, err := c.BrokerHeartbeat(ctx, HeartbeatRequest{BrokerID: 6, BrokerEpoch: e2}); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Errorf("heartbeat of an unknown broker: %v", err)
	}
}

func TestSessionExpiryMovesLeadership(t *testing.T) {
	c, clock := clusterController(t, 3, nil)
	createTopic(t, c, "x", []int32{1, 2, 3}, []int32{2, 1, 3})
	createTopic(t, c, "z", []int32{1, 2})
	ctx := testCtx(t)

	clock.Advance(5 * time.Second)
	heartbeat(t, c, 2, nil)
	heartbeat(t, c, 3, nil)
	if n, err := c.FenceExpiredBrokers(ctx); err != nil || n != 0 {
		t.Fatalf("within the session: fenced %d, %v", n, err)
	}
	clock.Advance(5 * time.Second) // broker 1: 10 s; brokers 2, 3: 5 s
	if n, err := c.FenceExpiredBrokers(ctx); err != nil || n != 1 {
		t.Fatalf("after 1's session: fenced %d, %v", n, err)
	}
	if !c.Image().Brokers[1].Fenced || c.Image().Brokers[2].Fenced {
		t.Fatalf("brokers %+v", c.Image().Brokers)
	}
	for _, want := range []struct {
		topic string
		metadata.Partition
	}{
		{"x", metadata.Partition{Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1}},
		{"x", metadata.Partition{Partition: 1, Replicas: []int32{2, 1, 3}, ISR: []int32{2, 3}, Leader: 2, LeaderEpoch: 0, PartitionEpoch: 1}},
		{"z", metadata.Partition{Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1}},
	} {
		if got := partitionOf(c, want.topic, want.Partition.Partition); !samePartition(got, want.Partition) {
			t.Errorf("%s-%d = %+v, want %+v", want.topic, want.Partition.Partition, got, want.Partition)
		}
	}
	// Nothing more to do: no proposal.
	index := c.Image().Index
	if n, err := c.FenceExpiredBrokers(ctx); err != nil || n != 0 || c.Image().Index != index {
		t.Fatalf("second pass: fenced %d, %v, index %d -> %d", n, err, index, c.Image().Index)
	}

	// Both others expire in one pass: leaderless, each ISR keeps its last member.
	clock.Advance(10 * time.Second)
	if n, err := c.FenceExpiredBrokers(ctx); err != nil || n != 2 {
		t.Fatalf("fenced %d, %v; want 2", n, err)
	}
	if c.Image().Index != index+1 {
		t.Errorf("two brokers fenced in %d proposals, want 1", c.Image().Index-index)
	}
	if p := partitionOf(c, "x", 0); p.Leader != -1 || !slices.Equal(p.ISR, []int32{3}) {
		t.Errorf("partition 0 = %+v, want leaderless with ISR [3]", p)
	}
	if p := partitionOf(c, "z", 0); p.Leader != -1 || !slices.Equal(p.ISR, []int32{2}) {
		t.Errorf("z-0 = %+v, want leaderless with ISR [2]", p)
	}
	// Broker 2 comes back: it leads the leaderless partitions whose ISR holds it.
	if res := heartbeat(t, c, 2, nil); res.IsFenced {
		t.Fatalf("heartbeat of 2: %+v", res)
	}
	if p := partitionOf(c, "z", 0); p.Leader != 2 {
		t.Errorf("z-0 = %+v, want leader 2", p)
	}
	if p := partitionOf(c, "x", 0); p.Leader != -1 {
		t.Errorf("partition 0 = %+v, want still leaderless (2 is not in its ISR)", p)
	}
}

func samePartition(a, b metadata.Partition) bool {
	return a.Partition == b.Partition && a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch &&
		a.PartitionEpoch == b.PartitionEpoch && slices.Equal(a.Replicas, b.Replicas) && slices.Equal(a.ISR, b.ISR)
}

// TestSessionsRestartWithLeadership: a new leadership term gives every broker a full session.
func TestSessionsRestartWithLeadership(t *testing.T) {
	c, clock := clusterController(t, 2, nil)
	clock.Advance(8 * time.Second)
	c.mu.Lock()
	c.mu.sessions.term = 0 // as if the sessions were kept in an earlier term
	c.mu.Unlock()
	clock.Advance(8 * time.Second) // 16 s since the last heartbeat, 8 s in this "term"
	if n, err := c.FenceExpiredBrokers(testCtx(t)); err != nil || n != 0 {
		t.Fatalf("fenced %d, %v; want none", n, err)
	}
	clock.Advance(10 * time.Second) // 10 s in this term
	if n, err := c.FenceExpiredBrokers(testCtx(t)); err != nil || n != 2 {
		t.Fatalf("fenced %d, %v; want 2", n, err)
	}
}

func TestRunBrokerSessions(t *testing.T) {
	c, clock := clusterController(t, 2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.RunBrokerSessions(ctx) }()
	defer func() { cancel(); <-done }()
	clock.Advance(5 * time.Second)
	heartbeat(t, c, 2, nil)
	clock.Advance(5 * time.Second)
	deadline := time.Now().Add(testTimeout)
	for !c.Image().Brokers[1].Fenced {
		if time.Now().After(deadline) {
			t.Fatal("broker 1 was not fenced")
		}
		time.Sleep(10 * time.Millisecond) // polling the condition
	}
	if c.Image().Brokers[2].Fenced {
		t.Error("broker 2 fenced within its session")
	}
}

func TestControlledShutdown(t *testing.T) {
	c, _ := clusterController(t, 3, nil)
	createTopic(t, c, "x", []int32{1, 2}, []int32{2, 1})
	createTopic(t, c, "w", []int32{1})
	createTopic(t, c, "y", []int32{3, 2})
	want := func(r *HeartbeatRequest) { r.WantShutDown = true }

	// Broker 3 leads y-0: it enters controlled shutdown; y-0 moves to 2.
	res := heartbeat(t, c, 3, want)
	if res.ShouldShutDown || res.IsFenced || !c.Image().Brokers[3].InControlledShutdown {
		t.Fatalf("first shutdown heartbeat of 3: %+v, %+v", res, c.Image().Brokers[3])
	}
	if p := partitionOf(c, "y", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Errorf("y-0 = %+v", p)
	}
	res = heartbeat(t, c, 3, want)
	if !res.ShouldShutDown || !res.IsFenced || !c.Image().Brokers[3].Fenced {
		t.Fatalf("second shutdown heartbeat of 3: %+v", res)
	}

	// Broker 1: x-0 moves to 2, x-1 keeps 2 and drops 1, w-0 (only replica) becomes leaderless.
	heartbeat(t, c, 1, want)
	for _, w := range []struct {
		topic  string
		part   int32
		leader int32
		isr    []int32
	}{{"x", 0, 2, []int32{2}}, {"x", 1, 2, []int32{2}}, {"w", 0, -1, []int32{1}}} {
		if p := partitionOf(c, w.topic, w.part); p.Leader != w.leader || !slices.Equal(p.ISR, w.isr) {
			t.Errorf("%s-%d = %+v, want leader %d ISR %v", w.topic, w.part, p, w.leader, w.isr)
		}
	}
	if got := c.Image().PartitionsLedBy(1); len(got) != 0 {
		t.Errorf("1 still leads %v", got)
	}
	if res := heartbeat(t, c, 1, want); !res.ShouldShutDown {
		t.Errorf("1 not told to shut down: %+v", res)
	}
	// A fenced broker asking to shut down may at once; the answer stays.
	if res := heartbeat(t, c, 1, nil); !res.ShouldShutDown || !res.IsFenced {
		t.Errorf("after shutdown: %+v", res)
	}
	// Broker 2 now leads x and y: it is the only possible leader, so the partitions
	// become leaderless and it may shut down on the next heartbeat.
	heartbeat(t, c, 2, want)
	if res := heartbeat(t, c, 2, want); !res.ShouldShutDown {
		t.Errorf("2 not told to shut down: %+v; leads %v", res, c.Image().PartitionsLedBy(2))
	}
}

func TestWantFence(t *testing.T) {
	c, _ := clusterController(t, 2, nil)
	createTopic(t, c, "x", []int32{1, 2})
	if res := heartbeat(t, c, 1, func(r *HeartbeatRequest) { r.WantFence = true }); !res.IsFenced || res.ShouldShutDown {
		t.Fatalf("WantFence: %+v", res)
	}
	if p := partitionOf(c, "x", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || !c.Image().Brokers[1].Fenced {
		t.Errorf("x-0 = %+v, broker 1 %+v", p, c.Image().Brokers[1])
	}
}

// TestHasLiveSession: which registration blocks another incarnation of its broker ID
// (DUPLICATE_BROKER_REGISTRATION): an unfenced one whose current epoch heartbeated to this
// leader, in this term, within the session timeout.
func TestHasLiveSession(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	const timeout = 9 * time.Second
	b := metadata.Broker{ID: 1, Epoch: 40}
	tests := []struct {
		name      string
		fenced    bool
		heard     map[int32]int64
		lastAgo   time.Duration
		noContact bool
		want      bool
	}{
		{"heartbeat 2 s ago", false, map[int32]int64{1: 40}, 2 * time.Second, false, true},
		{"heartbeat at the timeout", false, map[int32]int64{1: 40}, timeout, false, true},
		{"session expired", false, map[int32]int64{1: 40}, timeout + time.Millisecond, false, false},
		{"fenced", true, map[int32]int64{1: 40}, 0, false, false},
		{"only the session a new leader gives everyone", false, map[int32]int64{}, 0, false, false},
		{"heartbeat of an older epoch", false, map[int32]int64{1: 12}, 0, false, false},
		{"no contact time", false, map[int32]int64{1: 40}, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := brokerSessions{lastContact: map[int32]time.Time{}, heard: tt.heard}
			if !tt.noContact {
				s.lastContact[1] = now.Add(-tt.lastAgo)
			}
			b := b
			b.Fenced = tt.fenced
			if got := s.hasLiveSession(b, now, timeout); got != tt.want {
				t.Errorf("hasLiveSession = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDuplicateBrokerRegistration: RegisterBroker refuses another incarnation of a broker
// with a live session and accepts it once the session expired, once the broker is fenced, or
// in a new leadership term before the broker heartbeats to the new leader (a node restarted
// with, or after, the controller); the same incarnation is a retry.
func TestDuplicateBrokerRegistration(t *testing.T) {
	c, clock := clusterController(t, 3, nil)
	ctx := testCtx(t)
	reg := func(id int32, inc byte) (int64, error) {
		return c.RegisterBroker(ctx, metadata.Broker{ID: id, IncarnationID: metadata.UUID{inc}})
	}
	// Live: refused, nothing written.
	index := c.Image().Index
	if _, err := reg(1, 0x11); !errors.Is(err, kerr.DuplicateBrokerRegistration) || c.Image().Index != index {
		t.Fatalf("live session: %v (index %d -> %d)", err, index, c.Image().Index)
	}
	// The same incarnation: a retry.
	if e, err := reg(1, 1); err != nil || e != c.Image().Brokers[1].Epoch {
		t.Fatalf("retry: %d, %v", e, err)
	}
	// Session expired (not yet fenced by the session check): accepted.
	clock.Advance(5 * time.Second)
	heartbeat(t, c, 2, nil)
	heartbeat(t, c, 3, nil)
	clock.Advance(5 * time.Second) // broker 1: 10 s since its last contact (the retry)
	if _, err := reg(1, 0x11); err != nil {
		t.Fatalf("expired session: %v", err)
	}
	// Fenced: accepted.
	heartbeat(t, c, 2, func(r *HeartbeatRequest) { r.WantFence = true })
	if _, err := reg(2, 0x22); err != nil {
		t.Fatalf("fenced broker: %v", err)
	}
	// Broker 3 heartbeated 5 s ago: refused, until a new term starts, where only a heartbeat
	// to the new leader counts.
	if _, err := reg(3, 0x33); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("live session of broker 3: %v", err)
	}
	c.mu.Lock()
	c.mu.sessions.term = 0 // as if the sessions were kept in an earlier term
	c.mu.Unlock()
	if _, err := reg(3, 0x33); err != nil {
		t.Fatalf("new term, no heartbeat to it yet: %v", err)
	}
	for id, inc := range map[int32]byte{1: 0x11, 2: 0x22, 3: 0x33} {
		if b := c.Image().Brokers[id]; b.IncarnationID != (metadata.UUID{inc}) || !b.Fenced {
			t.Errorf("broker %d: %+v, want the new incarnation, fenced", id, b)
		}
	}
}
