package storage

import (
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

// TestCleanKeepsLatestPerKey cleans a log of 40 keys updated 600 times, with every codec, and
// checks what readers see before and after a restart and a crash recovery.
func TestCleanKeepsLatestPerKey(t *testing.T) {
	codecs := []struct {
		name  string
		codec int8
	}{{"none", records.CodecNone}, {"gzip", records.CodecGzip}, {"snappy", records.CodecSnappy}, {"lz4", records.CodecLZ4}, {"zstd", records.CodecZstd}}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			tl := openTest(t, compactConfig())
			tl.appendUpdates(150, 4, 40, c.codec, 1000)
			_, before := tl.allRecords()
			segsBefore := len(tl.segmentFiles())
			st := tl.clean(0)
			if st.EndOffset != tl.view.Load().active.seg.base || st.MapFull {
				t.Fatalf("stats %+v: want the whole sealed log mapped (active base %d)", st, tl.view.Load().active.seg.base)
			}
			hs, after := tl.allRecords()
			checkSameLatest(t, before, after)
			activeBase := tl.view.Load().active.seg.base
			var sealedBefore []readRec
			for _, r := range before {
				if r.offset < activeBase {
					sealedBefore = append(sealedBefore, r)
				}
			}
			lastSealed := latest(sealedBefore)
			for _, r := range after {
				if r.offset < activeBase && lastSealed[r.key].offset != r.offset {
					t.Errorf("superseded record %v kept in the cleaned segments", r)
				}
			}
			for _, h := range hs {
				if h.Codec() != c.codec && h.RecordCount > 0 {
					t.Errorf("batch at %d has codec %d, want %d", h.BaseOffset, h.Codec(), c.codec)
				}
			}
			if st.RecordsKept >= st.RecordsRead || st.BytesWritten == 0 || st.BytesAfter >= st.BytesBefore {
				t.Errorf("stats %+v", st)
			}
			// The first pass groups segments by their old sizes (full here); the second one
			// merges the small cleaned segments.
			tl.clean(0)
			if n := len(tl.segmentFiles()); n >= segsBefore-2 {
				t.Errorf("%d segments after cleaning twice, %d before: want them merged", n, segsBefore)
			}
			_, after = tl.allRecords()
			checkSameLatest(t, before, after)
			// Every offset reads: a gap gives the next batch.
			for off := int64(0); off < tl.LogEndOffset(); off++ {
				b := tl.read(off, 1)
				if len(b) == 0 {
					b, _ = tl.Read(off, 1, tl.LogEndOffset(), true)
				}
				if hs := batchesOf(t, b); len(hs) == 0 || hs[0].LastOffset() < off {
					t.Fatalf("Read(%d) gives no batch reaching it", off)
				}
			}
			tl.restart()
			_, again := tl.allRecords()
			checkSameLatest(t, before, again)
			tl.crash()
			_, again = tl.allRecords()
			checkSameLatest(t, before, again)
		})
	}
}

