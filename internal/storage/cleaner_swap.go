package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/samsa-io/samsa/internal/records"
)

// Suffixes of a cleaned segment's files before they replace the old ones (see "Log cleaning"
// in the package doc): written as .cleaned, renamed to .swap (the commit), then to their
// final names once the old segments are renamed to .deleted.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// cleanedWriteBytes is how many bytes of cleaned batches are gathered per write.
const cleanedWriteBytes = 1 << 20

// cleanedSegment is the segment a group of old segments is cleaned into, being written.
type cleanedSegment struct {
	base    int64
	dir     string
	fs      FS
	suffix  string // the current suffix of its file names: cleanedSuffix, swapSuffix or ""
	log     File
	offIdx  File
	timeIdx File
	txnIdx  File         // nil when the group has no aborted transaction
	aborted []AbortedTxn // the group's aborted-transaction index entries whose marker stays
	size    int64        // bytes written to the log file
	pending []byte       // batches not written yet; they start at file position size
	idx     indexBuilder
}

// createCleaned creates the .cleaned files of the segment that starts at base.
func createCleaned(fsys FS, dir string, base, indexInterval int64) (*cleanedSegment, error) {
	c := &cleanedSegment{base: base, dir: dir, fs: fsys, suffix: cleanedSuffix, idx: newIndexBuilder(base, indexInterval)}
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	for _, f := range []struct {
		file   *File
		suffix string
	}{{&c.log, logSuffix}, {&c.offIdx, indexSuffix}, {&c.timeIdx, timeIndexSuffix}} {
		var err error
		if *f.file, err = fsys.OpenFile(c.path(f.suffix), flags, 0o644); err != nil {
			c.abandon()
			return nil, fmt.Errorf("creating cleaned segment %d: %w", base, err)
		}
	}
	return c, nil
}

// path returns the current path of one of the segment's files.
func (c *cleanedSegment) path(fileSuffix string) string {
	return filepath.Join(c.dir, fileName(c.base, fileSuffix)+c.suffix)
}

// added indexes the batches appended to pending from position n on, and writes pending out
// once it is large.
func (c *cleanedSegment) added(n int) error {
	for p := n; p < len(c.pending); {
		h, err := records.ParseHeader(c.pending[p:])
		if err != nil {
			return err
		}
		c.idx.add(c.size+int64(p), &h)
		p += h.Size()
	}
	if len(c.pending) < cleanedWriteBytes {
		return nil
	}
	return c.flush()
}

func (c *cleanedSegment) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	if _, err := c.log.WriteAt(c.pending, c.size); err != nil {
		return fmt.Errorf("writing cleaned segment %d: %w", c.base, err)
	}
	c.size += int64(len(c.pending))
	c.pending = c.pending[:0]
	return nil
}

// finish writes the rest of the batches and both indexes (the time index ending with the
// segment's max timestamp, as a sealed segment's does) and fsyncs the three files. It returns
// the bytes written.
func (c *cleanedSegment) finish() (int64, error) {
	if err := c.flush(); err != nil {
		return c.size, err
	}
	if c.idx.maxTs >= 0 && (len(c.idx.times) == 0 || c.idx.maxTs > c.idx.times[len(c.idx.times)-1].ts) {
		c.idx.times = append(c.idx.times, timeEntry{ts: c.idx.maxTs, rel: uint32(c.idx.maxTsOff - c.base)})
	}
	buf := make([]byte, len(c.idx.offsets)*offsetEntrySize)
	for i, e := range c.idx.offsets {
		putOffsetEntry(buf[i*offsetEntrySize:], e)
	}
	written := c.size + int64(len(buf))
	if _, err := c.offIdx.WriteAt(buf, 0); err != nil && len(buf) > 0 {
		return written, fmt.Errorf("writing cleaned offset index %d: %w", c.base, err)
	}
	buf = make([]byte, len(c.idx.times)*timeEntrySize)
	for i, e := range c.idx.times {
		putTimeEntry(buf[i*timeEntrySize:], e)
	}
	written += int64(len(buf))
	if _, err := c.timeIdx.WriteAt(buf, 0); err != nil && len(buf) > 0 {
		return written, fmt.Errorf("writing cleaned time index %d: %w", c.base, err)
	}
	if len(c.aborted) > 0 {
		// The entries of the group whose marker the pass kept: an aborted transaction's
		// marker goes only once none of its batches remain, so every entry still holds.
		var err error
		if c.txnIdx, err = c.fs.OpenFile(c.path(txnIndexSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			return written, fmt.Errorf("creating cleaned transaction index %d: %w", c.base, err)
		}
		var buf []byte
		for _, a := range c.aborted {
			buf = appendAbortedTxn(buf, a)
		}
		written += int64(len(buf))
		if _, err := c.txnIdx.WriteAt(buf, 0); err != nil {
			return written, fmt.Errorf("writing cleaned transaction index %d: %w", c.base, err)
		}
	}
	for _, f := range []File{c.log, c.offIdx, c.timeIdx, c.txnIdx} {
		if f == nil {
			continue
		}
		if err := f.Sync(); err != nil {
			return written, fmt.Errorf("syncing cleaned segment %d: %w", c.base, err)
		}
	}
	return written, nil
}

// rename moves the three files from their current suffix to suffix: the indexes first, the
// log file last, so that a .log.swap file (the commit) has its index files beside it.
func (c *cleanedSegment) rename(suffix string) error {
	for _, fs := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix, logSuffix} {
		if fs == txnIndexSuffix && c.txnIdx == nil {
			continue
		}
		from := c.path(fs)
		to := filepath.Join(c.dir, fileName(c.base, fs)+suffix)
		if err := c.fs.Rename(from, to); err != nil {
			return fmt.Errorf("renaming cleaned segment file: %w", err)
		}
	}
	c.suffix = suffix
	return nil
}

