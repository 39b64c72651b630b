package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/samsa-io/samsa/internal/records"
)

// File name suffixes.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
	deletedSuffix   = ".deleted"
	tmpSuffix       = ".tmp"
)

// fileName returns the 20-digit zero-padded name of the file for offset off.
func fileName(off int64, suffix string) string {
	return fmt.Sprintf("%020d%s", off, suffix)
}

// parseFileName returns the offset a file name starts with, if it is <20 digits><suffix>.
func parseFileName(name, suffix string) (int64, bool) {
	if len(name) != 20+len(suffix) || name[20:] != suffix {
		return 0, false
	}
	off, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || off < 0 {
		return 0, false
	}
	return off, true
}

// segment is one <base>.log file with its two indexes. base and the files never change; the
// other fields belong to the writer and are guarded by Log.mu. Readers see a segment only
// through the segmentInfo snapshots of a logView.
type segment struct {
	base    int64
	dir     string
	log     File
	offIdx  File
	timeIdx File
	txnIdx  File // nil until the segment has an aborted transaction (txnindex.go)

	size            int64         // bytes of batches in the .log file
	end             int64         // offset after the last batch (for sealed segments loaded from disk: the next segment's base)
	maxTs           int64         // largest batch max timestamp, -1 if none
	maxTsOffset     int64         // last offset of the batch that has maxTs
	offsets         []offsetEntry // all offset-index entries, kept in memory while active
	times           []timeEntry   // all time-index entries, kept in memory while active
	offsetCount     int           // entries in the .index file
	timeCount       int           // entries in the .timeindex file
	bytesSinceIndex int64         // bytes appended since the last offset-index entry
	rollBaseMs      int64         // when the segment started for segment.ms; -1 while empty
	active          bool
	scratch         []byte       // encodes the index entries of one append
	aborted         []AbortedTxn // the .txnindex entries; appends never change an element readers hold
}

func (s *segment) path(suffix string) string { return filepath.Join(s.dir, fileName(s.base, suffix)) }

