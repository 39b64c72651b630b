package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

// txnWriter appends the keyed batches of one producer, transactional or only idempotent.
type txnWriter struct {
	tl  *testLog
	pid int64
	seq int32
	txn bool
}

// put appends one batch of recs and returns its base offset.
func (w *txnWriter) put(recs ...rec) int64 {
	w.tl.t.Helper()
	var attrs int16
	if w.txn {
		attrs = records.AttrTransactional
	}
	res := w.tl.append(makeKeyedBatch(kbatch{recs: recs, producerID: w.pid, baseSeq: w.seq, attrs: attrs}))
	w.seq += int32(len(recs))
	return res.BaseOffset
}

// end appends the marker ending the producer's transaction and returns its offset.
func (w *txnWriter) end(commit bool) int64 {
	w.tl.t.Helper()
	return w.tl.appendMarker(marker(w.pid, 0, 0, commit))
}

// openTxnCleanTest opens a compacted log whose delete.retention.ms is 1 s, and a writer of
// transactional producer 7 to it.
func openTxnCleanTest(t *testing.T) (*testLog, *txnWriter) {
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	tl := openTest(t, cfg)
	return tl, &txnWriter{tl: tl, pid: 7, txn: true}
}

// plain appends a batch of records of no producer.
func (tl *testLog) plain(recs ...rec) int64 {
	tl.t.Helper()
	return tl.append(makeKeyedBatch(kbatch{recs: recs})).BaseOffset
}

// committedRecords returns what a read_committed consumer reading the log from its start
// sees (the data records outside the aborted transactions), and uncommitted what a
// read_uncommitted one sees (every data record).
func (tl *testLog) committedRecords() (committed, uncommitted []readRec) {
	tl.t.Helper()
	aborted := tl.AbortedTransactions(tl.LogStartOffset(), tl.LogEndOffset())
	tl.eachBatch(func(h records.Header, recs []readRec) {
		if h.IsControl() {
			return
		}
		uncommitted = append(uncommitted, recs...)
		if h.IsTransactional() && slices.ContainsFunc(aborted, func(a AbortedTxn) bool {
			return a.ProducerID == h.ProducerID && a.FirstOffset <= h.BaseOffset && h.BaseOffset <= a.LastOffset
		}) {
			return
		}
		committed = append(committed, recs...)
	})
	return committed, uncommitted
}

// batchAt returns the header of the batch holding offset, ok false when none does.
func (tl *testLog) batchAt(off int64) (h records.Header, ok bool) {
	tl.t.Helper()
	tl.eachBatch(func(bh records.Header, _ []readRec) {
		if bh.BaseOffset <= off && off <= bh.LastOffset() {
			h, ok = bh, true
		}
	})
	return h, ok
}

// keys renders records as "key=value" in offset order.
func keys(rs []readRec) string {
	var b []string
	for _, r := range rs {
		b = append(b, r.key+"="+r.value)
	}
	return strings.Join(b, " ")
}

