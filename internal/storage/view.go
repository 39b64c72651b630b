package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/samsa-io/samsa/internal/records"
)

// segmentInfo is an immutable snapshot of one segment as readers see it. Readers only pread
// the segment's files below size.
type segmentInfo struct {
	seg         *segment
	size        int64
	end         int64 // offset after the last batch (sealed segments from disk: next base)
	maxTs       int64
	maxTsOffset int64
	aborted     []AbortedTxn // the segment's aborted-transaction index
	index       indexView
}

// logView is an immutable snapshot of the log published by the writer after each mutation.
type logView struct {
	sealed []segmentInfo // shared between views; replaced when the segment list changes
	active segmentInfo
	start  int64 // log start offset
	end    int64 // log end offset
	size   int64 // bytes in all segments
	closed bool
	txns   *txnView // open and unreplicated transactions, for the last stable offset
}

func (v *logView) count() int { return len(v.sealed) + 1 }

func (v *logView) at(i int) *segmentInfo {
	if i < len(v.sealed) {
		return &v.sealed[i]
	}
	return &v.active
}

// segmentFor returns the index of the last segment whose base is at most offset (0 if none).
func (v *logView) segmentFor(offset int64) int {
	if v.active.seg.base <= offset {
		return len(v.sealed)
	}
	i := sort.Search(len(v.sealed), func(i int) bool { return v.sealed[i].seg.base > offset })
	return max(i-1, 0)
}

// scanFrom calls fn with each batch of segment info starting with the first batch whose last
// offset is at least offset (the batch containing it), in order, until fn returns stop. With
// full=false, batch is nil. It returns found=false if the segment has no such batch.
func scanFrom(info *segmentInfo, offset int64, full bool, fn func(h *records.Header, pos int64, batch []byte) (stop bool)) (found bool, err error) {
	from := int64(0)
	rel := offset - info.seg.base
	if rel > 0 {
		if rel > math.MaxUint32 {
			rel = math.MaxUint32
		}
		if p, err := info.index.floorOffset(uint32(rel)); err == nil && p < info.size {
			from = p
		}
	}
	sc := newBatchScanner(info.seg.log, from, info.size)
	defer sc.release()
	for {
		h, pos, batch, err := sc.next(full)
		if err == io.EOF {
			return found, nil
		}
		if err != nil {
			return found, fmt.Errorf("segment %d: %w", info.seg.base, err)
		}
		if h.LastOffset() < offset {
			continue
		}
		found = true
		if fn(&h, pos, batch) {
			return true, nil
		}
	}
}

// findBatch returns the position and header of the batch containing offset (the first with a
// last offset at least offset) in one segment.
func findBatch(info *segmentInfo, offset int64) (pos int64, h records.Header, found bool, err error) {
	found, err = scanFrom(info, offset, false, func(bh *records.Header, p int64, _ []byte) bool {
		pos, h = p, *bh
		return true
	})
	return pos, h, found, err
}

// span is where the bytes of a read lie in one segment file.
type span struct {
	f       File
	base    int64 // the segment's base offset, for error messages
	pos, n  int64
	oneOnly bool // exactly one whole batch (KIP-74: larger than maxBytes)
}

// locate finds the bytes a read of offset returns (see Log.Read); ok is false when there are
// none.
func (v *logView) locate(offset int64, maxBytes int, maxOffset int64, minOneBatch bool) (sp span, ok bool, err error) {
	if v.closed {
		return sp, false, ErrClosed
	}
	if offset < v.start || offset > v.end {
		return sp, false, fmt.Errorf("%w: offset %d not in [%d, %d]", ErrOffsetOutOfRange, offset, v.start, v.end)
	}
	if offset == v.end || offset >= maxOffset {
		return sp, false, nil
	}
	maxBytes = max(maxBytes, 0)
	for i := v.segmentFor(offset); i < v.count(); i++ {
		info := v.at(i)
		pos, h, found, err := findBatch(info, offset)
		if err != nil {
			return sp, false, err
		}
		if !found {
			continue
		}
		if h.BaseOffset >= maxOffset {
			return sp, false, nil
		}
		limit := info.size
		if maxOffset < info.end {
			// Stop at the first batch at or beyond maxOffset (the high watermark).
			hwPos, hwh, ok, err := findBatch(info, maxOffset)
			if err != nil {
				return sp, false, err
			}
			if ok {
				limit = hwPos
				if hwh.BaseOffset < maxOffset {
					limit += int64(hwh.Size())
				}
			}
		}
		sp = span{f: info.seg.log, base: info.seg.base, pos: pos}
		if first := int64(h.Size()); first > int64(maxBytes) {
			if !minOneBatch {
				return sp, false, nil
			}
			sp.n, sp.oneOnly = first, true
			return sp, true, nil
		}
		sp.n = min(int64(maxBytes), limit-pos)
		return sp, true, nil
	}
	return sp, false, nil
}

