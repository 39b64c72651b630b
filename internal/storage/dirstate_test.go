package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// dirLogs is a log directory whose logs share a DirState, as in the broker.
type dirLogs struct {
	t     *testing.T
	root  string
	fs    FS
	state *DirState
	logs  map[string]*Log
}

// newDirLogs loads the DirState of a fresh directory.
func newDirLogs(t *testing.T, fsys FS) *dirLogs {
	root := t.TempDir()
	return &dirLogs{t: t, root: root, fs: fsys, state: LoadDirState(root, fsys, nil), logs: map[string]*Log{}}
}

// open opens the log name with the directory's state.
func (d *dirLogs) open(name string) *Log {
	d.t.Helper()
	l, err := OpenLog(filepath.Join(d.root, name), testConfig(), Options{FS: d.fs, FileCache: NewFileCache(8), DirState: d.state})
	if err != nil {
		d.t.Fatal(err)
	}
	d.logs[name] = l
	d.t.Cleanup(func() { l.Close() })
	return l
}

// appendTo appends a batch of two records to the log name.
func (d *dirLogs) appendTo(name string) {
	d.t.Helper()
	if _, err := d.logs[name].AppendAsLeader(makeBatch(batchSpec{records: 2}), 0); err != nil {
		d.t.Fatal(err)
	}
}

// shutdown closes every open log with CloseLogs and loads the directory's state again, as
// a restart does.
func (d *dirLogs) shutdown() error {
	var logs []*Log
	for _, l := range d.logs {
		logs = append(logs, l)
	}
	err := CloseLogs(logs, 3)
	d.restart()
	return err
}

// crash drops the open logs as a SIGKILL would (nothing written) and loads the state again.
func (d *dirLogs) crash() {
	for _, l := range d.logs {
		(&testLog{t: d.t, Log: l}).kill()
	}
	d.restart()
}

// useFS makes the logs opened from now on, and the state, go through fsys.
func (d *dirLogs) useFS(fsys FS) {
	d.fs = fsys
	d.restart()
}

func (d *dirLogs) restart() {
	d.logs = map[string]*Log{}
	d.state = LoadDirState(d.root, d.fs, nil)
}

