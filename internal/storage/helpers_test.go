package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

// batchSpec describes a test batch.
type batchSpec struct {
	records    int
	valueSize  int
	baseTs     int64 // timestamp of the first record
	tsStep     int64 // added per record
	producerID int64 // 0 means none (-1 on the wire); use pid() for real ids
	epoch      int16
	baseSeq    int32
	codec      int8 // compression attribute
	compress   bool // really compress the records with codec (else they are opaque bytes)
}

// makeBatch builds a valid uncompressed (or fake-compressed) v2 batch.
func makeBatch(s batchSpec) []byte {
	if s.records == 0 {
		s.records = 1
	}
	var recs []byte
	maxTs := s.baseTs
	for i := 0; i < s.records; i++ {
		var r []byte
		r = append(r, 0) // attributes
		ts := s.tsStep * int64(i)
		maxTs = max(maxTs, s.baseTs+ts)
		r = binary.AppendVarint(r, ts)
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, -1) // null key
		r = binary.AppendVarint(r, int64(s.valueSize))
		r = append(r, bytes.Repeat([]byte{byte('a' + i%26)}, s.valueSize)...)
		r = binary.AppendVarint(r, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	if s.compress {
		var err error
		if recs, err = records.Compress(s.codec, recs); err != nil {
			panic(err)
		}
	}
	return assembleBatch(recs, int16(s.codec), s.records, s.baseTs, maxTs, s.producerID, s.epoch, s.baseSeq)
}

// assembleBatch puts a v2 header (base offset 0, no leader epoch) before a records section of
// count records and checks the batch. producerID 0 means none.
func assembleBatch(recs []byte, attrs int16, count int, baseTs, maxTs, producerID int64, epoch int16, baseSeq int32) []byte {
	b := make([]byte, records.HeaderSize, records.HeaderSize+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-records.LengthOffset))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], uint16(attrs))
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))
	binary.BigEndian.PutUint64(b[27:], uint64(baseTs))
	binary.BigEndian.PutUint64(b[35:], uint64(maxTs))
	pid := int64(-1)
	if producerID != 0 {
		pid = producerID
	} else {
		epoch, baseSeq = -1, -1
	}
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(baseSeq))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	binary.BigEndian.PutUint32(b[17:], records.ComputeCRC(b))
	if _, err := records.Validate(b); err != nil {
		panic(err)
	}
	return b
}

// concat joins batches into one append.
func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// clock is an injectable time source.
type clock struct{ ms atomic.Int64 }

