package records

import (
	"encoding/binary"
	"fmt"
)

// Control record types (the key of a control batch's record: version int16, type int16).
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// EndTxnMarker is a transaction marker: the single record of a control batch that ends a
// producer's transaction on a partition (Kafka's EndTransactionMarker). Its key is version
// int16 (0) and type int16 (ControlAbort or ControlCommit); its value is version int16 (0)
// and the coordinator epoch int32.
type EndTxnMarker struct {
	ProducerID       int64
	ProducerEpoch    int16
	CoordinatorEpoch int32
	Commit           bool
}

// Type returns the marker's control record type.
func (m EndTxnMarker) Type() int16 {
	if m.Commit {
		return ControlCommit
	}
	return ControlAbort
}

// Batch returns the marker as a v2 control batch (transactional and control attributes, one
// record, base sequence -1, timestamps ts), with base offset 0 and no leader epoch, ready
// for an append.
func (m EndTxnMarker) Batch(ts int64) []byte {
	var key [4]byte
	binary.BigEndian.PutUint16(key[2:], uint16(m.Type()))
	var value [6]byte
	binary.BigEndian.PutUint32(value[2:], uint32(m.CoordinatorEpoch))
	var rec []byte
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestamp delta
	rec = binary.AppendVarint(rec, 0) // offset delta
	rec = binary.AppendVarint(rec, int64(len(key)))
	rec = append(rec, key[:]...)
	rec = binary.AppendVarint(rec, int64(len(value)))
	rec = append(rec, value[:]...)
	rec = binary.AppendVarint(rec, 0) // no headers
	b := make([]byte, HeaderSize, HeaderSize+binary.MaxVarintLen32+len(rec))
	b = binary.AppendVarint(b, int64(len(rec)))
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-LengthOffset))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], uint16(AttrTransactional|AttrControl))
	binary.BigEndian.PutUint32(b[23:], 0)
	binary.BigEndian.PutUint64(b[27:], uint64(ts))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint64(b[43:], uint64(m.ProducerID))
	binary.BigEndian.PutUint16(b[51:], uint16(m.ProducerEpoch))
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], 1)
	binary.BigEndian.PutUint32(b[17:], ComputeCRC(b))
	return b
}

// ParseControl reads the control record type of a control batch (its first record's key),
// and for a transaction marker (ControlAbort, ControlCommit) the coordinator epoch of its
// value. isMarker is false for the other control types (KRaft's leader change and snapshot
// records), which say nothing about transactions.
func ParseControl(batch []byte, h *Header) (typ int16, coordinatorEpoch int32, isMarker bool, err error) {
	if !h.IsControl() {
		return 0, 0, false, fmt.Errorf("%w: batch at offset %d is not a control batch", ErrCorrupt, h.BaseOffset)
	}
	recs, err := Section(batch, h)
	if err != nil {
		return 0, 0, false, err
	}
	r, _, err := NextRecord(recs)
	if err != nil {
		return 0, 0, false, fmt.Errorf("control batch at offset %d: %w", h.BaseOffset, err)
	}
	if !r.HasKey || len(r.Key) < 4 {
		return 0, 0, false, fmt.Errorf("%w: control record at offset %d has a short key", ErrCorrupt, h.BaseOffset)
	}
	typ = int16(binary.BigEndian.Uint16(r.Key[2:]))
	if typ != ControlAbort && typ != ControlCommit {
		return typ, 0, false, nil
	}
	// The value follows the key: its length varint, then version int16 and epoch int32.
	rest := valueOf(r)
	n, m := binary.Varint(rest)
	if m <= 0 || n < 6 || int64(len(rest)-m) < n {
		return typ, 0, false, fmt.Errorf("%w: transaction marker at offset %d has a short value", ErrCorrupt, h.BaseOffset)
	}
	return typ, int32(binary.BigEndian.Uint32(rest[m+2:])), true, nil
}

// valueOf returns the bytes of a record's body after its key (the value length onward). Key
// aliases Body, so the key starts at cap(Body)-cap(Key).
func valueOf(r Record) []byte {
	return r.Body[cap(r.Body)-cap(r.Key)+len(r.Key):]
}
