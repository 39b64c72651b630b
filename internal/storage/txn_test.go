package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"slices"
	"testing"

	"github.com/samsa-io/samsa/internal/records"
)

// txb builds a transactional batch of n records from producer pid.
func txb(pid int64, epoch int16, seq int32, n int) []byte {
	b := pb(pid, epoch, seq, n)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|records.AttrTransactional)
	binary.BigEndian.PutUint32(b[17:], records.ComputeCRC(b))
	return b
}

func marker(pid int64, epoch int16, coordEpoch int32, commit bool) records.EndTxnMarker {
	return records.EndTxnMarker{ProducerID: pid, ProducerEpoch: epoch, CoordinatorEpoch: coordEpoch, Commit: commit}
}

func (tl *testLog) appendMarker(m records.EndTxnMarker) int64 {
	tl.t.Helper()
	res, err := tl.AppendMarker(m, 0)
	if err != nil {
		tl.t.Fatalf("AppendMarker: %v", err)
	}
	return res.BaseOffset
}

// roll starts a new segment at the log end.
func (tl *testLog) roll() {
	tl.t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if err := tl.rollLocked(tl.endLocked()); err != nil {
		tl.t.Fatal(err)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

func (tl *testLog) wantLSO(hw, want int64) {
	tl.t.Helper()
	if got := tl.LastStableOffset(hw); got != want {
		tl.t.Fatalf("LastStableOffset(%d) = %d, want %d", hw, got, want)
	}
}

func (tl *testLog) wantAborted(start, upper int64, want ...AbortedTxn) {
	tl.t.Helper()
	if got := tl.AbortedTransactions(start, upper); !slices.Equal(got, want) {
		tl.t.Fatalf("AbortedTransactions(%d, %d) = %+v, want %+v", start, upper, got, want)
	}
}

func TestTxnLastStableOffsetAndAbortedIndex(t *testing.T) {
	tl := openTest(t, testConfig())
	tl.append(pb(9, 0, 0, 1))  // 0: not transactional
	tl.append(txb(1, 0, 0, 2)) // 1-2: producer 1's transaction
	tl.wantLSO(3, 1)           // stuck at the open transaction's first offset
	tl.wantLSO(1, 1)           // never beyond the high watermark
	tl.append(txb(2, 0, 0, 1)) // 3: producer 2's transaction
	tl.append(txb(1, 0, 2, 1)) // 4: producer 1 again, same transaction
	tl.wantLSO(5, 1)
	if off := tl.appendMarker(marker(1, 0, 0, true)); off != 5 {
		t.Fatalf("commit marker at %d, want 5", off)
	}
	tl.wantLSO(6, 3)                        // producer 2 still open
	tl.appendMarker(marker(2, 0, 0, false)) // 6: abort
	// The marker at 6 is not below a high watermark of 6: the aborted transaction still
	// holds the LSO back (Kafka's unreplicated transactions).
	tl.wantLSO(6, 3)
	tl.wantLSO(7, 7)
	tl.wantAborted(0, 7, AbortedTxn{ProducerID: 2, FirstOffset: 3, LastOffset: 6, LastStableOffset: 7})
	tl.wantAborted(7, 8)
	tl.wantAborted(0, 3)
	if _, err := os.Stat(tl.path(fileName(0, txnIndexSuffix))); err != nil {
		t.Fatalf("txnindex: %v", err)
	}
	// An abort while another transaction is open records that transaction's first offset.
	tl.append(txb(3, 0, 0, 1))              // 7
	tl.append(txb(4, 0, 0, 1))              // 8
	tl.appendMarker(marker(4, 0, 0, false)) // 9
	tl.wantAborted(7, 10, AbortedTxn{ProducerID: 4, FirstOffset: 8, LastOffset: 9, LastStableOffset: 7})
	tl.wantLSO(10, 7)
	// An empty aborted transaction is indexed too, at its marker.
	tl.appendMarker(marker(5, 0, 0, false)) // 10
	tl.wantAborted(10, 11, AbortedTxn{ProducerID: 5, FirstOffset: 10, LastOffset: 10, LastStableOffset: 7})
}

func TestTxnAppendChecks(t *testing.T) {
	tl := openTest(t, testConfig())
	tl.append(txb(1, 3, 0, 1))
	if _, err := tl.AppendAsLeader(pb(1, 3, 1, 1), 0); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("non-transactional batch in a transaction: %v, want ErrInvalidTxnState", err)
	}
	if _, err := tl.AppendMarker(marker(1, 2, 5, true), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("marker of an older epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	tl.appendMarker(marker(1, 3, 5, true))
	tl.append(txb(1, 3, 1, 1))
	if _, err := tl.AppendMarker(marker(1, 3, 4, false), 0); !errors.Is(err, ErrTransactionCoordinatorFenced) {
		t.Fatalf("marker of an older coordinator epoch: %v, want ErrTransactionCoordinatorFenced", err)
	}
	tl.wantLSO(tl.LogEndOffset(), 2)
	tl.appendMarker(marker(1, 3, 5, false))
	tl.wantLSO(tl.LogEndOffset(), tl.LogEndOffset())
	// After the marker, a plain batch of the producer is fine again.
	tl.append(pb(1, 3, 2, 1))
}

// txnScenario leaves producer 1 with an open transaction from offset 1 and producer 2's
// transaction aborted, in two segments.
func txnScenario(tl *testLog) {
	tl.append(pb(9, 0, 0, 1))               // 0
	tl.append(txb(1, 0, 0, 1))              // 1
	tl.append(txb(2, 0, 0, 2))              // 2-3
	tl.appendMarker(marker(2, 0, 0, false)) // 4
	tl.roll()
	tl.append(txb(3, 0, 0, 1))              // 5
	tl.appendMarker(marker(3, 0, 0, false)) // 6
	tl.append(txb(1, 0, 1, 1))              // 7
}

func checkTxnScenario(tl *testLog) {
	tl.t.Helper()
	tl.wantLSO(8, 1)
	tl.wantAborted(0, 8,
		AbortedTxn{ProducerID: 2, FirstOffset: 2, LastOffset: 4, LastStableOffset: 1},
		AbortedTxn{ProducerID: 3, FirstOffset: 5, LastOffset: 6, LastStableOffset: 1})
	// The open transaction is still open: it commits, and then the LSO moves.
	tl.appendMarker(marker(1, 0, 0, true))
	tl.wantLSO(9, 9)
}

func TestTxnSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(tl *testLog)
	}{
		{"clean", func(tl *testLog) { tl.restart() }},
		{"crash", func(tl *testLog) { tl.crash() }},
		{"crash without snapshots or txn indexes", func(tl *testLog) {
			tl.kill()
			for _, f := range tl.segmentFiles() {
				if _, ok := parseFileName(f, snapshotSuffix); ok {
					os.Remove(tl.path(f))
				}
				if _, ok := parseFileName(f, txnIndexSuffix); ok {
					os.Remove(tl.path(f))
				}
			}
			tl.reopen()
		}},
		{"clean with a corrupt txn index", func(tl *testLog) {
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tl.path(fileName(5, txnIndexSuffix)), []byte("torn"), 0o644); err != nil {
				t.Fatal(err)
			}
			tl.reopen()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := openTest(t, testConfig())
			txnScenario(tl)
			tc.stop(tl)
			checkTxnScenario(tl)
		})
	}
}

