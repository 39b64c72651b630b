package txn

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/group"
)

// TestZombieFencing: a second producer with the same transactional id aborts the first
// one's ongoing transaction with a bumped epoch (CONCURRENT_TRANSACTIONS until the abort is
// complete), then gets the next epoch; the zombie is fenced on every API.
func TestZombieFencing(t *testing.T) {
	set := DefaultSettings()
	set.TransactionVersion = TV1 // pre-TV2 cluster: one bump for the fence
	h := newHarness(t, set)
	a := h.init("t", -1, -1)
	h.add("t", a.ProducerID, a.ProducerEpoch, TV0, tpA, tpB)

	b := h.init("t", -1, -1)
	wantErr(t, "init over an ongoing transaction", b.Err, kerr.ConcurrentTransactions)
	if len(h.markers) != 1 || h.markers[0].Commit || h.markers[0].ProducerEpoch != a.ProducerEpoch+1 ||
		h.markers[0].CoordinatorEpoch != h.epoch || !slices.Equal(h.markers[0].Partitions, []TopicPartition{tpA, tpB}) {
		t.Fatalf("abort markers: %+v", h.markers)
	}
	wantErr(t, "init while aborting", h.init("t", -1, -1).Err, kerr.ConcurrentTransactions)
	h.writeMarkers()
	h.wantState("t", StateCompleteAbort)
	b = h.init("t", -1, -1)
	if b.Err != nil || b.ProducerID != a.ProducerID || b.ProducerEpoch != a.ProducerEpoch+2 {
		t.Fatalf("second producer: %+v", b)
	}
	wantErr(t, "zombie add", h.add("t", a.ProducerID, a.ProducerEpoch, TV0, tpA).Err, kerr.ProducerFenced)
	wantErr(t, "zombie end", h.end("t", a.ProducerID, a.ProducerEpoch, true, TV0).Err, kerr.ProducerFenced)
	wantErr(t, "zombie verify", h.s.VerifyPartitions("t", a.ProducerID, a.ProducerEpoch, []TopicPartition{tpA})[tpA], kerr.ProducerFenced)
	if got := ClientError(apiEndTxn, 1, kerr.ProducerFenced); got != kerr.InvalidProducerEpoch {
		t.Fatalf("old EndTxn client: %v", got)
	}
	// KIP-360: the zombie re-initializing with its old epoch is fenced too.
	wantErr(t, "zombie init", h.init("t", a.ProducerID, a.ProducerEpoch).Err, kerr.ProducerFenced)
	// The new producer's KIP-360 bump with its own epoch works; a retry of it gets the same.
	c := h.init("t", b.ProducerID, b.ProducerEpoch)
	if c.Err != nil || c.ProducerEpoch != b.ProducerEpoch+1 {
		t.Fatalf("KIP-360 bump: %+v", c)
	}
	if r := h.init("t", b.ProducerID, b.ProducerEpoch); r.Err != nil || r.ProducerEpoch != c.ProducerEpoch {
		t.Fatalf("KIP-360 retry: %+v", r)
	}
}

// TestTimeoutAbort: an Ongoing transaction older than its timeout is aborted by the
// coordinator with a fenced epoch (two bumps with TV2: the fence and the end), once.
func TestTimeoutAbort(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	p := h.init("t", -1, -1)
	h.add("t", p.ProducerID, p.ProducerEpoch, TV2, tpA)
	h.advance(60 * time.Second)
	if ws := h.s.AbortTimedOut(h.now); len(ws) != 0 {
		t.Fatalf("aborted at exactly the timeout: %d writes", len(ws))
	}
	h.advance(time.Millisecond)
	ws := h.s.AbortTimedOut(h.now)
	if len(ws) != 1 {
		t.Fatalf("timed-out writes: %d", len(ws))
	}
	if again := h.s.AbortTimedOut(h.now); len(again) != 0 {
		t.Fatalf("aborted twice while the first abort is pending")
	}
	h.appendOK(ws[0])
	m := h.wantState("t", StatePrepareAbort)
	if m.ProducerEpoch != p.ProducerEpoch+2 || len(h.markers) != 1 || h.markers[0].ProducerEpoch != m.ProducerEpoch {
		t.Fatalf("abort at epoch %d, markers %+v", m.ProducerEpoch, h.markers)
	}
	// While markers are written Kafka 4.x answers a TV2 EndTxn CONCURRENT_TRANSACTIONS first.
	wantErr(t, "commit during the abort", h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2).Err, kerr.ConcurrentTransactions)
	h.writeMarkers()
	h.wantState("t", StateCompleteAbort)
	wantErr(t, "late commit", h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2).Err, kerr.ProducerFenced)
	wantErr(t, "late add", h.add("t", p.ProducerID, p.ProducerEpoch, TV2, tpA).Err, kerr.ProducerFenced)
	if o := h.init("t", -1, -1); o.Err != nil || o.ProducerEpoch != p.ProducerEpoch+3 {
		t.Fatalf("init after the timeout: %+v", o)
	}
}

