package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

// TestCleanIdempotentProducer checks that cleaning keeps a producer's newest batch (emptied
// when all its records are superseded) with its sequence range, drops its older emptied
// batches, and that the producer state rebuilt from the cleaned log (no snapshot) accepts the
// next sequence, answers a retry of the last batch as a duplicate and refuses a gap.
func TestCleanIdempotentProducer(t *testing.T) {
	for _, codec := range []int8{records.CodecNone, records.CodecLZ4} {
		t.Run(fmt.Sprint("codec ", codec), func(t *testing.T) {
			tl := openTest(t, compactConfig())
			const pid = 42
			// Producer 42: seq 0-1 (a, b), then seq 2-4 (a, b, c).
			tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "p0", 1), keyed("b", "p1", 1)}, producerID: pid, baseSeq: 0, codec: codec}))
			tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "p2", 2), keyed("b", "p3", 2), keyed("c", "p4", 2)}, producerID: pid, baseSeq: 2, codec: codec}))
			// Another writer supersedes all of producer 42's records.
			tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "x", 3), keyed("b", "x", 3), keyed("c", "x", 3)}}))
			rollNow(t, tl)
			tl.clean(0)
			hs, rs := tl.allRecords()
			if fmt.Sprint(rs) != "[5:a=x@3 6:b=x@3 7:c=x@3]" {
				t.Fatalf("records %v", rs)
			}
			if len(hs) != 2 || hs[0].BaseOffset != 2 || hs[0].LastOffsetDelta != 2 || hs[0].RecordCount != 0 ||
				hs[0].ProducerID != pid || hs[0].BaseSequence != 2 || hs[0].Codec() != records.CodecNone {
				t.Fatalf("batches %+v: want the producer's newest batch (2..4, seq 2) kept empty first", hs)
			}
			// Rebuild producer state from the segments alone.
			tl.kill()
			snaps, _ := filepath.Glob(filepath.Join(tl.dir, "*"+snapshotSuffix))
			for _, s := range snaps {
				removeFile(t, s)
			}
			tl.reopen()
			res, err := tl.AppendAsLeader(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "p5", 4)}, producerID: pid, baseSeq: 5}), 0)
			if err != nil || res.Duplicate {
				t.Fatalf("next sequence after the cleaned log: %+v, %v", res, err)
			}
			res, err = tl.AppendAsLeader(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "p5", 4)}, producerID: pid, baseSeq: 5}), 0)
			if err != nil || !res.Duplicate || res.BaseOffset != 8 {
				t.Fatalf("retry of the last batch: %+v, %v; want a duplicate at 8", res, err)
			}
			if _, err := tl.AppendAsLeader(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "p7", 4)}, producerID: pid, baseSeq: 7}), 0); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("a sequence gap: %v, want ErrOutOfOrderSequence", err)
			}
			// Once the producer wrote again, its emptied batch goes at the next pass.
			tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "y", 5)}}))
			rollNow(t, tl)
			tl.clean(0)
			hs, _ = tl.allRecords()
			for _, h := range hs {
				if h.RecordCount == 0 && h.BaseOffset == 2 {
					t.Fatalf("the producer's old empty batch is still there: %+v", hs)
				}
			}
		})
	}
}

// TestCleanSmallOffsetMap cleans with a map smaller than the key set: each pass maps what fits
// and continues from there, and the passes converge to what one large pass gives.
func TestCleanSmallOffsetMap(t *testing.T) {
	build := func() *testLog {
		tl := openTest(t, compactConfig())
		tl.appendUpdates(100, 5, 100, records.CodecSnappy, 1000) // keys k0..k99 five times
		rollNow(t, tl)
		return tl
	}
	big := build()
	_, before := big.allRecords()
	big.clean(0)
	_, want := big.allRecords()

	small := build()
	m := NewOffsetMap(16 * offsetMapSlotSize) // 14 keys per pass
	passes := 0
	for ; passes < 100; passes++ {
		st, err := small.Clean(context.Background(), CleanOptions{UpperBound: math.MaxInt64, OffsetMap: m})
		if err != nil {
			t.Fatal(err)
		}
		if st.MapEntries > m.MaxEntries() {
			t.Fatalf("pass %d mapped %d keys, more than %d", passes, st.MapEntries, m.MaxEntries())
		}
		if !st.MapFull {
			break
		}
	}
	if passes < 5 {
		t.Fatalf("%d passes with a map of %d keys for 100 keys", passes, m.MaxEntries())
	}
	_, got := small.allRecords()
	checkSameLatest(t, before, got)
	if !slices.Equal(latestList(got), latestList(want)) || len(got) != len(want) {
		t.Fatalf("after %d small passes:\n%v\nafter one large pass:\n%v", passes, got, want)
	}
}