// createSegment creates the (empty) files of a new segment, replacing stale ones.
func createSegment(fsys FS, dir string, base int64) (*segment, error) {
	s := &segment{base: base, dir: dir, end: base, maxTs: -1, maxTsOffset: -1, rollBaseMs: -1, active: true}
	var err error
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if s.log, err = fsys.OpenFile(s.path(logSuffix), flags, 0o644); err != nil {
		return nil, fmt.Errorf("creating segment: %w", err)
	}
	if s.offIdx, err = fsys.OpenFile(s.path(indexSuffix), flags, 0o644); err != nil {
		s.close()
		return nil, fmt.Errorf("creating segment index: %w", err)
	}
	if s.timeIdx, err = fsys.OpenFile(s.path(timeIndexSuffix), flags, 0o644); err != nil {
		s.close()
		return nil, fmt.Errorf("creating segment time index: %w", err)
	}
	if err := fsys.Remove(s.path(txnIndexSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.close()
		return nil, fmt.Errorf("removing a stale transaction index: %w", err)
	}
	return s, nil
}

// openSegment opens the files of an existing segment, creating missing index files. It
// reports whether an index file was missing, which forces a rebuild.
func openSegment(fsys FS, dir string, base int64) (s *segment, indexMissing bool, err error) {
	s = &segment{base: base, dir: dir, end: base, maxTs: -1, maxTsOffset: -1, rollBaseMs: -1}
	if s.log, err = fsys.OpenFile(s.path(logSuffix), os.O_RDWR, 0o644); err != nil {
		return nil, false, fmt.Errorf("opening segment: %w", err)
	}
	fi, err := s.log.Stat()
	if err != nil {
		s.close()
		return nil, false, fmt.Errorf("opening segment: %w", err)
	}
	s.size = fi.Size()
	for _, ix := range []struct {
		f      *File
		suffix string
	}{{&s.offIdx, indexSuffix}, {&s.timeIdx, timeIndexSuffix}} {
		*ix.f, err = fsys.OpenFile(s.path(ix.suffix), os.O_RDWR, 0o644)
		if errors.Is(err, os.ErrNotExist) {
			indexMissing = true
			*ix.f, err = fsys.OpenFile(s.path(ix.suffix), os.O_RDWR|os.O_CREATE, 0o644)
		}
		if err != nil {
			s.close()
			return nil, false, fmt.Errorf("opening segment index: %w", err)
		}
	}
	ok, err := s.openTxnIndex(fsys)
	if err != nil {
		s.close()
		return nil, false, err
	}
	return s, indexMissing || !ok, nil
}

// close closes the segment's files, returning the first error.
func (s *segment) close() error {
	var first error
	for _, f := range []File{s.log, s.offIdx, s.timeIdx, s.txnIdx} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// sync fsyncs the segment's files.
func (s *segment) sync() error {
	for _, f := range []File{s.log, s.offIdx, s.timeIdx, s.txnIdx} {
		if f == nil {
			continue
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("syncing segment %d: %w", s.base, err)
		}
	}
	return nil
}

// info returns the snapshot of the segment that readers use.
func (s *segment) info() segmentInfo {
	return segmentInfo{
		seg:         s,
		size:        s.size,
		end:         s.end,
		maxTs:       s.maxTs,
		maxTsOffset: s.maxTsOffset,
		aborted:     s.aborted,
		index: indexView{
			offsets:     s.offsets,
			times:       s.times,
			offsetFile:  s.offIdx,
			timeFile:    s.timeIdx,
			offsetCount: s.offsetCount,
			timeCount:   s.timeCount,
			inMemory:    s.active,
		},
	}
}

// lastTimeEntry returns the newest time-index entry of an active segment.
func (s *segment) lastTimeEntry() (timeEntry, bool) {
	if len(s.times) == 0 {
		return timeEntry{}, false
	}
	return s.times[len(s.times)-1], true
}

// canHold reports whether offsets up to last can be stored relative to the segment base.
func (s *segment) canHold(last int64) bool { return last-s.base <= math.MaxInt32 && last >= s.base }

// indexFull reports whether either index reached its configured size.
func (s *segment) indexFull(cfg *LogConfig) bool {
	return s.offsetCount >= cfg.maxOffsetEntries() || s.timeCount >= cfg.maxTimeEntries()
}

// appendBatches writes stamped batches at the end of the active segment with one write call,
// then records their index entries. On failure it truncates the files back, leaves the
// segment's state unchanged and returns the error; consistent=false means truncating back
// failed too, so the files no longer match the state.
func (s *segment) appendBatches(b []byte, indexInterval int64, nowMs int64) (consistent bool, err error) {
	start := s.size
	if _, err := s.log.WriteAt(b, start); err != nil {
		return s.log.Truncate(start) == nil, fmt.Errorf("writing segment %d: %w", s.base, err)
	}
	maxTs, maxTsOffset, sinceIndex := s.maxTs, s.maxTsOffset, s.bytesSinceIndex
	lastTime, hasTime := s.lastTimeEntry()
	var newOffsets [4]offsetEntry
	var newTimes [4]timeEntry
	offs, times := newOffsets[:0], newTimes[:0]
	var last int64
	for pos := 0; pos < len(b); {
		size := int(binary.BigEndian.Uint32(b[pos+8:])) + records.LengthOffset
		last = int64(binary.BigEndian.Uint64(b[pos:])) + int64(int32(binary.BigEndian.Uint32(b[pos+23:])))
		ts := int64(binary.BigEndian.Uint64(b[pos+35:]))
		if ts > maxTs {
			maxTs, maxTsOffset = ts, last
		}
		if sinceIndex > indexInterval {
			offs = append(offs, offsetEntry{rel: uint32(last - s.base), pos: uint32(start + int64(pos))})
			if maxTs >= 0 && (!hasTime || maxTs > lastTime.ts) {
				lastTime, hasTime = timeEntry{ts: maxTs, rel: uint32(maxTsOffset - s.base)}, true
				times = append(times, lastTime)
			}
			sinceIndex = 0
		}
		sinceIndex += int64(size)
		pos += size
	}
	if len(offs) > 0 {
		if _, err := s.offIdx.WriteAt(s.encodeOffsets(offs), int64(s.offsetCount)*offsetEntrySize); err != nil {
			return s.rollback(start) == nil, fmt.Errorf("writing offset index of segment %d: %w", s.base, err)
		}
	}
	if len(times) > 0 {
		if _, err := s.timeIdx.WriteAt(s.encodeTimes(times), int64(s.timeCount)*timeEntrySize); err != nil {
			return s.rollback(start) == nil, fmt.Errorf("writing time index of segment %d: %w", s.base, err)
		}
	}
	if s.rollBaseMs < 0 {
		s.rollBaseMs = nowMs
	}
	s.size += int64(len(b))
	s.end = last + 1
	s.maxTs, s.maxTsOffset, s.bytesSinceIndex = maxTs, maxTsOffset, sinceIndex
	s.offsets = append(s.offsets, offs...)
	s.times = append(s.times, times...)
	s.offsetCount += len(offs)
	s.timeCount += len(times)
	return true, nil
}

// rollback truncates the three files back to the segment's recorded state.
func (s *segment) rollback(logSize int64) error {
	err := s.log.Truncate(logSize)
	if e := s.offIdx.Truncate(int64(s.offsetCount) * offsetEntrySize); err == nil {
		err = e
	}
	if e := s.timeIdx.Truncate(int64(s.timeCount) * timeEntrySize); err == nil {
		err = e
	}
	return err
}

func (s *segment) encodeOffsets(es []offsetEntry) []byte {
	s.scratch = s.scratch[:0]
	for _, e := range es {
		s.scratch = binary.BigEndian.AppendUint32(s.scratch, e.rel)
		s.scratch = binary.BigEndian.AppendUint32(s.scratch, e.pos)
	}
	return s.scratch
}

func (s *segment) encodeTimes(es []timeEntry) []byte {
	s.scratch = s.scratch[:0]
	for _, e := range es {
		s.scratch = binary.BigEndian.AppendUint64(s.scratch, uint64(e.ts))
		s.scratch = binary.BigEndian.AppendUint32(s.scratch, e.rel)
	}
	return s.scratch
}

// seal makes the segment inactive: it records the final (max timestamp, offset) entry in the
// time index, as Kafka does, and drops the in-memory index.
func (s *segment) seal() error {
	if s.maxTs >= 0 {
		if last, ok := s.lastTimeEntry(); !ok || s.maxTs > last.ts {
			e := timeEntry{ts: s.maxTs, rel: uint32(s.maxTsOffset - s.base)}
			if _, err := s.timeIdx.WriteAt(s.encodeTimes([]timeEntry{e}), int64(s.timeCount)*timeEntrySize); err != nil {
				return fmt.Errorf("sealing time index of segment %d: %w", s.base, err)
			}
			s.times = append(s.times, e)
			s.timeCount++
		}
	}
	s.active = false
	s.offsets, s.times, s.scratch = nil, nil, nil
	return nil
}

// loadSealed prepares a sealed segment found on disk (below the recovery point): it checks
// that its index files are sane and reads the segment's max timestamp from the last time-index
// entry. end is the next segment's base. ok=false means the indexes must be rebuilt.
func (s *segment) loadSealed(end int64) (ok bool, err error) {
	s.end = end
	offFI, err := s.offIdx.Stat()
	if err != nil {
		return false, err
	}
	timeFI, err := s.timeIdx.Stat()
	if err != nil {
		return false, err
	}
	if offFI.Size()%offsetEntrySize != 0 || timeFI.Size()%timeEntrySize != 0 {
		return false, nil
	}
	s.offsetCount = int(offFI.Size() / offsetEntrySize)
	s.timeCount = int(timeFI.Size() / timeEntrySize)
	if s.offsetCount > 0 {
		var b [offsetEntrySize]byte
		if _, err := s.offIdx.ReadAt(b[:], offFI.Size()-offsetEntrySize); err != nil {
			return false, err
		}
		e := getOffsetEntry(b[:])
		if int64(e.pos) >= s.size || s.base+int64(e.rel) >= end {
			return false, nil
		}
	}
	if s.timeCount > 0 {
		var b [timeEntrySize]byte
		if _, err := s.timeIdx.ReadAt(b[:], timeFI.Size()-timeEntrySize); err != nil {
			return false, err
		}
		e := getTimeEntry(b[:])
		if s.base+int64(e.rel) >= end {
			return false, nil
		}
		s.maxTs, s.maxTsOffset = e.ts, s.base+int64(e.rel)
	}
	return true, nil
}

// loadActive prepares a segment found on disk to take appends: it loads both indexes into
// memory and scans the batch headers after the last index entry to find the end offset and max
// timestamp. A *corruption error means the tail must be recovered; ok=false means an index is
// not sane.
func (s *segment) loadActive(nowMs int64) (ok bool, err error) {
	offFI, err := s.offIdx.Stat()
	if err != nil {
		return false, err
	}
	timeFI, err := s.timeIdx.Stat()
	if err != nil {
		return false, err
	}
	offs, ok, err := readOffsetIndex(s.offIdx, offFI.Size(), s.size)
	if err != nil || !ok {
		return false, err
	}
	times, ok, err := readTimeIndex(s.timeIdx, timeFI.Size())
	if err != nil || !ok {
		return false, err
	}
	s.offsets, s.times = offs, times
	s.offsetCount, s.timeCount = len(offs), len(times)
	s.active = true
	return true, s.scanTail(nowMs)
}

// scanTail recomputes end, max timestamp and bytesSinceIndex of an active segment whose
// in-memory indexes are loaded, reading the batch headers after the last offset-index entry.
func (s *segment) scanTail(nowMs int64) error {
	var from int64
	s.end = s.base
	s.maxTs, s.maxTsOffset = -1, -1
	if n := len(s.offsets); n > 0 {
		from = int64(s.offsets[n-1].pos)
	}
	if t, ok := s.lastTimeEntry(); ok && t.ts >= 0 {
		s.maxTs, s.maxTsOffset = t.ts, s.base+int64(t.rel)
	}
	sc := newBatchScanner(s.log, from, s.size)
	defer sc.release()
	for {
		h, _, _, err := sc.next(false)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.BaseOffset < s.base || !s.canHold(h.LastOffset()) {
			return &corruption{sc.pos, fmt.Sprintf("batch offset %d outside segment %d", h.BaseOffset, s.base)}
		}
		s.end = h.LastOffset() + 1
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
		}
	}
	s.bytesSinceIndex = s.size - from
	s.initRollBase(nowMs)
	return nil
}

// initRollBase sets when a segment found on disk started, for segment.ms: like Kafka, the first
// batch's timestamp when it is sane, else now.
func (s *segment) initRollBase(nowMs int64) {
	s.rollBaseMs = -1
	if s.size > 0 {
		s.rollBaseMs = nowMs
		var hb [records.HeaderSize]byte
		if _, err := s.log.ReadAt(hb[:], 0); err == nil {
			if h, err := records.ParseHeader(hb[:]); err == nil && h.MaxTimestamp >= 0 && h.MaxTimestamp <= nowMs {
				s.rollBaseMs = h.MaxTimestamp
			}
		}
	}
}

// recoverSegment re-reads every batch of the segment, validating each (records.Validate and
// monotonic offsets within the segment), and rebuilds both index files. It returns the
// corruption that stopped it, if any, after truncating the segment there. visit is called
// with the header of each valid batch.
func (s *segment) recoverSegment(indexInterval int64, nowMs int64, visit func(h *records.Header)) (*corruption, error) {
	sc := &batchScanner{f: s.log, end: s.size, buf: make([]byte, 1<<20)}
	ix := newIndexBuilder(s.base, indexInterval)
	end := s.base
	var bad *corruption
	for {
		h, pos, batch, err := sc.next(true)
		if err == io.EOF {
			break
		}
		var c *corruption
		if errors.As(err, &c) {
			bad = c
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading segment %d: %w", s.base, err)
		}
		if err := validateStored(batch, &h); err != nil {
			bad = &corruption{pos, err.Error()}
			break
		}
		if h.BaseOffset < end || !s.canHold(h.LastOffset()) {
			bad = &corruption{pos, fmt.Sprintf("batch base offset %d not in order (expected at least %d in segment %d)", h.BaseOffset, end, s.base)}
			break
		}
		ix.add(pos, &h)
		end = h.LastOffset() + 1
		if visit != nil {
			visit(&h)
		}
	}
	validSize := sc.pos
	if bad != nil {
		validSize = bad.pos
		if err := s.log.Truncate(validSize); err != nil {
			return nil, fmt.Errorf("truncating segment %d: %w", s.base, err)
		}
	}
	s.size, s.end, s.maxTs, s.maxTsOffset, s.bytesSinceIndex = validSize, end, ix.maxTs, ix.maxTsOff, ix.since
	s.offsets, s.times = ix.offsets, ix.times
	s.offsetCount, s.timeCount = len(ix.offsets), len(ix.times)
	s.active = true
	if err := s.rewriteIndexes(); err != nil {
		return nil, err
	}
	s.initRollBase(nowMs)
	return bad, nil
}

// rewriteIndexes replaces both index files with the in-memory entries.
func (s *segment) rewriteIndexes() error {
	buf := make([]byte, 0, len(s.offsets)*offsetEntrySize)
	for _, e := range s.offsets {
		buf = binary.BigEndian.AppendUint32(buf, e.rel)
		buf = binary.BigEndian.AppendUint32(buf, e.pos)
	}
	if err := rewriteFile(s.offIdx, buf); err != nil {
		return fmt.Errorf("rebuilding offset index of segment %d: %w", s.base, err)
	}
	buf = make([]byte, 0, len(s.times)*timeEntrySize)
	for _, e := range s.times {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.ts))
		buf = binary.BigEndian.AppendUint32(buf, e.rel)
	}
	if err := rewriteFile(s.timeIdx, buf); err != nil {
		return fmt.Errorf("rebuilding time index of segment %d: %w", s.base, err)
	}
	return nil
}

