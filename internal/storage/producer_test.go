package storage

import (
	"errors"
	"math"
	"testing"
)

// pb builds a batch of n records from producer pid.
func pb(pid int64, epoch int16, seq int32, n int) []byte {
	return makeBatch(batchSpec{records: n, producerID: pid, epoch: epoch, baseSeq: seq})
}

func TestIdempotentProducer(t *testing.T) {
	type step struct {
		batch      []byte
		wantErr    error
		wantDup    bool
		wantOffset [2]int64 // base, last (for successes and duplicates)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{batch: pb(1, 0, 0, 2), wantOffset: [2]int64{0, 1}},
			{batch: pb(1, 0, 2, 3), wantOffset: [2]int64{2, 4}},
			{batch: pb(1, 0, 5, 1), wantOffset: [2]int64{5, 5}},
		}},
		{"duplicate of last", []step{
			{batch: pb(1, 0, 0, 2), wantOffset: [2]int64{0, 1}},
			{batch: pb(1, 0, 0, 2), wantDup: true, wantOffset: [2]int64{0, 1}},
			{batch: pb(1, 0, 2, 1), wantOffset: [2]int64{2, 2}},
		}},
		{"duplicate of one of the last five", []step{
			{batch: pb(1, 0, 0, 1), wantOffset: [2]int64{0, 0}},
			{batch: pb(1, 0, 1, 1), wantOffset: [2]int64{1, 1}},
			{batch: pb(1, 0, 2, 1), wantOffset: [2]int64{2, 2}},
			{batch: pb(1, 0, 3, 1), wantOffset: [2]int64{3, 3}},
			{batch: pb(1, 0, 4, 1), wantOffset: [2]int64{4, 4}},
			{batch: pb(1, 0, 1, 1), wantDup: true, wantOffset: [2]int64{1, 1}},
			{batch: pb(1, 0, 5, 1), wantOffset: [2]int64{5, 5}},
			{batch: pb(1, 0, 0, 1), wantErr: ErrOutOfOrderSequence}, // fell out of the cache
		}},
		{"gap", []step{
			{batch: pb(1, 0, 0, 2), wantOffset: [2]int64{0, 1}},
			{batch: pb(1, 0, 3, 1), wantErr: ErrOutOfOrderSequence},
		}},
		{"overlap that is not a duplicate", []step{
			{batch: pb(1, 0, 0, 3), wantOffset: [2]int64{0, 2}},
			{batch: pb(1, 0, 1, 2), wantErr: ErrOutOfOrderSequence},
		}},
		{"fenced", []step{
			{batch: pb(1, 3, 0, 1), wantOffset: [2]int64{0, 0}},
			{batch: pb(1, 2, 1, 1), wantErr: ErrInvalidProducerEpoch},
		}},
		{"new epoch starts at zero", []step{
			{batch: pb(1, 0, 0, 3), wantOffset: [2]int64{0, 2}},
			{batch: pb(1, 1, 0, 1), wantOffset: [2]int64{3, 3}},
			{batch: pb(1, 0, 3, 1), wantErr: ErrInvalidProducerEpoch},
			{batch: pb(1, 1, 1, 1), wantOffset: [2]int64{4, 4}},
		}},
		{"new epoch not at zero", []step{
			{batch: pb(1, 0, 0, 3), wantOffset: [2]int64{0, 2}},
			{batch: pb(1, 1, 5, 1), wantErr: ErrOutOfOrderSequence},
		}},
		{"unknown producer with any sequence", []step{
			{batch: pb(9, 4, 42, 2), wantOffset: [2]int64{0, 1}},
			{batch: pb(9, 4, 44, 1), wantOffset: [2]int64{2, 2}},
			{batch: pb(9, 4, 42, 2), wantDup: true, wantOffset: [2]int64{0, 1}},
		}},
		{"producers are independent", []step{
			{batch: pb(1, 0, 0, 1), wantOffset: [2]int64{0, 0}},
			{batch: pb(2, 0, 0, 1), wantOffset: [2]int64{1, 1}},
			{batch: pb(1, 0, 1, 1), wantOffset: [2]int64{2, 2}},
			{batch: pb(2, 0, 0, 1), wantDup: true, wantOffset: [2]int64{1, 1}},
		}},
		{"sequence wraps", []step{
			{batch: pb(1, 0, math.MaxInt32-1, 2), wantOffset: [2]int64{0, 1}},
			{batch: pb(1, 0, 0, 1), wantOffset: [2]int64{2, 2}},
		}},
		{"non-idempotent batches are not checked", []step{
			{batch: makeBatch(batchSpec{records: 2}), wantOffset: [2]int64{0, 1}},
			{batch: makeBatch(batchSpec{records: 2}), wantOffset: [2]int64{2, 3}},
		}},
		{"several batches of one producer in one append", []step{
			{batch: concat(pb(1, 0, 0, 2), pb(1, 0, 2, 2)), wantOffset: [2]int64{0, 3}},
			{batch: concat(pb(1, 0, 4, 1), pb(1, 0, 6, 1)), wantErr: ErrOutOfOrderSequence},
			{batch: pb(1, 0, 4, 1), wantOffset: [2]int64{4, 4}},
		}},
	}
	for _, tt := range tests {
		for _, restart := range []string{"none", "clean", "crash"} {
			t.Run(tt.name+"/restart="+restart, func(t *testing.T) {
				tl := openTest(t, testConfig())
				for i, st := range tt.steps {
					switch {
					case restart == "clean" && i > 0:
						tl.restart()
					case restart == "crash" && i > 0:
						tl.crash()
					}
					end := tl.LogEndOffset()
					res, err := tl.AppendAsLeader(st.batch, 0)
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: err = %v, want %v", i, err, st.wantErr)
					}
					if err != nil {
						if tl.LogEndOffset() != end {
							t.Fatalf("step %d: failed append moved the log end", i)
						}
						continue
					}
					if res.Duplicate != st.wantDup || res.BaseOffset != st.wantOffset[0] || res.LastOffset != st.wantOffset[1] {
						t.Fatalf("step %d: got %+v, want dup=%v offsets %v", i, res, st.wantDup, st.wantOffset)
					}
					if st.wantDup && tl.LogEndOffset() != end {
						t.Fatalf("step %d: duplicate was appended", i)
					}
				}
			})
		}
	}
}

