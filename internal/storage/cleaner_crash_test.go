package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// crashFS is the OS filesystem until it has done limit changes (creating, writing, truncating,
// syncing, renaming or removing); every change after fails with errInjected and does nothing,
// as if the machine had stopped there.
type crashFS struct {
	OSFS
	mu    sync.Mutex
	limit int
	done  int
}

func (c *crashFS) change() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done >= c.limit {
		return errInjected
	}
	c.done++
	return nil
}

// crashed reports whether a change was refused.
func (c *crashFS) crashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done >= c.limit
}

func (c *crashFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		if err := c.change(); err != nil {
			return nil, err
		}
	}
	f, err := c.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &crashFile{File: f, fs: c}, nil
}

func (c *crashFS) Remove(name string) error {
	if err := c.change(); err != nil {
		return err
	}
	return c.OSFS.Remove(name)
}

func (c *crashFS) Rename(from, to string) error {
	if err := c.change(); err != nil {
		return err
	}
	return c.OSFS.Rename(from, to)
}

type crashFile struct {
	File
	fs *crashFS
}

func (f *crashFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.fs.change(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *crashFile) Truncate(size int64) error {
	if err := f.fs.change(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *crashFile) Sync() error {
	if err := f.fs.change(); err != nil {
		return err
	}
	return f.File.Sync()
}

// copyDir copies the files of a log directory.
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCleanCrashAtEveryStep stops the filesystem after each change a cleaning pass makes in
// turn (writing the cleaned files, the renames to .swap and .deleted and to the final names,
// the directory syncs, the checkpoint), then reopens the log as after a crash: it must hold
// the old segments or the cleaned ones, never a mix, with the latest value of every key, and
// clean to the same result afterwards.
func TestCleanCrashAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups string // one group (exact old-or-new check) or several
		segs   int64
		clean  bool // the template was closed cleanly (clean-shutdown marker present)
	}{
		{"one group after a clean close", "one", 64 << 10, true},
		{"one group after a crash", "one", 64 << 10, false},
		{"several groups", "several", 2 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := compactConfig()
			cfg.SegmentBytes = tc.segs
			cfg.FileDeleteDelayMs = 0
			tmpl := openTest(t, cfg)
			for range 4 {
				tmpl.appendUpdates(10, 4, 12, 0, 1000)
				rollNow(t, tmpl)
			}
			tmpl.appendUpdates(2, 4, 12, 0, 5000) // the active segment
			_, before := tmpl.allRecords()
			if tc.clean {
				tmpl.Close()
			} else {
				tmpl.kill()
			}

			// The result of an uninterrupted pass.
			want := cleanCopy(t, tmpl, cfg, math.MaxInt)
			if want.crashed {
				t.Fatal("the reference pass was interrupted")
			}
			checkSameLatest(t, before, want.records)
			steps, olds, news := 0, 0, 0
			for n := 0; ; n++ {
				got := cleanCopy(t, tmpl, cfg, n)
				if !got.crashed {
					steps = n
					break
				}
				checkSameLatest(t, before, got.records)
				switch {
				case slices.Equal(got.records, before):
					olds++
				case slices.Equal(got.records, want.records):
					news++
				}
				if tc.groups == "one" && !slices.Equal(got.records, before) && !slices.Equal(got.records, want.records) {
					t.Fatalf("crash after %d changes: the log is neither the old nor the cleaned one:\n%v", n, got.records)
				}
				if !slices.Equal(got.recleaned, want.records) {
					t.Fatalf("crash after %d changes: cleaning again gives\n%v\nwant\n%v", n, got.recleaned, want.records)
				}
			}
			t.Logf("%d changes: a crash left the old log %d times, the cleaned one %d times", steps, olds, news)
			if steps < 10 || olds == 0 || news == 0 {
				t.Fatalf("%d changes, old after %d crashes, new after %d: the steps are not all covered", steps, olds, news)
			}
		})
	}
}

type cleanCopyResult struct {
	crashed   bool
	records   []readRec // after the crash and a reopen
	recleaned []readRec // after cleaning that again
}