func rewriteFile(f File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// truncateAt cuts an active segment (indexes loaded) at position pos, where the batch with
// base offset cutOffset starts, and recomputes its state. Index entries for the removed batches
// are dropped; the in-memory slices are copied so readers holding older views keep theirs.
func (s *segment) truncateAt(pos, cutOffset int64, nowMs int64) error {
	if err := s.log.Truncate(pos); err != nil {
		return fmt.Errorf("truncating segment %d: %w", s.base, err)
	}
	s.size = pos
	n := 0
	for n < len(s.offsets) && int64(s.offsets[n].pos) < pos {
		n++
	}
	m := 0
	for m < len(s.times) && s.base+int64(s.times[m].rel) < cutOffset {
		m++
	}
	s.offsets = append([]offsetEntry(nil), s.offsets[:n]...)
	s.times = append([]timeEntry(nil), s.times[:m]...)
	s.offsetCount, s.timeCount = n, m
	if err := s.offIdx.Truncate(int64(n) * offsetEntrySize); err != nil {
		return fmt.Errorf("truncating offset index of segment %d: %w", s.base, err)
	}
	if err := s.timeIdx.Truncate(int64(m) * timeEntrySize); err != nil {
		return fmt.Errorf("truncating time index of segment %d: %w", s.base, err)
	}
	return s.scanTail(nowMs)
}