// latestList is the latest records of a log, in offset order.
func latestList(rs []readRec) []readRec {
	var out []readRec
	for _, r := range latest(rs) {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b readRec) int { return int(a.offset - b.offset) })
	return out
}

// TestCleanableState checks the dirty ratio, the compaction lags and the upper bound.
func TestCleanableState(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.5
	tl := openTest(t, cfg)
	now := tl.clock.now().UnixMilli()
	// Three sealed segments: records timestamped an hour ago, ten minutes ago, and now.
	for i, age := range []time.Duration{time.Hour, 10 * time.Minute, 0} {
		ts := now - age.Milliseconds()
		tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", fmt.Sprint(i), ts), keyed("b", fmt.Sprint(i), ts)}}))
		rollNow(t, tl)
	}
	tests := []struct {
		name       string
		minLag     time.Duration
		maxLag     time.Duration
		upper      int64
		uncleaned  int64
		cleanable  bool
		forcedByMs int64
	}{
		{name: "everything dirty", upper: math.MaxInt64, uncleaned: 6, cleanable: true},
		{name: "upper bound (high watermark) mid segment", upper: 3, uncleaned: 3, cleanable: true},
		{name: "upper bound at the log start", upper: 0, uncleaned: 0},
		{name: "min lag 5 min keeps the newest segment", minLag: 5 * time.Minute, upper: math.MaxInt64, uncleaned: 4, cleanable: true},
		{name: "min lag 30 min keeps two", minLag: 30 * time.Minute, upper: math.MaxInt64, uncleaned: 2, cleanable: true},
		{name: "min lag 2 h keeps all", minLag: 2 * time.Hour, upper: math.MaxInt64, uncleaned: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.MinCompactionLagMs = tc.minLag.Milliseconds()
			if err := tl.SetConfig(c); err != nil {
				t.Fatal(err)
			}
			st := tl.CleanableState(now, tc.upper)
			if st.FirstDirtyOffset != 0 || st.FirstUncleanableOffset != tc.uncleaned || st.Cleanable != tc.cleanable {
				t.Fatalf("state %+v: want uncleanable from %d, cleanable %v", st, tc.uncleaned, tc.cleanable)
			}
		})
	}
	if err := tl.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	tl.clean(0)
	// Clean now: one dirty segment of new records makes a low ratio...
	tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("c", "1", now)}}))
	rollNow(t, tl)
	st := tl.CleanableState(now, math.MaxInt64)
	if st.FirstDirtyOffset != 6 || st.CleanableBytes != tl.view.Load().sealed[len(tl.view.Load().sealed)-1].size || st.DirtyRatio >= 0.5 || st.Cleanable {
		t.Fatalf("state %+v: want a small dirty ratio, not cleanable", st)
	}
	// ... but max.compaction.lag.ms makes it cleanable once its first batch is older.
	c := cfg
	c.MaxCompactionLagMs = 60_000
	if err := tl.SetConfig(c); err != nil {
		t.Fatal(err)
	}
	if st := tl.CleanableState(now+60_000, math.MaxInt64); st.Cleanable || st.MaxCompactionDelayMs != 0 {
		t.Fatalf("at the lag: %+v", st)
	}
	if st := tl.CleanableState(now+60_500, math.MaxInt64); !st.Cleanable || st.MaxCompactionDelayMs != 500 {
		t.Fatalf("past the lag: %+v", st)
	}
	// A delete-only log is never cleanable, and Clean leaves it alone.
	c.Cleanup = CleanupDelete
	if err := tl.SetConfig(c); err != nil {
		t.Fatal(err)
	}
	if st := tl.CleanableState(now+60_500, math.MaxInt64); st.Cleanable || st.Compact {
		t.Fatalf("delete policy: %+v", st)
	}
	if st := tl.clean(0); st.EndOffset != 6 || st.BytesRead != 0 {
		t.Fatalf("Clean of a delete-only log: %+v", st)
	}
}