func newClock(ms int64) *clock {
	c := &clock{}
	c.ms.Store(ms)
	return c
}

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// testConfig is a config with no delete delay, for tests.
func testConfig() LogConfig {
	cfg := DefaultLogConfig()
	cfg.FileDeleteDelayMs = 0
	return cfg
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testLog struct {
	*Log
	t     testing.TB
	dir   string
	cfg   LogConfig
	clock *clock
	fs    FS
	logs  *logBuffer
	cache *FileCache // nil: DefaultFileCache
}

// openTest opens a log in a fresh temporary directory.
func openTest(t testing.TB, cfg LogConfig) *testLog {
	t.Helper()
	tl := &testLog{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(1_700_000_000_000), logs: &logBuffer{}}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	return tl
}

func (tl *testLog) options() Options {
	return Options{
		Logger:    slog.New(slog.NewTextHandler(tl.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       tl.clock.now,
		FS:        tl.fs,
		FileCache: tl.cache,
	}
}

// reopen opens the log again (after Close or crash).
func (tl *testLog) reopen() {
	tl.t.Helper()
	l, err := OpenLog(tl.dir, tl.cfg, tl.options())
	if err != nil {
		tl.t.Fatalf("OpenLog: %v", err)
	}
	tl.Log = l
}

// restart closes cleanly and reopens.
func (tl *testLog) restart() {
	tl.t.Helper()
	if err := tl.Close(); err != nil {
		tl.t.Fatalf("Close: %v", err)
	}
	tl.reopen()
}

// crash simulates SIGKILL: the files are closed without flushing state, writing snapshots,
// checkpoints or the clean-shutdown marker.
func (tl *testLog) crash() {
	tl.t.Helper()
	tl.kill()
	tl.reopen()
}

// kill is crash without the reopen.
func (tl *testLog) kill() {
	tl.t.Helper()
	l := tl.Log
	l.mu.Lock()
	l.mu.closed = true
	l.mu.Unlock()
	l.background.Wait()
	l.mu.Lock()
	for _, s := range l.mu.segments {
		s.close()
	}
	l.deletes.flush()
	l.publishLocked()
	l.mu.Unlock()
}

func (tl *testLog) append(b []byte) AppendResult {
	tl.t.Helper()
	res, err := tl.AppendAsLeader(b, 0)
	if err != nil {
		tl.t.Fatalf("AppendAsLeader: %v", err)
	}
	return res
}

func (tl *testLog) read(offset int64, maxBytes int) []byte {
	tl.t.Helper()
	b, err := tl.Read(offset, maxBytes, tl.LogEndOffset(), false)
	if err != nil {
		tl.t.Fatalf("Read(%d): %v", offset, err)
	}
	return b
}

// path returns the path of a file in the log directory.
func (tl *testLog) path(name string) string { return filepath.Join(tl.dir, name) }

// segmentFiles lists the .log files in the directory.
func (tl *testLog) segmentFiles() []string {
	tl.t.Helper()
	entries, err := os.ReadDir(tl.dir)
	if err != nil {
		tl.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), logSuffix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// batchesOf splits read bytes into headers.
func batchesOf(t testing.TB, b []byte) []records.Header {
	t.Helper()
	var hs []records.Header
	rest, err := records.Split(b, func(batch []byte) error {
		h, err := records.Validate(batch)
		if err != nil {
			return err
		}
		hs = append(hs, h)
		return nil
	})
	if err != nil || rest != 0 {
		t.Fatalf("read bytes are not whole valid batches: rest=%d err=%v", rest, err)
	}
	return hs
}

// readAll reads every batch from the log start to the end.
func (tl *testLog) readAll() []records.Header {
	tl.t.Helper()
	var hs []records.Header
	off := tl.LogStartOffset()
	for off < tl.LogEndOffset() {
		b := tl.read(off, 1<<20)
		got := batchesOf(tl.t, b)
		if len(got) == 0 {
			tl.t.Fatalf("no batch at offset %d (end %d)", off, tl.LogEndOffset())
		}
		hs = append(hs, got...)
		off = got[len(got)-1].LastOffset() + 1
	}
	return hs
}

// faultFS wraps the OS filesystem and fails writes to files whose name has a suffix.
type faultFS struct {
	OSFS
	mu         sync.Mutex
	failSuffix string // fail WriteAt on files ending so
	short      bool   // write half of the bytes before failing
	failSync   bool
	full       fullMode // fail writes with ENOSPC, as a full filesystem
}

// fullMode is how a faultFS behaves as a full filesystem.
type fullMode int

const (
	notFull    fullMode = iota
	fullExtend          // writes that extend a file fail (rewriting allocated bytes works), as on a real full disk
	fullAll             // every write fails
)

func (f *faultFS) setFull(m fullMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = m
}

var errInjected = errors.New("injected I/O error")

func (f *faultFS) set(suffix string, short bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failSuffix, f.short = suffix, short
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	fail := f.fs.failSuffix != "" && strings.HasSuffix(f.name, f.fs.failSuffix)
	short, full := f.fs.short, f.fs.full
	f.fs.mu.Unlock()
	if full != notFull {
		fi, err := f.File.Stat()
		if err != nil {
			return 0, err
		}
		if full == fullAll || off+int64(len(b)) > fi.Size() {
			return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
	}
	if !fail {
		return f.File.WriteAt(b, off)
	}
	if short {
		n, _ := f.File.WriteAt(b[:len(b)/2], off)
		return n, errInjected
	}
	return 0, errInjected
}
