package storage

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/samsa-io/samsa/internal/records"
)

// batchesToRetain is how many batches per producer are remembered for duplicate detection,
// as in Kafka (max.in.flight.requests.per.connection for idempotence is at most 5).
const batchesToRetain = 5

// batchMeta describes an appended idempotent batch.
type batchMeta struct {
	firstSeq   int32
	lastSeq    int32
	baseOffset int64
	lastOffset int64
	timestamp  int64 // batch max timestamp
}

// producerEntry is the state of one producer id: its current epoch, its newest batches
// (oldest first), the first offset of its ongoing transaction on this partition (-1: none)
// and the coordinator epoch of its last transaction marker (-1: none yet).
type producerEntry struct {
	epoch      int16
	n          int
	batches    [batchesToRetain]batchMeta
	txnFirst   int64
	coordEpoch int32
}

// newProducerEntry is the state of a producer id not seen before.
func newProducerEntry() producerEntry {
	return producerEntry{epoch: -1, txnFirst: -1, coordEpoch: -1}
}

func (e *producerEntry) last() (batchMeta, bool) {
	if e.n == 0 {
		return batchMeta{}, false
	}
	return e.batches[e.n-1], true
}

// add remembers a batch, forgetting the oldest beyond batchesToRetain.
func (e *producerEntry) add(m batchMeta) {
	if e.n == batchesToRetain {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = m
	e.n++
}

// setEpoch moves the producer to a new epoch, dropping the batches of the old one.
func (e *producerEntry) setEpoch(epoch int16) {
	if e.epoch != epoch {
		e.epoch = epoch
		e.n = 0
	}
}

// findDuplicate returns the cached batch with the same sequence range, as Kafka does.
func (e *producerEntry) findDuplicate(epoch int16, firstSeq, lastSeq int32) (batchMeta, bool) {
	if epoch != e.epoch {
		return batchMeta{}, false
	}
	for i := 0; i < e.n; i++ {
		if e.batches[i].firstSeq == firstSeq && e.batches[i].lastSeq == lastSeq {
			return e.batches[i], true
		}
	}
	return batchMeta{}, false
}

// inSequence reports whether next follows last, wrapping at MaxInt32 as Kafka does.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// producerStates is the idempotent-producer and transaction state of a log, guarded by
// Log.mu (see txn.go for the transactions).
type producerStates struct {
	producers map[int64]*producerEntry
	txns      txnStates
}

func newProducerStates() *producerStates {
	return &producerStates{producers: make(map[int64]*producerEntry)}
}

// pendingProducer is the tentative new state of a producer during one append.
type pendingProducer struct {
	id    int64
	entry producerEntry
}

// producerUpdates collects the tentative states of one append, so that a failed append
// changes nothing. Most appends touch one producer; the inline array avoids allocating.
type producerUpdates struct {
	n      int
	inline [2]pendingProducer
	more   []pendingProducer
	// txnEvents are the transactions the append begins and ends, in offset order.
	txnEvents []txnEvent
}

func (u *producerUpdates) at(i int) *pendingProducer {
	if i < len(u.inline) {
		return &u.inline[i]
	}
	return &u.more[i-len(u.inline)]
}

func (u *producerUpdates) get(ps *producerStates, id int64) *producerEntry {
	for i := 0; i < u.n; i++ {
		if p := u.at(i); p.id == id {
			return &p.entry
		}
	}
	p := pendingProducer{id: id, entry: newProducerEntry()}
	if cur, ok := ps.producers[id]; ok {
		p.entry = *cur
	}
	if u.n < len(u.inline) {
		u.inline[u.n] = p
	} else {
		u.more = append(u.more, p)
	}
	u.n++
	return &u.at(u.n - 1).entry
}

// check validates one batch appended as leader against the producer's state (Kafka's rules:
// fencing, duplicates, sequence continuity; for transactions, ProducerAppendInfo's: a
// non-transactional batch during a transaction is refused, a marker older than the
// coordinator epoch is fenced) and records it in u. ctl is the batch's control record when
// it is a control batch. A duplicate is reported with dup=true and the original batch's
// metadata; nothing is recorded then.
func (ps *producerStates) check(u *producerUpdates, h *records.Header, baseOffset int64, ctl control) (orig batchMeta, dup bool, err error) {
	e := u.get(ps, h.ProducerID)
	lastSeq := h.LastSequence()
	if !h.IsControl() {
		if m, ok := e.findDuplicate(h.ProducerEpoch, h.BaseSequence, lastSeq); ok {
			return m, true, nil
		}
	}
	if h.ProducerEpoch < e.epoch {
		return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d is older than the current %d",
			ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	}
	if ctl.marker && ctl.coordEpoch < e.coordEpoch {
		return batchMeta{}, false, fmt.Errorf("%w: marker of producer %d has coordinator epoch %d, older than the %d of its last marker",
			ErrTransactionCoordinatorFenced, h.ProducerID, ctl.coordEpoch, e.coordEpoch)
	}
	if !h.IsControl() && !h.IsTransactional() && e.txnFirst >= 0 {
		return batchMeta{}, false, fmt.Errorf("%w: expected a transactional write from producer %d, whose transaction started at offset %d",
			ErrInvalidTxnState, h.ProducerID, e.txnFirst)
	}
	if !h.IsControl() {
		if h.ProducerEpoch != e.epoch {
			if h.BaseSequence != 0 && e.epoch != -1 {
				return batchMeta{}, false, fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, not %d",
					ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
			}
		} else if e.epoch != -1 {
			prevSeq := int32(-1) // an epoch without batches yet starts at 0
			if last, ok := e.last(); ok {
				prevSeq = last.lastSeq
			}
			if !inSequence(prevSeq, h.BaseSequence) {
				return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d sent sequence %d after %d",
					ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, prevSeq)
			}
		}
	}
	applyTo(u, h.ProducerID, e, h, baseOffset, ctl)
	return batchMeta{}, false, nil
}

