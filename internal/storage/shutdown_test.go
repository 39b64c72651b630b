package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// openShutdownLogs opens n logs under one directory through fsys, each with appended
// batches, and returns them with the operations log cleared.
func openShutdownLogs(t *testing.T, fsys *writeCountingFS, n int) (string, []*Log) {
	t.Helper()
	root := t.TempDir()
	opts := Options{FS: fsys, FileCache: NewFileCache(8)} // fewer descriptors than files: closing reopens
	var logs []*Log
	for i := range n {
		l, err := OpenLog(filepath.Join(root, fmt.Sprintf("t-%d", i)), testConfig(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		for range 3 {
			if _, err := l.AppendAsLeader(makeBatch(batchSpec{records: 2}), 0); err != nil {
				t.Fatal(err)
			}
		}
		logs = append(logs, l)
	}
	fsys.take()
	return root, logs
}

// markers reports which logs have a clean-shutdown marker.
func markers(t *testing.T, logs []*Log) []bool {
	t.Helper()
	var got []bool
	for _, l := range logs {
		_, err := os.Stat(filepath.Join(l.dir, cleanShutdownFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		got = append(got, err == nil)
	}
	return got
}

// TestCloseLogsSyncsEachFilesystemTwice checks the shutdown close of logs without a DirState
// (each writes its own marker): no fsync of any file, one
// SyncAll of the filesystem after every state file is written and before any marker is, and
// one after the markers; and that the logs then open clean.
func TestCloseLogsSyncsEachFilesystemTwice(t *testing.T) {
	fsys := &writeCountingFS{}
	root, logs := openShutdownLogs(t, fsys, 5)
	if err := CloseLogs(logs, 3); err != nil {
		t.Fatal(err)
	}
	ops := fsys.take()
	var syncAlls []int
	for i, op := range ops {
		switch {
		case strings.HasPrefix(op, "sync "):
			t.Errorf("per-file fsync at shutdown: %q", op)
		case op == "syncall "+root:
			syncAlls = append(syncAlls, i)
		case strings.HasPrefix(op, "syncall"):
			t.Errorf("SyncAll of another directory: %q", op)
		}
	}
	if len(syncAlls) != 2 {
		t.Fatalf("%d SyncAll calls, want 2: %q", len(syncAlls), ops)
	}
	first, second := syncAlls[0], syncAlls[1]
	for i, op := range ops {
		isMarker := strings.Contains(op, cleanShutdownFile)
		switch {
		case isMarker && (i < first || i > second):
			t.Errorf("marker operation %q at %d, not between the SyncAll calls at %d and %d", op, i, first, second)
		case !isMarker && i > first && i != second:
			t.Errorf("operation %q at %d after the first SyncAll (at %d) is not the marker's", op, i, first)
		}
	}
	if got := markers(t, logs); slices.Contains(got, false) {
		t.Fatalf("markers after CloseLogs: %v", got)
	}
	for _, l := range logs {
		re, err := OpenLog(l.dir, testConfig(), Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		if !re.mu.clean || re.LogEndOffset() != 6 {
			t.Errorf("reopened %s: clean %v, end %d; want clean and 6", l.dir, re.mu.clean, re.LogEndOffset())
		}
		re.Close()
	}
}

// TestCloseLogsFailedSyncLeavesNoMarker checks that when the first SyncAll fails, no log gets
// a marker (the state files may not be durable) and CloseLogs fails; and that when the
// filesystem cannot be synced whole, every file is fsynced instead.
func TestCloseLogsFailedSyncLeavesNoMarker(t *testing.T) {
	t.Run("sync fails", func(t *testing.T) {
		fsys := &writeCountingFS{syncAll: func(n int) error {
			if n == 1 {
				return &os.PathError{Op: "syncfs", Path: "x", Err: syscall.EIO}
			}
			return nil
		}}
		_, logs := openShutdownLogs(t, fsys, 3)
		err := CloseLogs(logs, 2)
		if got := markers(t, logs); slices.Contains(got, true) {
			t.Fatalf("markers after a failed SyncAll: %v", got)
		}
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("CloseLogs: %v, want EIO", err)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		fsys := &writeCountingFS{syncAll: func(int) error { return errors.ErrUnsupported }}
		_, logs := openShutdownLogs(t, fsys, 3)
		if err := CloseLogs(logs, 2); err != nil {
			t.Fatal(err)
		}
		if got := markers(t, logs); slices.Contains(got, false) {
			t.Fatalf("markers after per-file syncs: %v", got)
		}
		ops := fsys.take()
		for _, l := range logs {
			for _, name := range []string{fileName(0, logSuffix), logCheckpointFile, fileName(6, snapshotSuffix), cleanShutdownFile + tmpSuffix, ""} {
				if !slices.Contains(ops, "sync "+filepath.Join(l.dir, name)) {
					t.Errorf("no fsync of %s: %q", filepath.Join(l.dir, name), ops)
				}
			}
		}
	})
}

// TestCloseNewEmptyLogWritesOnlyTheMarker checks that closing a log created empty, with no
// change since, writes neither a producer snapshot nor the log checkpoint its open wrote,
// only the clean-shutdown marker; that it then opens empty and clean (an open and close
// write nothing), and a produce after that open is recovered after a crash.
func TestCloseNewEmptyLogWritesOnlyTheMarker(t *testing.T) {
	fsys := &writeCountingFS{}
	_, logs := openShutdownLogs(t, fsys, 0)
	dir := filepath.Join(t.TempDir(), "t-0")
	l, err := OpenLog(dir, testConfig(), Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	logs = append(logs, l)
	fsys.take()
	if err := CloseLogs(logs, 1); err != nil {
		t.Fatal(err)
	}
	for _, op := range fsys.take() {
		if !strings.HasPrefix(op, "syncall ") && !strings.Contains(op, cleanShutdownFile) {
			t.Errorf("closing a new empty log: %q", op)
		}
	}
	tl := &testLog{t: t, dir: dir, cfg: testConfig(), clock: newClock(1_700_000_000_000), logs: &logBuffer{}, fs: fsys}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	if tl.LogEndOffset() != 0 {
		t.Fatalf("reopened: end %d, want 0", tl.LogEndOffset())
	}
	// The empty log opens clean: no leader-epoch checkpoint is written for it (it never had
	// one), and a clean close writes nothing, so its next open is clean again.
	tl.restart()
	if w := fsys.take(); len(w) != 0 {
		t.Fatalf("opening and closing a clean empty log wrote: %q", w)
	}
	if _, err := os.Stat(tl.path(cleanShutdownFile)); err != nil {
		t.Fatalf("clean-shutdown marker after a clean open of an empty log: %v", err)
	}
	tl.append(makeBatch(batchSpec{records: 2}))
	tl.crash()
	if got := len(tl.readAll()); got != 1 {
		t.Fatalf("%d batches after a crash, want 1", got)
	}
}

// TestCloseLogsOneMarkerPerDirectory checks the shutdown close of logs sharing a DirState:
// no log writes its own marker, no file of a log is fsynced, one SyncAll of the filesystem
// follows every state file and precedes the directory's marker, which is written atomically
// (temporary file fsynced, renamed, directory fsynced) and names every log.
func TestCloseLogsOneMarkerPerDirectory(t *testing.T) {
	fsys := &writeCountingFS{}
	d := newDirLogs(t, fsys)
	var logs []*Log
	for i := range 5 {
		n := fmt.Sprintf("t-%d", i)
		logs = append(logs, d.open(n))
		d.appendTo(n)
	}
	fsys.take()
	if err := CloseLogs(logs, 3); err != nil {
		t.Fatal(err)
	}
	ops := fsys.take()
	syncAll := slices.Index(ops, "syncall "+d.root)
	if syncAll < 0 || slices.Contains(ops[syncAll+1:], "syncall "+d.root) {
		t.Fatalf("want exactly one SyncAll: %q", ops)
	}
	marker := filepath.Join(d.root, dirMarkerFile)
	wantAfter := []string{"create " + marker + tmpSuffix, "write " + marker + tmpSuffix, "sync " + marker + tmpSuffix, "rename " + marker + tmpSuffix, "sync " + d.root}
	if !slices.Equal(ops[syncAll+1:], wantAfter) {
		t.Fatalf("operations after the SyncAll: %q, want %q", ops[syncAll+1:], wantAfter)
	}
	for _, op := range ops[:syncAll] {
		if strings.HasPrefix(op, "sync ") || strings.Contains(op, cleanShutdownFile) {
			t.Errorf("before the SyncAll: %q", op)
		}
	}
	if got := markers(t, logs); slices.Contains(got, true) {
		t.Fatalf("own markers: %v", got)
	}
	d.restart()
	for i := range 5 {
		n := fmt.Sprintf("t-%d", i)
		if l := d.open(n); !l.mu.clean || l.LogEndOffset() != 2 {
			t.Errorf("%s reopened: clean %v, end %d; want clean and 2", n, l.mu.clean, l.LogEndOffset())
		}
	}
}
