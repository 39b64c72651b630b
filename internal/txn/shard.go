package txn

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ProducerIDs allocates a new producer id (through the controller's AllocateProducerIds
// blocks in the broker). A *kerr.Error it returns is answered as is (Kafka answers
// COORDINATOR_LOAD_IN_PROGRESS while no block is available); other errors are
// UNKNOWN_SERVER_ERROR.
type ProducerIDs func() (int64, error)

// Shard is the state machine of one __transaction_state partition: the transactional ids
// that hash to it (PartitionFor). It does no I/O and has no clock: every operation takes the
// time, and returns what to append (a *Write) and what to do next. It is not safe for
// concurrent use; the runtime calls it under the partition's lock.
//
// A request that changes state returns a Result with a Write: the runtime appends
// Write.Records to the partition (acks=all, as Kafka) and then calls Appended with the
// append's error, whose Outcome carries the response and the follow-up actions (markers to
// send, further writes). Until then the id's transition is pending and other requests on it
// get CONCURRENT_TRANSACTIONS, as in Kafka.
type Shard struct {
	partition        int32
	coordinatorEpoch int32
	set              Settings
	newProducerID    ProducerIDs
	txns             map[string]*entry
	loaded           bool
}

// NewShard returns the shard of a partition this broker leads at coordinatorEpoch (the
// partition's leader epoch, which the markers carry). Replay its records, then FinishLoad.
func NewShard(partition, coordinatorEpoch int32, set Settings, producerIDs ProducerIDs) *Shard {
	return &Shard{
		partition:        partition,
		coordinatorEpoch: coordinatorEpoch,
		set:              set,
		newProducerID:    producerIDs,
		txns:             make(map[string]*entry),
	}
}

// Write is an append the shard needs: Records go to the partition in one batch, then
// Appended gets the outcome.
type Write struct {
	Records []Record
	kind    writeKind
	entries []*entry
	nexts   []*Metadata
	// fence: the write aborts a transaction whose epoch the coordinator bumped (timeout or
	// InitProducerId on an ongoing transaction); fromInit: InitProducerId, which is
	// answered CONCURRENT_TRANSACTIONS once it is written.
	fence, fromInit bool
}

type writeKind uint8

const (
	writeInit     writeKind = iota // InitProducerId: Empty at a new epoch or producer id
	writeAdd                       // AddPartitionsToTxn / AddOffsetsToTxn: Ongoing
	writeEnd                       // EndTxn or a coordinator abort: PrepareCommit / PrepareAbort
	writeComplete                  // every marker written: CompleteCommit / CompleteAbort
	writeExpire                    // tombstones of expired transactional ids
)

// Result is a request's immediate answer: an error, or response fields, or a Write whose
// Outcome holds the answer.
type Result struct {
	Err           error
	ProducerID    int64
	ProducerEpoch int16
	Write         *Write
}

// Outcome is what follows an acknowledged (or failed) Write: the response to the request
// that caused it (Err, and for InitProducerId and EndTxn v5 the producer id and epoch), the
// markers to send, and further writes to append now (a completion record, or a retry of a
// completion record after COORDINATOR_NOT_AVAILABLE).
type Outcome struct {
	Err           error
	ProducerID    int64
	ProducerEpoch int16
	Markers       []MarkerRequest
	Writes        []*Write
}

// MarkerRequest is a WriteTxnMarkers entry to send to the leaders of Partitions.
type MarkerRequest struct {
	TransactionalID    string
	ProducerID         int64
	ProducerEpoch      int16
	CoordinatorEpoch   int32
	Commit             bool
	TransactionVersion TransactionVersion
	Partitions         []TopicPartition
}

// Replay applies one record of the partition while loading (offset order, tombstones
// included). Records of unknown versions are skipped, as Kafka does.
func (s *Shard) Replay(key, value []byte) error {
	id, m, err := DecodeRecord(key, value)
	switch {
	case IsUnknownVersion(err):
		return nil
	case err != nil:
		return err
	case m == nil:
		delete(s.txns, id)
	default:
		s.txns[id] = &entry{meta: *m}
	}
	return nil
}

// FinishLoad ends loading: a transaction found in PrepareCommit or PrepareAbort (the
// previous coordinator failed before it completed) resumes sending its markers, as Kafka's
// loader does. Requests before FinishLoad get COORDINATOR_LOAD_IN_PROGRESS.
func (s *Shard) FinishLoad(now time.Time) Outcome {
	s.loaded = true
	var out Outcome
	for _, id := range slices.Sorted(maps.Keys(s.txns)) {
		e := s.txns[id]
		if e.meta.State == StatePrepareCommit || e.meta.State == StatePrepareAbort {
			o := s.startMarkers(now.UnixMilli(), e)
			out.Markers = append(out.Markers, o.Markers...)
			out.Writes = append(out.Writes, o.Writes...)
		}
	}
	return out
}

// newWrite makes next pending on e and returns the write of its record.
func (s *Shard) newWrite(kind writeKind, e *entry, next Metadata) (*Write, error) {
	if err := e.prepare(&next); err != nil {
		return nil, err
	}
	rec := Record{Key: EncodeKey(next.TransactionalID), Value: EncodeValue(next, s.set.TransactionVersion)}
	return &Write{Records: []Record{rec}, kind: kind, entries: []*entry{e}, nexts: []*Metadata{&next}}, nil
}

// appendError maps the partition's append error to the coordinator's answer, as Kafka's
// TransactionStateManager.appendTransactionToLog does. Errors that are not Kafka errors
// count as COORDINATOR_NOT_AVAILABLE (the client retries).
func appendError(err error) error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return kerr.CoordinatorNotAvailable
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge:
		return kerr.UnknownServerError
	}
	return ke
}

