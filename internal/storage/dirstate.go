package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Names of the log directory's shutdown files (see "Clean shutdown" in the package doc).
const (
	dirMarkerFile  = "clean-shutdown" // the logs a clean shutdown vouches for
	dirJournalFile = "dirty-logs"     // the vouched logs changed since
)

const (
	dirMarkerMagic   = "SDCS"
	dirMarkerVersion = 1
	dirJournalMagic  = "SDL1"
	// maxLogNameLen bounds a name in the marker and the journal (a directory name).
	maxLogNameLen = 1 << 12
	// maxDirMarkerSize bounds the marker read at start (100,000 names are about 3 MB).
	maxDirMarkerSize = 1 << 30
)

// DirState is the clean-shutdown state of one log directory, shared by the logs in it
// (Options.DirState): the logs the directory's clean-shutdown marker vouches for, and the
// journal of those changed since. It is loaded once, before any log of the directory opens,
// and stays valid for the whole run (logs open lazily); CloseLogs writes the next marker.
// See "Clean shutdown" in the package doc.
type DirState struct {
	fs     FS
	dir    string
	logger *slog.Logger

	mu struct {
		sync.Mutex
		// vouched is what the marker on disk names (nil: no usable marker).
		vouched map[string]bool
		// journaled is the vouched names whose change is recorded: in the journal loaded at
		// start or appended since, or only in memory once the marker was removed.
		journaled map[string]bool
		// pending is the batch of names waiting for the next journal append; writing: a
		// caller is appending (it writes the batches that gather meanwhile too).
		pending *journalBatch
		writing bool
		// invalidated: the marker was removed from disk (a journal append failed), so
		// changes are recorded only in memory.
		invalidated bool
		// corruptMarker: the marker on disk could not be read; the next commit replaces it.
		corruptMarker bool
	}
	// io serializes the journal's file operations and CloseLogs' commit.
	io struct {
		sync.Mutex
		journal     File  // open for appending; nil until the first append
		size        int64 // the length of the journal's valid records (with its header)
		haveJournal bool  // a journal file is on disk
	}
}

// journalBatch is a group of names appended to the journal with one write and one fsync.
type journalBatch struct {
	names []string
	done  chan struct{}
	err   error
}

// LoadDirState reads the clean-shutdown marker and the journal of the log directory dir. It
// writes nothing: a missing, corrupt or unreadable marker vouches for no log (each log then
// relies on its own marker or is recovered). fsys nil is the operating system's.
func LoadDirState(dir string, fsys FS, logger *slog.Logger) *DirState {
	if fsys == nil {
		fsys = OSFS{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &DirState{fs: uncached(fsys), dir: dir, logger: logger}
	d.mu.journaled = map[string]bool{}
	b, err := readSmallFile(d.fs, filepath.Join(dir, dirMarkerFile), maxDirMarkerSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		logger.Warn("reading the log directory's clean-shutdown marker: it vouches for no log", "dir", dir, "err", err)
		d.mu.corruptMarker = true
	default:
		names, err := decodeDirMarker(b)
		if err != nil {
			logger.Warn("ignoring a corrupt clean-shutdown marker of the log directory: every log not closed cleanly by itself is recovered", "dir", dir, "err", err)
			d.mu.corruptMarker = true
		} else {
			d.mu.vouched = names
		}
	}
	jb, err := readSmallFile(d.fs, filepath.Join(dir, dirJournalFile), maxDirMarkerSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		logger.Warn("reading the journal of changed logs: the marker vouches for no log", "dir", dir, "err", err)
		d.mu.vouched = nil
		d.io.haveJournal = true
	default:
		d.io.haveJournal = true
		names, torn := decodeDirJournal(jb)
		d.io.size = int64(len(jb) - torn)
		if torn > 0 {
			logger.Info("ignoring the torn tail of the journal of changed logs (an append a crash interrupted)", "dir", dir, "bytes", torn)
		}
		for _, n := range names {
			d.mu.journaled[n] = true
		}
	}
	return d
}

// Dir is the log directory.
func (d *DirState) Dir() string { return d.dir }

// Vouches reports that the marker vouches for the log named name (a directory in Dir) and no
// change to it was recorded since.
func (d *DirState) Vouches(name string) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vouchesLocked(name)
}

func (d *DirState) vouchesLocked(name string) bool {
	return d.mu.vouched[name] && !d.mu.journaled[name]
}

// Unvouch records, durably, that the log named name is about to change (or be removed), if
// the marker vouches for it: it returns once the journal entry is fsynced. Concurrent calls
// share one append and one fsync. When the journal cannot be written, it removes the marker
// instead (every log of the directory is then recovered after a crash) and from then on
// records changes only in memory.
func (d *DirState) Unvouch(name string) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if !d.vouchesLocked(name) {
		d.mu.Unlock()
		return nil
	}
	if d.mu.invalidated {
		d.mu.journaled[name] = true
		d.mu.Unlock()
		return nil
	}
	if d.mu.pending == nil {
		d.mu.pending = &journalBatch{done: make(chan struct{})}
	}
	b := d.mu.pending
	b.names = append(b.names, name)
	if !d.mu.writing {
		d.mu.writing = true
		for d.mu.pending != nil {
			next := d.mu.pending
			d.mu.pending = nil
			d.mu.Unlock()
			err := d.appendJournal(next.names)
			d.mu.Lock()
			if err != nil {
				err = d.invalidateLocked(err)
			}
			if err == nil {
				for _, n := range next.names {
					d.mu.journaled[n] = true
				}
			}
			next.err = err
			close(next.done)
		}
		d.mu.writing = false
	}
	d.mu.Unlock()
	<-b.done
	return b.err
}

