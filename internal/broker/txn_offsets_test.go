package broker_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// consumeTransformProduce runs one franz-go GroupTransactSession transaction: it consumes the
// want records of in as a member of group, produces them to out and ends the transaction with
// its offsets (commit or abort). It returns whether the transaction committed.
func consumeTransformProduce(t *testing.T, n *testcluster.Node, group, in, out string, want int, commit bool) bool {
	t.Helper()
	ctx := ctxT(t)
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(n.Addr()), kgo.TransactionalID("tx-"+group),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.DefaultProduceTopic(out),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.TransactionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Begin(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < want {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", got, want, in, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			sess.Produce(ctx, &kgo.Record{Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil && commit { // an abort fails the buffered records
					t.Errorf("produce: %v", err)
				}
			})
		})
	}
	committed, err := sess.End(ctx, kgo.TransactionEndTry(commit))
	if err != nil {
		t.Fatalf("end the transaction of %s (commit %v): %v", group, commit, err)
	}
	return committed
}

// committedOffset returns the group's committed offset of partition 0 of topic (-1: none).
func committedOffset(t *testing.T, n *testcluster.Node, group, topic string) int64 {
	t.Helper()
	resps, err := newAdmin(t, n).FetchOffsets(ctxT(t), group)
	if err != nil {
		t.Fatalf("fetch the offsets of %s: %v", group, err)
	}
	r, ok := resps.Lookup(topic, 0)
	if !ok {
		return -1
	}
	if r.Err != nil {
		t.Fatalf("offset of %s %s/0: %v", group, topic, r.Err)
	}
	return r.At
}

// TestTxnOffsetCommitConsumeTransformProduce: franz-go consume-transform-produce sessions
// commit their group's offsets in the transaction (AddOffsetsToTxn, TxnOffsetCommit): after
// a commit the group's committed offset is past the records consumed, after an abort the
// group has none (the pending offsets were dropped with the ABORT marker), and a restart of
// the node (replaying __consumer_offsets, markers included) keeps both outcomes. The output
// topic holds, read_committed, the records of the committed transaction only.
func TestTxnOffsetCommitConsumeTransformProduce(t *testing.T) {
	n := startTxnNode(t)
	const in, out = "ctp-in", "ctp-out"
	createTopic(t, n, in, 1, nil)
	createTopic(t, n, out, 1, nil)
	ctx := ctxT(t)
	prod := newClient(t, n, kgo.DefaultProduceTopic(in))
	for i := range 4 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	if consumeTransformProduce(t, n, "g-abort", in, out, 4, false) {
		t.Fatal("the aborted transaction committed")
	}
	if got := committedOffset(t, n, "g-abort", in); got != -1 {
		t.Fatalf("g-abort committed offset %d after its transaction aborted, want none", got)
	}
	if !consumeTransformProduce(t, n, "g-commit", in, out, 4, true) {
		t.Fatal("the transaction did not commit")
	}
	check := func(when string) {
		t.Helper()
		if got := committedOffset(t, n, "g-commit", in); got != 4 {
			t.Fatalf("%s: g-commit committed offset %d, want 4", when, got)
		}
		if got := committedOffset(t, n, "g-abort", in); got != -1 {
			t.Fatalf("%s: g-abort committed offset %d, want none", when, got)
		}
	}
	check("after the transactions")
	n.Restart()
	check("after a restart")
	if got := pollValues(t, n, out, 4, kgo.FetchIsolationLevel(kgo.ReadCommitted())); len(got) != 4 {
		t.Fatalf("read_committed output %v, want the 4 committed records", got)
	}
}

// rawTxn is a transactional producer driven by raw requests, so that a test decides when
// offsets are committed in the transaction and when it ends.
type rawTxn struct {
	t     *testing.T
	cl    *kgo.Client
	id    string
	pid   int64
	epoch int16
}

func newRawTxn(t *testing.T, n *testcluster.Node, id string) *rawTxn {
	t.Helper()
	return newRawTxnWith(t, newClient(t, n), id)
}

// newRawTxnTV0 is newRawTxn speaking the request versions before transaction.version 2
// (EndTxn v4, AddOffsetsToTxn v3, TxnOffsetCommit v4): one producer epoch for every
// transaction.
func newRawTxnTV0(t *testing.T, n *testcluster.Node, id string) *rawTxn {
	t.Helper()
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.EndTxn.Int16(), 4)
	v.SetMaxKeyVersion(kmsg.AddOffsetsToTxn.Int16(), 3)
	v.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 4)
	return newRawTxnWith(t, newClient(t, n, kgo.MaxVersions(v)), id)
}

