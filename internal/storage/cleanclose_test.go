package storage

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// writeCountingFS counts the changes made through it: files opened for writing, writes,
// truncations, syncs, renames and removals.
type writeCountingFS struct {
	OSFS
	mu      sync.Mutex
	writes  []string
	syncAll func(n int) error // the n-th SyncAll's error (from 1); nil: syncfs(2)
	calls   int
}

// SyncAll records the call and fails as syncAll says.
func (f *writeCountingFS) SyncAll(dir string) error {
	f.note("syncall", dir)
	f.mu.Lock()
	f.calls++
	n, fail := f.calls, f.syncAll
	f.mu.Unlock()
	if fail != nil {
		if err := fail(n); err != nil {
			return err
		}
	}
	return f.OSFS.SyncAll(dir)
}

func (f *writeCountingFS) note(op, name string) {
	f.mu.Lock()
	f.writes = append(f.writes, op+" "+name)
	f.mu.Unlock()
}

func (f *writeCountingFS) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.writes
	f.writes = nil
	return w
}

func (f *writeCountingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		f.note("create", name)
	}
	return &writeCountingFile{File: file, fs: f, name: name}, nil
}

func (f *writeCountingFS) Remove(name string) error {
	f.note("remove", name)
	return f.OSFS.Remove(name)
}

func (f *writeCountingFS) Rename(oldpath, newpath string) error {
	f.note("rename", oldpath)
	return f.OSFS.Rename(oldpath, newpath)
}

type writeCountingFile struct {
	File
	fs   *writeCountingFS
	name string
}

func (f *writeCountingFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.note("write", f.name)
	return f.File.WriteAt(b, off)
}

func (f *writeCountingFile) Truncate(size int64) error {
	f.fs.note("truncate", f.name)
	return f.File.Truncate(size)
}

func (f *writeCountingFile) Sync() error {
	f.fs.note("sync", f.name)
	return f.File.Sync()
}

// TestCleanOpenAndCloseWriteNothing checks that a log closed cleanly, opened again, read and
// closed without a change writes nothing and keeps its clean-shutdown marker (so a clean
// shutdown costs in proportion to the logs that changed), and that each kind of change after
// such an open removes the marker before it touches the files, so a crash after it recovers
// the log.
func TestCleanOpenAndCloseWriteNothing(t *testing.T) {
	tests := []struct {
		name   string
		change func(tl *testLog) error // nil: no change
		want   int                     // batches readable after the change and a crash
	}{
		{"reads only", nil, 6},
		{"append", func(tl *testLog) error {
			_, err := tl.AppendAsLeader(makeBatch(batchSpec{records: 1}), 0)
			return err
		}, 7},
		{"DeleteRecords", func(tl *testLog) error {
			_, err := tl.DeleteRecordsBefore(4)
			return err
		}, 2},
		{"truncate", func(tl *testLog) error { return tl.TruncateTo(4) }, 4},
		{"time roll", func(tl *testLog) error {
			tl.clock.advance(2 * time.Hour)
			return tl.MaybeRoll()
		}, 6},
		{"retention", func(tl *testLog) error {
			tl.SetConfig(func() LogConfig { c := tl.cfg; c.RetentionBytes = 1; return c }())
			_, err := tl.EnforceRetention()
			return err
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := &writeCountingFS{}
			cfg := testConfig()
			cfg.SegmentBytes = 250
			cfg.SegmentMs = time.Hour.Milliseconds()
			tl := &testLog{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(1_700_000_000_000), logs: &logBuffer{}, fs: fsys}
			tl.reopen()
			t.Cleanup(func() { tl.Log.Close() })
			for range 6 {
				tl.append(makeBatch(batchSpec{records: 1, valueSize: 60}))
			}
			if len(tl.segmentFiles()) < 2 {
				t.Fatal("the test wants several segments")
			}
			tl.restart()
			if w := fsys.take(); len(w) == 0 {
				t.Fatal("the first close wrote nothing; the seam misses writes")
			}
			tl.restart() // a clean open and close with no change in between
			tl.readAll()
			if w := fsys.take(); len(w) != 0 {
				t.Fatalf("clean open, read and close of an unchanged log wrote: %q", w)
			}
			if _, err := os.Stat(tl.path(cleanShutdownFile)); err != nil {
				t.Fatalf("clean-shutdown marker after an unchanged open: %v", err)
			}
			if tt.change == nil {
				return
			}
			if err := tt.change(tl); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tl.path(cleanShutdownFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("clean-shutdown marker after a change: %v", err)
			}
			if w := fsys.take(); w[0] != "remove "+tl.path(cleanShutdownFile) || w[1] != "sync "+tl.dir {
				t.Fatalf("the first writes of the change are %q, not the marker's removal and a directory fsync", w[:2])
			}
			tl.crash()
			if got := len(tl.readAll()); got != tt.want {
				t.Fatalf("%d batches after the change and a crash, want %d", got, tt.want)
			}
		})
	}
}