// TestFenceWriteFailureBumpsOnce: a fence whose write failed is not bumped again by the
// next attempt (the bumped epoch was never handed out), as Kafka's hasFailedEpochFence.
func TestFenceWriteFailureBumpsOnce(t *testing.T) {
	set := DefaultSettings()
	set.TransactionVersion = TV0
	h := newHarness(t, set)
	p := h.init("t", -1, -1)
	h.add("t", p.ProducerID, p.ProducerEpoch, TV0, tpA)
	r := h.s.InitProducerID(h.now, InitProducerIDRequest{TransactionalID: "t", TransactionTimeoutMs: 1000, ProducerID: -1, ProducerEpoch: -1})
	wantErr(t, "failed fence", h.s.Appended(h.now, r.Write, kerr.NotEnoughReplicas).Err, kerr.CoordinatorNotAvailable)
	wantErr(t, "second fence", h.init("t", -1, -1).Err, kerr.ConcurrentTransactions)
	if m := h.wantState("t", StatePrepareAbort); m.ProducerEpoch != p.ProducerEpoch+1 {
		t.Fatalf("epoch %d after a failed and a written fence, want %d", m.ProducerEpoch, p.ProducerEpoch+1)
	}
}

// TestFailoverMidCommit: the coordinator fails after writing PrepareCommit and one of two
// markers; the new coordinator (the partition replayed at the next leader epoch) resends
// the markers with its epoch and completes the commit.
func TestFailoverMidCommit(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	p := h.init("t", -1, -1)
	h.add("t", p.ProducerID, p.ProducerEpoch, TV2, tpA, tpB)
	end := h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2)
	if end.Err != nil || end.ProducerEpoch != p.ProducerEpoch+1 || len(h.markers) != 1 {
		t.Fatalf("end: %+v, markers %+v", end, h.markers)
	}
	if mo := h.s.MarkerWritten(h.markers[0], tpA, nil); mo.Retry || len(mo.Writes) != 0 {
		t.Fatalf("first marker: %+v", mo)
	}
	old := h.markers[0]
	out := h.reload()
	if len(out.Markers) != 1 || !out.Markers[0].Commit || out.Markers[0].CoordinatorEpoch != h.epoch ||
		out.Markers[0].ProducerEpoch != p.ProducerEpoch+1 || !slices.Equal(out.Markers[0].Partitions, []TopicPartition{tpA, tpB}) {
		t.Fatalf("markers after failover: %+v", out.Markers)
	}
	// An answer to the old coordinator's marker is ignored by the new one.
	if mo := h.s.MarkerWritten(old, tpB, nil); mo.Retry || len(mo.Writes) != 0 {
		t.Fatalf("stale marker answer: %+v", mo)
	}
	// The client retrying its EndTxn meanwhile waits; after the markers it gets success.
	wantErr(t, "retry during markers", h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2).Err, kerr.ConcurrentTransactions)
	h.writeMarkers()
	h.wantState("t", StateCompleteCommit)
	if o := h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2); o.Err != nil || o.ProducerEpoch != p.ProducerEpoch+1 {
		t.Fatalf("retry after completion: %+v", o)
	}
}

