package group

import (
	"context"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/group/consumer"
	"github.com/samsa-io/samsa/internal/records"
)

// Transactional offsets against Kafka's rules (OffsetMetadataManager): which commit wins,
// what tombstones, expiry and DeleteGroups do to pending offsets, and markers that arrive
// while the partition loads.

const testProducer = 7

// txnHarness is a harness whose shard takes transactional offset commits.
func txnHarness(t *testing.T) *harness {
	h := newHarness(t, testSettings())
	h.shard.storeTxn = func(recs []Record, _ int64, _ int16) error { return h.store(recs) }
	return h
}

func txnCommit(group string, offs ...CommitOffset) TxnCommitRequest {
	return TxnCommitRequest{
		CommitRequest:   CommitRequest{Group: group, Generation: -1, RetentionTime: -1, Offsets: offs},
		TransactionalID: "tx", ProducerID: testProducer, ProducerEpoch: 0,
	}
}

func plainCommit(group string, offs ...CommitOffset) CommitRequest {
	return CommitRequest{Group: group, Generation: -1, RetentionTime: -1, Offsets: offs}
}

func fetchedOffset(t *testing.T, s *Shard, group string, tp TopicPartition) int64 {
	t.Helper()
	return s.FetchOffsets(group, []TopicPartition{tp})[0].Offset
}

// TestTxnOffsetsLaterRecordWins: when the transaction commits, its offset replaces the
// committed one only if its record came later; a plain OffsetCommit made while the
// transaction was open wins.
func TestTxnOffsetsLaterRecordWins(t *testing.T) {
	h := txnHarness(t)
	wantErr(t, "txn commit", h.shard.CommitTxnOffsets(txnCommit("g", commitOf(tp0, 10)))[0], nil)
	wantErr(t, "plain commit", h.shard.CommitOffsets(plainCommit("g", commitOf(tp0, 20)))[0], nil)
	h.shard.completeTxn(testProducer, true)
	if got := fetchedOffset(t, h.shard, "g", tp0); got != 20 {
		t.Fatalf("after the commit marker: offset %d, want the later plain commit's 20", got)
	}

	// The other order: the transaction's record is the later one.
	wantErr(t, "plain commit", h.shard.CommitOffsets(plainCommit("g", commitOf(tp1, 20)))[0], nil)
	wantErr(t, "txn commit", h.shard.CommitTxnOffsets(txnCommit("g", commitOf(tp1, 10)))[0], nil)
	if got := fetchedOffset(t, h.shard, "g", tp1); got != 20 {
		t.Fatalf("pending: offset %d, want 20", got)
	}
	h.shard.completeTxn(testProducer, true)
	if got := fetchedOffset(t, h.shard, "g", tp1); got != 10 {
		t.Fatalf("after the commit marker: offset %d, want the transaction's 10", got)
	}
}

// TestTxnOffsetsDeleteGroup: DeleteGroups deletes a group whose only offsets are pending in
// a transaction (Kafka made it a simple group), writing their tombstones; the transaction's
// commit then brings nothing back.
func TestTxnOffsetsDeleteGroup(t *testing.T) {
	h := txnHarness(t)
	wantErr(t, "txn commit", h.shard.CommitTxnOffsets(txnCommit("g", commitOf(tp0, 10)))[0], nil)
	if d := h.shard.DescribeGroup("g"); d.State != "Empty" {
		t.Fatalf("group of pending offsets: %+v", d)
	}
	h.written = nil
	wantErr(t, "delete", h.shard.DeleteGroup("g"), nil)
	if len(h.written) != 2 || h.written[0].Value != nil || string(h.written[0].Key) != string(offsetCommitKey("g", tp0.Topic, tp0.Partition)) {
		t.Fatalf("records of the delete: %+v", h.written)
	}
	h.shard.completeTxn(testProducer, true)
	if got := fetchedOffset(t, h.shard, "g", tp0); got != -1 {
		t.Fatalf("offset %d came back after the group was deleted", got)
	}
}

