package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/storage"
)

// testBatch builds a valid v2 batch of n records (offsets and epoch are stamped on append).
func testBatch(n int) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := []byte{0}
		r = binary.AppendVarint(r, 0)
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, 1)
		r = append(r, 'v')
		r = binary.AppendVarint(r, 0)
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, records.HeaderSize, records.HeaderSize+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-records.LengthOffset))
	b[16] = 2
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	binary.BigEndian.PutUint32(b[17:], records.ComputeCRC(b))
	return b
}

// fakeClock is a settable clock for ISR decisions.
type fakeClock struct{ ms atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

type alterAnswer struct {
	res AlterPartitionResult
	err error
}

// fakeSender records ISR changes and answers each with what the test sends on answers.
type fakeSender struct {
	reqs    chan AlterPartitionRequest
	answers chan alterAnswer
}

func newFakeSender() *fakeSender {
	return &fakeSender{reqs: make(chan AlterPartitionRequest, 16), answers: make(chan alterAnswer, 16)}
}

func (f *fakeSender) AlterPartition(ctx context.Context, req AlterPartitionRequest) (AlterPartitionResult, error) {
	f.reqs <- req
	select {
	case a := <-f.answers:
		return a.res, a.err
	case <-ctx.Done():
		return AlterPartitionResult{}, ctx.Err()
	}
}

func (f *fakeSender) next(t *testing.T) AlterPartitionRequest {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no AlterPartition request")
		return AlterPartitionRequest{}
	}
}

func (f *fakeSender) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-f.reqs:
		t.Fatalf("unexpected AlterPartition request %+v", r)
	default:
	}
}

// leaderSetup hosts a partition with replicas 1,2,3 led by node 1 (this node).
func leaderSetup(t *testing.T, isr ...int32) (*Manager, *Partition, *fakeSender, *fakeClock) {
	t.Helper()
	clock := &fakeClock{}
	clock.ms.Store(1_000_000)
	sender := newFakeSender()
	m := NewManager(Config{
		Dir:                    t.TempDir(),
		NodeID:                 1,
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
		LogConfig:              func(map[string]string) storage.LogConfig { return storage.DefaultLogConfig() },
		RetentionCheckInterval: time.Hour,
		AlterPartition:         sender,
		ReplicaLagTime:         10 * time.Second,
		Now:                    clock.now,
	})
	t.Cleanup(func() { m.Close() })
	if err := m.Apply(image(1, replicatedTopic("r", 1, 1, 0, isr))); err != nil {
		t.Fatal(err)
	}
	p := m.Partition("r", 0)
	if p == nil || !p.IsLeader() || !p.Replicated() {
		t.Fatal("partition r-0 is not led here")
	}
	return m, p, sender, clock
}

func replicatedTopic(name string, leader, leaderEpoch, partitionEpoch int32, isr []int32) *metadata.Topic {
	return &metadata.Topic{Name: name, ID: metadata.UUID{9}, Partitions: []metadata.Partition{{
		Partition: 0, Replicas: []int32{1, 2, 3}, ISR: isr, Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch,
	}}}
}

func appendN(t *testing.T, p *Partition, n int) {
	t.Helper()
	for range n {
		if _, err := p.AppendAsLeader(testBatch(1)); err != nil {
			t.Fatal(err)
		}
	}
}

// waitUntil waits (on the partition's wake-ups, no polling) until cond holds.
func waitUntil(t *testing.T, p *Partition, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w := p.Wait()
		if cond() {
			return
		}
		select {
		case <-w:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestHighWatermarkIsSmallestLogEndInISR(t *testing.T) {
	_, p, _, _ := leaderSetup(t, 1, 2, 3)
	appendN(t, p, 3)
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d with followers' log ends unknown, want 0", hw)
	}
	p.UpdateFollowerFetch(2, 3, 3)
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d with follower 3 unknown, want 0", hw)
	}
	p.UpdateFollowerFetch(3, 2, 3)
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d, want 2 (follower 3's log end)", hw)
	}
	// A follower going back (it truncated) never lowers the high watermark.
	p.UpdateFollowerFetch(3, 1, 3)
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark went back to %d", hw)
	}
	// A replica outside the ISR does not hold the high watermark.
	_, p2, _, _ := leaderSetup(t, 1, 2)
	appendN(t, p2, 2)
	p2.UpdateFollowerFetch(2, 2, 2)
	if hw := p2.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d with ISR {1,2} both at 2, want 2", hw)
	}
}

