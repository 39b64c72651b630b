package group

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/storage"
)

// storageLog is a Log on a real partition log with a single replica.
type storageLog struct{ l *storage.Log }

func (s storageLog) AppendAsLeader(b []byte) error {
	_, err := s.l.AppendAsLeader(b, 0)
	return err
}
func (s storageLog) Read(off int64, max int) ([]byte, error) {
	return s.l.Read(off, max, s.l.LogEndOffset(), true)
}
func (s storageLog) LogStartOffset() int64 { return s.l.LogStartOffset() }
func (s storageLog) ReplayEnd() int64      { return s.l.LogEndOffset() }

func openStorageLog(t *testing.T, dir string) storageLog {
	t.Helper()
	cfg := storage.DefaultLogConfig()
	cfg.SegmentBytes = 4096 // several segments, so replay crosses segment boundaries
	l, err := storage.OpenLog(dir, cfg, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return storageLog{l}
}

func newTestCoordinator(t *testing.T) *Coordinator {
	set := testSettings()
	c := NewCoordinator(Config{NodeID: 1, Settings: set, NumPartitions: 1})
	t.Cleanup(c.Close)
	return c
}

func loadAndWait(t *testing.T, c *Coordinator, log Log, epoch int32) {
	t.Helper()
	c.Load(0, log, epoch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitLoaded(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

func testJoin(group, memberID string) JoinRequest {
	return JoinRequest{Group: group, MemberID: memberID, ClientID: "c", SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: consumerMeta("t")}}, RequireKnownMemberID: true}
}

// TestCoordinatorRoundTrip runs a group through the blocking API on a real log, then loads
// the log into a fresh coordinator and finds the same group and offsets.
func TestCoordinatorRoundTrip(t *testing.T) {
	dir := t.TempDir()
	log := openStorageLog(t, dir)
	c := newTestCoordinator(t)
	if err := c.Heartbeat(HeartbeatRequest{Group: "g"}); !errors.Is(err, errNotCoordinator) {
		t.Fatalf("before load: %v", err)
	}
	loadAndWait(t, c, log, 0)
	ctx := context.Background()

	// A forms generation 1 alone (no initial delay).
	first := c.JoinGroup(ctx, testJoin("g", ""))
	a := c.JoinGroup(ctx, testJoin("g", first.MemberID))
	if a.Err != nil || a.Generation != 1 || a.LeaderID != a.MemberID {
		t.Fatalf("first member: %+v", a)
	}
	if s := c.SyncGroup(ctx, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 1}); s.Err != nil {
		t.Fatalf("sync: %+v", s)
	}
	// B joins: its join blocks until A, told by its heartbeat, rejoins too.
	first = c.JoinGroup(ctx, testJoin("g", ""))
	var wg sync.WaitGroup
	results := make([]JoinResult, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		results[1] = c.JoinGroup(ctx, testJoin("g", first.MemberID))
	}()
	eventually(t, "B's join starts a rebalance", func() bool {
		return c.Heartbeat(HeartbeatRequest{Group: "g", MemberID: a.MemberID, Generation: 1}) != nil
	})
	results[0] = c.JoinGroup(ctx, testJoin("g", a.MemberID))
	wg.Wait()
	gen, leader := results[0].Generation, results[0].LeaderID
	if results[0].Err != nil || results[1].Err != nil || results[1].Generation != 2 || gen != 2 || leader != a.MemberID {
		t.Fatalf("joins: %+v %+v", results[0], results[1])
	}
	syncs := make([]SyncResult, 2)
	for i, r := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := SyncRequest{Group: "g", MemberID: r.MemberID, Generation: gen}
			if r.MemberID == leader {
				req.Assignments = map[string][]byte{results[0].MemberID: []byte("a0"), results[1].MemberID: []byte("a1")}
			}
			syncs[i] = c.SyncGroup(ctx, req)
		}()
	}
	wg.Wait()
	if string(syncs[0].Assignment) != "a0" || string(syncs[1].Assignment) != "a1" {
		t.Fatalf("syncs %+v", syncs)
	}
	for i := 0; i < 50; i++ { // enough commits to roll segments
		errs := c.CommitOffsets(CommitRequest{Group: "g", MemberID: results[0].MemberID, Generation: gen, RetentionTime: -1,
			Offsets: []CommitOffset{commitOf(tp0, int64(i)), commitOf(tp1, int64(100+i))}})
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("commit: %v", errs)
		}
	}
	c.CommitOffsets(CommitRequest{Group: "simple", Generation: -1, RetentionTime: -1, Offsets: []CommitOffset{commitOf(otherTP, 9)}})
	if l, err := c.ListGroups(nil, nil); err != nil || len(l) != 2 {
		t.Fatalf("list: %+v %v", l, err)
	}

	// A new coordinator (a restart) replays the log.
	c.Close()
	c2 := newTestCoordinator(t)
	loadAndWait(t, c2, log, 0)
	got, err := c2.FetchOffsets("g", nil)
	if err != nil || len(got) != 2 || got[0].Offset != 49 || got[1].Offset != 149 {
		t.Fatalf("offsets after reload: %+v %v", got, err)
	}
	if d := c2.DescribeGroup("g"); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group after reload: %+v", d)
	}
	if err := c2.Heartbeat(HeartbeatRequest{Group: "g", MemberID: results[1].MemberID, Generation: gen}); err != nil {
		t.Fatalf("heartbeat after reload: %v", err)
	}
	if got, _ := c2.FetchOffsets("simple", []TopicPartition{otherTP}); got[0].Offset != 9 {
		t.Fatalf("simple group after reload: %+v", got)
	}
}

