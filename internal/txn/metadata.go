package txn

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Metadata is the state of one transactional id (Kafka's TransactionMetadata), as the
// __transaction_state record carries it.
type Metadata struct {
	TransactionalID string
	// ProducerID is the producer id in use; PreviousProducerID the one before the last
	// transition (KIP-890: a retry across a producer id rotation is recognized by it);
	// NextProducerID the id a TV2 transaction end rotates to when the epoch is exhausted.
	ProducerID         int64
	PreviousProducerID int64
	NextProducerID     int64
	ProducerEpoch      int16
	// LastProducerEpoch is the epoch before the last bump (KIP-360 retries). Like Kafka, it
	// is not in the record: a loaded transaction has -1.
	LastProducerEpoch int16
	TimeoutMs         int32
	State             State
	// Partitions are the partitions in the transaction, sorted.
	Partitions []TopicPartition
	// StartTimestamp is when the transaction started (first partition added), -1 if none;
	// LastUpdateTimestamp when the id last changed (expiration counts from it). Milliseconds.
	StartTimestamp      int64
	LastUpdateTimestamp int64
	// ClientTransactionVersion is the transaction version the client used in its last
	// transition (TV2 bumps the epoch at every transaction end).
	ClientTransactionVersion TransactionVersion
}

func (m Metadata) clone() Metadata {
	m.Partitions = slices.Clone(m.Partitions)
	return m
}

func (m Metadata) hasPartition(tp TopicPartition) bool {
	_, ok := slices.BinarySearchFunc(m.Partitions, tp, comparePartitions)
	return ok
}

func comparePartitions(a, b TopicPartition) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// withPartitions returns the sorted union of ps and add, without duplicates.
func withPartitions(ps, add []TopicPartition) []TopicPartition {
	out := slices.Clone(ps)
	for _, tp := range add {
		if i, ok := slices.BinarySearchFunc(out, tp, comparePartitions); !ok {
			out = slices.Insert(out, i, tp)
		}
	}
	return out
}

// entry is a transactional id's committed metadata and the transition being written.
type entry struct {
	meta Metadata
	// pending is the transition whose record is being appended (Kafka's pendingState):
	// other transitions wait (CONCURRENT_TRANSACTIONS) until it is acknowledged or failed.
	// While markers are being written it holds the CompleteCommit/CompleteAbort transition.
	pending *Metadata
	// failedFence remembers that an epoch fence was bumped in memory but not written, so
	// the next fence does not bump again (the bumped epoch was never handed out).
	failedFence bool
	// markers are the partitions whose marker is still unwritten (PrepareCommit or
	// PrepareAbort written, markers sent), nil when no marker is outstanding.
	markers map[TopicPartition]bool
}

// errIllegalTransition is a transition the state machine should never attempt (Kafka
// throws IllegalStateException); the request gets UNKNOWN_SERVER_ERROR.
var errIllegalTransition = kerr.UnknownServerError

// prepare checks a transition as Kafka's prepareTransitionTo does and makes it pending. The
// previous producer id of every transition is the current one, as Kafka records it.
func (e *entry) prepare(next *Metadata) error {
	if e.pending != nil {
		return fmt.Errorf("%w: %s already moving to %s", errIllegalTransition, e.meta.TransactionalID, e.pending.State)
	}
	if next.ProducerID < 0 || (next.State != StateDead && next.ProducerEpoch < 0) {
		return fmt.Errorf("%w: producer id %d epoch %d", errIllegalTransition, next.ProducerID, next.ProducerEpoch)
	}
	if !next.State.validPrevious(e.meta.State) {
		return fmt.Errorf("%w: %s to %s", errIllegalTransition, e.meta.State, next.State)
	}
	next.PreviousProducerID = e.meta.ProducerID
	e.pending = next
	return nil
}

// initTransition is InitProducerId on an id with no transaction in progress: a new epoch
// (or the same one for a KIP-360 retry), or a new producer id when the epoch is exhausted.
// expected is nil when the request carried no producer id and epoch. newID allocates.
func (e *entry) initTransition(now int64, timeoutMs int32, expected *producerIDEpoch, newID func() (int64, error)) (Metadata, error) {
	cur := e.meta
	next := cur.clone()
	next.State = StateEmpty
	next.TimeoutMs = timeoutMs
	next.Partitions = nil
	next.StartTimestamp = -1
	next.LastUpdateTimestamp = now
	if isEpochExhausted(cur.ProducerEpoch) && (expected == nil || expected.epoch == cur.ProducerEpoch) {
		id, err := newID()
		if err != nil {
			return Metadata{}, err
		}
		next.ProducerID, next.ProducerEpoch = id, 0
		next.LastProducerEpoch = noProducerEpoch
		if expected != nil {
			next.LastProducerEpoch = cur.ProducerEpoch
		}
		return next, nil
	}
	switch {
	case expected == nil:
		next.ProducerEpoch, next.LastProducerEpoch = cur.ProducerEpoch+1, noProducerEpoch
	case cur.ProducerEpoch == noProducerEpoch || expected.epoch == cur.ProducerEpoch:
		next.ProducerEpoch, next.LastProducerEpoch = cur.ProducerEpoch+1, cur.ProducerEpoch
	case expected.epoch == cur.LastProducerEpoch:
		// A retry of a bump whose answer was lost: the same epoch again.
		return next, nil
	default:
		return Metadata{}, kerr.ProducerFenced
	}
	if isEpochExhausted(cur.ProducerEpoch) {
		// Kafka throws IllegalStateException here (UNKNOWN_SERVER_ERROR); an exhausted epoch
		// that is not the caller's is a fenced producer.
		return Metadata{}, kerr.ProducerFenced
	}
	return next, nil
}

// endTransition is the move to PrepareCommit or PrepareAbort (Kafka's prepareAbortOrCommit):
// with TV2 the epoch is bumped (not past the maximum for an abort) and nextProducerID, when
// not -1, is the id the transaction's completion rotates to.
func (e *entry) endTransition(now int64, next State, tv TransactionVersion, nextProducerID int64, noPartitionAdded bool) (Metadata, error) {
	cur := e.meta
	m := cur.clone()
	m.State = next
	if tv.supportsEpochBump() {
		if cur.ProducerEpoch == maxEpoch && next == StatePrepareCommit {
			return Metadata{}, fmt.Errorf("%w: commit at the maximum epoch", errIllegalTransition)
		}
		if cur.ProducerEpoch < maxEpoch {
			m.ProducerEpoch = cur.ProducerEpoch + 1
		}
		m.LastProducerEpoch = cur.ProducerEpoch
	}
	if noPartitionAdded {
		m.StartTimestamp = now
	}
	m.NextProducerID = nextProducerID
	m.LastUpdateTimestamp = now
	m.ClientTransactionVersion = tv
	return m, nil
}

// completeTransition is the move from PrepareCommit/PrepareAbort to CompleteCommit/
// CompleteAbort once every marker is written (Kafka's prepareComplete): a TV2 transaction
// whose epoch was exhausted moves to its next producer id at epoch 0.
func (e *entry) completeTransition(now int64) Metadata {
	cur := e.meta
	m := cur.clone()
	m.State = StateCompleteCommit
	if cur.State == StatePrepareAbort {
		m.State = StateCompleteAbort
	}
	if cur.ClientTransactionVersion.supportsEpochBump() && cur.NextProducerID != noProducerID {
		m.ProducerID, m.ProducerEpoch = cur.NextProducerID, 0
	}
	m.NextProducerID = noProducerID
	m.Partitions = nil
	m.LastUpdateTimestamp = now
	return m
}

type producerIDEpoch struct {
	id    int64
	epoch int16
}