// abandon closes and removes the files of a cleaned segment not swapped in, under any of the
// names a failed rename may have left.
func (c *cleanedSegment) abandon() {
	for _, f := range []File{c.log, c.offIdx, c.timeIdx, c.txnIdx} {
		if f != nil {
			_ = f.Close()
		}
	}
	for _, fs := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix, logSuffix} {
		for _, suffix := range []string{cleanedSuffix, swapSuffix} {
			_ = c.fs.Remove(filepath.Join(c.dir, fileName(c.base, fs)+suffix))
		}
	}
}

// segment returns the sealed segment the cleaned files form, ending where end is.
func (c *cleanedSegment) segment(end int64) *segment {
	return &segment{
		base: c.base, dir: c.dir, log: c.log, offIdx: c.offIdx, timeIdx: c.timeIdx,
		txnIdx: c.txnIdx, aborted: c.aborted,
		size: c.size, end: end, maxTs: c.idx.maxTs, maxTsOffset: c.idx.maxTsOff,
		offsetCount: len(c.idx.offsets), timeCount: len(c.idx.times), rollBaseMs: -1,
	}
}

// swapIn replaces a group's old segments with its cleaned segment, holding Log.mu, with
// Kafka's protocol: rename the cleaned files to .swap and sync the directory (from here a
// crash keeps the new set: the next open completes the swap), rename the old segments' files
// to .deleted (removed after file.delete.delay.ms, so readers of older views finish), rename
// the .swap files to their final names, sync the directory, and publish the new segment list.
// A failure after the commit marks the log failed: its files are the new set or a .swap the
// next open completes, while the in-memory list still has the old one.
func (l *Log) swapIn(p *cleanPass, group []*segmentInfo, c *cleanedSegment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.groupPositionLocked(group, p.gen)
	if !ok {
		c.abandon()
		return ErrCleanAborted
	}
	if err := l.changingLocked(); err != nil {
		c.abandon()
		return err
	}
	if err := c.rename(swapSuffix); err != nil {
		c.abandon()
		return err
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return l.failLocked(fmt.Errorf("cleaning segment %d: syncing the directory: %w", c.base, err))
	}
	deleted := make([][]string, len(group))
	for i, info := range group {
		paths, err := l.renameDeleted(info.seg, func(string, error) {})
		if err != nil {
			return l.failLocked(fmt.Errorf("cleaning segment %d: %w", c.base, err))
		}
		deleted[i] = paths
	}
	if err := c.rename(""); err != nil {
		return l.failLocked(fmt.Errorf("cleaning segment %d: %w", c.base, err))
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return l.failLocked(fmt.Errorf("cleaning segment %d: syncing the directory: %w", c.base, err))
	}
	ns := c.segment(group[len(group)-1].seg.end)
	segs := make([]*segment, 0, len(l.mu.segments)-len(group)+1)
	segs = append(segs, l.mu.segments[:at]...)
	segs = append(segs, ns)
	segs = append(segs, l.mu.segments[at+len(group):]...)
	l.mu.segments = segs
	l.rebuildSealedLocked()
	l.publishLocked()
	for i, info := range group {
		l.scheduleRemovalLocked(info.seg, deleted[i])
	}
	return nil
}