func TestTxnTruncationReopensTransaction(t *testing.T) {
	tl := openTest(t, testConfig())
	tl.append(txb(1, 0, 0, 2))              // 0-1
	tl.appendMarker(marker(1, 0, 0, false)) // 2
	tl.append(txb(2, 0, 0, 1))              // 3
	tl.appendMarker(marker(2, 0, 0, true))  // 4
	tl.wantLSO(5, 5)
	if err := tl.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	tl.wantLSO(4, 3) // producer 2's transaction is open again
	if err := tl.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	tl.wantLSO(2, 0)
	tl.wantAborted(0, 10)
	fi, err := os.Stat(tl.path(fileName(0, txnIndexSuffix)))
	if err != nil || fi.Size() != 0 {
		t.Fatalf("txnindex after truncation below its marker: %v, %v", fi, err)
	}
	// The re-opened transaction can be aborted again, and survives a crash.
	tl.appendMarker(marker(1, 0, 0, false)) // 2
	tl.crash()
	tl.wantAborted(0, 3, AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 2, LastStableOffset: 3})
	tl.wantLSO(3, 3)
}

func TestTxnFollowerAppend(t *testing.T) {
	leader := openTest(t, testConfig())
	txnScenario(leader)
	follower := openTest(t, testConfig())
	for off := int64(0); off < leader.LogEndOffset(); {
		b, err := leader.Read(off, 1<<20, leader.LogEndOffset(), true)
		if err != nil || len(b) == 0 {
			t.Fatalf("read at %d: %v", off, err)
		}
		if err := follower.AppendAsFollower(b); err != nil {
			t.Fatal(err)
		}
		off = follower.LogEndOffset()
	}
	checkTxnScenario(follower)
	follower.crash()
	follower.wantAborted(0, 9,
		AbortedTxn{ProducerID: 2, FirstOffset: 2, LastOffset: 4, LastStableOffset: 1},
		AbortedTxn{ProducerID: 3, FirstOffset: 5, LastOffset: 6, LastStableOffset: 1})
	follower.wantLSO(9, 9)
}