// read implements Log.Read on one view: the located bytes, cut to whole batches.
func (v *logView) read(alloc func(n int) []byte, offset int64, maxBytes int, maxOffset int64, minOneBatch bool) ([]byte, error) {
	sp, ok, err := v.locate(offset, maxBytes, maxOffset, minOneBatch)
	if !ok || err != nil {
		return nil, err
	}
	if sp.oneOnly {
		return readExactly(alloc, sp.f, sp.pos, sp.n)
	}
	buf := allocate(alloc, sp.n)
	got, err := sp.f.ReadAt(buf, sp.pos)
	if got < len(buf) && err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading segment %d: %w", sp.base, err)
	}
	return buf[:wholeBatches(buf[:got], maxOffset)], nil
}

// allocate returns n bytes from alloc, or a new slice when alloc is nil.
func allocate(alloc func(n int) []byte, n int64) []byte {
	if alloc != nil {
		return alloc(int(n))[:n]
	}
	return make([]byte, n)
}

// readExactly reads n bytes at pos into memory from alloc.
func readExactly(alloc func(n int) []byte, f File, pos, n int64) ([]byte, error) {
	buf := allocate(alloc, n)
	if _, err := f.ReadAt(buf, pos); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading segment: %w", err)
	}
	return buf, nil
}

// wholeBatches returns the length of the prefix of b made of complete batches whose base
// offset is below maxOffset.
func wholeBatches(b []byte, maxOffset int64) int {
	cut := 0
	for cut < len(b) {
		size, ok := records.PeekSize(b[cut:])
		if !ok || size < records.HeaderSize || size > len(b)-cut {
			break
		}
		if int64(binary.BigEndian.Uint64(b[cut:])) >= maxOffset {
			break
		}
		cut += size
	}
	return cut
}

// offsetForTimestamp implements Log.OffsetForTimestamp on one view.
func (v *logView) offsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	for i := v.segmentFor(v.start); i < v.count(); i++ {
		info := v.at(i)
		if info.maxTs < ts || info.size == 0 {
			continue
		}
		from := max(info.seg.base, v.start)
		if te, found, err := info.index.floorTime(ts); err == nil && found {
			from = max(info.seg.base+int64(te.rel), v.start)
		}
		_, err := scanFrom(info, from, true, func(h *records.Header, _ int64, batch []byte) bool {
			if h.MaxTimestamp < ts {
				return false
			}
			offset, timestamp, ok = firstRecordAtOrAfter(batch, h, ts, v.start)
			return ok
		})
		if err != nil || ok {
			return offset, timestamp, ok, err
		}
	}
	return 0, 0, false, nil
}

// maxTimestamp implements Log.MaxTimestamp on one view.
func (v *logView) maxTimestamp() (offset, timestamp int64, err error) {
	best := -1
	bestTs := int64(-1)
	for i := 0; i < v.count(); i++ {
		if info := v.at(i); info.maxTs > bestTs && info.size > 0 {
			best, bestTs = i, info.maxTs
		}
	}
	if best < 0 {
		return -1, -1, nil
	}
	info := v.at(best)
	offset, timestamp = info.maxTsOffset, bestTs
	_, err = scanFrom(info, info.maxTsOffset, true, func(h *records.Header, _ int64, batch []byte) bool {
		if off, ts, ok := firstRecordAtOrAfter(batch, h, bestTs, v.start); ok && h.MaxTimestamp == bestTs {
			offset, timestamp = off, ts
		}
		return true
	})
	return offset, timestamp, err
}

// isClosedFile reports whether err comes from reading a file closed under a reader (its
// segment was deleted after the reader loaded its view).
func isClosedFile(err error) bool { return errors.Is(err, os.ErrClosed) }