// cleanCopy copies the template log, cleans the copy on a filesystem that stops after limit
// changes, crashes it, reopens it and returns what it reads, then cleans it again.
func cleanCopy(t *testing.T, tmpl *testLog, cfg LogConfig, limit int) cleanCopyResult {
	t.Helper()
	tl := &testLog{t: t, dir: t.TempDir(), cfg: cfg, clock: tmpl.clock, logs: &logBuffer{}}
	copyDir(t, tmpl.dir, tl.dir)
	cfs := &crashFS{limit: math.MaxInt}
	tl.fs, tl.cache = cfs, NewFileCache(64)
	tl.reopen()
	if limit < math.MaxInt {
		cfs.mu.Lock()
		cfs.limit = cfs.done + limit // what the open wrote (a recovery) is not counted
		cfs.mu.Unlock()
	}
	_, err := tl.Clean(context.Background(), CleanOptions{UpperBound: math.MaxInt64, DedupeBufferBytes: 1 << 20})
	res := cleanCopyResult{crashed: cfs.crashed()}
	if err != nil && !res.crashed {
		t.Fatalf("Clean failed without a crash: %v", err)
	}
	if err != nil && !errors.Is(err, errInjected) {
		t.Fatalf("Clean: %v, want the injected error", err)
	}
	tl.fs, tl.cache = nil, NewFileCache(64)
	tl.crash()
	defer tl.Close()
	_, res.records = tl.allRecords()
	leftovers, _ := filepath.Glob(filepath.Join(tl.dir, "*.cleaned"))
	swaps, _ := filepath.Glob(filepath.Join(tl.dir, "*.swap"))
	if len(leftovers)+len(swaps) > 0 {
		t.Fatalf("limit %d: files left after the open: %v %v", limit, leftovers, swaps)
	}
	tl.clean(0)
	_, res.recleaned = tl.allRecords()
	return res
}

// TestCleanLeftoverFiles opens logs with the files a crash leaves at each stage of a swap
// written by hand: a .cleaned segment (dropped), index .swap files without their log (dropped),
// and a .log.swap replacing two old segments, one already renamed to .deleted.
func TestCleanLeftoverFiles(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 64 << 10
	tl := openTest(t, cfg)
	tl.appendUpdates(5, 2, 3, 0, 1000) // offsets 0..9
	rollNow(t, tl)
	tl.appendUpdates(5, 2, 3, 0, 2000) // 10..19
	rollNow(t, tl)
	tl.appendUpdates(1, 2, 3, 0, 3000) // 20..21, active
	_, before := tl.allRecords()
	tl.Close()
	seg := func(off int64, suffix string) string { return filepath.Join(tl.dir, fileName(off, suffix)) }

	// A .cleaned file and index .swap files from a pass that did not commit: dropped.
	writeFile(t, seg(0, logSuffix)+cleanedSuffix, []byte("garbage"))
	writeFile(t, seg(0, indexSuffix)+swapSuffix, []byte("garbage"))
	writeFile(t, seg(10, timeIndexSuffix)+cleanedSuffix, nil)
	tl.reopen()
	_, got := tl.allRecords()
	if !slices.Equal(got, before) {
		t.Fatalf("after dropping uncommitted files: %v, want %v", got, before)
	}
	for _, p := range []string{seg(0, logSuffix) + cleanedSuffix, seg(0, indexSuffix) + swapSuffix, seg(10, timeIndexSuffix) + cleanedSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", filepath.Base(p))
		}
	}

	// A committed swap: segment 0 cleaned with segment 10 into one, the old 0 already renamed.
	tl.clean(0)
	_, want := tl.allRecords()
	cleaned, err := os.ReadFile(seg(0, logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	tl.Close()
	if fmt.Sprint(tl.segmentFiles()) != "["+fileName(0, logSuffix)+" "+fileName(20, logSuffix)+"]" {
		t.Fatalf("segments after cleaning: %v", tl.segmentFiles())
	}
	// Put the state of a crash back: the old segments 0 and 10, the new one as .swap.
	tmpl := openTest(t, cfg)
	tmpl.appendUpdates(5, 2, 3, 0, 1000)
	rollNow(t, tmpl)
	tmpl.appendUpdates(5, 2, 3, 0, 2000)
	rollNow(t, tmpl)
	tmpl.appendUpdates(1, 2, 3, 0, 3000)
	tmpl.kill()
	writeFile(t, filepath.Join(tmpl.dir, fileName(0, logSuffix)+swapSuffix), cleaned)
	if err := os.Rename(filepath.Join(tmpl.dir, fileName(0, logSuffix)), filepath.Join(tmpl.dir, fileName(0, logSuffix)+deletedSuffix)); err != nil {
		t.Fatal(err)
	}
	tmpl.reopen()
	_, got = tmpl.allRecords()
	if !slices.Equal(got, want) {
		t.Fatalf("after completing the swap: %v, want %v", got, want)
	}
	if fmt.Sprint(tmpl.segmentFiles()) != "["+fileName(0, logSuffix)+" "+fileName(20, logSuffix)+"]" {
		t.Fatalf("segments after completing the swap: %v", tmpl.segmentFiles())
	}
	if !strings.Contains(tmpl.logs.String(), "completed a log cleaning interrupted by a crash") {
		t.Errorf("no warning logged: %s", tmpl.logs.String())
	}
}