// applyTo records a batch in a producer entry without checks (replication and replay), and
// the transaction it begins or ends in u.
func applyTo(u *producerUpdates, id int64, e *producerEntry, h *records.Header, baseOffset int64, ctl control) {
	e.setEpoch(h.ProducerEpoch)
	if h.IsControl() {
		if ctl.marker {
			first := e.txnFirst
			if first < 0 {
				first = baseOffset // a marker ending an empty transaction, as Kafka's CompletedTxn
			}
			u.txnEvents = append(u.txnEvents, txnEvent{producerID: id, first: first, last: baseOffset, end: true, aborted: !ctl.commit})
			e.txnFirst, e.coordEpoch = -1, ctl.coordEpoch
		}
		return
	}
	if h.IsTransactional() && e.txnFirst < 0 {
		e.txnFirst = baseOffset
		u.txnEvents = append(u.txnEvents, txnEvent{producerID: id, first: baseOffset})
	}
	e.add(batchMeta{
		firstSeq:   h.BaseSequence,
		lastSeq:    h.LastSequence(),
		baseOffset: baseOffset,
		lastOffset: baseOffset + int64(h.LastOffsetDelta),
		timestamp:  h.MaxTimestamp,
	})
}

// replay records a batch read back from the log or replicated from the leader (ctl: its
// control record) and returns the transaction it aborted, if it did.
func (ps *producerStates) replay(h *records.Header, ctl control) (AbortedTxn, bool) {
	if h.ProducerID < 0 {
		return AbortedTxn{}, false
	}
	var u producerUpdates
	applyTo(&u, h.ProducerID, u.get(ps, h.ProducerID), h, h.BaseOffset, ctl)
	aborted := ps.commit(&u)
	if len(aborted) == 0 {
		return AbortedTxn{}, false
	}
	return aborted[0], true
}

// commit makes the tentative states of a successful append current and returns the
// transactions it aborted, for the aborted-transaction index.
func (ps *producerStates) commit(u *producerUpdates) []AbortedTxn {
	for i := 0; i < u.n; i++ {
		p := u.at(i)
		if cur, ok := ps.producers[p.id]; ok {
			*cur = p.entry
		} else {
			e := p.entry
			ps.producers[p.id] = &e
		}
	}
	if len(u.txnEvents) == 0 {
		return nil
	}
	return ps.txns.apply(u.txnEvents)
}

// Producer snapshot magics; the digit is the format version. Version 2 adds each
// producer's ongoing transaction and coordinator epoch; version 1 is still read.
const (
	snapshotMagicV1 = "SPS1"
	snapshotMagic   = "SPS2"
)

const (
	snapshotHeaderSize     = 4 + 4 + 4
	snapshotProducerSizeV1 = 8 + 2 + 1
	snapshotProducerSize   = 8 + 2 + 8 + 4 + 1
	snapshotBatchSize      = 4 + 4 + 8 + 8 + 8
)

// encodeSnapshot renders the state in the snapshot format of the package doc.
func (ps *producerStates) encodeSnapshot() []byte {
	size := snapshotHeaderSize
	for _, e := range ps.producers {
		size += snapshotProducerSize + e.n*snapshotBatchSize
	}
	b := make([]byte, snapshotHeaderSize, size)
	copy(b, snapshotMagic)
	binary.BigEndian.PutUint32(b[8:], uint32(len(ps.producers)))
	for id, e := range ps.producers {
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.txnFirst))
		b = binary.BigEndian.AppendUint32(b, uint32(e.coordEpoch))
		b = append(b, byte(e.n))
		for _, m := range e.batches[:e.n] {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.baseOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.timestamp))
		}
	}
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(b[8:], crcTable))
	return b
}