// vouched reports which of names the directory's state vouches for.
func (d *dirLogs) vouched(names ...string) []bool {
	var got []bool
	for _, n := range names {
		got = append(got, d.state.Vouches(n))
	}
	return got
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestDirMarkerVouchesForClosedLogs checks the shutdown of logs sharing a DirState: no log
// gets its own marker, the directory's marker names them all and no journal is left; they
// open clean with no recovery, and a clean open and shutdown with no change writes nothing.
func TestDirMarkerVouchesForClosedLogs(t *testing.T) {
	fsys := &writeCountingFS{}
	d := newDirLogs(t, fsys)
	names := []string{"a-0", "a-1", "b-0"}
	for _, n := range names {
		d.open(n)
		d.appendTo(n)
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if exists(t, filepath.Join(d.root, n, cleanShutdownFile)) {
			t.Errorf("%s has its own marker", n)
		}
	}
	if exists(t, filepath.Join(d.root, dirJournalFile)) {
		t.Error("journal left after a clean shutdown")
	}
	if got := d.vouched(append(names, "c-0")...); !slices.Equal(got, []bool{true, true, true, false}) {
		t.Fatalf("vouched after the shutdown: %v", got)
	}
	fsys.take()
	for _, n := range names {
		l := d.open(n)
		if !l.mu.clean || l.LogEndOffset() != 2 {
			t.Errorf("%s: clean %v, end %d; want clean and 2", n, l.mu.clean, l.LogEndOffset())
		}
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	if w := fsys.take(); len(w) != 0 {
		t.Fatalf("a clean open and shutdown with no change wrote: %q", w)
	}
	if got := d.vouched(names...); slices.Contains(got, false) {
		t.Fatalf("vouched after an unchanged restart: %v", got)
	}
}

// TestChangeAfterCleanOpenJournalsFirst checks that the first change to a vouched log
// appends its name to the journal, fsynced, before it touches the log's files; that after a
// crash that log is recovered and the others stay clean; and that the next clean shutdown
// vouches for it again and removes the journal.
func TestChangeAfterCleanOpenJournalsFirst(t *testing.T) {
	fsys := &writeCountingFS{}
	d := newDirLogs(t, fsys)
	for _, n := range []string{"a-0", "a-1", "a-2"} {
		d.open(n)
		d.appendTo(n)
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a-0", "a-1", "a-2"} {
		d.open(n)
	}
	fsys.take()
	d.appendTo("a-1")
	ops := fsys.take()
	journal := filepath.Join(d.root, dirJournalFile)
	want := []string{"create " + journal, "write " + journal, "sync " + journal, "sync " + d.root}
	if len(ops) < len(want) || !slices.Equal(ops[:len(want)], want) {
		t.Fatalf("the first operations of a change to a vouched log are %q, want %q first", ops, want)
	}
	d.appendTo("a-1") // journaled once
	if ops := fsys.take(); slices.ContainsFunc(ops, func(op string) bool { return strings.Contains(op, dirJournalFile) }) {
		t.Fatalf("a second change journaled again: %q", ops)
	}
	d.crash()
	if got := d.vouched("a-0", "a-1", "a-2"); !slices.Equal(got, []bool{true, false, true}) {
		t.Fatalf("vouched after the crash: %v, want the changed log only unvouched", got)
	}
	for _, n := range []string{"a-0", "a-1", "a-2"} {
		l := d.open(n)
		wantEnd := int64(2)
		if n == "a-1" {
			wantEnd = 6
		}
		if l.mu.clean != (n != "a-1") || l.LogEndOffset() != wantEnd {
			t.Errorf("%s after the crash: clean %v, end %d", n, l.mu.clean, l.LogEndOffset())
		}
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := d.vouched("a-0", "a-1", "a-2"); slices.Contains(got, false) {
		t.Fatalf("vouched after a clean shutdown: %v", got)
	}
	if exists(t, journal) {
		t.Fatal("journal left after a clean shutdown")
	}
}

// TestDeletedAndRecreatedVouchedLog checks that a vouched log deleted (Log.Delete) or whose
// directory is removed and then created again is not trusted after a crash, and that a
// vanished log drops out of the next marker.
func TestDeletedAndRecreatedVouchedLog(t *testing.T) {
	d := vouchedDir(t)
	if err := d.open("a-0").Delete(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(d.root, "a-1")); err != nil {
		t.Fatal(err)
	}
	d.open("a-1") // created again, empty
	d.appendTo("a-1")
	d.crash()
	if got := d.vouched("a-0", "a-1", "a-2"); !slices.Equal(got, []bool{false, false, true}) {
		t.Fatalf("vouched after deleting a-0 and recreating a-1: %v", got)
	}
	if l := d.open("a-1"); l.mu.clean || l.LogEndOffset() != 2 {
		t.Fatalf("recreated log after a crash: clean %v, end %d", l.mu.clean, l.LogEndOffset())
	}
	if err := os.RemoveAll(filepath.Join(d.root, "a-2")); err != nil { // gone while never opened
		t.Fatal(err)
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(d.root, dirMarkerFile))
	if err != nil {
		t.Fatal(err)
	}
	names, err := decodeDirMarker(b)
	if err != nil || len(names) != 1 || !names["a-1"] {
		t.Fatalf("marker names %v (%v), want a-1 only", names, err)
	}
}

// fullDirFS fails writes to the files under one directory with ENOSPC.
type fullDirFS struct {
	OSFS
	mu  sync.Mutex
	dir string
}

// fill makes the directory dir full ("": none).
func (f *fullDirFS) fill(dir string) {
	f.mu.Lock()
	f.dir = dir
	f.mu.Unlock()
}

func (f *fullDirFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	full := f.dir != "" && strings.HasPrefix(name, f.dir+string(filepath.Separator))
	f.mu.Unlock()
	if !full {
		return file, nil
	}
	return &fullFile{File: file, name: name}, nil
}

type fullFile struct {
	File
	name string
}

func (f *fullFile) WriteAt([]byte, int64) (int, error) {
	return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
}

// TestFailedCloseNotVouched checks that a log whose state files could not be written at
// shutdown (a full disk) is left out of the marker and recovered, while the others are
// vouched for.
func TestFailedCloseNotVouched(t *testing.T) {
	fsys := &fullDirFS{}
	d := newDirLogs(t, fsys)
	for _, n := range []string{"a-0", "a-1", "a-2"} {
		d.open(n)
		d.appendTo(n)
	}
	fsys.fill(filepath.Join(d.root, "a-1"))
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := d.vouched("a-0", "a-1", "a-2"); !slices.Equal(got, []bool{true, false, true}) {
		t.Fatalf("vouched after a close that could not write its state: %v", got)
	}
	fsys.fill("")
	if l := d.open("a-1"); l.mu.clean || l.LogEndOffset() != 2 {
		t.Fatalf("log whose close failed: clean %v, end %d", l.mu.clean, l.LogEndOffset())
	}
}

// vouchedDir shuts down logs a-0, a-1 and a-2 and returns the directory, with no log open.
func vouchedDir(t *testing.T) *dirLogs {
	d := newDirLogs(t, OSFS{})
	for _, n := range []string{"a-0", "a-1", "a-2"} {
		d.open(n)
		d.appendTo(n)
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTornJournalTail checks that the journal's records are read up to a torn or corrupt
// last one (an append a crash interrupted, whose change never happened).
func TestTornJournalTail(t *testing.T) {
	for _, tt := range []struct {
		name string
		tail func(rec []byte) []byte
	}{
		{"complete", func(rec []byte) []byte { return rec }},
		{"torn", func(rec []byte) []byte { return rec[:len(rec)-3] }},
		{"corrupt", func(rec []byte) []byte { rec[3] ^= 1; return rec }},
		{"zeros", func(rec []byte) []byte { return make([]byte, len(rec)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := vouchedDir(t)
			b := appendJournalRecord([]byte(dirJournalMagic), "a-0")
			b = append(b, tt.tail(appendJournalRecord(nil, "a-1"))...)
			if err := os.WriteFile(filepath.Join(d.root, dirJournalFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			d.restart()
			want := []bool{false, tt.name != "complete", true}
			if got := d.vouched("a-0", "a-1", "a-2"); !slices.Equal(got, want) {
				t.Fatalf("vouched: %v, want %v", got, want)
			}
			// A change to a-2 appends after the torn tail, and is read back.
			d.open("a-2")
			d.appendTo("a-2")
			d.crash()
			want[2] = false
			if got := d.vouched("a-0", "a-1", "a-2"); !slices.Equal(got, want) {
				t.Fatalf("vouched after another append: %v, want %v", got, want)
			}
		})
	}
}

// TestCorruptDirMarkerTrustsNothing checks that a marker failing its CRC, torn, or of an
// unknown version vouches for no log.
func TestCorruptDirMarkerTrustsNothing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		spoil func(b []byte) []byte
	}{
		{"bit flip", func(b []byte) []byte { b[14] ^= 0x10; return b }},
		{"torn", func(b []byte) []byte { return b[:len(b)-5] }},
		{"version", func(b []byte) []byte { b[7] = 2; return b }},
		{"empty", func([]byte) []byte { return nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := vouchedDir(t)
			path := filepath.Join(d.root, dirMarkerFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.spoil(b), 0o644); err != nil {
				t.Fatal(err)
			}
			d.restart()
			if got := d.vouched("a-0", "a-1", "a-2"); slices.Contains(got, true) {
				t.Fatalf("a spoilt marker vouches: %v", got)
			}
			if l := d.open("a-0"); l.mu.clean {
				t.Fatal("a log opened clean under a spoilt marker")
			}
			if err := d.shutdown(); err != nil {
				t.Fatal(err)
			}
			if got := d.vouched("a-0", "a-1", "a-2"); !slices.Equal(got, []bool{true, false, false}) {
				t.Fatalf("vouched after the next shutdown: %v", got)
			}
		})
	}
}

// TestOwnMarkerStillHonoured checks that a log closed by a version writing one marker per log
// (or by Log.Close) opens clean under a DirState, that a change removes that marker, and that
// the next shutdown vouches for it through the directory's marker.
func TestOwnMarkerStillHonoured(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"a-0", "a-1"} {
		l, err := OpenLog(filepath.Join(root, n), testConfig(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AppendAsLeader(makeBatch(batchSpec{records: 2}), 0); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fsys := &writeCountingFS{}
	d := &dirLogs{t: t, root: root, fs: fsys, state: LoadDirState(root, fsys, nil), logs: map[string]*Log{}}
	for _, n := range []string{"a-0", "a-1"} {
		if l := d.open(n); !l.mu.clean || l.LogEndOffset() != 2 {
			t.Fatalf("%s with its own marker: clean %v, end %d", n, l.mu.clean, l.LogEndOffset())
		}
	}
	if w := fsys.take(); len(w) != 0 {
		t.Fatalf("opening logs with their own markers wrote: %q", w)
	}
	d.appendTo("a-1")
	if w := fsys.take(); w[0] != "remove "+filepath.Join(root, "a-1", cleanShutdownFile) || w[1] != "sync "+filepath.Join(root, "a-1") {
		t.Fatalf("the first writes of a change are %q, not the own marker's removal and a directory fsync", w[:2])
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := d.vouched("a-0", "a-1"); slices.Contains(got, false) {
		t.Fatalf("vouched after the shutdown: %v", got)
	}
	for _, n := range []string{"a-0", "a-1"} {
		if l := d.open(n); !l.mu.clean {
			t.Fatalf("%s not clean after the shutdown", n)
		}
	}
}

// TestJournalFailureRemovesMarker checks that when the journal cannot be written the change
// still happens, after the marker is removed (so a crash recovers every log), and that the
// next shutdown writes a marker for the logs the change did not touch.
func TestJournalFailureRemovesMarker(t *testing.T) {
	d := vouchedDir(t)
	fsys := &faultFS{}
	d.useFS(fsys)
	for _, n := range []string{"a-0", "a-1"} {
		d.open(n)
	}
	fsys.set(dirJournalFile, false)
	d.appendTo("a-1")
	if exists(t, filepath.Join(d.root, dirMarkerFile)) {
		t.Fatal("marker still on disk after a failed journal append")
	}
	d.appendTo("a-0") // recorded in memory only
	fsys.set("", false)
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := d.vouched("a-0", "a-1", "a-2"); slices.Contains(got, false) {
		t.Fatalf("vouched after the shutdown: %v", got)
	}
	// A crash after the failed append trusts nothing.
	d.open("a-2")
	fsys.set(dirJournalFile, false)
	d.appendTo("a-2")
	fsys.set("", false)
	d.crash()
	if got := d.vouched("a-0", "a-1", "a-2"); slices.Contains(got, true) {
		t.Fatalf("vouched after a crash that followed a failed journal append: %v", got)
	}
}

// TestConcurrentUnvouch checks that concurrent changes to many vouched logs are all
// journaled (they share appends) and none is lost.
func TestConcurrentUnvouch(t *testing.T) {
	root := t.TempDir()
	names := map[string]bool{}
	for i := range 200 {
		n := fmt.Sprintf("t-%d", i)
		names[n] = true
		if err := os.Mkdir(filepath.Join(root, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, dirMarkerFile), encodeDirMarker(names), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys := &writeCountingFS{}
	d := LoadDirState(root, fsys, nil)
	var wg sync.WaitGroup
	for n := range names {
		wg.Go(func() {
			if err := d.Unvouch(n); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	syncs := 0
	for _, op := range fsys.take() {
		if op == "sync "+filepath.Join(root, dirJournalFile) {
			syncs++
		}
	}
	t.Logf("200 names journaled with %d fsyncs", syncs)
	re := LoadDirState(root, nil, nil)
	for n := range names {
		if re.Vouches(n) {
			t.Fatalf("%s not journaled", n)
		}
	}
}

// TestChangedLogLeftOutOfShutdown checks that a vouched log changed in this run but not
// closed by CloseLogs (its own close failed on a full disk) is not vouched for again.
func TestChangedLogLeftOutOfShutdown(t *testing.T) {
	d := vouchedDir(t)
	fsys := &fullDirFS{}
	d.useFS(fsys)
	d.open("a-0")
	l := d.open("a-1")
	d.appendTo("a-1")
	fsys.fill(filepath.Join(d.root, "a-1"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(t, filepath.Join(d.root, "a-1", cleanShutdownFile)) {
		t.Fatal("a close on a full disk wrote the log's own marker")
	}
	delete(d.logs, "a-1")
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := d.vouched("a-0", "a-1", "a-2"); !slices.Equal(got, []bool{true, false, true}) {
		t.Fatalf("vouched: %v, want the changed log left out", got)
	}
}