// TestTxnOffsetsOffsetDelete: OffsetDelete of a partition with only a pending offset writes
// its tombstone and drops it.
func TestTxnOffsetsOffsetDelete(t *testing.T) {
	h := txnHarness(t)
	wantErr(t, "txn commit", h.shard.CommitTxnOffsets(txnCommit("g", commitOf(tp0, 10)))[0], nil)
	h.written = nil
	err, errs := h.shard.DeleteOffsets("g", []TopicPartition{tp0})
	wantErr(t, "offset delete", err, nil)
	wantErr(t, "offset delete partition", errs[0], nil)
	if len(h.written) != 1 || h.written[0].Value != nil {
		t.Fatalf("records of the delete: %+v", h.written)
	}
	h.shard.completeTxn(testProducer, true)
	if got := fetchedOffset(t, h.shard, "g", tp0); got != -1 {
		t.Fatalf("deleted pending offset %d applied", got)
	}
}

// TestTxnOffsetsExpiry: an offset with a transactional offset pending for its partition
// does not expire, and a group with an open transaction is not deleted, until the marker.
func TestTxnOffsetsExpiry(t *testing.T) {
	set := testSettings()
	set.OffsetsRetention = time.Hour
	set.OffsetsRetentionCheckInterval = 0
	h := newHarness(t, set)
	h.shard.storeTxn = func(recs []Record, _ int64, _ int16) error { return h.store(recs) }
	wantErr(t, "plain commit", h.shard.CommitOffsets(plainCommit("g", commitOf(tp0, 5), commitOf(tp1, 5)))[0], nil)
	h.clock.Advance(2 * time.Hour)
	wantErr(t, "txn commit", h.shard.CommitTxnOffsets(txnCommit("g", commitOf(tp0, 10)))[0], nil)
	h.shard.ExpireOffsets()
	if got := fetchedOffset(t, h.shard, "g", tp0); got != 5 {
		t.Fatalf("offset with a pending transactional one: %d, want 5 (not expired)", got)
	}
	if got := fetchedOffset(t, h.shard, "g", tp1); got != -1 {
		t.Fatalf("tp1 offset %d did not expire", got)
	}

	// Only a pending offset left on another group: the group stays while it is open.
	wantErr(t, "plain commit", h.shard.CommitOffsets(plainCommit("h", commitOf(tp0, 5)))[0], nil)
	h.clock.Advance(2 * time.Hour)
	wantErr(t, "txn commit", h.shard.CommitTxnOffsets(txnCommit("h", commitOf(tp1, 10)))[0], nil)
	h.shard.ExpireOffsets()
	if d := h.shard.DescribeGroup("h"); d.State != "Empty" {
		t.Fatalf("group with an open transaction deleted by expiry: %+v", d)
	}
	h.shard.completeTxn(testProducer, false)
	h.shard.ExpireOffsets()
	if d := h.shard.DescribeGroup("h"); d.State != "Dead" {
		t.Fatalf("group not deleted after the abort: %+v", d)
	}
	if got := fetchedOffset(t, h.shard, "g", tp0); got != -1 {
		t.Fatalf("g tp0 offset %d did not expire after the abort", got)
	}
}

// TestTxnOffsetsTombstoneReplay: replaying a tombstone drops the pending offset of its key,
// as applying it did.
func TestTxnOffsetsTombstoneReplay(t *testing.T) {
	h := txnHarness(t)
	s := h.newShard(testSettings())
	s.txn.replaying = testProducer
	rec := offsetCommitValue(offsetEntry{offset: 10, leaderEpoch: -1, expireTimestamp: -1})
	if err := s.replay(offsetCommitKey("g", tp0.Topic, tp0.Partition), rec); err != nil {
		t.Fatal(err)
	}
	s.txn.replaying = -1
	if err := s.replay(offsetCommitKey("g", tp0.Topic, tp0.Partition), nil); err != nil {
		t.Fatal(err)
	}
	s.completeTxn(testProducer, true)
	s.finishLoad()
	if got := fetchedOffset(t, s, "g", tp0); got != -1 {
		t.Fatalf("offset %d survived its tombstone", got)
	}
}

