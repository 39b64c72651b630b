package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/samsa-io/samsa/internal/records"
)

// corruption describes where and why the bytes of a segment stop being valid batches.
type corruption struct {
	pos    int64
	reason string
}

func (c *corruption) Error() string {
	return fmt.Sprintf("corrupt batch at position %d: %s", c.pos, c.reason)
}

func (c *corruption) Unwrap() error { return ErrCorrupt }

// scanBufPool holds the buffers header scans read into.
var scanBufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// batchScanner walks the batches of one segment file between two positions, reading it in
// chunks with pread. next returns each batch's header, and with full=true also its bytes
// (valid until the next call). Lengths are checked against the end before anything is read.
type batchScanner struct {
	f      File
	pos    int64 // position of the next batch
	end    int64 // bytes of the file that may be read
	buf    []byte
	bufPos int64 // file position of buf[0]
	bufLen int   // valid bytes in buf
	pooled *[]byte
}

func newBatchScanner(f File, pos, end int64) *batchScanner {
	p := scanBufPool.Get().(*[]byte)
	return &batchScanner{f: f, pos: pos, end: end, buf: *p, pooled: p}
}

// release returns the scanner's buffer to the pool when it is the pooled one.
func (s *batchScanner) release() {
	if s.pooled != nil {
		*s.pooled = (*s.pooled)[:cap(*s.pooled)]
		scanBufPool.Put(s.pooled)
		s.pooled = nil
	}
	s.buf = nil
}

// window makes buf hold the n bytes at pos and returns them.
func (s *batchScanner) window(pos int64, n int) ([]byte, error) {
	if pos >= s.bufPos && pos+int64(n) <= s.bufPos+int64(s.bufLen) {
		off := int(pos - s.bufPos)
		return s.buf[off : off+n], nil
	}
	if n > len(s.buf) {
		// A batch larger than the buffer: n is bounded by the file size the caller checked.
		s.buf = make([]byte, n)
		s.pooled = nil
	}
	want := len(s.buf)
	if rem := s.end - pos; int64(want) > rem {
		want = int(rem)
	}
	got, err := s.f.ReadAt(s.buf[:want], pos)
	if got < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		s.bufLen = 0
		return nil, err
	}
	s.bufPos, s.bufLen = pos, got
	return s.buf[:n], nil
}

// next returns the batch at the current position and advances past it. It returns io.EOF at
// the end, a *corruption when the bytes there are not a complete batch header or the length
// runs past the end, and other errors for I/O failures.
func (s *batchScanner) next(full bool) (h records.Header, pos int64, batch []byte, err error) {
	pos = s.pos
	rem := s.end - pos
	if rem <= 0 {
		return h, pos, nil, io.EOF
	}
	if rem < records.HeaderSize {
		return h, pos, nil, &corruption{pos, fmt.Sprintf("%d trailing bytes, shorter than a batch header", rem)}
	}
	hb, err := s.window(pos, records.HeaderSize)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return h, pos, nil, &corruption{pos, "file shorter than expected"}
		}
		return h, pos, nil, err
	}
	h, err = records.ParseHeader(hb)
	if err != nil {
		return h, pos, nil, &corruption{pos, err.Error()}
	}
	size := int64(h.Size())
	if size > rem {
		return h, pos, nil, &corruption{pos, fmt.Sprintf("batch length %d runs past the end (%d bytes left)", size, rem)}
	}
	if full {
		batch, err = s.window(pos, int(size))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return h, pos, nil, &corruption{pos, "file shorter than expected"}
			}
			return h, pos, nil, err
		}
	}
	s.pos = pos + size
	return h, pos, batch, nil
}

// firstRecordAtOrAfter walks the records of a batch (decompressing them if needed) and returns
// the offset and timestamp of the first record with timestamp >= ts and offset >= minOffset.
// If the records cannot be decoded it falls back to the batch's base offset (or minOffset if
// larger) and max timestamp. ok is false when no record qualifies.
func firstRecordAtOrAfter(batch []byte, h *records.Header, ts, minOffset int64) (offset, timestamp int64, ok bool) {
	logAppend := h.Attributes&records.AttrTimestampType != 0
	b := batch[records.HeaderSize:]
	if h.Codec() != records.CodecNone {
		d, err := records.Decompress(h.Codec(), b)
		if err != nil {
			if h.MaxTimestamp < ts || h.LastOffset() < minOffset {
				return 0, 0, false
			}
			return max(h.BaseOffset, minOffset), h.MaxTimestamp, true
		}
		b = d
	}
	for i := int32(0); i < h.RecordCount && len(b) > 0; i++ {
		length, n := binary.Varint(b)
		if n <= 0 || length < 0 || int64(len(b)-n) < length {
			return 0, 0, false
		}
		rec := b[n : n+int(length)]
		b = b[n+int(length):]
		if len(rec) < 1 {
			return 0, 0, false
		}
		tsDelta, n1 := binary.Varint(rec[1:])
		if n1 <= 0 {
			return 0, 0, false
		}
		offDelta, n2 := binary.Varint(rec[1+n1:])
		if n2 <= 0 {
			return 0, 0, false
		}
		recTs := h.BaseTimestamp + tsDelta
		if logAppend {
			recTs = h.MaxTimestamp
		}
		recOff := h.BaseOffset + offDelta
		if recTs >= ts && recOff >= minOffset {
			return recOff, recTs, true
		}
	}
	return 0, 0, false
}

// validateStored checks a batch read back from a segment: what records.Validate checks
// (length, CRC, non-negative counts, known codec) except its rule that the record count
// matches the offset delta, which holds for a producer's fresh batch but not for a batch
// rewritten by compaction.
func validateStored(batch []byte, h *records.Header) error {
	if h.Size() != len(batch) {
		return fmt.Errorf("batch length %d does not match %d bytes", h.Size(), len(batch))
	}
	if records.ComputeCRC(batch) != h.CRC {
		return records.ErrCRC
	}
	if h.LastOffsetDelta < 0 || h.RecordCount < 0 {
		return fmt.Errorf("negative record count or offset delta")
	}
	if h.Codec() > records.CodecZstd {
		return records.ErrCompression
	}
	return nil
}
