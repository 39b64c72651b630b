package storage

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/samsa-io/samsa/internal/records"
)

// txnTracker follows the transactions of the batches a cleaning scan reads in offset order,
// as Kafka's CleanedTransactionMetadata: which transactional batches belong to an aborted
// transaction (from the aborted-transaction index entries of the log), and which markers
// end a transaction none of whose batches the scan read (their data is gone, so the marker
// may go once its delete horizon passes). One tracker follows a whole scan, across groups,
// so a marker's data in an earlier group is seen before the marker.
type txnTracker struct {
	// pending are the aborted transactions whose first offset the scan has not reached, by
	// ascending first offset.
	pending []AbortedTxn
	// aborted holds the producers whose current transaction is an aborted one.
	aborted map[int64]bool
	// read holds the producers with a transactional batch read since their last marker.
	read map[int64]bool
}

// newTxnTracker returns the tracker of a scan starting at offset from, given the log's
// aborted transactions: those whose marker is at or after from matter.
func newTxnTracker(v *logView, from int64) *txnTracker {
	t := &txnTracker{aborted: make(map[int64]bool), read: make(map[int64]bool)}
	for i := range v.count() {
		for _, a := range v.at(i).aborted {
			if a.LastOffset >= from {
				t.pending = append(t.pending, a)
			}
		}
	}
	slices.SortStableFunc(t.pending, func(a, b AbortedTxn) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	return t
}

// batchTxn is what the tracker knows of one batch.
type batchTxn struct {
	aborted bool // a transactional batch of an aborted transaction
	marker  bool // a transaction marker (COMMIT or ABORT)
	// orphan: a marker none of whose transaction's batches the scan read.
	orphan bool
}

// next reads the batch at h, the next one of the scan.
func (t *txnTracker) next(batch []byte, h *records.Header) (batchTxn, error) {
	for len(t.pending) > 0 && t.pending[0].FirstOffset <= h.LastOffset() {
		t.aborted[t.pending[0].ProducerID] = true
		t.pending = t.pending[1:]
	}
	if h.IsControl() {
		ctl, err := parseControl(batch, h)
		if err != nil || !ctl.marker {
			return batchTxn{}, err
		}
		orphan := !t.read[h.ProducerID]
		delete(t.read, h.ProducerID)
		delete(t.aborted, h.ProducerID)
		return batchTxn{marker: true, orphan: orphan}, nil
	}
	if !h.IsTransactional() {
		return batchTxn{}, nil
	}
	t.read[h.ProducerID] = true
	return batchTxn{aborted: t.aborted[h.ProducerID]}, nil
}

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
	// markerEpochOf maps each producer with no batch at its current epoch (its last entry is
	// a marker that bumped the epoch) to that epoch: its markers of that epoch are kept, as
	// Kafka keeps a producer's last marker, so that the epoch survives a reload.
	markerEpochOf map[int64]int16
	// txns follows the transactions of the batches filtered, in offset order.
	txns *txnTracker
	// droppedMarkers holds the offsets of the markers the pass removed: their
	// aborted-transaction index entries go with them.
	droppedMarkers map[int64]bool

	// nextHorizonMs is the earliest delete horizon of the batches kept with tombstones and
	// of the markers kept with one.
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
// tombstone or an orphan marker), an empty batch for a producer's newest batch that lost all
// its records, or nothing. changed reports anything but the batch itself. The batches of
// aborted transactions lose all their records; a transaction marker stays while a batch of
// its transaction was read by the pass, and once none was it gets a delete horizon and goes
// in the first pass after it (Kafka's rules).
func (f *batchFilter) filter(out, batch []byte, h *records.Header) (_ []byte, changed bool, err error) {
	txn, err := f.txns.next(batch, h)
	if err != nil {
		return out, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	if h.BaseOffset >= f.mappedEnd || (h.IsControl() && !(txn.marker && txn.orphan && !f.producersLast(h))) {
		return append(out, batch...), false, nil
	}
	// A batch the cleaner may rebuild is checked first: a rebuilt batch gets a new CRC, which
	// would hide a corruption on disk from every later reader.
	if records.ComputeCRC(batch) != h.CRC {
		return out, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, records.ErrCRC)
	}
	if h.IsControl() {
		return f.orphanMarker(out, batch, h)
	}
	if txn.aborted {
		f.recordsRead += int64(h.RecordCount)
		return f.emptied(out, batch, h)
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
		return f.emptied(out, batch, h)
	}
	out, err = f.rebuild(out, batch, h, kept, newHorizon)
	return out, true, err
}

// producersLast reports a marker that is its producer's last entry (see markerEpochOf).
func (f *batchFilter) producersLast(h *records.Header) bool {
	epoch, ok := f.markerEpochOf[h.ProducerID]
	return ok && epoch == h.ProducerEpoch
}

// emptied appends what is kept of a batch that loses all its records: nothing, except the
// newest batch of a producer, kept empty so that its sequence survives a reload (an empty
// batch is dropped too once its producer wrote again).
func (f *batchFilter) emptied(out, batch []byte, h *records.Header) (_ []byte, changed bool, err error) {
	if last, ok := f.lastBatchOf[h.ProducerID]; !ok || h.ProducerID < 0 || last != h.LastOffset() {
		return out, true, nil
	}
	if h.RecordCount == 0 {
		return append(out, batch...), false, nil
	}
	return appendEmptyBatch(out, batch), true, nil
}

// orphanMarker appends what is kept of a transaction marker none of whose transaction's
// batches remain: the marker with a delete horizon (KIP-534, as a tombstone's batch gets),
// which it keeps until the first pass after the horizon removes it.
func (f *batchFilter) orphanMarker(out, batch []byte, h *records.Header) (_ []byte, changed bool, err error) {
	if hasDeleteHorizon(h) {
		if f.nowMs >= h.BaseTimestamp {
			f.droppedMarkers[h.BaseOffset] = true
			return out, true, nil
		}
		f.nextHorizonMs = min(f.nextHorizonMs, h.BaseTimestamp)
		return append(out, batch...), false, nil
	}
	recs, err := records.Section(batch, h)
	if err != nil {
		return out, false, err
	}
	kept := f.scratch[:0]
	for rest, i := recs, int32(0); i < h.RecordCount; i++ {
		var r records.Record
		if r, rest, err = records.NextRecord(rest); err != nil {
			return out, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		kept = append(kept, r)
	}
	f.scratch = kept[:0]
	f.nextHorizonMs = min(f.nextHorizonMs, f.nowMs+f.deleteRetentionMs)
	out, err = f.rebuild(out, batch, h, kept, true)
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

// appendPlaceholder appends the empty batch that makes a cleaned segment reach to the end of
// the last old segment of its group: the header of that segment's last batch emptied as by
// appendEmptyBatch, but of no producer and neither control nor transactional when that batch
// was a marker (an empty control batch would not parse as a marker).
func appendPlaceholder(out, header []byte) []byte {
	start := len(out)
	out = appendEmptyBatch(out, header)
	nb := out[start:]
	attrs := binary.BigEndian.Uint16(nb[21:])
	if attrs&records.AttrControl == 0 {
		return out
	}
	binary.BigEndian.PutUint16(nb[21:], attrs&^(records.AttrControl|records.AttrTransactional))
	binary.BigEndian.PutUint64(nb[43:], math.MaxUint64) // producer id -1
	binary.BigEndian.PutUint16(nb[51:], math.MaxUint16) // producer epoch -1
	binary.BigEndian.PutUint32(nb[53:], math.MaxUint32) // base sequence -1
	binary.BigEndian.PutUint32(nb[17:], records.ComputeCRC(nb))
	return out
}

// mapBatch puts the keys of one batch's records at or after from into the offset map. It
// returns full=true with the offset of the first record that did not fit when the map is
// full; the records before it are mapped. The caller leaves out control batches and the
// batches of aborted transactions.
func mapBatch(m *OffsetMap, batch []byte, h *records.Header, from int64) (full bool, stoppedAt int64, err error) {
	if h.RecordCount == 0 {
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