// seqLog numbers a producer's batches as the replica log does.
type seqLog struct{ storageLog }

func (l seqLog) NextSequence(producerID int64, epoch int16) int32 {
	return l.l.NextSequence(producerID, epoch)
}

// gatedLog holds the loader's reads until open is closed.
type gatedLog struct {
	seqLog
	reading chan struct{}
	open    chan struct{}
}

func (l gatedLog) Read(off int64, max int) ([]byte, error) {
	select {
	case l.reading <- struct{}{}:
	default:
	}
	<-l.open
	return l.seqLog.Read(off, max)
}

// mustCommit commits through the coordinator (a transactional commit if txn), failing the
// test on an error.
func mustCommit(t *testing.T, c *Coordinator, txn bool, group string, offs ...CommitOffset) {
	t.Helper()
	var errs []error
	if txn {
		errs = c.CommitTxnOffsets(txnCommit(group, offs...))
	} else {
		errs = c.CommitOffsets(plainCommit(group, offs...))
	}
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
}

// loadGated loads log into a new coordinator whose loader is held once it has taken the
// log's end; complete runs then (markers written during the load), and the load finishes.
func loadGated(t *testing.T, log seqLog, epoch int32, complete func(c *Coordinator)) *Coordinator {
	t.Helper()
	gated := gatedLog{seqLog: log, reading: make(chan struct{}, 1), open: make(chan struct{})}
	c := newTestCoordinator(t)
	c.Load(0, gated, epoch)
	<-gated.reading
	complete(c)
	close(gated.open)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitLoaded(ctx, 0); err != nil {
		t.Fatal(err)
	}
	return c
}

// appendMarker writes a transaction marker to the log as WriteTxnMarkers does, returning its
// offset.
func appendMarker(t *testing.T, l storageLog, commit bool) int64 {
	t.Helper()
	m := records.EndTxnMarker{ProducerID: testProducer, Commit: commit}
	res, err := l.l.AppendAsLeader(m.Batch(time.Now().UnixMilli()), 0)
	if err != nil {
		t.Fatal(err)
	}
	return res.LastOffset
}

// TestTxnMarkerDuringLoad: the marker of a transaction whose offsets are pending arrives
// while the partition is loading on a new coordinator (after the replay read the log's end):
// the offsets are committed once loaded. A later load replays it from the log.
func TestTxnMarkerDuringLoad(t *testing.T) {
	log := seqLog{openStorageLog(t, t.TempDir())}
	c := newTestCoordinator(t)
	loadAndWait(t, c, log, 0)
	// A plain commit, then the transaction's (later, so it wins at the commit).
	mustCommit(t, c, false, "g", commitOf(tp0, 3))
	mustCommit(t, c, true, "g", commitOf(tp0, 10))
	c.Unload(0)

	c2 := loadGated(t, log, 1, func(c2 *Coordinator) {
		c2.CompleteTransaction(0, testProducer, true, appendMarker(t, log.storageLog, true))
	})
	got, err := c2.FetchOffsets("g", []TopicPartition{tp0})
	if err != nil || got[0].Offset != 10 {
		t.Fatalf("after a marker written during the load: %+v %v, want offset 10", got, err)
	}

	// A new load reads the marker from the log (and applies it once).
	c3 := newTestCoordinator(t)
	loadAndWait(t, c3, log, 2)
	if got, err := c3.FetchOffsets("g", []TopicPartition{tp0}); err != nil || got[0].Offset != 10 {
		t.Fatalf("replayed: %+v %v, want offset 10", got, err)
	}
}

