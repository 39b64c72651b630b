package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/samsa-io/samsa/internal/records"
)

// keptWhole reports the batches the cleaner keeps exactly as they are, neither mapping nor
// filtering their records: control batches (transaction markers) and transactional batches.
// Without the aborted-transaction index the cleaner cannot tell committed data from aborted
// data, so it keeps both, and a later value of a key written in a transaction does not drop
// the earlier non-transactional ones (so an abort leaves the earlier value readable). The
// transactions issue replaces this with Kafka's rules: aborted batches and expired markers
// dropped, committed records filtered like any other.
func keptWhole(h *records.Header) bool { return h.IsControl() || h.IsTransactional() }

// hasDeleteHorizon reports a batch whose base timestamp holds the KIP-534 delete horizon.
func hasDeleteHorizon(h *records.Header) bool { return h.Attributes&records.AttrDeleteHorizon != 0 }

// batchFilter is what the cleaner judges records by in one pass.
type batchFilter struct {
	offsets   *OffsetMap
	mappedEnd int64 // records at or after it were not mapped and are kept
	nowMs     int64
	// deleteRetentionMs is delete.retention.ms: a tombstone kept by this pass gets the delete
	// horizon nowMs + deleteRetentionMs in its batch and goes in the first pass after it.
	deleteRetentionMs int64
	// lastBatchOf maps each producer id to the last offset of its newest batch: that batch is
	// kept (empty if need be) so that the producer's sequence survives a reload.
	lastBatchOf map[int64]int64

	// nextHorizonMs is the earliest delete horizon of the batches kept with tombstones.
	nextHorizonMs int64
	recordsRead   int64
	recordsKept   int64
	scratch       []records.Record
	raw           []byte
}

// keepRecord is Kafka's rule: a record past the mapped section stays; a record without a key
// goes; a record stays if it is the latest of its key, unless it is a tombstone whose batch's
// delete horizon has passed.
func (f *batchFilter) keepRecord(h *records.Header, r *records.Record, offset int64) bool {
	if offset >= f.mappedEnd {
		return true
	}
	if !r.HasKey || f.offsets.get(r.Key) > offset {
		return false
	}
	return !r.NullValue || !hasDeleteHorizon(h) || f.nowMs < h.BaseTimestamp
}

// filter appends to out what the cleaner keeps of one batch: the batch itself when nothing
// changes, a rebuilt batch with the kept records (same base offset, last offset delta,
// producer fields, epochs, timestamps and codec; a delete horizon when it first keeps a
// tombstone), an empty batch for a producer's newest batch that lost all its records, or
// nothing. changed reports anything but the batch itself.
func (f *batchFilter) filter(out, batch []byte, h *records.Header) (_ []byte, changed bool, err error) {
	if keptWhole(h) || h.BaseOffset >= f.mappedEnd {
		return append(out, batch...), false, nil
	}
	// A batch the cleaner may rebuild is checked first: a rebuilt batch gets a new CRC, which
	// would hide a corruption on disk from every later reader.
	if records.ComputeCRC(batch) != h.CRC {
		return out, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, records.ErrCRC)
	}
	recs, err := records.Section(batch, h)
	if err != nil {
		return out, false, err
	}
	kept := f.scratch[:0]
	keptTombstone, all := false, true
	for rest, i := recs, int32(0); i < h.RecordCount; i++ {
		var r records.Record
		if r, rest, err = records.NextRecord(rest); err != nil {
			return out, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		f.recordsRead++
		if !f.keepRecord(h, &r, h.BaseOffset+r.OffsetDelta) {
			all = false
			continue
		}
		kept = append(kept, r)
		keptTombstone = keptTombstone || (r.HasKey && r.NullValue && h.BaseOffset+r.OffsetDelta < f.mappedEnd)
	}
	f.scratch = kept[:0]
	f.recordsKept += int64(len(kept))
	newHorizon := keptTombstone && !hasDeleteHorizon(h)
	if keptTombstone {
		horizon := h.BaseTimestamp
		if newHorizon {
			horizon = f.nowMs + f.deleteRetentionMs
		}
		f.nextHorizonMs = min(f.nextHorizonMs, horizon)
	}
	switch {
	case all && !newHorizon && len(kept) > 0:
		return append(out, batch...), false, nil
	case len(kept) == 0:
		if last, ok := f.lastBatchOf[h.ProducerID]; !ok || h.ProducerID < 0 || last != h.LastOffset() {
			return out, true, nil // an empty batch is dropped too once its producer wrote again
		}
		if h.RecordCount == 0 {
			return append(out, batch...), false, nil
		}
		return appendEmptyBatch(out, batch), true, nil
	}
	out, err = f.rebuild(out, batch, h, kept, newHorizon)
	return out, true, err
}