// TestReplayEqualsWriter: a shard rebuilt from the records another shard wrote holds the
// same metadata (except the last producer epoch, which Kafka does not persist), at record
// version 1 (TV1+) and 0 (which has no KIP-890 fields).
func TestReplayEqualsWriter(t *testing.T) {
	for _, level := range []TransactionVersion{TV0, TV1, TV2} {
		set := DefaultSettings()
		set.TransactionVersion = level
		h := newHarness(t, set)
		tv := normalize(level)
		a := h.init("a", -1, -1)
		h.add("a", a.ProducerID, a.ProducerEpoch, tv, tpA, tpB)
		b := h.init("b", -1, -1)
		h.add("b", b.ProducerID, b.ProducerEpoch, tv, tpA)
		e := h.end("b", b.ProducerID, b.ProducerEpoch, true, tv)
		h.writeMarkers()
		h.add("b", e.ProducerID, e.ProducerEpoch, tv, tpB)
		h.init("c", -1, -1)
		h.run(h.s.AddOffsets(h.now, "a", a.ProducerID, a.ProducerEpoch, "g1", tv))
		d := h.init("d", -1, -1)
		h.add("d", d.ProducerID, d.ProducerEpoch, tv, tpA)
		h.end("d", d.ProducerID, d.ProducerEpoch, false, tv) // PrepareAbort, markers unwritten
		want := h.s.Transactions()
		h.markers = nil
		h.reload()
		got := h.s.Transactions()
		for i := range want {
			want[i].LastProducerEpoch, got[i].LastProducerEpoch = -1, -1
			if level == TV0 {
				want[i].PreviousProducerID, want[i].NextProducerID, want[i].ClientTransactionVersion = -1, -1, TV0
			}
		}
		if !slices.EqualFunc(want, got, metadataEqual) {
			t.Fatalf("level %d:\nwrote  %+v\nloaded %+v", level, want, got)
		}
	}
}

func metadataEqual(a, b Metadata) bool {
	return slices.Equal(a.Partitions, b.Partitions) && reflect.DeepEqual(withoutPartitions(a), withoutPartitions(b))
}

func withoutPartitions(m Metadata) Metadata {
	m.Partitions = nil
	return m
}

// TestEpochExhaustion: at epoch 32766 InitProducerId rotates to a new producer id at epoch 0
// (and a lost answer's KIP-360 retry with the old id gets the same); a TV2 EndTxn at 32766
// rotates to a new id when the transaction completes, and its retry is recognized.
func TestEpochExhaustion(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	old := Metadata{TransactionalID: "t", ProducerID: 77, PreviousProducerID: 77, NextProducerID: -1, ProducerEpoch: 32766,
		TimeoutMs: 60000, State: StateCompleteCommit, StartTimestamp: 1, LastUpdateTimestamp: 1, ClientTransactionVersion: TV0}
	h.log = append(h.log, Record{EncodeKey("t"), EncodeValue(old, TV2)})
	h.reload()
	o := h.init("t", 77, 32766)
	if o.Err != nil || o.ProducerID == 77 || o.ProducerEpoch != 0 {
		t.Fatalf("init at an exhausted epoch: %+v", o)
	}
	if r := h.init("t", 77, 32766); r.Err != nil || r.ProducerID != o.ProducerID || r.ProducerEpoch != 0 {
		t.Fatalf("KIP-360 retry across the rotation: %+v", r)
	}

	// TV2: a transaction at epoch 32766 ends; the completion moves to a new producer id.
	ongoing := old
	ongoing.TransactionalID, ongoing.State, ongoing.Partitions, ongoing.ClientTransactionVersion = "u", StateOngoing, []TopicPartition{tpA}, TV2
	h.log = append(h.log, Record{EncodeKey("u"), EncodeValue(ongoing, TV2)})
	h.reload()
	e := h.end("u", 77, 32766, true, TV2)
	if e.Err != nil || e.ProducerID == 77 || e.ProducerEpoch != 0 {
		t.Fatalf("end at an exhausted epoch: %+v", e)
	}
	if h.markers[0].ProducerID != 77 || h.markers[0].ProducerEpoch != 32767 {
		t.Fatalf("markers of the last transaction: %+v", h.markers[0])
	}
	h.writeMarkers()
	m := h.wantState("u", StateCompleteCommit)
	if m.ProducerID != e.ProducerID || m.ProducerEpoch != 0 || m.PreviousProducerID != 77 {
		t.Fatalf("after the rotation: %+v", m)
	}
	if r := h.end("u", 77, 32766, true, TV2); r.Err != nil || r.ProducerID != e.ProducerID || r.ProducerEpoch != 0 {
		t.Fatalf("EndTxn retry across the rotation: %+v", r)
	}
	// An abort fencing at the maximum epoch does not overflow.
	fenced := ongoing
	fenced.TransactionalID, fenced.ProducerEpoch = "v", 32766
	h.log = append(h.log, Record{EncodeKey("v"), EncodeValue(fenced, TV2)})
	h.reload()
	h.init("v", -1, -1)
	if m := h.wantState("v", StatePrepareAbort); m.ProducerEpoch != 32767 {
		t.Fatalf("fence at the maximum: epoch %d", m.ProducerEpoch)
	}
	h.writeMarkers()
	if r := h.init("v", -1, -1); r.Err != nil || r.ProducerID == 77 || r.ProducerEpoch != 0 {
		t.Fatalf("init after a fence at the maximum: %+v", r)
	}
}