func TestLeaderAloneInISRCommitsOnAppend(t *testing.T) {
	_, p, _, _ := leaderSetup(t, 1)
	appendN(t, p, 2)
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d, want 2", hw)
	}
}

func TestISRShrinkThenExpandWithOneChangeInFlight(t *testing.T) {
	m, p, sender, clock := leaderSetup(t, 1, 2, 3)
	appendN(t, p, 3)
	p.UpdateFollowerFetch(2, 3, 3) // caught up (at the leader's end)
	p.UpdateFollowerFetch(3, 1, 3) // behind
	clock.advance(5 * time.Second)
	m.ShrinkISRs()
	sender.none(t) // within the lag time
	clock.advance(6 * time.Second)
	m.ShrinkISRs()
	req := sender.next(t)
	if !slices.Equal(req.NewISR, []int32{1, 2}) || req.LeaderEpoch != 1 || req.PartitionEpoch != 0 || req.LeaderID != 1 {
		t.Fatalf("shrink request %+v", req)
	}
	// While the change is in flight: no other change, and the high watermark still waits
	// for the maximal ISR (follower 3 at 1).
	m.ShrinkISRs()
	sender.none(t)
	if hw := p.HighWatermark(); hw != 1 {
		t.Fatalf("high watermark %d during the shrink, want 1", hw)
	}
	sender.answers <- alterAnswer{res: AlterPartitionResult{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, ISR: []int32{1, 2}}}
	waitUntil(t, p, "the shrunk ISR", func() bool { return slices.Equal(p.ISR(), []int32{1, 2}) })
	if hw := p.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d after the shrink, want 3", hw)
	}
	// Follower 3 catches up to the high watermark: it is proposed back.
	p.UpdateFollowerFetch(3, 2, 3)
	sender.none(t)
	p.UpdateFollowerFetch(3, 3, 3)
	req = sender.next(t)
	if !slices.Equal(req.NewISR, []int32{1, 2, 3}) || req.PartitionEpoch != 1 {
		t.Fatalf("expand request %+v", req)
	}
	sender.answers <- alterAnswer{res: AlterPartitionResult{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 2, ISR: []int32{1, 2, 3}}}
	waitUntil(t, p, "the expanded ISR", func() bool { return len(p.ISR()) == 3 })
}

func TestAlterPartitionFailures(t *testing.T) {
	m, p, sender, clock := leaderSetup(t, 1, 2, 3)
	clock.advance(11 * time.Second)
	// No answer: the proposal is dropped and made again at the next check.
	m.ShrinkISRs()
	sender.next(t)
	sender.answers <- alterAnswer{err: errors.New("controller unreachable")}
	waitUntil(t, p, "the proposal dropped", func() bool { p.rs.RLock(); defer p.rs.RUnlock(); return p.rs.pending == nil })
	m.ShrinkISRs()
	sender.next(t)
	// A stale partition epoch: hold until the image brings a newer state.
	sender.answers <- alterAnswer{res: AlterPartitionResult{ErrorCode: codeInvalidUpdateVersion}}
	waitUntil(t, p, "the change held", func() bool { p.rs.RLock(); defer p.rs.RUnlock(); return p.rs.held })
	m.ShrinkISRs()
	sender.none(t)
	if err := m.Apply(image(2, replicatedTopic("r", 1, 1, 5, []int32{1, 2}))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.ISR(), []int32{1, 2}) {
		t.Fatalf("ISR %v after the image, want [1 2]", p.ISR())
	}
	m.ShrinkISRs()
	if req := sender.next(t); !slices.Equal(req.NewISR, []int32{1}) || req.PartitionEpoch != 5 {
		t.Fatalf("request after the image %+v", req)
	}
	// An image older than the state the leader has is ignored.
	sender.answers <- alterAnswer{res: AlterPartitionResult{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 6, ISR: []int32{1}}}
	waitUntil(t, p, "ISR {1}", func() bool { return len(p.ISR()) == 1 })
	if err := m.Apply(image(3, replicatedTopic("r", 1, 1, 5, []int32{1, 2}))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.ISR(), []int32{1}) {
		t.Fatalf("a stale image changed the ISR to %v", p.ISR())
	}
}