func TestTxnSegmentDeletionRemovesIndex(t *testing.T) {
	tl := openTest(t, testConfig())
	tl.append(txb(1, 0, 0, 1))
	tl.appendMarker(marker(1, 0, 0, false))
	tl.roll()
	tl.append(pb(9, 0, 0, 1))
	if _, err := tl.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tl.path(fileName(0, txnIndexSuffix))); !os.IsNotExist(err) {
		t.Fatalf("txnindex of a deleted segment: %v", err)
	}
	tl.wantAborted(2, 3)
}

func TestProducerSnapshotV1StillRead(t *testing.T) {
	// A version-1 snapshot: one producer (id 7, epoch 2) with one batch.
	b := make([]byte, snapshotHeaderSize)
	copy(b, snapshotMagicV1)
	binary.BigEndian.PutUint32(b[8:], 1)
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = append(b, 1)
	for _, v := range []uint32{0, 4} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	for _, v := range []uint64{10, 14, 99} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	binary.BigEndian.PutUint32(b[4:], crc32c(b[8:]))
	ps, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	e := ps.producers[7]
	if e == nil || e.epoch != 2 || e.n != 1 || e.batches[0].lastOffset != 14 || e.txnFirst != -1 || e.coordEpoch != -1 {
		t.Fatalf("decoded %+v", e)
	}
	// And a version-2 round trip keeps an open transaction.
	ps.producers[7].txnFirst, ps.producers[7].coordEpoch = 12, 3
	again, err := decodeSnapshot(ps.encodeSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	if e := again.producers[7]; e.txnFirst != 12 || e.coordEpoch != 3 {
		t.Fatalf("round trip %+v", e)
	}
	if first, ok := again.txns.firstOngoing(); !ok || first != 12 {
		t.Fatalf("open transaction after decode: %d %v", first, ok)
	}
}

func TestTxnIndexCarriedAcrossCleaning(t *testing.T) {
	tl := openTest(t, compactConfig())
	ts := int64(1_700_000_000_000)
	tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("t", "aborted", ts)}, producerID: 1, attrs: records.AttrTransactional}))
	abortAt := tl.appendMarker(marker(1, 0, 0, false))
	tl.appendUpdates(40, 4, 3, records.CodecNone, ts) // several segments of overwritten keys
	want := []AbortedTxn{{ProducerID: 1, FirstOffset: 0, LastOffset: abortAt, LastStableOffset: abortAt + 1}}
	tl.wantAborted(0, tl.LogEndOffset(), want...)
	st := tl.clean(0)
	if st.BytesWritten == 0 || st.BytesAfter >= st.BytesBefore {
		t.Fatalf("the pass rewrote nothing: %+v", st)
	}
	tl.wantAborted(0, tl.LogEndOffset(), want...)
	tl.restart()
	tl.wantAborted(0, tl.LogEndOffset(), want...)
	if _, err := os.Stat(tl.path(fileName(0, txnIndexSuffix))); err != nil {
		t.Fatalf("cleaned segment's txnindex: %v", err)
	}
}