// decodeSnapshot parses a snapshot (version 2, or 1 whose producers have no transaction),
// checking its CRC and every count against the bytes left.
func decodeSnapshot(b []byte) (*producerStates, error) {
	if len(b) < snapshotHeaderSize || (string(b[:4]) != snapshotMagic && string(b[:4]) != snapshotMagicV1) {
		return nil, fmt.Errorf("%w: producer snapshot has a bad header", ErrCorrupt)
	}
	producerSize := snapshotProducerSize
	if string(b[:4]) == snapshotMagicV1 {
		producerSize = snapshotProducerSizeV1
	}
	if crc32.Checksum(b[8:], crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return nil, fmt.Errorf("%w: producer snapshot CRC mismatch", ErrCorrupt)
	}
	count := binary.BigEndian.Uint32(b[8:])
	rest := b[snapshotHeaderSize:]
	if uint64(count)*uint64(producerSize) > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: producer snapshot count %d exceeds its size", ErrCorrupt, count)
	}
	ps := &producerStates{producers: make(map[int64]*producerEntry, count)}
	for range count {
		if len(rest) < producerSize {
			return nil, fmt.Errorf("%w: producer snapshot truncated", ErrCorrupt)
		}
		id := int64(binary.BigEndian.Uint64(rest))
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(rest[8:])), txnFirst: -1, coordEpoch: -1}
		if producerSize == snapshotProducerSize {
			e.txnFirst = int64(binary.BigEndian.Uint64(rest[10:]))
			e.coordEpoch = int32(binary.BigEndian.Uint32(rest[18:]))
		}
		n := int(rest[producerSize-1])
		rest = rest[producerSize:]
		if n > batchesToRetain || len(rest) < n*snapshotBatchSize {
			return nil, fmt.Errorf("%w: producer snapshot batch count %d invalid", ErrCorrupt, n)
		}
		for i := range n {
			e.batches[i] = batchMeta{
				firstSeq:   int32(binary.BigEndian.Uint32(rest)),
				lastSeq:    int32(binary.BigEndian.Uint32(rest[4:])),
				baseOffset: int64(binary.BigEndian.Uint64(rest[8:])),
				lastOffset: int64(binary.BigEndian.Uint64(rest[16:])),
				timestamp:  int64(binary.BigEndian.Uint64(rest[24:])),
			}
			rest = rest[snapshotBatchSize:]
		}
		e.n = n
		ps.producers[id] = e
		if e.txnFirst >= 0 {
			ps.txns.begin(id, e.txnFirst)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: producer snapshot has %d trailing bytes", ErrCorrupt, len(rest))
	}
	return ps, nil
}

// NextSequence returns the sequence the producer's next batch of this epoch must start at on
// this log: after its last batch when that was of the same epoch, else 0. The group
// coordinator numbers its transactional offset commit batches with it (TxnOffsetCommit).
func (l *Log) NextSequence(producerID int64, epoch int16) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.mu.producers.producers[producerID]
	if e == nil || e.epoch != epoch {
		return 0
	}
	last, ok := e.last()
	if !ok {
		return 0
	}
	if last.lastSeq == math.MaxInt32 {
		return 0
	}
	return last.lastSeq + 1
}

// ProducerInfo is one producer's state on a log, as DescribeProducers reports it.
type ProducerInfo struct {
	ProducerID    int64
	Epoch         int16
	LastSequence  int32 // -1: no batch remembered
	LastTimestamp int64 // the last batch's max timestamp; -1: none
	// CoordinatorEpoch is the coordinator epoch of its last marker (-1: none yet).
	CoordinatorEpoch int32
	// TxnStartOffset is the first offset of its ongoing transaction (-1: none).
	TxnStartOffset int64
}

// Producers returns the state of every producer the log remembers, by producer id.
func (l *Log) Producers() []ProducerInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ProducerInfo, 0, len(l.mu.producers.producers))
	for id, e := range l.mu.producers.producers {
		pi := ProducerInfo{ProducerID: id, Epoch: e.epoch, LastSequence: -1, LastTimestamp: -1,
			CoordinatorEpoch: e.coordEpoch, TxnStartOffset: e.txnFirst}
		if last, ok := e.last(); ok {
			pi.LastSequence, pi.LastTimestamp = last.lastSeq, last.timestamp
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}