// Appended applies the result of appending w: appendErr is nil when the records are
// written (acks=all), else the append's error (a *kerr.Error as the partition answered).
func (s *Shard) Appended(now time.Time, w *Write, appendErr error) Outcome {
	err := appendError(appendErr)
	if w.kind == writeExpire {
		s.expireAppended(w, err)
		return Outcome{Err: err}
	}
	e, next := w.entries[0], w.nexts[0]
	if s.txns[next.TransactionalID] != e || e.pending != next {
		// The id was replaced meanwhile (reloaded); this shard no longer owns the write.
		return Outcome{Err: kerr.NotCoordinator}
	}
	if err != nil {
		if w.kind == writeComplete && err == kerr.CoordinatorNotAvailable {
			// Kafka retries the completion record until it is written or the partition moves.
			return Outcome{Err: err, Writes: []*Write{w}}
		}
		e.pending = nil
		if w.fence {
			e.failedFence = true
		}
		return Outcome{Err: err}
	}
	e.meta, e.pending = *next, nil
	switch w.kind {
	case writeInit:
		return Outcome{ProducerID: next.ProducerID, ProducerEpoch: next.ProducerEpoch}
	case writeEnd:
		out := s.startMarkers(now.UnixMilli(), e)
		if w.fromInit {
			out.Err, out.ProducerID, out.ProducerEpoch = kerr.ConcurrentTransactions, noProducerID, noProducerEpoch
		}
		return out
	}
	return Outcome{}
}

// startMarkers begins the completion of a transaction in PrepareCommit or PrepareAbort: the
// completion becomes pending, and the markers go to its partitions; with none (a TV2 abort
// of an empty transaction) the completion record is written at once. The producer id and
// epoch of the Outcome are those of the completed transaction (EndTxn v5's answer).
func (s *Shard) startMarkers(now int64, e *entry) Outcome {
	e.failedFence = false
	complete := e.completeTransition(now)
	if err := e.prepare(&complete); err != nil {
		return Outcome{Err: err}
	}
	out := Outcome{ProducerID: complete.ProducerID, ProducerEpoch: complete.ProducerEpoch}
	if len(e.meta.Partitions) == 0 {
		out.Writes = []*Write{s.completionWrite(e)}
		return out
	}
	e.markers = make(map[TopicPartition]bool, len(e.meta.Partitions))
	for _, tp := range e.meta.Partitions {
		e.markers[tp] = true
	}
	out.Markers = []MarkerRequest{{
		TransactionalID:    e.meta.TransactionalID,
		ProducerID:         e.meta.ProducerID,
		ProducerEpoch:      e.meta.ProducerEpoch,
		CoordinatorEpoch:   s.coordinatorEpoch,
		Commit:             e.meta.State == StatePrepareCommit,
		TransactionVersion: e.meta.ClientTransactionVersion,
		Partitions:         slices.Clone(e.meta.Partitions),
	}}
	return out
}

// completionWrite is the write of the pending completion record.
func (s *Shard) completionWrite(e *entry) *Write {
	next := e.pending
	rec := Record{Key: EncodeKey(next.TransactionalID), Value: EncodeValue(*next, s.set.TransactionVersion)}
	return &Write{Records: []Record{rec}, kind: writeComplete, entries: []*entry{e}, nexts: []*Metadata{next}}
}

// MarkerOutcome is what to do after a partition leader answered a marker.
type MarkerOutcome struct {
	// Retry: send this partition's marker again (after a backoff).
	Retry bool
	// Writes holds the completion record once every partition has its marker.
	Writes []*Write
}

