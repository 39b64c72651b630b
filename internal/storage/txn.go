package storage

import (
	"fmt"
	"slices"

	"github.com/samsa-io/samsa/internal/records"
)

// Transactions on the partition side, as Kafka's ProducerStateManager keeps them: each
// producer's ongoing transaction (the first offset of its first transactional batch since
// its last marker, producerEntry.txnFirst), the transactions completed by a marker that the
// high watermark has not passed yet (Kafka's unreplicated transactions), the last stable
// offset derived from both, and the aborted transactions of each segment (txnindex.go).

// control is what an append needs to know of a control batch's record.
type control struct {
	marker     bool // a transaction marker (COMMIT or ABORT)
	commit     bool
	coordEpoch int32
}

// parseControl reads the control record of a control batch; a batch that is not a control
// batch has none.
func parseControl(batch []byte, h *records.Header) (control, error) {
	if !h.IsControl() || h.ProducerID < 0 {
		return control{}, nil
	}
	typ, epoch, isMarker, err := records.ParseControl(batch, h)
	if err != nil {
		return control{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return control{marker: isMarker, commit: typ == records.ControlCommit, coordEpoch: epoch}, nil
}

// txnEvent is a transaction an append begins (end=false) or ends with a marker at last.
type txnEvent struct {
	producerID  int64
	first, last int64
	end         bool
	aborted     bool
}

// txnRange is a transaction completed by its marker at last.
type txnRange struct{ first, last int64 }

// txnStates are the transactions of a log that hold its last stable offset back.
type txnStates struct {
	// ongoing maps each producer with an open transaction to its first offset.
	ongoing map[int64]int64
	// completed are the transactions ended by a marker not yet known to be below the high
	// watermark, by ascending marker offset.
	completed []txnRange
	// cached is the view of the current state, nil after a change.
	cached *txnView
}

func (t *txnStates) begin(id, first int64) {
	t.cached = nil
	if t.ongoing == nil {
		t.ongoing = make(map[int64]int64)
	}
	t.ongoing[id] = first
}

// apply makes an append's transaction events current and returns the aborted transactions
// with their last stable offset (Kafka's AbortedTxn: the first offset of the oldest other
// transaction still open, or the offset after the marker).
func (t *txnStates) apply(events []txnEvent) []AbortedTxn {
	var aborted []AbortedTxn
	t.cached = nil
	for _, ev := range events {
		if !ev.end {
			t.begin(ev.producerID, ev.first)
			continue
		}
		delete(t.ongoing, ev.producerID)
		t.completed = append(t.completed, txnRange{first: ev.first, last: ev.last})
		if ev.aborted {
			lso := ev.last + 1
			if first, ok := t.firstOngoing(); ok {
				lso = first
			}
			aborted = append(aborted, AbortedTxn{ProducerID: ev.producerID, FirstOffset: ev.first, LastOffset: ev.last, LastStableOffset: lso})
		}
	}
	return aborted
}

// firstOngoing returns the first offset of the oldest open transaction.
func (t *txnStates) firstOngoing() (int64, bool) {
	first, ok := int64(0), false
	for _, off := range t.ongoing {
		if !ok || off < first {
			first, ok = off, true
		}
	}
	return first, ok
}

// pruneBelow forgets the completed transactions whose marker is below the high watermark hw.
func (t *txnStates) pruneBelow(hw int64) {
	i, _ := slices.BinarySearchFunc(t.completed, hw, func(r txnRange, hw int64) int {
		if r.last < hw {
			return -1
		}
		return 1
	})
	if i > 0 {
		t.completed = slices.Delete(t.completed, 0, i)
		t.cached = nil
	}
}

// view returns the immutable copy readers use.
func (t *txnStates) view() *txnView {
	if t.cached != nil {
		return t.cached
	}
	if len(t.ongoing) == 0 && len(t.completed) == 0 {
		return nil
	}
	v := &txnView{firstOngoing: -1, completed: slices.Clone(t.completed)}
	if first, ok := t.firstOngoing(); ok {
		v.firstOngoing = first
	}
	t.cached = v
	return v
}

// txnView is the immutable transaction state readers use for the last stable offset.
type txnView struct {
	firstOngoing int64 // -1: no open transaction
	completed    []txnRange
}

// firstUnstable returns the first offset a read_committed reader must not pass given the
// high watermark hw: the oldest open transaction's first offset, or the first offset of a
// completed transaction whose marker is not below hw yet; ok is false when there is none.
func (v *txnView) firstUnstable(hw int64) (int64, bool) {
	if v == nil {
		return 0, false
	}
	first, ok := v.firstOngoing, v.firstOngoing >= 0
	for i := len(v.completed) - 1; i >= 0 && v.completed[i].last >= hw; i-- {
		if !ok || v.completed[i].first < first {
			first, ok = v.completed[i].first, true
		}
	}
	return first, ok
}

// LastStableOffset returns the last stable offset for the high watermark hw (Kafka's
// UnifiedLog.lastStableOffset): the first offset of the oldest transaction that is still
// open, or that a marker not yet below hw ended, if it is below hw; else hw. It also notes hw
// so that later appends forget the transactions completed below it.
func (l *Log) LastStableOffset(hw int64) int64 {
	l.NoteHighWatermark(hw)
	if first, ok := l.view.Load().txns.firstUnstable(hw); ok && first < hw {
		return first
	}
	return hw
}

// FirstUnstableOffset returns the first offset of the oldest open transaction, or of a
// completed one whose marker the last noted high watermark has not passed; ok is false when
// there is none.
func (l *Log) FirstUnstableOffset() (int64, bool) {
	return l.view.Load().txns.firstUnstable(l.highWatermark.Load())
}

// NoteHighWatermark tells the log its partition's high watermark (Kafka's
// onHighWatermarkUpdated): completed transactions whose marker is below it no longer hold
// the last stable offset and are forgotten at the next transaction change.
func (l *Log) NoteHighWatermark(hw int64) {
	for {
		cur := l.highWatermark.Load()
		if hw <= cur || l.highWatermark.CompareAndSwap(cur, hw) {
			return
		}
	}
}

// AppendMarker appends a transaction marker as leader, as the transaction coordinator's
// WriteTxnMarkers does: a control batch ending producer m.ProducerID's transaction with
// COMMIT or ABORT. A marker whose producer epoch is older than the producer's is
// ErrInvalidProducerEpoch; one whose coordinator epoch is older than the producer's last
// marker's is ErrTransactionCoordinatorFenced. An ABORT is recorded in the active segment's
// aborted-transaction index.
func (l *Log) AppendMarker(m records.EndTxnMarker, leaderEpoch int32) (AppendResult, error) {
	return l.AppendAsLeader(m.Batch(l.now().UnixMilli()), leaderEpoch)
}

// AbortedTransactions returns the aborted transactions a read_committed fetch of the
// offsets [start, upper) must know (Kafka's collectAbortedTransactions): those whose marker
// is at or after start and whose first offset is below upper, in marker order, from the
// segment holding start onward, stopping at the first segment that holds one whose last
// stable offset is at or beyond upper (no transaction open before upper ends later).
func (l *Log) AbortedTransactions(start, upper int64) []AbortedTxn {
	v := l.view.Load()
	var out []AbortedTxn
	for i := v.segmentFor(start); i < v.count(); i++ {
		info := v.at(i)
		complete := false
		for _, a := range info.aborted {
			if a.LastOffset >= start && a.FirstOffset < upper {
				out = append(out, a)
			}
			if a.LastStableOffset >= upper {
				complete = true
			}
		}
		if complete {
			break
		}
	}
	return out
}

// HasOngoingTransaction reports whether producer pid at epoch has a transaction open in this
// log (a transactional batch appended, no marker since), as Kafka's
// UnifiedLog.hasOngoingTransaction: the coordinator verified that transaction's first batch
// here, and only a marker (or a newer epoch) ends it, so the later batches of the same
// transaction need no verification (KIP-890).
func (l *Log) HasOngoingTransaction(pid int64, epoch int16) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.mu.producers.producers[pid]
	return ok && e.epoch == epoch && e.txnFirst >= 0
}
