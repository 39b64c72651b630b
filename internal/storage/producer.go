package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

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

// producerEntry is the state of one producer id: its current epoch and its newest batches,
// oldest first.
type producerEntry struct {
	epoch   int16
	n       int
	batches [batchesToRetain]batchMeta
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

// producerStates is the idempotent-producer state of a log, guarded by Log.mu.
type producerStates struct {
	producers map[int64]*producerEntry
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
	p := pendingProducer{id: id, entry: producerEntry{epoch: -1}}
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

// check validates one client batch against the producer's state (Kafka's rules: fencing,
// duplicates, sequence continuity) and records it in u. A duplicate is reported with dup=true
// and the original batch's metadata; nothing is recorded then.
func (ps *producerStates) check(u *producerUpdates, h *records.Header, baseOffset int64) (orig batchMeta, dup bool, err error) {
	e := u.get(ps, h.ProducerID)
	lastSeq := h.LastSequence()
	if m, ok := e.findDuplicate(h.ProducerEpoch, h.BaseSequence, lastSeq); ok {
		return m, true, nil
	}
	if h.ProducerEpoch < e.epoch {
		return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d is older than the current %d",
			ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
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
	ps.applyTo(e, h, baseOffset)
	return batchMeta{}, false, nil
}

// applyTo records a batch in a producer entry without checks (replication and replay).
func (ps *producerStates) applyTo(e *producerEntry, h *records.Header, baseOffset int64) {
	e.setEpoch(h.ProducerEpoch)
	if h.IsControl() {
		return
	}
	e.add(batchMeta{
		firstSeq:   h.BaseSequence,
		lastSeq:    h.LastSequence(),
		baseOffset: baseOffset,
		lastOffset: baseOffset + int64(h.LastOffsetDelta),
		timestamp:  h.MaxTimestamp,
	})
}

// replay records a batch read back from the log or replicated from the leader.
func (ps *producerStates) replay(h *records.Header) {
	if h.ProducerID < 0 {
		return
	}
	e, ok := ps.producers[h.ProducerID]
	if !ok {
		e = &producerEntry{epoch: -1}
		ps.producers[h.ProducerID] = e
	}
	ps.applyTo(e, h, h.BaseOffset)
}

// commit makes the tentative states of a successful append current.
func (ps *producerStates) commit(u *producerUpdates) {
	for i := 0; i < u.n; i++ {
		p := u.at(i)
		if cur, ok := ps.producers[p.id]; ok {
			*cur = p.entry
		} else {
			e := p.entry
			ps.producers[p.id] = &e
		}
	}
}

// snapshotMagic starts a producer snapshot file; the digit is the format version.
const snapshotMagic = "SPS1"

const (
	snapshotHeaderSize   = 4 + 4 + 4
	snapshotProducerSize = 8 + 2 + 1
	snapshotBatchSize    = 4 + 4 + 8 + 8 + 8
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

// decodeSnapshot parses a snapshot, checking its CRC and every count against the bytes left.
func decodeSnapshot(b []byte) (*producerStates, error) {
	if len(b) < snapshotHeaderSize || string(b[:4]) != snapshotMagic {
		return nil, fmt.Errorf("%w: producer snapshot has a bad header", ErrCorrupt)
	}
	if crc32.Checksum(b[8:], crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return nil, fmt.Errorf("%w: producer snapshot CRC mismatch", ErrCorrupt)
	}
	count := binary.BigEndian.Uint32(b[8:])
	rest := b[snapshotHeaderSize:]
	if uint64(count)*snapshotProducerSize > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: producer snapshot count %d exceeds its size", ErrCorrupt, count)
	}
	ps := &producerStates{producers: make(map[int64]*producerEntry, count)}
	for range count {
		if len(rest) < snapshotProducerSize {
			return nil, fmt.Errorf("%w: producer snapshot truncated", ErrCorrupt)
		}
		id := int64(binary.BigEndian.Uint64(rest))
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(rest[8:]))}
		n := int(rest[10])
		rest = rest[snapshotProducerSize:]
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
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: producer snapshot has %d trailing bytes", ErrCorrupt, len(rest))
	}
	return ps, nil
}