// MarkerWritten applies a partition leader's answer to a marker of req (nil: written). It
// classifies errors as Kafka's TransactionMarkerRequestCompletionHandler: leadership and
// availability errors retry; UNSUPPORTED_FOR_MESSAGE_FORMAT / UNSUPPORTED_VERSION count as
// written (the producer could not write there either); INVALID_PRODUCER_EPOCH and
// TRANSACTION_COORDINATOR_FENCED stop the markers of the transaction (a newer producer or
// coordinator took over; it stays in its Prepare state until the partition is reloaded).
// Kafka fails on other errors; Samsa retries them. A partition whose topic was deleted
// should be reported written (nil), as Kafka drops its marker. Answers for markers this
// shard no longer waits for are ignored.
func (s *Shard) MarkerWritten(req MarkerRequest, tp TopicPartition, markerErr error) MarkerOutcome {
	e := s.txns[req.TransactionalID]
	if e == nil || e.markers == nil || !e.markers[tp] || e.meta.ProducerID != req.ProducerID ||
		e.meta.ProducerEpoch != req.ProducerEpoch || req.CoordinatorEpoch != s.coordinatorEpoch {
		return MarkerOutcome{}
	}
	var ke *kerr.Error
	errors.As(markerErr, &ke)
	switch {
	case markerErr == nil, ke == kerr.UnsupportedForMessageFormat, ke == kerr.UnsupportedVersion:
	case ke == kerr.InvalidProducerEpoch, ke == kerr.TransactionCoordinatorFenced:
		e.markers = nil
		return MarkerOutcome{}
	default:
		return MarkerOutcome{Retry: true}
	}
	delete(e.markers, tp)
	if len(e.markers) > 0 {
		return MarkerOutcome{}
	}
	e.markers = nil
	return MarkerOutcome{Writes: []*Write{s.completionWrite(e)}}
}

// AbortTimedOut aborts every Ongoing transaction older than its timeout, as Kafka's
// periodic transaction-abort task (every AbortTimedOutInterval): the epoch is bumped to
// fence the producer, then PrepareAbort is written. The writes are in id order.
func (s *Shard) AbortTimedOut(now time.Time) []*Write {
	if !s.loaded {
		return nil
	}
	nowMs := now.UnixMilli()
	var out []*Write
	for _, id := range slices.Sorted(maps.Keys(s.txns)) {
		e := s.txns[id]
		if e.pending != nil || e.meta.State != StateOngoing || e.meta.StartTimestamp+int64(e.meta.TimeoutMs) >= nowMs {
			continue
		}
		if w, err := s.fenceAndAbort(nowMs, e); err == nil {
			out = append(out, w)
		}
	}
	return out
}

// fenceAndAbort bumps the epoch of an Ongoing transaction in memory (never handed to a
// client, and not bumped again after a failed attempt) and prepares its abort with the
// cluster's transaction version, as Kafka's prepareFenceProducerEpoch and endTransaction
// with isFromClient=false.
func (s *Shard) fenceAndAbort(now int64, e *entry) (*Write, error) {
	if !e.failedFence && e.meta.ProducerEpoch < maxEpoch {
		e.meta.ProducerEpoch++
	}
	e.meta.LastProducerEpoch = noProducerEpoch
	tv := s.set.TransactionVersion
	if !tv.supportsEpochBump() {
		tv = TV0
	}
	next, err := e.endTransition(now, StatePrepareAbort, tv, noProducerID, false)
	if err != nil {
		return nil, err
	}
	w, err := s.newWrite(writeEnd, e, next)
	if err != nil {
		return nil, err
	}
	w.fence = true
	return w, nil
}

// ExpireTransactionalIDs removes the ids with no transaction in progress that have not
// changed for TransactionalIDExpiration (Kafka's transactionalId-expiration task, every
// RemoveExpiredInterval): one write of their tombstones, nil when there is none.
func (s *Shard) ExpireTransactionalIDs(now time.Time) *Write {
	if !s.loaded {
		return nil
	}
	limit := now.UnixMilli() - s.set.TransactionalIDExpiration.Milliseconds()
	w := &Write{kind: writeExpire}
	for _, id := range slices.Sorted(maps.Keys(s.txns)) {
		e := s.txns[id]
		if e.pending != nil || !e.meta.State.expirationAllowed() || e.meta.LastUpdateTimestamp > limit {
			continue
		}
		dead := e.meta.clone()
		dead.State, dead.Partitions = StateDead, nil
		if e.prepare(&dead) != nil {
			continue
		}
		w.entries = append(w.entries, e)
		w.nexts = append(w.nexts, &dead)
		w.Records = append(w.Records, Record{Key: EncodeKey(id)})
	}
	if len(w.entries) == 0 {
		return nil
	}
	return w
}

func (s *Shard) expireAppended(w *Write, err error) {
	for i, e := range w.entries {
		id := w.nexts[i].TransactionalID
		if s.txns[id] != e || e.pending != w.nexts[i] {
			continue
		}
		if err != nil {
			e.pending = nil
			continue
		}
		delete(s.txns, id)
	}
}

// allocate returns a new producer id, with the allocator's error as an answer.
func (s *Shard) allocate() (int64, error) {
	id, err := s.newProducerID()
	if err == nil {
		return id, nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return 0, ke
	}
	return 0, fmt.Errorf("%w: allocating a producer id: %w", kerr.UnknownServerError, err)
}

// Transaction returns a copy of an id's committed metadata (tests, tools).
func (s *Shard) Transaction(id string) (Metadata, bool) {
	e := s.txns[id]
	if e == nil {
		return Metadata{}, false
	}
	return e.meta.clone(), true
}

// Transactions returns a copy of every id's committed metadata, in id order.
func (s *Shard) Transactions() []Metadata {
	out := make([]Metadata, 0, len(s.txns))
	for _, id := range slices.Sorted(maps.Keys(s.txns)) {
		out = append(out, s.txns[id].meta.clone())
	}
	return out
}
