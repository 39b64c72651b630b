package storage

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestDiskFull fills the filesystem under a log (the FS seam returns ENOSPC) and checks that
// appends are refused with a *DiskFullError naming the directory, logged once per episode;
// that reads, DeleteRecords and retention work while full; that a close and an open while
// full succeed (the close leaves no clean-shutdown marker, so the open recovers); and that
// appends resume once space returns, with every acknowledged record still readable.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode fullMode
		// deletes: DeleteRecords works while full (the checkpoint is rewritten in place,
		// which needs no new blocks); with every write refused it fails.
		deletes bool
	}{
		{"writes that extend a file fail", fullExtend, true},
		{"every write fails", fullAll, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ffs := &faultFS{}
			tl := &testLog{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(1_700_000_000_000), logs: &logBuffer{}, fs: ffs}
			tl.reopen()
			t.Cleanup(func() { tl.Log.Close() })
			var acked []int64 // base offsets of acknowledged batches
			for i := range 3 {
				res := tl.append(makeBatch(batchSpec{records: 2, valueSize: 10, producerID: 7, baseSeq: int32(2 * i)}))
				acked = append(acked, res.BaseOffset)
			}

			ffs.setFull(tc.mode)
			for range 3 {
				_, err := tl.AppendAsLeader(makeBatch(batchSpec{records: 1, valueSize: 10}), 0)
				var dfe *DiskFullError
				if !errors.As(err, &dfe) || !IsDiskFull(err) {
					t.Fatalf("append on a full disk: %v, want a *DiskFullError", err)
				}
				if dfe.Dir != tl.dir || !strings.HasPrefix(err.Error(), "no space left on device in "+tl.dir+" (free ") {
					t.Fatalf("error %q does not name the directory %s", err, tl.dir)
				}
			}
			if n := strings.Count(tl.logs.String(), "disk full: refusing appends"); n != 1 {
				t.Fatalf("%d disk-full log lines for one episode, want 1:\n%s", n, tl.logs)
			}
			ffs.setFull(notFull)
			res := tl.append(makeBatch(batchSpec{records: 2, valueSize: 10, producerID: 7, baseSeq: 6}))
			acked = append(acked, res.BaseOffset)
			if n := strings.Count(tl.logs.String(), "disk space available again"); n != 1 {
				t.Fatalf("the end of the episode is logged %d times, want 1:\n%s", n, tl.logs)
			}

			ffs.setFull(tc.mode)
			if got := len(tl.readAll()); got != len(acked) {
				t.Fatalf("read %d batches while full, want %d", got, len(acked))
			}
			start := int64(0)
			if _, err := tl.DeleteRecordsBefore(1); tc.deletes != (err == nil) {
				t.Fatalf("DeleteRecords while full: %v (want success: %v)", err, tc.deletes)
			} else if err == nil {
				start = 1
			}

			// A clean shutdown and a start while full.
			if err := tl.Close(); err != nil {
				t.Fatalf("Close while full: %v", err)
			}
			if _, err := os.Stat(tl.path(cleanShutdownFile)); tc.mode == fullAll && err == nil {
				t.Fatal("clean-shutdown marker written although the state files were not")
			}
			tl.reopen()
			if tl.LogStartOffset() != start {
				t.Fatalf("log start %d after a restart while full, want %d", tl.LogStartOffset(), start)
			}
			if got := len(tl.readAll()); got != len(acked) {
				t.Fatalf("read %d batches after a restart while full, want %d", got, len(acked))
			}

			ffs.setFull(notFull)
			res = tl.append(makeBatch(batchSpec{records: 2, valueSize: 10, producerID: 7, baseSeq: 8}))
			acked = append(acked, res.BaseOffset)
			tl.restart()
			var got []int64
			for _, h := range tl.readAll() {
				got = append(got, h.BaseOffset)
			}
			if len(got) != len(acked) || got[len(got)-1] != acked[len(acked)-1] {
				t.Fatalf("batches at %v after space returned, want %v", got, acked)
			}
		})
	}
}