// TestCleanTxnCommittedCompacted: the records of committed transactions are compacted to the
// latest of each key like any others (the batches keeping their transactional attribute,
// producer id and base sequence); a marker stays while a batch of its transaction remains,
// then gets a delete horizon and goes in the first pass after it.
func TestCleanTxnCommittedCompacted(t *testing.T) {
	tl, w := openTxnCleanTest(t)
	tl.plain(keyed("a", "1", 1), keyed("b", "1", 1))
	first := w.put(keyed("a", "t1", 2), keyed("c", "t1", 2))
	second := w.put(keyed("a", "t2", 3))
	m1 := w.end(true)
	third := w.put(keyed("b", "t3", 4))
	m2 := w.end(true)
	tl.plain(keyed("c", "p", 5))
	rollNow(t, tl)
	_, before := tl.committedRecords()
	tl.clean(0)
	committed, all := tl.committedRecords()
	if got := keys(all); got != "a=t2 b=t3 c=p" {
		t.Fatalf("after cleaning: %s", got)
	}
	checkSameLatest(t, before, committed)
	if _, ok := tl.batchAt(first); ok {
		t.Fatalf("the emptied transactional batch at %d is still there", first)
	}
	if h, ok := tl.batchAt(second); !ok || !h.IsTransactional() || h.ProducerID != 7 || h.BaseSequence != 2 {
		t.Fatalf("the kept transactional batch: %+v %v", h, ok)
	}
	for _, m := range []int64{m1, m2} {
		if h, ok := tl.batchAt(m); !ok || !h.IsControl() || hasDeleteHorizon(&h) {
			t.Fatalf("marker %d while its transaction's data remains: %+v %v", m, h, ok)
		}
	}

	// a=t2 is superseded: its batch goes in the next pass (which still keeps the marker, as
	// it read the batch), and the pass after gives the marker its delete horizon.
	tl.plain(keyed("a", "p2", 6))
	rollNow(t, tl)
	tl.clean(0)
	if _, ok := tl.batchAt(second); ok {
		t.Fatal("the superseded transactional batch is still there")
	}
	if h, ok := tl.batchAt(m1); !ok || hasDeleteHorizon(&h) {
		t.Fatalf("marker %d after the pass that removed its data: %+v %v", m1, h, ok)
	}
	tl.clean(0)
	horizon := tl.clock.now().UnixMilli() + tl.cfg.DeleteRetentionMs
	if h, ok := tl.batchAt(m1); !ok || !hasDeleteHorizon(&h) || h.BaseTimestamp != horizon {
		t.Fatalf("orphan marker %d: %+v %v, want delete horizon %d", m1, h, ok, horizon)
	}
	if st := tl.CleanableState(tl.clock.now().UnixMilli(), math.MaxInt64); st.TombstoneHorizonMs != horizon {
		t.Fatalf("TombstoneHorizonMs %d, want %d", st.TombstoneHorizonMs, horizon)
	}
	tl.clock.advance(999 * time.Millisecond)
	tl.clean(0)
	if _, ok := tl.batchAt(m1); !ok {
		t.Fatal("the marker went before its horizon")
	}
	tl.clock.advance(time.Millisecond)
	tl.clean(0)
	if _, ok := tl.batchAt(m1); ok {
		t.Fatal("the marker is still there after its horizon")
	}
	// The producer's newest batch and the marker after it stay.
	for _, off := range []int64{third, m2} {
		if h, ok := tl.batchAt(off); !ok || hasDeleteHorizon(&h) {
			t.Fatalf("batch %d: %+v %v", off, h, ok)
		}
	}
	if got := keys(committed); got != "a=t2 b=t3 c=p" {
		t.Fatalf("committed: %s", got)
	}
}

// txnMixedLog writes plain, idempotent and transactional producers on the same keys, with
// an aborted transaction whose values are newer than committed ones, over several segments.
func txnMixedLog(t *testing.T, cfg LogConfig) (tl *testLog, abortedTxn AbortedTxn, w7 *txnWriter) {
	tl = openTest(t, cfg)
	w7 = &txnWriter{tl: tl, pid: 7, txn: true}
	w8 := &txnWriter{tl: tl, pid: 8, txn: true}
	idem := &txnWriter{tl: tl, pid: 9}
	tl.plain(keyed("a", "1", 1), keyed("b", "1", 1), keyed("c", "1", 1))
	first := w7.put(keyed("a", "x1", 2), keyed("b", "x1", 2))
	open8 := w8.put(keyed("b", "c8", 3)) // open when 7 aborts: the abort's last stable offset
	rollNow(t, tl)
	idem.put(keyed("d", "i1", 3))
	w7.put(keyed("c", "x1", 3), keyed("d", "x1", 3))
	abortAt := w7.end(false)
	w8.end(true)
	for i := range 3 { // more updates, so that the segments are dirty
		tl.plain(keyed("z", fmt.Sprint(i), 4))
	}
	w7.put(keyed("e", "7", 5))
	w7.end(true)
	tl.plain(keyed("c", "2", 6))
	rollNow(t, tl)
	return tl, AbortedTxn{ProducerID: 7, FirstOffset: first, LastOffset: abortAt, LastStableOffset: open8}, w7
}