func TestProducerStateAcrossRollsAndSnapshots(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	tl := openTest(t, cfg)
	seq := map[int64]int32{}
	for i := 0; i < 60; i++ {
		pid := int64(1 + i%3)
		tl.append(pb(pid, 0, seq[pid], 2))
		seq[pid] += 2
	}
	if len(tl.segmentFiles()) < 3 {
		t.Fatal("expected several segments")
	}
	// Kill, and also lose all snapshots: state is rebuilt from the batch headers alone.
	for _, mode := range []string{"crash", "crash-no-snapshots", "clean"} {
		switch mode {
		case "crash":
			tl.crash()
		case "crash-no-snapshots":
			offs, _ := tl.listSnapshots()
			for _, off := range offs {
				if err := tl.fs0().Remove(tl.snapshotPath(off)); err != nil {
					t.Fatal(err)
				}
			}
			tl.crash()
		case "clean":
			tl.restart()
		}
		for pid := int64(1); pid <= 3; pid++ {
			res, err := tl.AppendAsLeader(pb(pid, 0, seq[pid]-2, 2), 0)
			if err != nil || !res.Duplicate {
				t.Fatalf("%s: producer %d retry: %+v, %v", mode, pid, res, err)
			}
			if _, err := tl.AppendAsLeader(pb(pid, 0, seq[pid]+1, 1), 0); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("%s: producer %d gap: %v", mode, pid, err)
			}
			tl.append(pb(pid, 0, seq[pid], 2))
			seq[pid] += 2
		}
	}
}

// fs0 returns the log's filesystem.
func (tl *testLog) fs0() FS { return tl.Log.fs }

func TestProducerSnapshotDecode(t *testing.T) {
	ps := newProducerStates()
	for pid := int64(1); pid <= 3; pid++ {
		e := &producerEntry{epoch: int16(pid)}
		for i := 0; i < int(pid)+3; i++ {
			e.add(batchMeta{firstSeq: int32(i), lastSeq: int32(i), baseOffset: int64(i), lastOffset: int64(i), timestamp: 5})
		}
		ps.producers[pid] = e
	}
	b := ps.encodeSnapshot()
	got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	for pid, e := range ps.producers {
		if g := got.producers[pid]; g == nil || *g != *e {
			t.Fatalf("producer %d: got %+v, want %+v", pid, g, e)
		}
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := decodeSnapshot(c); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := decodeSnapshot(b[:n]); err == nil {
			t.Fatalf("truncation to %d bytes went unnoticed", n)
		}
	}
}
