package storage

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/samsa-io/samsa/internal/records"
)

// Index entry sizes on disk (see the package doc).
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// offsetEntry maps the last offset of a batch (relative to the segment base) to the file
// position where that batch starts.
type offsetEntry struct {
	rel uint32
	pos uint32
}

// timeEntry records that the segment's max timestamp reached ts at the batch whose last offset
// is rel (relative to the segment base).
type timeEntry struct {
	ts  int64
	rel uint32
}

func putOffsetEntry(b []byte, e offsetEntry) {
	binary.BigEndian.PutUint32(b, e.rel)
	binary.BigEndian.PutUint32(b[4:], e.pos)
}

func getOffsetEntry(b []byte) offsetEntry {
	return offsetEntry{rel: binary.BigEndian.Uint32(b), pos: binary.BigEndian.Uint32(b[4:])}
}

func putTimeEntry(b []byte, e timeEntry) {
	binary.BigEndian.PutUint64(b, uint64(e.ts))
	binary.BigEndian.PutUint32(b[8:], e.rel)
}

func getTimeEntry(b []byte) timeEntry {
	return timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: binary.BigEndian.Uint32(b[8:])}
}

// indexView is how a reader sees the two indexes of one segment: the in-memory entries of the
// active segment, or the first n entries of a sealed segment's files (searched with pread).
type indexView struct {
	offsets     []offsetEntry // active segment only
	times       []timeEntry   // active segment only
	offsetFile  File
	timeFile    File
	offsetCount int
	timeCount   int
	inMemory    bool
}

// floorOffset returns the file position recorded by the last entry whose relative offset is
// at most rel, or 0 when there is none. Batches containing offsets >= rel start at or after it.
func (ix *indexView) floorOffset(rel uint32) (int64, error) {
	if ix.inMemory {
		i := sort.Search(len(ix.offsets), func(i int) bool { return ix.offsets[i].rel > rel })
		if i == 0 {
			return 0, nil
		}
		return int64(ix.offsets[i-1].pos), nil
	}
	buf := make([]byte, offsetEntrySize)
	var ioErr error
	i := sort.Search(ix.offsetCount, func(i int) bool {
		if ioErr != nil {
			return true
		}
		if _, err := ix.offsetFile.ReadAt(buf, int64(i)*offsetEntrySize); err != nil {
			ioErr = err
			return true
		}
		return getOffsetEntry(buf).rel > rel
	})
	if ioErr != nil {
		return 0, fmt.Errorf("reading offset index: %w", ioErr)
	}
	if i == 0 {
		return 0, nil
	}
	if _, err := ix.offsetFile.ReadAt(buf, int64(i-1)*offsetEntrySize); err != nil {
		return 0, fmt.Errorf("reading offset index: %w", err)
	}
	return int64(getOffsetEntry(buf).pos), nil
}

// floorTime returns the last time entry whose timestamp is at most ts; ok is false if none.
func (ix *indexView) floorTime(ts int64) (timeEntry, bool, error) {
	if ix.inMemory {
		i := sort.Search(len(ix.times), func(i int) bool { return ix.times[i].ts > ts })
		if i == 0 {
			return timeEntry{}, false, nil
		}
		return ix.times[i-1], true, nil
	}
	buf := make([]byte, timeEntrySize)
	var ioErr error
	i := sort.Search(ix.timeCount, func(i int) bool {
		if ioErr != nil {
			return true
		}
		if _, err := ix.timeFile.ReadAt(buf, int64(i)*timeEntrySize); err != nil {
			ioErr = err
			return true
		}
		return getTimeEntry(buf).ts > ts
	})
	if ioErr != nil {
		return timeEntry{}, false, fmt.Errorf("reading time index: %w", ioErr)
	}
	if i == 0 {
		return timeEntry{}, false, nil
	}
	if _, err := ix.timeFile.ReadAt(buf, int64(i-1)*timeEntrySize); err != nil {
		return timeEntry{}, false, fmt.Errorf("reading time index: %w", err)
	}
	return getTimeEntry(buf), true, nil
}

// readOffsetIndex loads a whole offset index file. It reports ok=false (without error) when the
// file is not a sane index of a segment of logSize bytes: a partial entry, relative offsets or
// positions going backwards, or a position beyond the end of the log.
func readOffsetIndex(f File, fileSize, logSize int64) (entries []offsetEntry, ok bool, err error) {
	if fileSize%offsetEntrySize != 0 {
		return nil, false, nil
	}
	n := int(fileSize / offsetEntrySize)
	buf := make([]byte, fileSize)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, false, err
	}
	entries = make([]offsetEntry, n)
	for i := range entries {
		e := getOffsetEntry(buf[i*offsetEntrySize:])
		if int64(e.pos) >= logSize {
			return nil, false, nil
		}
		if i > 0 && (e.rel <= entries[i-1].rel || e.pos <= entries[i-1].pos) {
			return nil, false, nil
		}
		entries[i] = e
	}
	return entries, true, nil
}

// readTimeIndex loads a whole time index file, reporting ok=false when it is not sane:
// a partial entry, or timestamps or offsets going backwards.
func readTimeIndex(f File, fileSize int64) (entries []timeEntry, ok bool, err error) {
	if fileSize%timeEntrySize != 0 {
		return nil, false, nil
	}
	n := int(fileSize / timeEntrySize)
	buf := make([]byte, fileSize)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, false, err
	}
	entries = make([]timeEntry, n)
	for i := range entries {
		e := getTimeEntry(buf[i*timeEntrySize:])
		if i > 0 && (e.ts <= entries[i-1].ts || e.rel < entries[i-1].rel) {
			return nil, false, nil
		}
		entries[i] = e
	}
	return entries, true, nil
}

// indexBuilder computes the index entries of batches laid out one after another in a segment,
// as recovery and the cleaner write them: an offset entry for a batch once more than interval
// bytes were laid out since the last one, with a time entry when the max timestamp rose since.
type indexBuilder struct {
	base     int64
	interval int64
	offsets  []offsetEntry
	times    []timeEntry
	since    int64 // bytes since the last offset entry
	maxTs    int64 // the largest batch max timestamp, -1 when none
	maxTsOff int64 // the last offset of the batch that has it
}

func newIndexBuilder(base, interval int64) indexBuilder {
	return indexBuilder{base: base, interval: interval, maxTs: -1, maxTsOff: -1}
}

// add accounts for the batch with header h at file position pos.
func (b *indexBuilder) add(pos int64, h *records.Header) {
	if h.MaxTimestamp > b.maxTs {
		b.maxTs, b.maxTsOff = h.MaxTimestamp, h.LastOffset()
	}
	if b.since > b.interval {
		b.offsets = append(b.offsets, offsetEntry{rel: uint32(h.LastOffset() - b.base), pos: uint32(pos)})
		if b.maxTs >= 0 && (len(b.times) == 0 || b.maxTs > b.times[len(b.times)-1].ts) {
			b.times = append(b.times, timeEntry{ts: b.maxTs, rel: uint32(b.maxTsOff - b.base)})
		}
		b.since = 0
	}
	b.since += int64(h.Size())
}