// TestCleanGapsReadBack checks Read, ReadRegion and OffsetForTimestamp across the gaps.
func TestCleanGapsReadBack(t *testing.T) {
	tl := openTest(t, compactConfig())
	// k0..k9 written 10 times, one record per batch, timestamp = offset*10.
	for i := range 100 {
		tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed(fmt.Sprintf("k%d", i%10), fmt.Sprintf("v%d", i), int64(i)*10)}}))
	}
	if err := tl.MaybeRoll(); err != nil {
		t.Fatal(err)
	}
	tl.clock.advance(8 * 24 * time.Hour) // older than segment.ms: the next roll seals
	if err := tl.MaybeRoll(); err != nil {
		t.Fatal(err)
	}
	tl.clean(0)
	_, after := tl.allRecords()
	if len(after) != 10 {
		t.Fatalf("%d records after cleaning, want 10: %v", len(after), after)
	}
	for i, r := range after {
		if want := int64(90 + i); r.offset != want {
			t.Fatalf("record %d at offset %d, want %d", i, r.offset, want)
		}
	}
	// An offset in the gap reads from the next record on (after the empty batches that end
	// the groups whose last segment lost all its records).
	firstRecord := func(b []byte) int64 {
		for _, h := range batchesOf(t, b) {
			if h.RecordCount > 0 {
				return h.BaseOffset
			}
		}
		return -1
	}
	off := int64(5)
	for got := int64(-1); got < 0; {
		b := tl.read(off, 1<<20)
		hs := batchesOf(t, b)
		if len(hs) == 0 || hs[0].LastOffset() < off {
			t.Fatalf("Read(%d) gives %v", off, hs)
		}
		if got = firstRecord(b); got >= 0 && got != 90 {
			t.Fatalf("reading from 5 reaches a record at %d, want 90", got)
		}
		off = hs[len(hs)-1].LastOffset() + 1
	}
	r, ok, err := tl.ReadRegion(5, 1<<20, tl.LogEndOffset(), false)
	if err != nil || !ok {
		t.Fatalf("ReadRegion(5): ok=%v err=%v", ok, err)
	}
	buf := make([]byte, r.Len)
	if _, err := r.File.ReadAt(buf, r.Pos); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	r.Release()
	if got := firstRecord(buf[:wholeBatches(buf, math.MaxInt64)]); got != 90 && got != -1 {
		t.Fatalf("ReadRegion(5) reaches a record at %d, want 90", got)
	}
	if hs := batchesOf(t, buf[:wholeBatches(buf, math.MaxInt64)]); len(hs) == 0 || hs[0].LastOffset() < 5 {
		t.Fatalf("ReadRegion(5) gives %v", hs)
	}
	for _, c := range []struct{ ts, off, gotTs int64 }{{0, 90, 900}, {500, 90, 900}, {905, 91, 910}, {990, 99, 990}} {
		off, ts, ok := tl.OffsetForTimestamp(c.ts)
		if !ok || off != c.off || ts != c.gotTs {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d", c.ts, off, ts, ok, c.off, c.gotTs)
		}
	}
	if _, _, ok := tl.OffsetForTimestamp(991); ok {
		t.Errorf("OffsetForTimestamp(991) found a record")
	}
}

// TestCleanTombstones checks that a tombstone stays delete.retention.ms after the pass that
// first kept it (KIP-534's delete horizon, on the fake clock) and goes in the first pass after.
func TestCleanTombstones(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	tl := openTest(t, cfg)
	tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "1", 1), keyed("b", "1", 1), keyed("c", "1", 1)}}))
	tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "", 2), keyed("b", "2", 2)}, codec: records.CodecZstd}))
	rollNow(t, tl)
	now := tl.clock.now().UnixMilli()
	tl.clean(0)
	_, rs := tl.allRecords()
	if got := fmt.Sprint(rs); got != "[2:c=1@1 3:a=<nil>@2 4:b=2@2]" {
		t.Fatalf("after the first pass: %s", got)
	}
	st := tl.CleanableState(now, math.MaxInt64)
	if st.TombstoneHorizonMs != now+1000 || st.Cleanable {
		t.Fatalf("state %+v: want horizon %d, not cleanable yet", st, now+1000)
	}
	tl.clock.advance(999 * time.Millisecond)
	tl.clean(0)
	if _, rs := tl.allRecords(); len(rs) != 3 {
		t.Fatalf("tombstone gone before delete.retention.ms: %v", rs)
	}
	tl.clock.advance(time.Millisecond)
	if st := tl.CleanableState(tl.clock.now().UnixMilli(), math.MaxInt64); !st.Cleanable {
		t.Fatalf("state %+v: want cleanable for the tombstone", st)
	}
	tl.clean(0)
	if _, rs := tl.allRecords(); fmt.Sprint(rs) != "[2:c=1@1 4:b=2@2]" {
		t.Fatalf("after delete.retention.ms: %v", rs)
	}
	if st := tl.CleanableState(tl.clock.now().UnixMilli(), math.MaxInt64); st.TombstoneHorizonMs != -1 {
		t.Fatalf("state %+v: want no tombstone left", st)
	}
}

// rollNow seals the active segment.
func rollNow(t testing.TB, tl *testLog) {
	t.Helper()
	tl.mu.Lock()
	err := tl.rollLocked(tl.endLocked())
	tl.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}