// TestCleanTxnAbortedRemoved: the records of an aborted transaction are not mapped (its
// newer values do not remove the older committed ones) and are removed; a read_committed
// reader sees after cleaning what it saw before; the ABORT marker and its index entry stay
// while the aborted batches remain, then go after the marker's delete horizon; a restart
// (clean, after a crash, or replaying without producer snapshots) recovers the same state.
func TestCleanTxnAbortedRemoved(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	tl, ab, w7 := txnMixedLog(t, cfg)
	before, _ := tl.committedRecords()
	if got := keys(latestList(before)); got != "a=1 b=c8 d=i1 z=2 e=7 c=2" {
		t.Fatalf("before cleaning: %s", got)
	}
	tl.wantAborted(0, tl.LogEndOffset(), ab)
	tl.clean(0)
	committed, all := tl.committedRecords()
	checkSameLatest(t, before, committed)
	for _, r := range all {
		if strings.HasPrefix(r.value, "x") {
			t.Fatalf("aborted record %v readable after cleaning: %s", r, keys(all))
		}
	}
	if got := keys(all); got != "a=1 b=c8 d=i1 z=2 e=7 c=2" {
		t.Fatalf("after cleaning: %s", got)
	}
	// The aborted batches were read by the pass: the marker and its entry stay.
	if h, ok := tl.batchAt(ab.LastOffset); !ok || hasDeleteHorizon(&h) {
		t.Fatalf("ABORT marker: %+v %v", h, ok)
	}
	tl.wantAborted(0, tl.LogEndOffset(), ab)

	tl.clean(0) // no aborted batch left: the marker gets its horizon, keeping its entry
	if h, ok := tl.batchAt(ab.LastOffset); !ok || !hasDeleteHorizon(&h) {
		t.Fatalf("ABORT marker without data: %+v %v", h, ok)
	}
	tl.wantAborted(0, tl.LogEndOffset(), ab)
	tl.clock.advance(time.Second)
	tl.clean(0)
	if h, ok := tl.batchAt(ab.LastOffset); ok {
		t.Fatalf("ABORT marker after its horizon: %+v", h)
	}
	tl.wantAborted(0, tl.LogEndOffset())
	if _, err := os.Stat(tl.path(fileName(0, txnIndexSuffix))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cleaned segment's txnindex with no entry: %v", err)
	}
	want, _ := tl.committedRecords()
	checkSameLatest(t, before, want)

	check := func(when string) {
		t.Helper()
		end := tl.LogEndOffset()
		tl.wantLSO(end, end)
		tl.wantAborted(0, end)
		if got, _ := tl.committedRecords(); !slices.Equal(got, want) {
			t.Fatalf("%s: records %s, want %s", when, keys(got), keys(want))
		}
	}
	tl.restart()
	check("after a restart")
	tl.crash()
	check("after a crash")
	// Replaying every segment (no snapshot) finds no transaction left open by the cleaning.
	tl.kill()
	tl.removeSnapshots()
	tl.reopen()
	check("after replaying without snapshots")
	// The producer's sequence survived: its next batch follows, a gap is refused.
	w7.put(keyed("f", "7", 7))
	if _, err := tl.AppendAsLeader(makeKeyedBatch(kbatch{recs: []rec{keyed("f", "g", 7)}, producerID: 7, baseSeq: w7.seq + 5, attrs: records.AttrTransactional}), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a sequence gap after cleaning and restarts: %v, want ErrOutOfOrderSequence", err)
	}
}

// TestCleanTxnOpenTransactionUntouched: cleaning stops at the first offset of an open
// transaction whatever bound the caller passes: its records are neither mapped (a=1 stays)
// nor rewritten; once it commits, its value supersedes the older one.
func TestCleanTxnOpenTransactionUntouched(t *testing.T) {
	tl := openTest(t, compactConfig())
	w := &txnWriter{tl: tl, pid: 7, txn: true}
	tl.plain(keyed("a", "1", 1), keyed("b", "1", 1))
	tl.plain(keyed("b", "2", 1))
	open := w.put(keyed("a", "open", 2))
	tl.plain(keyed("b", "3", 3))
	rollNow(t, tl)
	tl.NoteHighWatermark(tl.LogEndOffset())
	if st := tl.CleanableState(tl.clock.now().UnixMilli(), math.MaxInt64); st.FirstUncleanableOffset != open {
		t.Fatalf("FirstUncleanableOffset %d, want the open transaction's first offset %d", st.FirstUncleanableOffset, open)
	}
	st := tl.clean(0)
	if st.EndOffset != open {
		t.Fatalf("the pass ended at %d, want %d", st.EndOffset, open)
	}
	if _, all := tl.committedRecords(); keys(all) != "a=1 b=2 a=open b=3" {
		t.Fatalf("with the transaction open: %s", keys(all))
	}
	w.end(true)
	rollNow(t, tl)
	tl.clean(0)
	if _, all := tl.committedRecords(); keys(all) != "a=open b=3" {
		t.Fatalf("after the commit: %s", keys(all))
	}
}

