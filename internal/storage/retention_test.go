package storage

import (
	"errors"
	"testing"
	"time"
)

func TestDeleteRecordsBefore(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	tl := openTest(t, cfg)
	fillLog(tl, 20) // 40 offsets, 3 batches per segment
	segs := len(tl.segmentFiles())
	tests := []struct {
		offset    int64
		wantStart int64
		wantErr   error
	}{
		{41, 0, ErrOffsetOutOfRange},
		{5, 5, nil},
		{3, 5, nil}, // never goes back
		{13, 13, nil},
		{40, 40, nil},
	}
	for _, tt := range tests {
		start, err := tl.DeleteRecordsBefore(tt.offset)
		if !errors.Is(err, tt.wantErr) || start != tt.wantStart {
			t.Fatalf("DeleteRecordsBefore(%d) = %d, %v; want %d, %v", tt.offset, start, err, tt.wantStart, tt.wantErr)
		}
		if tt.wantErr != nil {
			continue
		}
		if _, err := tl.Read(tt.wantStart-1, 100, 40, true); tt.wantStart > 0 && !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read below the log start: %v", err)
		}
		if tt.wantStart < 40 {
			hs := batchesOf(t, tl.read(tt.wantStart, 1<<20))
			if hs[0].BaseOffset > tt.wantStart || hs[0].LastOffset() < tt.wantStart {
				t.Fatalf("first batch read at the log start: %+v", hs[0])
			}
		}
		if tl.restart(); tl.LogStartOffset() != tt.wantStart {
			t.Fatalf("log start after restart = %d, want %d", tl.LogStartOffset(), tt.wantStart)
		}
		tl.crash()
		if tl.LogStartOffset() != tt.wantStart {
			t.Fatalf("log start after crash = %d, want %d", tl.LogStartOffset(), tt.wantStart)
		}
	}
	if n := len(tl.segmentFiles()); n != 1 || n >= segs {
		t.Fatalf("%d segments left of %d", n, segs)
	}
	res := tl.append(makeBatch(batchSpec{}))
	if res.BaseOffset != 40 || res.LogStartOffset != 40 {
		t.Fatalf("append after deleting everything: %+v", res)
	}
}

func TestRetentionByTime(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	cfg.RetentionMs = 10_000
	tl := openTest(t, cfg)
	now := tl.clock.now().UnixMilli()
	// 4 segments of 3 batches; segment k's newest timestamp is now + 1000k.
	for i := 0; i < 12; i++ {
		tl.append(makeBatch(batchSpec{records: 2, valueSize: 50, baseTs: now + int64(i/3)*1000 - int64(2-i%3)}))
	}
	if n := len(tl.segmentFiles()); n != 4 {
		t.Fatalf("%d segments", n)
	}
	steps := []struct {
		advance     time.Duration
		wantDeleted int
		wantStart   int64
		wantFiles   int
	}{
		{9 * time.Second, 0, 0, 4},
		{1001 * time.Millisecond, 1, 6, 3},
		{1 * time.Second, 1, 12, 2},
		// Everything expired: the active segment goes too, after rolling a new empty one.
		{10 * time.Second, 2, 24, 1},
		{10 * time.Second, 0, 24, 1},
	}
	for i, st := range steps {
		tl.clock.advance(st.advance)
		n, err := tl.EnforceRetention()
		if err != nil {
			t.Fatal(err)
		}
		if n != st.wantDeleted || tl.LogStartOffset() != st.wantStart || len(tl.segmentFiles()) != st.wantFiles {
			t.Fatalf("step %d: deleted %d, start %d, files %d; want %d, %d, %d", i, n, tl.LogStartOffset(),
				len(tl.segmentFiles()), st.wantDeleted, st.wantStart, st.wantFiles)
		}
	}
	if tl.LogEndOffset() != 24 || tl.Size() != 0 {
		t.Fatalf("end %d size %d", tl.LogEndOffset(), tl.Size())
	}
	tl.restart()
	if tl.LogStartOffset() != 24 || tl.LogEndOffset() != 24 {
		t.Fatalf("after restart: start %d end %d", tl.LogStartOffset(), tl.LogEndOffset())
	}
}