// TestCleanerCheckpoint checks that the first dirty offset survives a restart, is lowered by
// a truncation below it, and that a corrupt file only resets it.
func TestCleanerCheckpoint(t *testing.T) {
	tl := openTest(t, compactConfig())
	tl.appendUpdates(10, 2, 3, 0, 1000) // 0..19
	rollNow(t, tl)
	tl.appendUpdates(2, 2, 3, 0, 2000) // 20..23
	rollNow(t, tl)
	tl.appendUpdates(2, 2, 3, 0, 3000) // 24..27, active
	if st := tl.clean(0); st.EndOffset != 24 {
		t.Fatalf("stats %+v", st)
	}
	tl.restart()
	if st := tl.CleanableState(0, math.MaxInt64); st.FirstDirtyOffset != 24 {
		t.Fatalf("after a restart: %+v", st)
	}
	if err := tl.TruncateTo(23); err != nil {
		t.Fatal(err)
	}
	if st := tl.CleanableState(0, math.MaxInt64); st.FirstDirtyOffset != 22 {
		t.Fatalf("after truncating to 23 (batch 22..23 removed): %+v", st)
	}
	tl.crash()
	if st := tl.CleanableState(0, math.MaxInt64); st.FirstDirtyOffset != 22 {
		t.Fatalf("after a crash: %+v", st)
	}
	tl.Close()
	flipByte(t, tl.path(cleanerCheckpointFile), 6)
	tl.reopen()
	if st := tl.CleanableState(0, math.MaxInt64); st.FirstDirtyOffset != 0 {
		t.Fatalf("with a corrupt checkpoint: %+v", st)
	}
	if !strings.Contains(tl.logs.String(), "ignoring corrupt cleaner checkpoint") {
		t.Fatalf("no warning: %s", tl.logs.String())
	}
}

// TestRetentionUnderCleanupPolicy checks that compact alone keeps old segments while delete
// and compact,delete apply retention.ms as before.
func TestRetentionUnderCleanupPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy  CleanupPolicy
		deleted int
	}{{CleanupDelete, 2}, {CleanupCompactDelete, 2}, {CleanupCompact, 0}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			cfg := compactConfig()
			cfg.Cleanup = tc.policy
			cfg.RetentionMs = 1000
			tl := openTest(t, cfg)
			old := tl.clock.now().UnixMilli() - 5000
			for range 2 {
				tl.append(makeKeyedBatch(kbatch{recs: []rec{keyed("a", "1", old)}}))
				rollNow(t, tl)
			}
			n, err := tl.EnforceRetention()
			if err != nil || n != tc.deleted {
				t.Fatalf("EnforceRetention = %d, %v; want %d", n, err, tc.deleted)
			}
		})
	}
}

// TestCleanConfig checks the validation and parsing of the cleaner's settings.
func TestCleanConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want CleanupPolicy
		err  bool
	}{{"delete", CleanupDelete, false}, {"compact", CleanupCompact, false}, {"compact,delete", CleanupCompactDelete, false},
		{"delete, compact", CleanupCompactDelete, false}, {"", 0, true}, {"compact,zap", 0, true}} {
		got, err := ParseCleanupPolicy(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseCleanupPolicy(%q) = %v, %v", tc.in, got, err)
		}
	}
	bad := []func(c *LogConfig){
		func(c *LogConfig) { c.MinCleanableDirtyRatio = 1.5 },
		func(c *LogConfig) { c.MinCleanableDirtyRatio = math.NaN() },
		func(c *LogConfig) { c.MinCompactionLagMs = -1 },
		func(c *LogConfig) { c.MaxCompactionLagMs = -1 },
		func(c *LogConfig) { c.MinCompactionLagMs, c.MaxCompactionLagMs = 10, 5 },
		func(c *LogConfig) { c.DeleteRetentionMs = -1 },
		func(c *LogConfig) { c.Cleanup = 7 },
	}
	for i, f := range bad {
		c := DefaultLogConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: Validate = %v", i, err)
		}
	}
	// The zero values of the new fields (a LogConfig built before they existed) are valid.
	c := DefaultLogConfig()
	c.Cleanup, c.MinCleanableDirtyRatio, c.MinCompactionLagMs, c.MaxCompactionLagMs, c.DeleteRetentionMs = 0, 0, 0, 0, 0
	if err := c.Validate(); err != nil || c.maxCompactionLagMs() != math.MaxInt64 {
		t.Errorf("zero values: %v", err)
	}
}
