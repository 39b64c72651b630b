// Package records owns the Kafka record-batch format (magic v2) as it appears on the wire and
// on disk: parsing and validating batch headers, CRC-32C, stamping offsets and leader epochs in
// place, iterating records, and compressing or decompressing a batch's records.
//
// Layout of a v2 batch (all integers big-endian):
//
//	offset  size  field
//	0       8     baseOffset
//	8       4     batchLength (bytes after this field)
//	12      4     partitionLeaderEpoch
//	16      1     magic (2)
//	17      4     crc (CRC-32C of bytes 21..end)
//	21      2     attributes
//	23      4     lastOffsetDelta
//	27      8     baseTimestamp
//	35      8     maxTimestamp
//	43      8     producerId
//	51      2     producerEpoch
//	53      4     baseSequence
//	57      4     recordCount
//	61      ...   records (possibly compressed)
package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a v2 batch header, up to and including the record count.
const HeaderSize = 61

// LengthOffset is the number of bytes before and including batchLength: a batch occupies
// LengthOffset + batchLength bytes.
const LengthOffset = 12

// Attribute bits.
const (
	AttrCompressionMask = 0x07
	AttrTimestampType   = 0x08 // 1 = LogAppendTime
	AttrTransactional   = 0x10
	AttrControl         = 0x20
	AttrDeleteHorizon   = 0x40
)

// Compression codecs, as in the low three attribute bits.
const (
	CodecNone   = 0
	CodecGzip   = 1
	CodecSnappy = 2
	CodecLZ4    = 3
	CodecZstd   = 4
)

// NoProducerID is the producer id of a batch sent by a non-idempotent producer.
const NoProducerID = -1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by the parsers. They are distinct so callers can map them to Kafka codes.
var (
	ErrShort       = errors.New("records: truncated batch")
	ErrMagic       = errors.New("records: unsupported magic (only v2 batches are accepted)")
	ErrCRC         = errors.New("records: batch CRC mismatch")
	ErrCorrupt     = errors.New("records: corrupt batch")
	ErrCompression = errors.New("records: unknown compression codec")
)

// Header is a decoded v2 batch header.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size returns the total number of bytes the batch occupies.
func (h *Header) Size() int { return LengthOffset + int(h.BatchLength) }

// LastOffset returns the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec returns the compression codec.
func (h *Header) Codec() int8 { return int8(h.Attributes & AttrCompressionMask) }

// IsTransactional reports the transactional attribute.
func (h *Header) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsControl reports the control attribute.
func (h *Header) IsControl() bool { return h.Attributes&AttrControl != 0 }

// LastSequence returns the sequence number of the batch's last record (wrapping as Kafka does).
func (h *Header) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > 0x7fffffff {
		s -= 0x80000000
	}
	return int32(s)
}

// PeekSize returns the full size of the batch that starts at b, reading only the length field.
// It reports false if b is shorter than the length prefix or the length is negative.
func PeekSize(b []byte) (int, bool) {
	if len(b) < LengthOffset {
		return 0, false
	}
	l := int32(binary.BigEndian.Uint32(b[8:12]))
	if l < 0 {
		return 0, false
	}
	return LengthOffset + int(l), true
}

// ParseHeader decodes the header at the start of b. It checks the magic byte and that b holds
// at least the header; it does not check the CRC or that the whole batch is present.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < 17 {
		return h, ErrShort
	}
	h.Magic = int8(b[16])
	if h.Magic != 2 {
		return h, ErrMagic
	}
	if len(b) < HeaderSize {
		return h, ErrShort
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[0:]))
	h.BatchLength = int32(binary.BigEndian.Uint32(b[8:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[12:]))
	h.CRC = binary.BigEndian.Uint32(b[17:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[21:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[23:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[43:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[51:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[53:]))
	h.RecordCount = int32(binary.BigEndian.Uint32(b[57:]))
	if int(h.BatchLength) < HeaderSize-LengthOffset {
		return h, fmt.Errorf("%w: batch length %d below header size", ErrCorrupt, h.BatchLength)
	}
	return h, nil
}

// ComputeCRC returns the CRC-32C of the batch's checksummed region. b must hold the whole batch.
func ComputeCRC(b []byte) uint32 { return crc32.Checksum(b[21:], castagnoli) }

// Validate parses the header of the batch that fills b exactly and checks its CRC and the
// consistency of its fields. It is what the broker runs on every batch a producer sends and
// what recovery runs on every batch it reads back from disk.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, fmt.Errorf("%w: batch length %d does not match %d bytes", ErrCorrupt, h.Size(), len(b))
	}
	if ComputeCRC(b) != h.CRC {
		return h, ErrCRC
	}
	if h.LastOffsetDelta < 0 || h.RecordCount < 0 {
		return h, fmt.Errorf("%w: negative record count or offset delta", ErrCorrupt)
	}
	if h.Codec() > CodecZstd {
		return h, ErrCompression
	}
	if h.RecordCount > 0 && h.LastOffsetDelta != h.RecordCount-1 && !h.IsControl() && h.Codec() == CodecNone {
		// Compacted batches may have gaps, but a producer's fresh batch never does.
		return h, fmt.Errorf("%w: %d records with last offset delta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// SetBaseOffset stamps the base offset in place (not covered by the CRC).
func SetBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[0:], uint64(off)) }

// SetPartitionLeaderEpoch stamps the leader epoch in place (not covered by the CRC).
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
}

// SetLogAppendTime marks the batch as LogAppendTime with max timestamp ts and rewrites the CRC.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[21:]) | AttrTimestampType
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint32(b[17:], ComputeCRC(b))
}

// Split walks a concatenation of batches, calling fn with each complete batch. A trailing
// partial batch (as Fetch responses may carry) is ignored and its length returned as rest.
// It stops at the first error fn returns.
func Split(b []byte, fn func(batch []byte) error) (rest int, err error) {
	for len(b) > 0 {
		n, ok := PeekSize(b)
		if !ok || n < HeaderSize || n > len(b) {
			return len(b), nil
		}
		if err := fn(b[:n]); err != nil {
			return len(b), err
		}
		b = b[n:]
	}
	return 0, nil
}