// TestTxnOffsetsLaterRecordWinsReplay: replay follows the same rule as the live commit: a
// plain commit written after the transaction's offset stays when the marker is replayed.
func TestTxnOffsetsLaterRecordWinsReplay(t *testing.T) {
	log := seqLog{openStorageLog(t, t.TempDir())}
	c := newTestCoordinator(t)
	loadAndWait(t, c, log, 0)
	mustCommit(t, c, true, "g", commitOf(tp0, 10))
	mustCommit(t, c, false, "g", commitOf(tp0, 20))
	c.CompleteTransaction(0, testProducer, true, appendMarker(t, log.storageLog, true))
	if got, _ := c.FetchOffsets("g", []TopicPartition{tp0}); got[0].Offset != 20 {
		t.Fatalf("live: offset %d, want 20", got[0].Offset)
	}
	c2 := newTestCoordinator(t)
	loadAndWait(t, c2, log, 1)
	if got, err := c2.FetchOffsets("g", []TopicPartition{tp0}); err != nil || got[0].Offset != 20 {
		t.Fatalf("replayed: %+v %v, want offset 20", got, err)
	}
}

// TestTxnMarkerDuringLoadReplayed: the completion of a marker the replay read (a late
// answer of its replication) must not end the producer's next transaction, whose offsets
// the replay found pending after the marker.
func TestTxnMarkerDuringLoadReplayed(t *testing.T) {
	log := seqLog{openStorageLog(t, t.TempDir())}
	c := newTestCoordinator(t)
	loadAndWait(t, c, log, 0)
	mustCommit(t, c, true, "g", commitOf(tp0, 10))
	first := appendMarker(t, log.storageLog, true)
	c.CompleteTransaction(0, testProducer, true, first)
	mustCommit(t, c, true, "g", commitOf(tp0, 30))
	c.Unload(0)

	c2 := loadGated(t, log, 1, func(c2 *Coordinator) { c2.CompleteTransaction(0, testProducer, true, first) })
	got, err := c2.FetchOffsetsForMember("g", nil, -1, []TopicPartition{tp0}, false)
	if err != nil || got[0].Offset != 10 {
		t.Fatalf("offsets %+v %v, want 10 (the second transaction still open)", got, err)
	}
	got, _ = c2.FetchOffsetsForMember("g", nil, -1, []TopicPartition{tp0}, true)
	wantErr(t, "require stable", got[0].Err, errUnstableOffsetCommit)
}

// TestTxnOffsetsConsumerGroup: a KIP-848 consumer group's pending offsets follow the same
// rules: they do not expire the committed offset, and DeleteGroups deletes them.
func TestTxnOffsetsConsumerGroup(t *testing.T) {
	set := testSettings()
	set.OffsetsRetentionCheckInterval = 0 // expiry runs when the test says
	h := newHarness(t, set)
	h.shard.setConsumerTopics([]consumer.Topic{topicT})
	h.shard.storeTxn = func(recs []Record, _ int64, _ int16) error { return h.store(recs) }
	r := h.cgHeartbeat("cg", "m1", 0)
	wantCode(t, "join", r.ErrorCode, nil)
	wantCode(t, "leave", h.cgHeartbeat("cg", "m1", -1).ErrorCode, nil)
	tpT := TopicPartition{Topic: "t", Partition: 0}
	wantErr(t, "plain commit", h.shard.CommitOffsets(plainCommit("cg", commitOf(tpT, 5)))[0], nil)
	h.clock.Advance(8 * 24 * time.Hour)
	wantErr(t, "txn commit", h.shard.CommitTxnOffsets(txnCommit("cg", commitOf(tpT, 9)))[0], nil)
	h.shard.ExpireOffsets()
	if got := fetchedOffset(t, h.shard, "cg", tpT); got != 5 || !h.shard.isConsumerGroup("cg") {
		t.Fatalf("offset with a pending one expired: %d, want 5 (consumer group %v)", got, h.shard.isConsumerGroup("cg"))
	}
	wantErr(t, "delete", h.shard.DeleteGroup("cg"), nil)
	h.shard.completeTxn(testProducer, true)
	if got := fetchedOffset(t, h.shard, "cg", tpT); got != -1 {
		t.Fatalf("offset %d after the group was deleted", got)
	}
}