// TestTV2LateEndTxnRefused: with TV2 every transaction ends at a new epoch, so an EndTxn of
// an earlier transaction arriving late cannot end the next one.
func TestTV2LateEndTxnRefused(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	p := h.init("t", -1, -1)
	h.add("t", p.ProducerID, p.ProducerEpoch, TV2, tpA)
	e1 := h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2)
	h.writeMarkers()
	h.add("t", e1.ProducerID, e1.ProducerEpoch, TV2, tpB)
	wantErr(t, "late commit of transaction 1", h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2).Err, kerr.ProducerFenced)
	wantErr(t, "late abort of transaction 1", h.end("t", p.ProducerID, p.ProducerEpoch, false, TV2).Err, kerr.ProducerFenced)
	wantErr(t, "verify at the old epoch", h.s.VerifyPartitions("t", p.ProducerID, p.ProducerEpoch, []TopicPartition{tpB})[tpB], kerr.ProducerFenced)
	e2 := h.end("t", e1.ProducerID, e1.ProducerEpoch, false, TV2)
	if e2.Err != nil || e2.ProducerEpoch != e1.ProducerEpoch+1 {
		t.Fatalf("second end: %+v", e2)
	}
}

// TestIdempotentEndTxnRetry: a repeated EndTxn after completion succeeds without a write
// (same epoch before TV2, the previous epoch with TV2); the opposite result is refused.
func TestIdempotentEndTxnRetry(t *testing.T) {
	for _, tv := range []TransactionVersion{TV0, TV2} {
		h := newHarness(t, DefaultSettings())
		p := h.init("t", -1, -1)
		h.add("t", p.ProducerID, p.ProducerEpoch, tv, tpA)
		e := h.end("t", p.ProducerID, p.ProducerEpoch, true, tv)
		h.writeMarkers()
		n := len(h.log)
		r := h.s.EndTxn(h.now, "t", p.ProducerID, p.ProducerEpoch, true, tv)
		if r.Err != nil || r.Write != nil || r.ProducerEpoch != e.ProducerEpoch || len(h.log) != n {
			t.Fatalf("TV%d retry: %+v", tv, r)
		}
		wantErr(t, "abort after commit", h.end("t", p.ProducerID, p.ProducerEpoch, false, tv).Err, kerr.InvalidTxnState)
	}
}