func TestWaitReplicated(t *testing.T) {
	m, p, sender, clock := leaderSetup(t, 1, 2, 3)
	appendN(t, p, 1)
	ctx := context.Background()
	// Timeout.
	closed := make(chan struct{})
	close(closed)
	if err := p.WaitReplicated(ctx, 1, 2, closed); !errors.Is(err, ErrReplicationTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	// Committed by the followers' fetches while waiting.
	done := make(chan error, 1)
	go func() { done <- p.WaitReplicated(ctx, 1, 2, nil) }()
	p.UpdateFollowerFetch(2, 1, 1)
	p.UpdateFollowerFetch(3, 1, 1)
	if err := <-done; err != nil {
		t.Fatalf("want success, got %v", err)
	}
	// The ISR shrinks below min.insync.replicas before the records are committed.
	appendN(t, p, 1)
	go func() { done <- p.WaitReplicated(ctx, 2, 3, nil) }()
	clock.advance(11 * time.Second)
	m.ShrinkISRs()
	req := sender.next(t)
	sender.answers <- alterAnswer{res: AlterPartitionResult{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, ISR: req.NewISR}}
	if err := <-done; !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
		t.Fatalf("want NOT_ENOUGH_REPLICAS_AFTER_APPEND, got %v", err)
	}
	// Leadership lost while waiting.
	m, p, _, _ = leaderSetup(t, 1, 2, 3)
	appendN(t, p, 1)
	go func() { done <- p.WaitReplicated(ctx, 1, 1, nil) }()
	if err := m.Apply(image(2, replicatedTopic("r", 2, 2, 2, []int32{1, 2}))); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrNotLeader) {
		t.Fatalf("want NOT_LEADER, got %v", err)
	}
	if _, err := p.AppendAsLeader(testBatch(1)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower appended as leader: %v", err)
	}
}

func TestFollowerFetchChecks(t *testing.T) {
	_, p, _, _ := leaderSetup(t, 1, 2, 3)
	for _, c := range []struct {
		replica, epoch int32
		want           error
	}{
		{2, 1, nil}, {2, -1, nil}, {2, 0, ErrFencedLeaderEpoch}, {2, 2, ErrUnknownLeaderEpoch}, {7, 1, ErrNotReplica},
	} {
		if err := p.CheckFollowerFetch(c.replica, c.epoch); !errors.Is(err, c.want) && err != c.want {
			t.Errorf("replica %d epoch %d: %v, want %v", c.replica, c.epoch, err, c.want)
		}
	}
}

func TestCaughtUpRule(t *testing.T) {
	f := &followerState{logEnd: -1, lastFetchLeaderEnd: -1}
	lag := 10 * time.Second
	f.update(5, 10, 1000) // behind the leader's end 10, past its previous end (-1)
	if f.lastCaughtUpMs != 0 {
		t.Fatalf("caught up at %d: the previous fetch time was 0", f.lastCaughtUpMs)
	}
	f.update(10, 12, 2000) // reached the leader's end as of the previous fetch
	if f.lastCaughtUpMs != 1000 {
		t.Fatalf("last caught up %d, want 1000 (the previous fetch)", f.lastCaughtUpMs)
	}
	f.update(12, 12, 3000)
	if f.lastCaughtUpMs != 3000 || !f.caughtUp(12, 100_000, lag) {
		t.Fatalf("at the leader's end: last caught up %d", f.lastCaughtUpMs)
	}
	if f.caughtUp(13, 13_001, lag) {
		t.Fatal("behind for more than the lag time and still caught up")
	}
	if !f.caughtUp(13, 13_000, lag) {
		t.Fatal("behind for exactly the lag time is still caught up")
	}
}