func TestRetentionBySize(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	tl := openTest(t, cfg)
	fillLog(tl, 12) // 4 segments of 3 batches
	segSize := tl.Size() / 4
	if segSize*4 != tl.Size() || len(tl.segmentFiles()) != 4 {
		t.Fatalf("segments of unequal size: %d bytes in %d", tl.Size(), len(tl.segmentFiles()))
	}
	tests := []struct {
		retention   int64
		wantDeleted int
		wantFiles   int
	}{
		{-1, 0, 4},
		{3*segSize + 1, 0, 4}, // deleting one would leave less than retention.bytes
		{3 * segSize, 1, 3},
		{segSize, 2, 1},
		{0, 1, 1}, // the active segment goes when it alone breaks retention (a new one is rolled)
		{0, 0, 1}, // an empty active segment stays
	}
	for i, tt := range tests {
		cfg.RetentionBytes = tt.retention
		cfg.RetentionMs = -1
		if err := tl.SetConfig(cfg); err != nil {
			t.Fatal(err)
		}
		n, err := tl.EnforceRetention()
		if err != nil {
			t.Fatal(err)
		}
		if n != tt.wantDeleted || len(tl.segmentFiles()) != tt.wantFiles {
			t.Fatalf("step %d: deleted %d files %d, want %d %d", i, n, len(tl.segmentFiles()), tt.wantDeleted, tt.wantFiles)
		}
	}
	if tl.LogStartOffset() != 24 || tl.LogEndOffset() != 24 {
		t.Fatalf("start %d end %d", tl.LogStartOffset(), tl.LogEndOffset())
	}
}

func TestDeletedSegmentsStayReadableForTheDelay(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	cfg.FileDeleteDelayMs = 60_000
	tl := openTest(t, cfg)
	fillLog(tl, 12)
	old := tl.view.Load() // a reader that loaded its view before the deletion
	if _, err := tl.DeleteRecordsBefore(12); err != nil {
		t.Fatal(err)
	}
	b, err := old.read(nil, 0, 1<<20, 24, true)
	if err != nil || len(batchesOf(t, b)) == 0 {
		t.Fatalf("old view read: %v", err)
	}
	tl.restart() // close runs pending deletions; open removes leftovers
	if n := len(tl.segmentFiles()); n != 2 {
		t.Fatalf("%d segments", n)
	}
}