// rebuild appends a batch of the kept records with the header of the original. With
// newHorizon the base timestamp becomes the delete horizon (attribute bit 6) and the records'
// timestamp deltas are re-encoded against it, so every record keeps its timestamp.
func (f *batchFilter) rebuild(out, batch []byte, h *records.Header, kept []records.Record, newHorizon bool) ([]byte, error) {
	baseTs, attrs := h.BaseTimestamp, uint16(h.Attributes)
	if newHorizon {
		baseTs, attrs = f.nowMs+f.deleteRetentionMs, attrs|records.AttrDeleteHorizon
	}
	raw := f.raw[:0]
	for i := range kept {
		r := &kept[i]
		if baseTs == h.BaseTimestamp {
			raw = binary.AppendVarint(raw, int64(len(r.Body)))
			raw = append(raw, r.Body...)
			continue
		}
		var tsBuf [binary.MaxVarintLen64]byte
		ts := tsBuf[:binary.PutVarint(tsBuf[:], h.BaseTimestamp+r.TimestampDelta-baseTs)]
		raw = binary.AppendVarint(raw, int64(1+len(ts)+len(r.Body)-r.TimestampEnd))
		raw = append(raw, r.Body[0])
		raw = append(raw, ts...)
		raw = append(raw, r.Body[r.TimestampEnd:]...)
	}
	f.raw = raw
	body, err := records.Compress(h.Codec(), raw)
	if err != nil {
		return out, fmt.Errorf("recompressing batch at offset %d: %w", h.BaseOffset, err)
	}
	start := len(out)
	out = append(out, batch[:records.HeaderSize]...)
	out = append(out, body...)
	nb := out[start:]
	binary.BigEndian.PutUint32(nb[8:], uint32(len(nb)-records.LengthOffset))
	binary.BigEndian.PutUint16(nb[21:], attrs)
	binary.BigEndian.PutUint64(nb[27:], uint64(baseTs))
	binary.BigEndian.PutUint32(nb[57:], uint32(len(kept)))
	binary.BigEndian.PutUint32(nb[17:], records.ComputeCRC(nb))
	return out, nil
}

// appendEmptyBatch appends the header of batch with no records, as Kafka keeps the newest
// batch of an idempotent producer: base offset, last offset delta, producer id, epoch and base
// sequence, leader epoch, max timestamp and the timestamp-type, transactional and control
// bits are kept; the first timestamp is -1 and the batch is uncompressed.
func appendEmptyBatch(out, batch []byte) []byte {
	start := len(out)
	out = append(out, batch[:records.HeaderSize]...)
	nb := out[start:]
	binary.BigEndian.PutUint32(nb[8:], uint32(records.HeaderSize-records.LengthOffset))
	attrs := binary.BigEndian.Uint16(nb[21:]) &^ (records.AttrCompressionMask | records.AttrDeleteHorizon)
	binary.BigEndian.PutUint16(nb[21:], attrs)
	binary.BigEndian.PutUint64(nb[27:], uint64(0xffffffffffffffff)) // -1: no first timestamp
	binary.BigEndian.PutUint32(nb[57:], 0)
	binary.BigEndian.PutUint32(nb[17:], records.ComputeCRC(nb))
	return out
}

// mapBatch puts the keys of one batch's records at or after from into the offset map. It
// returns full=true with the offset of the first record that did not fit when the map is
// full; the records before it are mapped.
func mapBatch(m *OffsetMap, batch []byte, h *records.Header, from int64) (full bool, stoppedAt int64, err error) {
	if keptWhole(h) || h.RecordCount == 0 {
		return false, 0, nil
	}
	recs, err := records.Section(batch, h)
	if err != nil {
		return false, 0, err
	}
	for rest, i := recs, int32(0); i < h.RecordCount; i++ {
		var r records.Record
		if r, rest, err = records.NextRecord(rest); err != nil {
			return false, 0, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		off := h.BaseOffset + r.OffsetDelta
		if off < from || !r.HasKey {
			continue
		}
		if !m.put(r.Key, off) {
			return true, off, nil
		}
	}
	return false, 0, nil
}