// removeSnapshots removes the producer snapshots of a killed log, so that its reopening
// replays the producer state from every segment.
func (tl *testLog) removeSnapshots() {
	tl.t.Helper()
	entries, err := os.ReadDir(tl.dir)
	if err != nil {
		tl.t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".snapshot") {
			if err := os.Remove(tl.path(e.Name())); err != nil {
				tl.t.Fatal(err)
			}
		}
	}
}

// TestCleanTxnProducersLastMarkerKept: a marker that is its producer's last entry (it bumped
// the epoch, no batch since) is kept even without data, as Kafka keeps it, so that a replay
// of the log still fences the older epoch; the producer's older markers go.
func TestCleanTxnProducersLastMarkerKept(t *testing.T) {
	tl, w := openTxnCleanTest(t)
	w.put(keyed("a", "t1", 1))
	m0 := w.end(true)
	m1 := tl.appendMarker(marker(7, 1, 0, false)) // the coordinator's abort bumping the epoch
	tl.plain(keyed("a", "p", 2))
	rollNow(t, tl)
	tl.clean(0)
	tl.clean(0)
	tl.clock.advance(time.Second)
	tl.clean(0)
	if _, ok := tl.batchAt(m0); ok {
		t.Fatalf("the producer's older marker %d is still there", m0)
	}
	if h, ok := tl.batchAt(m1); !ok || hasDeleteHorizon(&h) {
		t.Fatalf("the producer's last marker %d: %+v %v", m1, h, ok)
	}
	tl.kill()
	tl.removeSnapshots()
	tl.reopen()
	if _, err := tl.AppendAsLeader(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "z", 3)}, producerID: 7, attrs: records.AttrTransactional}), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("a batch of the fenced epoch after cleaning and a replay: %v, want ErrInvalidProducerEpoch", err)
	}
}

// TestCleanTxnLastMarkerOfGroupRemoved: when the only batch left of a group's last segment is
// a marker going after its horizon, the cleaned segment still reaches to that segment's end
// with an empty batch of no producer (an empty control batch would not parse as a marker),
// and later passes, reads and a replay of the log go on.
func TestCleanTxnLastMarkerOfGroupRemoved(t *testing.T) {
	tl, w := openTxnCleanTest(t)
	w.put(keyed("a", "t", 1))
	rollNow(t, tl)
	m1 := w.end(true)
	rollNow(t, tl)
	// A segment too large to join the first two in a group.
	w.put(keyed("b", strings.Repeat("b", 3950), 2))
	w.end(true)
	tl.plain(keyed("a", "p", 3))
	rollNow(t, tl)
	tl.clean(0) // a=t goes; its marker stays
	tl.clean(0) // the marker gets its horizon
	tl.clock.advance(time.Second)
	tl.clean(0) // the marker goes
	if h, ok := tl.batchAt(m1); ok && (h.IsControl() || h.IsTransactional() || h.ProducerID >= 0 || h.RecordCount != 0) {
		t.Fatalf("what is left at the marker's offset %d: %+v", m1, h)
	}
	tl.clean(0)
	tl.kill()
	tl.removeSnapshots()
	tl.reopen()
	end := tl.LogEndOffset()
	tl.wantLSO(end, end)
	tl.clean(0)
	if _, all := tl.committedRecords(); keys(all) != "b="+strings.Repeat("b", 3950)+" a=p" {
		t.Fatalf("records: %.40s", keys(all))
	}
}