// TestVerifyOnly checks AddPartitionsToTxn's verifyOnly answers (KIP-890 part 1).
func TestVerifyOnly(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	p := h.init("t", -1, -1)
	both := []TopicPartition{tpA, tpB}
	v := h.s.VerifyPartitions("t", p.ProducerID, p.ProducerEpoch, both)
	wantErr(t, "empty transaction", v[tpA], kerr.TransactionAbortable)
	h.add("t", p.ProducerID, p.ProducerEpoch, TV0, tpA)
	v = h.s.VerifyPartitions("t", p.ProducerID, p.ProducerEpoch, both)
	wantErr(t, "added partition", v[tpA], nil)
	wantErr(t, "other partition", v[tpB], kerr.TransactionAbortable)
	wantErr(t, "other producer", h.s.VerifyPartitions("t", p.ProducerID+1, p.ProducerEpoch, both)[tpA], kerr.InvalidProducerIDMapping)
	wantErr(t, "unknown id", h.s.VerifyPartitions("x", p.ProducerID, p.ProducerEpoch, both)[tpA], kerr.InvalidProducerIDMapping)
	wantErr(t, "empty id", h.s.VerifyPartitions("", p.ProducerID, p.ProducerEpoch, both)[tpA], kerr.InvalidRequest)
	h.end("t", p.ProducerID, p.ProducerEpoch, true, TV0)
	wantErr(t, "committing", h.s.VerifyPartitions("t", p.ProducerID, p.ProducerEpoch, both)[tpA], kerr.ConcurrentTransactions)
	if n := len(h.log); n != 3 {
		t.Fatalf("verification wrote: %d records", n)
	}
}

func TestAddOffsetsAddsTheGroupsPartition(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	p := h.init("t", -1, -1)
	if o := h.run(h.s.AddOffsets(h.now, "t", p.ProducerID, p.ProducerEpoch, "my-group", TV0)); o.Err != nil {
		t.Fatal(o.Err)
	}
	want := TopicPartition{group.OffsetsTopic, group.PartitionFor("my-group", 50)}
	if m := h.wantState("t", StateOngoing); !slices.Equal(m.Partitions, []TopicPartition{want}) || m.StartTimestamp != h.now.UnixMilli() {
		t.Fatalf("partitions %+v start %d", m.Partitions, m.StartTimestamp)
	}
}

// TestExpiration: an idle id is removed with a tombstone after transactional.id.expiration.ms;
// one with a transaction in progress is not.
func TestExpiration(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	h.init("idle", -1, -1)
	p := h.init("busy", -1, -1)
	h.add("busy", p.ProducerID, p.ProducerEpoch, TV0, tpA)
	h.advance(DefaultTransactionalIDExpiration - time.Millisecond)
	if w := h.s.ExpireTransactionalIDs(h.now); w != nil {
		t.Fatalf("expired early: %d records", len(w.Records))
	}
	h.advance(time.Millisecond)
	w := h.s.ExpireTransactionalIDs(h.now)
	if w == nil || len(w.Records) != 1 || w.Records[0].Value != nil {
		t.Fatalf("expiration write: %+v", w)
	}
	wantErr(t, "describe while expiring", h.s.Describe("idle").Err, kerr.TransactionalIDNotFound)
	h.appendOK(w)
	if _, ok := h.s.Transaction("idle"); ok {
		t.Fatal("idle id still there")
	}
	h.reload()
	if _, ok := h.s.Transaction("idle"); ok {
		t.Fatal("idle id back after replaying its tombstone")
	}
	h.wantState("busy", StateOngoing)
	if o := h.init("idle", -1, -1); o.Err != nil || o.ProducerEpoch != 0 || o.ProducerID == p.ProducerID-1 {
		t.Fatalf("expired id reused: %+v", o)
	}
}

func TestDescribeAndList(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	a := h.init("a", -1, -1)
	h.add("a", a.ProducerID, a.ProducerEpoch, TV0, tpB, tpA)
	h.init("b", -1, -1)
	h.advance(10 * time.Second)
	d := h.s.Describe("a")
	if d.Err != nil || d.State != "Ongoing" || d.ProducerID != a.ProducerID || d.TransactionTimeoutMs != 60000 ||
		!slices.Equal(d.Partitions, []TopicPartition{tpA, tpB}) || d.StartTimestamp != h.now.Add(-10*time.Second).UnixMilli() {
		t.Fatalf("describe: %+v", d)
	}
	wantErr(t, "describe unknown", h.s.Describe("zz").Err, kerr.TransactionalIDNotFound)
	names := func(l []Listing) (out []string) {
		for _, x := range l {
			out = append(out, x.TransactionalID)
		}
		return out
	}
	l, unknown, err := h.s.List(h.now, nil, nil, -1)
	if err != nil || !slices.Equal(names(l), []string{"a", "b"}) || unknown != nil {
		t.Fatalf("list all: %v %v %v", l, unknown, err)
	}
	l, unknown, _ = h.s.List(h.now, []string{"Ongoing", "Bogus"}, nil, -1)
	if !slices.Equal(names(l), []string{"a"}) || !slices.Equal(unknown, []string{"Bogus"}) {
		t.Fatalf("list Ongoing: %v %v", l, unknown)
	}
	if l, _, _ = h.s.List(h.now, nil, []int64{a.ProducerID + 1}, -1); !slices.Equal(names(l), []string{"b"}) {
		t.Fatalf("list by producer id: %v", l)
	}
	if l, _, _ = h.s.List(h.now, []string{"Ongoing"}, nil, 10_000); len(l) != 0 {
		t.Fatalf("list running longer than 10 s: %v", l)
	}
	if l, _, _ = h.s.List(h.now, []string{"Ongoing"}, nil, 9_999); !slices.Equal(names(l), []string{"a"}) {
		t.Fatalf("list running longer than 9.999 s: %v", l)
	}
}

