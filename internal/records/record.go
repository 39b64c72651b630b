package records

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadRecord is a record that cannot be parsed inside a batch (whose CRC may have checked).
var ErrBadRecord = errors.New("malformed record in batch")

// Record is one record of a v2 batch, parsed only as far as the cleaner and the produce
// checks need: its bytes (without the length prefix) and the fields they judge by. Key and
// Body alias the records section it was parsed from.
type Record struct {
	Body           []byte // attributes, timestamp delta, offset delta, key, value, headers
	TimestampDelta int64
	TimestampEnd   int // Body[1:TimestampEnd] is the timestamp delta varint
	OffsetDelta    int64
	Key            []byte
	HasKey         bool // false for a null key
	NullValue      bool // a tombstone when it has a key
}

// NextRecord parses the record at the start of b (a records section, see Section) and
// returns it and the bytes after it.
func NextRecord(b []byte) (r Record, rest []byte, err error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 1 || int64(len(b)-n) < length {
		return r, nil, ErrBadRecord
	}
	r.Body = b[n : n+int(length)]
	rest = b[n+int(length):]
	p := 1 // attributes
	var m int
	if r.TimestampDelta, m = binary.Varint(r.Body[p:]); m <= 0 {
		return r, nil, ErrBadRecord
	}
	p += m
	r.TimestampEnd = p
	if r.OffsetDelta, m = binary.Varint(r.Body[p:]); m <= 0 {
		return r, nil, ErrBadRecord
	}
	p += m
	keyLen, m := binary.Varint(r.Body[p:])
	if m <= 0 || keyLen < -1 || keyLen > int64(len(r.Body)-p-m) {
		return r, nil, ErrBadRecord
	}
	p += m
	if keyLen >= 0 {
		r.Key, r.HasKey = r.Body[p:p+int(keyLen)], true
		p += int(keyLen)
	}
	valueLen, m := binary.Varint(r.Body[p:])
	if m <= 0 || valueLen < -1 || valueLen > int64(len(r.Body)-p-m) {
		return r, nil, ErrBadRecord
	}
	r.NullValue = valueLen < 0
	return r, rest, nil
}

// Section returns the records section of a batch, decompressed (bounded as Decompress is).
func Section(batch []byte, h *Header) ([]byte, error) {
	b := batch[HeaderSize:]
	if h.Codec() == CodecNone {
		return b, nil
	}
	d, err := Decompress(h.Codec(), b)
	if err != nil {
		return nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	return d, nil
}

// EachRecord calls fn for each of the batch's h.RecordCount records (decompressing the batch
// first), stopping at fn's first error.
func EachRecord(batch []byte, h *Header, fn func(r *Record) error) error {
	recs, err := Section(batch, h)
	if err != nil {
		return err
	}
	for i := int32(0); i < h.RecordCount; i++ {
		var r Record
		if r, recs, err = NextRecord(recs); err != nil {
			return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}