// invalidateLocked handles a failed journal append (cause): it removes the marker, so that
// no log is trusted after a crash, and records changes in memory from then on. It returns
// an error only when the marker could not be removed either (the change must not happen).
func (d *DirState) invalidateLocked(cause error) error {
	if d.mu.invalidated {
		return nil
	}
	err := d.fs.Remove(filepath.Join(d.dir, dirMarkerFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journaling a change of a cleanly closed log: %w (removing the clean-shutdown marker: %v)", cause, err)
	}
	if err := syncDir(d.fs, d.dir); err != nil {
		return fmt.Errorf("journaling a change of a cleanly closed log: %w (syncing %s: %v)", cause, d.dir, err)
	}
	d.logger.Warn("cannot journal changes to cleanly closed logs: removed the log directory's clean-shutdown marker, so a crash before the next clean shutdown recovers every log",
		"dir", d.dir, "err", cause)
	d.mu.invalidated = true
	return nil
}

// appendJournal appends names to the journal and fsyncs it (and the directory when it
// creates the file).
func (d *DirState) appendJournal(names []string) error {
	d.io.Lock()
	defer d.io.Unlock()
	var b []byte
	created := false
	if d.io.journal == nil {
		f, err := d.fs.OpenFile(filepath.Join(d.dir, dirJournalFile), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		created = !d.io.haveJournal
		d.io.journal, d.io.haveJournal = f, true
		if d.io.size < int64(len(dirJournalMagic)) {
			d.io.size = 0 // new, or its header was torn: start it over
		}
		// Cut what follows the valid records (a torn tail, a failed append) so that the
		// records appended now are read back.
		if !created {
			if err := f.Truncate(d.io.size); err != nil {
				return d.closeJournalOnError(err)
			}
		}
	}
	if d.io.size == 0 {
		b = append(b, dirJournalMagic...)
	}
	for _, n := range names {
		b = appendJournalRecord(b, n)
	}
	if _, err := d.io.journal.WriteAt(b, d.io.size); err != nil {
		return d.closeJournalOnError(err)
	}
	if err := d.io.journal.Sync(); err != nil {
		return d.closeJournalOnError(err)
	}
	d.io.size += int64(len(b))
	if created {
		if err := syncDir(d.fs, d.dir); err != nil {
			return d.closeJournalOnError(err)
		}
	}
	return nil
}

// closeJournalOnError drops the journal's handle after a failed append; the next append
// reopens it and cuts the failed bytes (a torn tail is ignored when read).
func (d *DirState) closeJournalOnError(err error) error {
	d.io.journal.Close()
	d.io.journal = nil
	return fmt.Errorf("appending to %s: %w", filepath.Join(d.dir, dirJournalFile), err)
}

// commit is CloseLogs' last step for the directory, once the state files of the logs it
// closed are durable: the next marker names the logs closed with their state written
// (closed), and the logs the current marker vouches for that no change touched in this run
// and that still exist, except those whose close failed (failed). It is written atomically
// and made durable before the journal is removed. A marker that would not change, with no
// journal, writes nothing.
func (d *DirState) commit(closed, failed map[string]bool) error {
	d.io.Lock()
	defer d.io.Unlock()
	d.mu.Lock()
	next := make(map[string]bool, len(d.mu.vouched)+len(closed))
	var onDisk map[string]bool
	if len(d.mu.vouched) > 0 {
		entries, err := d.fs.ReadDir(d.dir)
		if err != nil {
			d.mu.Unlock()
			return fmt.Errorf("listing %s: %w", d.dir, err)
		}
		onDisk = make(map[string]bool, len(entries))
		for _, e := range entries {
			if e.IsDir() {
				onDisk[e.Name()] = true
			}
		}
	}
	for n := range d.mu.vouched {
		if !d.mu.journaled[n] && onDisk[n] && !failed[n] {
			next[n] = true
		}
	}
	for n := range closed {
		if !failed[n] {
			next[n] = true
		}
	}
	// The marker on disk differs from next: write next, or remove the marker when next is
	// empty. Either is durable (directory fsynced) before the journal goes: a journal removal
	// that reached the disk before the new marker would leave the old marker trusted for
	// the logs the journal named.
	rewrite := d.mu.invalidated || d.mu.corruptMarker || !maps.Equal(next, d.mu.vouched)
	d.mu.Unlock()

	if rewrite && len(next) == 0 {
		if err := d.fs.Remove(filepath.Join(d.dir, dirMarkerFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s's clean-shutdown marker: %w", d.dir, err)
		}
		if err := syncDir(d.fs, d.dir); err != nil {
			return fmt.Errorf("syncing %s: %w", d.dir, err)
		}
	} else if rewrite {
		if err := writeFileAtomic(d.fs, d.dir, dirMarkerFile, encodeDirMarker(next), true); err != nil {
			return fmt.Errorf("writing %s's clean-shutdown marker: %w", d.dir, err)
		}
	}
	if d.io.journal != nil {
		d.io.journal.Close()
		d.io.journal = nil
	}
	removed := false
	if d.io.haveJournal {
		err := d.fs.Remove(filepath.Join(d.dir, dirJournalFile))
		if err == nil || errors.Is(err, os.ErrNotExist) {
			err = syncDir(d.fs, d.dir)
			removed = err == nil
		}
		if err != nil {
			// A journal left behind only makes the next start recover the logs it names.
			d.logger.Warn("removing the journal of changed logs", "dir", d.dir, "err", err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.vouched, d.mu.invalidated, d.mu.corruptMarker = next, false, false
	if removed {
		// A journal removal that failed stays recorded: what it names stays unvouched, as the
		// next start will see it.
		d.io.haveJournal = false
		clear(d.mu.journaled)
	}
	return nil
}

// encodeDirMarker encodes the marker naming the logs in names (sorted, so the same set
// always gives the same bytes).
func encodeDirMarker(names map[string]bool) []byte {
	sorted := slices.Sorted(maps.Keys(names))
	size := 12 + 4
	for _, n := range sorted {
		size += 2 + len(n)
	}
	b := make([]byte, 0, size)
	b = append(b, dirMarkerMagic...)
	b = binary.BigEndian.AppendUint32(b, dirMarkerVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sorted)))
	for _, n := range sorted {
		b = binary.BigEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodeDirMarker decodes the marker; any flaw (CRC, length, version, a name that is not a
// plain directory name) makes it vouch for nothing.
func decodeDirMarker(b []byte) (map[string]bool, error) {
	if len(b) < 16 || string(b[:4]) != dirMarkerMagic {
		return nil, fmt.Errorf("%w: clean-shutdown marker of %d bytes has a bad header", ErrCorrupt, len(b))
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: clean-shutdown marker CRC mismatch", ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(body[4:]); v != dirMarkerVersion {
		return nil, fmt.Errorf("%w: clean-shutdown marker version %d unknown", ErrCorrupt, v)
	}
	count := binary.BigEndian.Uint32(body[8:])
	rest := body[12:]
	if uint64(count)*2 > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: clean-shutdown marker count %d exceeds its size", ErrCorrupt, count)
	}
	names := make(map[string]bool, count)
	for range count {
		n, r, ok := cutName(rest)
		if !ok {
			return nil, fmt.Errorf("%w: clean-shutdown marker has a bad name", ErrCorrupt)
		}
		names[n], rest = true, r
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: clean-shutdown marker has %d bytes after its names", ErrCorrupt, len(rest))
	}
	return names, nil
}

// cutName reads a uint16-length-prefixed name that is a plain directory name.
func cutName(b []byte) (name string, rest []byte, ok bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 || n > maxLogNameLen || 2+n > len(b) {
		return "", nil, false
	}
	name = string(b[2 : 2+n])
	if name == "." || name == ".." || bytes.ContainsAny(b[2:2+n], "/\x00") {
		return "", nil, false
	}
	return name, b[2+n:], true
}

// appendJournalRecord appends one journal record: the name (uint16 length, bytes) and the
// CRC-32C of both.
func appendJournalRecord(b []byte, name string) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], crcTable))
}

// decodeDirJournal reads the journal's records up to the first incomplete or corrupt one,
// which only the append a crash interrupted can leave (each append is fsynced before the
// change it records, so that change never happened): torn is the bytes ignored from there.
func decodeDirJournal(b []byte) (names []string, torn int) {
	if len(b) < len(dirJournalMagic) || string(b[:len(dirJournalMagic)]) != dirJournalMagic {
		return nil, len(b)
	}
	rest := b[len(dirJournalMagic):]
	for len(rest) > 0 {
		n, r, ok := cutName(rest)
		if !ok || len(r) < 4 {
			break
		}
		recLen := len(rest) - len(r)
		if crc32.Checksum(rest[:recLen], crcTable) != binary.BigEndian.Uint32(r) {
			break
		}
		names = append(names, n)
		rest = r[4:]
	}
	return names, len(rest)
}

// dirStateOf returns the DirState a log in dir belongs to, or nil when d is nil or not its
// parent directory.
func dirStateOf(d *DirState, dir string) *DirState {
	if d == nil || filepath.Clean(filepath.Dir(dir)) != filepath.Clean(d.dir) {
		return nil
	}
	return d
}