func TestTruncationDecisions(t *testing.T) {
	for _, c := range []struct {
		name           string
		leaderEpoch    int32
		leaderEnd      int64
		ownEpoch       int32
		ownEnd, logEnd int64
		wantOffset     int64
		wantDone       bool
	}{
		{"same epoch, leader shorter", 3, 10, 3, 15, 15, 10, true},
		{"same epoch, follower shorter", 3, 20, 3, 15, 15, 15, true},
		{"leader knows an older epoch only", 2, 10, 1, 8, 15, 8, false},
		{"own end bounded by log end", 3, 10, 3, 12, 9, 9, true},
	} {
		off, done := truncationOffset(c.leaderEpoch, c.leaderEnd, c.ownEpoch, c.ownEnd, c.logEnd)
		if off != c.wantOffset || done != c.wantDone {
			t.Errorf("%s: (%d, %v), want (%d, %v)", c.name, off, done, c.wantOffset, c.wantDone)
		}
	}
	for _, c := range []struct{ logEnd, leaderEnd, leaderStart, truncate, restart int64 }{
		{20, 10, 0, 10, -1},
		{5, 100, 50, -1, 50},
		{50, 100, 50, -1, -1},
	} {
		tr, rs := outOfRangeAction(c.logEnd, c.leaderEnd, c.leaderStart)
		if tr != c.truncate || rs != c.restart {
			t.Errorf("out of range %+v: (%d, %d)", c, tr, rs)
		}
	}
}

func TestHighWatermarkCheckpoint(t *testing.T) {
	hws := map[TopicPartition]int64{{"a", 0}: 5, {"b.c", 12}: 0}
	got, err := parseHWCheckpoint(encodeHWCheckpoint(hws))
	if err != nil || len(got) != 2 || got[TopicPartition{"a", 0}] != 5 || got[TopicPartition{"b.c", 12}] != 0 {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if want := "0\n2\na 0 5\nb.c 12 0\n"; string(encodeHWCheckpoint(hws)) != want {
		t.Fatalf("format %q, want %q", encodeHWCheckpoint(hws), want)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\na 0 5\n", "0\n1\na x 5\n"} {
		if _, err := parseHWCheckpoint([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}

	// A restarted replicated partition takes min(checkpoint, log end); it does not jump to
	// its log end.
	dir := t.TempDir()
	open := func() (*Manager, *Partition) {
		m := NewManager(Config{Dir: dir, NodeID: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			LogConfig: func(map[string]string) storage.LogConfig { return storage.DefaultLogConfig() }, RetentionCheckInterval: time.Hour})
		if err := m.Apply(image(1, replicatedTopic("r", 1, 1, 0, []int32{1, 2, 3}))); err != nil {
			t.Fatal(err)
		}
		return m, m.Partition("r", 0)
	}
	m, p := open()
	appendN(t, p, 4)
	p.UpdateFollowerFetch(2, 2, 4)
	p.UpdateFollowerFetch(3, 2, 4)
	if p.HighWatermark() != 2 {
		t.Fatalf("high watermark %d, want 2", p.HighWatermark())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m, p = open()
	defer m.Close()
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after restart, want 2 (checkpointed)", hw)
	}
}

// TestImageAtAnsweredEpochChangesReplicas: an AlterPartition answer that completed a
// reassignment (ISR 1,3, replica 2 removed) gives the leader the partition epoch of the image
// that changes the replicas; that image is still applied, so the removed replica is no longer
// served as a follower.
func TestImageAtAnsweredEpochChangesReplicas(t *testing.T) {
	m, p, sender, _ := leaderSetup(t, 1, 2)
	appendN(t, p, 3)
	p.UpdateFollowerFetch(2, 3, 3)
	p.UpdateFollowerFetch(3, 3, 3)
	req := sender.next(t)
	if !slices.Equal(req.NewISR, []int32{1, 2, 3}) {
		t.Fatalf("expand request %+v", req)
	}
	sender.answers <- alterAnswer{res: AlterPartitionResult{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, ISR: []int32{1, 3}}}
	waitUntil(t, p, "the answered ISR", func() bool { return slices.Equal(p.ISR(), []int32{1, 3}) })
	if err := p.CheckFollowerFetch(2, 1); err != nil {
		t.Fatalf("replica 2 before the image: %v", err)
	}
	done := replicatedTopic("r", 1, 1, 1, []int32{1, 3})
	done.Partitions[0].Replicas = []int32{1, 3}
	if err := m.Apply(image(2, done)); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckFollowerFetch(2, 1); !errors.Is(err, ErrNotReplica) {
		t.Errorf("replica 2 after the image that removed it: %v, want ErrNotReplica", err)
	}
	if err := p.CheckFollowerFetch(3, 1); err != nil {
		t.Errorf("replica 3: %v", err)
	}
}