func newRawTxnWith(t *testing.T, cl *kgo.Client, id string) *rawTxn {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &id, 60000
	resp, err := req.RequestWith(ctxT(t), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	return &rawTxn{t: t, cl: cl, id: id, pid: resp.ProducerID, epoch: resp.ProducerEpoch}
}

// commitOffset adds the group to the transaction and commits offset of topic/0 in it.
func (x *rawTxn) commitOffset(group, topic string, offset int64) {
	x.t.Helper()
	ctx := ctxT(x.t)
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = x.id, x.pid, x.epoch, group
	addResp, err := add.RequestWith(ctx, x.cl)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		x.t.Fatalf("AddOffsetsToTxn: %v", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = x.id, group, x.pid, x.epoch
	req.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 0, offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, x.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	if err != nil {
		x.t.Fatalf("TxnOffsetCommit: %v", err)
	}
}

func (x *rawTxn) end(commit bool) {
	x.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = x.id, x.pid, x.epoch, commit
	resp, err := req.RequestWith(ctxT(x.t), x.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		x.t.Fatalf("EndTxn (commit %v): %v", commit, err)
	}
	if resp.Version >= 5 {
		// transaction.version 2: the end bumped the epoch, which the next transaction uses.
		if resp.ProducerEpoch <= x.epoch && resp.ProducerID == x.pid {
			x.t.Fatalf("EndTxn v%d answered producer %d epoch %d after epoch %d: not bumped", resp.Version, resp.ProducerID, resp.ProducerEpoch, x.epoch)
		}
		x.pid, x.epoch = resp.ProducerID, resp.ProducerEpoch
	}
}

// stableOffset fetches the group's offset of topic/0 with require_stable (OffsetFetch v7),
// returning the offset and the partition's error.
func stableOffset(t *testing.T, n *testcluster.Node, group, topic string) (int64, error) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group, req.RequireStable = 7, group, true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), newClient(t, n, kgo.MaxVersions(kversion.V2_8_0())))
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

// TestTxnOffsetCommitPendingUntilMarker: offsets committed in a transaction are pending until
// its marker: OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT meanwhile (and
// still after a restart, the marker not being in the log), a plain fetch does not see them;
// the ABORT marker drops them, the COMMIT marker applies them, and a restart replays both.
func TestTxnOffsetCommitPendingUntilMarker(t *testing.T) {
	n := startTxnNode(t)
	const topic = "pend-in"
	createTopic(t, n, topic, 1, nil)

	aborted := newRawTxn(t, n, "tx-pend-abort")
	aborted.commitOffset("g-pend-abort", topic, 7)
	if _, err := stableOffset(t, n, "g-pend-abort", topic); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("require_stable fetch of a pending offset: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	if got := committedOffset(t, n, "g-pend-abort", topic); got != -1 {
		t.Fatalf("pending offset %d visible before the marker", got)
	}
	aborted.end(false)

	committed := newRawTxn(t, n, "tx-pend-commit")
	committed.commitOffset("g-pend-commit", topic, 9)
	committed.end(true)

	open := newRawTxn(t, n, "tx-pend-open")
	open.commitOffset("g-pend-open", topic, 11)

	check := func(when string) {
		t.Helper()
		if got := committedOffset(t, n, "g-pend-abort", topic); got != -1 {
			t.Fatalf("%s: aborted offset %d visible", when, got)
		}
		if got, err := stableOffset(t, n, "g-pend-commit", topic); err != nil || got != 9 {
			t.Fatalf("%s: committed offset %d (%v), want 9", when, got, err)
		}
		if _, err := stableOffset(t, n, "g-pend-open", topic); !errors.Is(err, kerr.UnstableOffsetCommit) {
			t.Fatalf("%s: open transaction's offset: %v, want UNSTABLE_OFFSET_COMMIT", when, err)
		}
		if got := committedOffset(t, n, "g-pend-open", topic); got != -1 {
			t.Fatalf("%s: open transaction's offset %d visible", when, got)
		}
	}
	check("before a restart")
	n.Restart()
	check("after a restart")
}

// TestTxnOffsetCommitSameEpoch: one producer epoch commits offsets in two transactions in a
// row (as a GroupTransactSession before transaction.version 2 does); the second batch is
// numbered after the first (not taken for its duplicate), so a restart replays the second
// offset.
func TestTxnOffsetCommitSameEpoch(t *testing.T) {
	n := startTxnNode(t)
	const topic = "epoch-in"
	createTopic(t, n, topic, 1, nil)
	x := newRawTxnTV0(t, n, "tx-epoch")
	x.commitOffset("g-epoch", topic, 3)
	x.end(true)
	x.commitOffset("g-epoch", topic, 5)
	x.end(true)
	if got := committedOffset(t, n, "g-epoch", topic); got != 5 {
		t.Fatalf("committed offset %d, want 5", got)
	}
	n.Restart()
	if got := committedOffset(t, n, "g-epoch", topic); got != 5 {
		t.Fatalf("after a restart: committed offset %d, want 5", got)
	}
}