// TestAppendFailures: append errors are mapped as Kafka maps them and leave no pending
// transition, except a completion record, which is retried on COORDINATOR_NOT_AVAILABLE.
func TestAppendFailures(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	for _, c := range []struct{ in, want error }{
		{kerr.NotEnoughReplicas, kerr.CoordinatorNotAvailable},
		{kerr.RequestTimedOut, kerr.CoordinatorNotAvailable},
		{kerr.NotLeaderForPartition, kerr.NotCoordinator},
		{kerr.RecordListTooLarge, kerr.UnknownServerError},
		{kerr.InvalidRecord, kerr.InvalidRecord},
	} {
		r := h.s.InitProducerID(h.now, InitProducerIDRequest{TransactionalID: "t", TransactionTimeoutMs: 1000, ProducerID: -1, ProducerEpoch: -1})
		wantErr(t, "append "+c.in.Error(), h.s.Appended(h.now, r.Write, c.in).Err, c.want)
	}
	p := h.init("t", -1, -1)
	if p.Err != nil || p.ProducerEpoch != 0 {
		t.Fatalf("init after failures: %+v", p)
	}
	h.add("t", p.ProducerID, p.ProducerEpoch, TV0, tpA)
	h.end("t", p.ProducerID, p.ProducerEpoch, false, TV0)
	mo := h.s.MarkerWritten(h.markers[0], tpA, nil)
	out := h.s.Appended(h.now, mo.Writes[0], kerr.NotEnoughReplicas)
	if len(out.Writes) != 1 || out.Writes[0] != mo.Writes[0] {
		t.Fatalf("completion not retried: %+v", out)
	}
	h.appendOK(out.Writes[0])
	h.wantState("t", StateCompleteAbort)
}

// TestMarkerErrors classifies partition leaders' answers to markers.
func TestMarkerErrors(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	p := h.init("t", -1, -1)
	h.add("t", p.ProducerID, p.ProducerEpoch, TV2, tpA, tpB)
	h.end("t", p.ProducerID, p.ProducerEpoch, true, TV2)
	req := h.markers[0]
	for _, err := range []error{kerr.NotLeaderForPartition, kerr.NotEnoughReplicas, kerr.RequestTimedOut, kerr.UnknownTopicOrPartition} {
		if mo := h.s.MarkerWritten(req, tpA, err); !mo.Retry {
			t.Fatalf("%v not retried", err)
		}
	}
	if mo := h.s.MarkerWritten(req, tpA, kerr.UnsupportedForMessageFormat); mo.Retry || mo.Writes != nil {
		t.Fatalf("unsupported format: %+v", mo)
	}
	if mo := h.s.MarkerWritten(req, tpB, kerr.InvalidProducerEpoch); mo.Retry || mo.Writes != nil {
		t.Fatalf("invalid epoch: %+v", mo)
	}
	// The markers stopped: the transaction waits in PrepareCommit for a reload.
	if mo := h.s.MarkerWritten(req, tpB, nil); mo.Writes != nil {
		t.Fatalf("markers continued after INVALID_PRODUCER_EPOCH: %+v", mo)
	}
	h.markers = nil
	h.reload()
	h.writeMarkers()
	h.wantState("t", StateCompleteCommit)
}