// TestUnloadAnswersWaiters checks that leadership moving away answers a waiting join with
// NOT_COORDINATOR and that the partition's groups are then refused.
func TestUnloadAnswersWaiters(t *testing.T) {
	log := openStorageLog(t, t.TempDir())
	set := testSettings()
	set.InitialRebalanceDelay = time.Hour // the join waits until unloaded
	c := NewCoordinator(Config{NodeID: 1, Settings: set, NumPartitions: 1})
	t.Cleanup(c.Close)
	loadAndWait(t, c, log, 0)
	req := testJoin("g", "")
	req.RequireKnownMemberID = false
	done := make(chan JoinResult)
	go func() { done <- c.JoinGroup(context.Background(), req) }()
	// Wait until the member is in the group, then move leadership away.
	eventually(t, "the member is in the group", func() bool { return len(c.DescribeGroup("g").Members) == 1 })
	c.Unload(0)
	if r := <-done; !errors.Is(r.Err, errNotCoordinator) {
		t.Fatalf("waiting join after unload: %+v", r)
	}
	if err := c.CommitOffsets(CommitRequest{Group: "g", Generation: -1, Offsets: []CommitOffset{commitOf(tp0, 1)}}); !errors.Is(err[0], errNotCoordinator) {
		t.Fatalf("commit after unload: %v", err)
	}
	// Loading again at a new epoch rebuilds from the log (nothing was committed).
	loadAndWait(t, c, log, 1)
	if d := c.DescribeGroup("g"); d.State != "Dead" {
		t.Fatalf("group after reload: %+v", d)
	}
}

func TestJoinContextEnds(t *testing.T) {
	log := openStorageLog(t, t.TempDir())
	set := testSettings()
	set.InitialRebalanceDelay = time.Hour
	c := NewCoordinator(Config{NodeID: 1, Settings: set, NumPartitions: 1})
	t.Cleanup(c.Close)
	loadAndWait(t, c, log, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := testJoin("g", "")
	req.RequireKnownMemberID = false
	if r := c.JoinGroup(ctx, req); r.Err == nil {
		t.Fatal("join returned no error after its context ended")
	}
}

// eventually polls cond until it holds, failing the test after 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
