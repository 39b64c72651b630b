package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openFilesUnder counts this process's descriptors open on files under dir.
func openFilesUnder(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir) {
			n++
		}
	}
	return n
}

// TestFileCacheBoundsDescriptors runs many multi-segment logs through a small cache: the
// descriptors held stay within its capacity, and every log reads back whole after appends
// spread over all of them, a clean restart and a crash.
func TestFileCacheBoundsDescriptors(t *testing.T) {
	const logs, capacity = 30, 12
	tests := []struct {
		name    string
		restart func(*testLog)
	}{
		{"clean restart", (*testLog).restart},
		{"crash", (*testLog).crash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			cache := NewFileCache(capacity)
			cfg := testConfig()
			cfg.SegmentBytes = 2048
			cfg.IndexIntervalBytes = 100
			var tls []*testLog
			for i := range logs {
				tl := &testLog{t: t, dir: filepath.Join(root, fmt.Sprint(i)), cfg: cfg, clock: newClock(1_700_000_000_000), logs: &logBuffer{}, cache: cache}
				tl.reopen()
				t.Cleanup(func() { tl.Log.Close() })
				tls = append(tls, tl)
			}
			const rounds = 20
			for round := range rounds {
				for _, tl := range tls {
					tl.append(makeBatch(batchSpec{records: 2, valueSize: 100 + round}))
				}
			}
			check := func(when string) {
				t.Helper()
				for i, tl := range tls {
					hs := tl.readAll()
					if len(hs) != rounds || hs[rounds-1].LastOffset() != 2*rounds-1 {
						t.Fatalf("%s: log %d reads %d batches, want %d", when, i, len(hs), rounds)
					}
					if len(tl.segmentFiles()) < 2 {
						t.Fatalf("log %d has one segment; the test wants several", i)
					}
				}
				for _, tl := range tls {
					// A background flush pins the descriptor it syncs, which may exceed the
					// (soft) bound while it runs; count once they are done.
					tl.background.Wait()
				}
				if n := openFilesUnder(t, root); n > capacity {
					t.Fatalf("%s: %d descriptors open under the logs, cache capacity %d", when, n, capacity)
				}
				if n := cache.Open(); n > capacity {
					t.Fatalf("%s: cache reports %d open, capacity %d", when, n, capacity)
				}
			}
			check("after appends")
			for _, tl := range tls {
				tt.restart(tl)
			}
			check("after restart")
		})
	}
}

// TestFileCachePins checks that a sendfile region keeps its descriptor open under eviction
// pressure until released, that a renamed file reopens under its new name, and that a closed
// handle answers os.ErrClosed (which readers take as "segment deleted, load the new view").
func TestFileCachePins(t *testing.T) {
	dir := t.TempDir()
	cache := NewFileCache(8)
	fsys := cache.wrap(OSFS{})
	open := func(name string) File {
		f, err := fsys.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(name), 0); err != nil {
			t.Fatal(err)
		}
		return f
	}
	pinned := open("pinned")
	osf, release, ok, err := pinOS(pinned)
	if err != nil || !ok {
		t.Fatalf("pinOS: %v %v", ok, err)
	}
	renamed := open("renamed")
	if err := fsys.Rename(filepath.Join(dir, "renamed"), filepath.Join(dir, "renamed.deleted")); err != nil {
		t.Fatal(err)
	}
	var others []File
	for i := range 40 { // evicts everything unpinned
		others = append(others, open(fmt.Sprint("f", i)))
	}
	buf := make([]byte, 6)
	if _, err := osf.ReadAt(buf, 0); err != nil || string(buf) != "pinned" {
		t.Fatalf("pinned region file after eviction pressure: %q, %v", buf, err)
	}
	release()
	for _, f := range others {
		if _, err := f.ReadAt(buf[:2], 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := osf.ReadAt(buf, 0); err == nil {
		t.Fatal("a released, least recently used descriptor is still open beyond the capacity")
	}
	buf = make([]byte, 7)
	if _, err := renamed.ReadAt(buf, 0); err != nil || string(buf) != "renamed" {
		t.Fatalf("renamed file reopened: %q, %v", buf, err)
	}
	if err := renamed.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := renamed.ReadAt(buf, 0); !isClosedFile(err) {
		t.Fatalf("read after Close: %v, want os.ErrClosed", err)
	}
	if n := cache.Open(); n > cache.Capacity() {
		t.Fatalf("%d open, capacity %d", n, cache.Capacity())
	}
}

// TestFileCacheReplacedFileDoesNotReopen: a handle whose descriptor the cache closed, and
// whose name now leads to another file (a rename replaced it, as a second cleaning of a log's
// first segments renames the old segment onto the first cleaning's .deleted name) or to none
// (removed), answers os.ErrClosed instead of reopening the name and reading the wrong file.
func TestFileCacheReplacedFileDoesNotReopen(t *testing.T) {
	dir := t.TempDir()
	cache := NewFileCache(8)
	fsys := cache.wrap(OSFS{})
	path := func(name string) string { return filepath.Join(dir, name) }
	open := func(name, content string) File {
		f, err := fsys.OpenFile(path(name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(content), 0); err != nil {
			t.Fatal(err)
		}
		return f
	}
	evictAll := func() {
		for i := range 20 {
			f := open(fmt.Sprint("filler", i), "x")
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 20 {
			open(fmt.Sprint("other", i), "x")
		}
	}
	first := open("0.log", "first")
	if err := fsys.Rename(path("0.log"), path("0.log.deleted")); err != nil {
		t.Fatal(err)
	}
	second := open("0.log", "second")
	removed := open("gone.log", "removed")
	evictAll()
	if err := fsys.Rename(path("0.log"), path("0.log.deleted")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove(path("gone.log")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if n, err := first.ReadAt(buf, 0); !isClosedFile(err) {
		t.Fatalf("the replaced file's handle read %q, %v; want os.ErrClosed", buf[:n], err)
	}
	if n, err := removed.ReadAt(buf, 0); !isClosedFile(err) {
		t.Fatalf("the removed file's handle read %q, %v; want os.ErrClosed", buf[:n], err)
	}
	if _, err := second.ReadAt(buf, 0); err != nil || string(buf) != "second" {
		t.Fatalf("the renamed file's handle read %q, %v", buf, err)
	}
}