func TestTruncateTo(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	cfg.IndexIntervalBytes = 100
	tests := []struct {
		name    string
		offset  int64
		wantEnd int64
	}{
		{"beyond end is a no-op", 100, 40},
		{"at end is a no-op", 40, 40},
		{"batch boundary in active segment", 38, 38},
		{"inside a batch removes it whole", 37, 36},
		{"into an older segment", 13, 12},
		{"to zero", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := openTest(t, cfg)
			for i := 0; i < 20; i++ {
				if _, err := tl.AppendAsLeader(pb(1, 0, int32(2*i), 2), int32(i/5)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tl.TruncateTo(tt.offset); err != nil {
				t.Fatal(err)
			}
			check := func(stage string) {
				if tl.LogEndOffset() != tt.wantEnd {
					t.Fatalf("%s: end %d, want %d", stage, tl.LogEndOffset(), tt.wantEnd)
				}
				if n := len(tl.readAll()); int64(n) != tt.wantEnd/2 {
					t.Fatalf("%s: %d batches", stage, n)
				}
				wantEpoch := int32((tt.wantEnd/2 - 1) / 5)
				if tt.wantEnd == 0 {
					wantEpoch = -1
				}
				if e, end := tl.EndOffsetForEpoch(wantEpoch); wantEpoch >= 0 && (e != wantEpoch || end != tt.wantEnd) {
					t.Fatalf("%s: EndOffsetForEpoch(%d) = %d, %d", stage, wantEpoch, e, end)
				}
			}
			check("live")
			// Producer state follows the truncation: the next sequence is the one after the
			// last kept batch.
			res, err := tl.AppendAsLeader(pb(1, 0, int32(tt.wantEnd), 2), 9)
			if err != nil || res.BaseOffset != tt.wantEnd {
				t.Fatalf("append after truncation: %+v %v", res, err)
			}
			if err := tl.TruncateTo(tt.wantEnd); err != nil {
				t.Fatal(err)
			}
			tl.restart()
			check("restart")
			tl.crash()
			check("crash")
		})
	}
}

func TestTruncateBelowFirstSegment(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionBytes = 0
	tl := openTest(t, cfg)
	fillLog(tl, 5)
	if n, err := tl.EnforceRetention(); err != nil || n != 1 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	if files := tl.segmentFiles(); len(files) != 1 || files[0] != fileName(10, logSuffix) {
		t.Fatalf("segments %v", files)
	}
	if err := tl.TruncateTo(3); err != nil {
		t.Fatal(err)
	}
	if tl.LogStartOffset() != 3 || tl.LogEndOffset() != 3 {
		t.Fatalf("start %d end %d", tl.LogStartOffset(), tl.LogEndOffset())
	}
	tl.restart()
	if res := tl.append(makeBatch(batchSpec{})); res.BaseOffset != 3 || res.LogStartOffset != 3 {
		t.Fatalf("append after full truncation: %+v", res)
	}
}

func TestLeaderEpochs(t *testing.T) {
	tl := openTest(t, testConfig())
	appendEpoch := func(epoch int32, n int) {
		for i := 0; i < n; i++ {
			if _, err := tl.AppendAsLeader(makeBatch(batchSpec{records: 2}), epoch); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendEpoch(0, 2) // 0-3
	appendEpoch(2, 3) // 4-9
	appendEpoch(5, 1) // 10-11
	tests := []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1},
		{0, 0, 4},
		{1, 0, 4},
		{2, 2, 10},
		{4, 2, 10},
		{5, 5, 12},
		{6, -1, -1},
	}
	check := func(stage string) {
		t.Helper()
		for _, tt := range tests {
			if e, end := tl.EndOffsetForEpoch(tt.epoch); e != tt.wantEpoch || end != tt.wantEnd {
				t.Fatalf("%s: EndOffsetForEpoch(%d) = %d, %d; want %d, %d", stage, tt.epoch, e, end, tt.wantEpoch, tt.wantEnd)
			}
		}
	}
	check("live")
	tl.restart()
	check("restart")
	tl.crash()
	check("crash")
	tl.Close()
	removeFile(t, tl.path(epochCheckpointFile))
	tl.reopen()
	check("rebuilt from batches")
	if _, err := tl.DeleteRecordsBefore(6); err != nil {
		t.Fatal(err)
	}
	// Epochs 0 and 2 started below the new log start: epoch 2 now starts at 6.
	if e, end := tl.EndOffsetForEpoch(0); e != 0 || end != 6 {
		t.Fatalf("EndOffsetForEpoch(0) after DeleteRecords = %d, %d; want 0, 6", e, end)
	}
	if e, end := tl.EndOffsetForEpoch(1); e != 1 || end != 6 {
		t.Fatalf("EndOffsetForEpoch(1) after DeleteRecords = %d, %d; want 1, 6", e, end)
	}
}

func TestAppendAsFollower(t *testing.T) {
	leader := openTest(t, testConfig())
	for i := 0; i < 6; i++ {
		if _, err := leader.AppendAsLeader(pb(7, 0, int32(3*i), 3), int32(1+i/3)); err != nil {
			t.Fatal(err)
		}
	}
	data := leader.read(0, 1<<20)
	follower := openTest(t, testConfig())
	if err := follower.AppendAsFollower(data[:len(data)/2+200]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("partial batches: %v", err)
	}
	if err := follower.AppendAsFollower(data); err != nil {
		t.Fatal(err)
	}
	if err := follower.AppendAsFollower(data); !errors.Is(err, ErrUnexpectedAppendOffset) {
		t.Fatalf("re-append: %v", err)
	}
	if follower.LogEndOffset() != 18 {
		t.Fatalf("follower end %d", follower.LogEndOffset())
	}
	if e, end := follower.EndOffsetForEpoch(1); e != 1 || end != 9 {
		t.Fatalf("follower EndOffsetForEpoch(1) = %d, %d", e, end)
	}
	// The follower knows the producer: if it became leader it would detect duplicates.
	res, err := follower.AppendAsLeader(pb(7, 0, 15, 3), 3)
	if err != nil || !res.Duplicate || res.BaseOffset != 15 {
		t.Fatalf("duplicate on the new leader: %+v %v", res, err)
	}
}