// groupPositionLocked returns where a group's segments are in the segment list, all sealed and
// in order, if the log is still the one the pass started with.
func (l *Log) groupPositionLocked(group []*segmentInfo, gen uint64) (int, bool) {
	if l.mu.closed || l.mu.failed != nil || l.mu.truncations != gen {
		return 0, false
	}
	at := slices.IndexFunc(l.mu.segments, func(s *segment) bool { return s == group[0].seg })
	if at < 0 || at+len(group) >= len(l.mu.segments) {
		return 0, false
	}
	for i, info := range group {
		if l.mu.segments[at+i] != info.seg || info.seg.active || info.seg.size != info.size {
			return 0, false
		}
	}
	return at, true
}

// completeSwapsLocked finishes or rolls back the cleanings a crash interrupted, before the
// segments are loaded: .cleaned files (written, not committed) are removed, as are index
// .swap files without their .log.swap; a <base>.log.swap replaces every old segment whose
// base is in [base, end of the swap segment), then takes its final name with its indexes
// (missing indexes are rebuilt by the open).
func (l *Log) completeSwapsLocked() error {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	var swaps []int64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, cleanedSuffix) {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				l.logger.Warn("removing leftover cleaned file", "file", name, "err", err)
			}
			continue
		}
		stem, ok := strings.CutSuffix(name, swapSuffix)
		if !ok {
			continue
		}
		if base, ok := parseFileName(stem, logSuffix); ok {
			swaps = append(swaps, base)
			continue
		}
		if base, ok := cutIndexName(stem); ok && !names[fileName(base, logSuffix)+swapSuffix] {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				l.logger.Warn("removing leftover swap file", "file", name, "err", err)
			}
		}
	}
	if len(swaps) > 0 {
		// A swap is never on disk with a clean-shutdown marker vouching for it (the cleaner
		// withdraws them first), but the files are about to change: make sure.
		if err := l.dirState.Unvouch(l.name); err != nil {
			return err
		}
		if err := l.fs.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, base := range swaps {
		if err := l.completeSwapLocked(base); err != nil {
			return fmt.Errorf("completing the cleaning of segment %d: %w", base, err)
		}
	}
	if len(swaps) > 0 {
		return syncDir(l.fs, l.dir)
	}
	return nil
}

// cutIndexName returns the base offset of an index, time index or transaction index file
// name.
func cutIndexName(name string) (int64, bool) {
	for _, suffix := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if base, ok := parseFileName(name, suffix); ok {
			return base, true
		}
	}
	return 0, false
}

// completeSwapLocked completes the swap of the segment <base>.log.swap.
func (l *Log) completeSwapLocked(base int64) error {
	swapPath := filepath.Join(l.dir, fileName(base, logSuffix)+swapSuffix)
	end, err := segmentFileEnd(l.fs, swapPath, base)
	if err != nil {
		return err
	}
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	replaced := 0
	for _, e := range entries {
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if b, ok := parseFileName(e.Name(), suffix); ok && b >= base && b < end {
				if err := l.fs.Remove(filepath.Join(l.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				if suffix == logSuffix {
					replaced++
				}
			}
		}
	}
	for _, suffix := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix, logSuffix} {
		final := filepath.Join(l.dir, fileName(base, suffix))
		if err := l.fs.Rename(final+swapSuffix, final); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	l.logger.Warn("completed a log cleaning interrupted by a crash", "dir", l.dir, "segment", base,
		"replaced_segments", replaced)
	return nil
}

// segmentFileEnd returns the offset after the last whole batch of a segment file starting at
// base (base when it has none).
func segmentFileEnd(fsys FS, path string, base int64) (int64, error) {
	f, err := uncached(fsys).OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	sc := newBatchScanner(f, 0, fi.Size())
	defer sc.release()
	end := base
	for {
		h, _, _, err := sc.next(false)
		if err == io.EOF || errors.As(err, new(*corruption)) {
			return end, nil
		}
		if err != nil {
			return 0, err
		}
		end = max(end, h.LastOffset()+1)
	}
}
