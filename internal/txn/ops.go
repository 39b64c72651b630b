package txn

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/group"
)

// InitProducerIDRequest is InitProducerId with a transactional id.
type InitProducerIDRequest struct {
	TransactionalID      string
	TransactionTimeoutMs int32
	// ProducerID and ProducerEpoch are the client's current ones (KIP-360, v3+), -1 and -1
	// when it has none.
	ProducerID    int64
	ProducerEpoch int16
}

// InitProducerID answers InitProducerId for a transactional id, as Kafka's
// handleInitProducerId: a new id gets a new producer id at epoch 0; an existing one with no
// transaction in progress a bumped epoch (a new producer id when the epoch is exhausted);
// an Ongoing transaction is aborted first with a fenced epoch and the answer, once the
// abort is written, is CONCURRENT_TRANSACTIONS (the client retries and gets the next epoch).
func (s *Shard) InitProducerID(now time.Time, req InitProducerIDRequest) Result {
	var expected *producerIDEpoch
	switch {
	case req.ProducerID == noProducerID && req.ProducerEpoch == noProducerEpoch:
	case req.ProducerID == noProducerID || req.ProducerEpoch == noProducerEpoch:
		return initError(kerr.InvalidRequest)
	default:
		expected = &producerIDEpoch{req.ProducerID, req.ProducerEpoch}
	}
	switch {
	case req.TransactionalID == "":
		return initError(kerr.InvalidRequest)
	case req.TransactionTimeoutMs <= 0 || int64(req.TransactionTimeoutMs) > s.set.MaxTimeout.Milliseconds():
		return initError(kerr.InvalidTransactionTimeout)
	case !s.loaded:
		return initError(kerr.CoordinatorLoadInProgress)
	}
	nowMs := now.UnixMilli()
	e := s.txns[req.TransactionalID]
	if e == nil {
		id, err := s.allocate()
		if err != nil {
			return initError(err)
		}
		e = &entry{meta: Metadata{
			TransactionalID:    req.TransactionalID,
			ProducerID:         id,
			PreviousProducerID: noProducerID,
			NextProducerID:     noProducerID,
			ProducerEpoch:      noProducerEpoch,
			LastProducerEpoch:  noProducerEpoch,
			TimeoutMs:          req.TransactionTimeoutMs,
			State:              StateEmpty,
			StartTimestamp:     -1,
			// Kept in memory even if its first record fails, as Kafka's cache does.
			LastUpdateTimestamp: nowMs,
		}}
		s.txns[req.TransactionalID] = e
	}
	cur := e.meta
	if e.pending != nil {
		return initError(kerr.ConcurrentTransactions)
	}
	if expected != nil && !(cur.ProducerEpoch == noProducerEpoch || expected.id == cur.ProducerID ||
		(expected.id == cur.PreviousProducerID && isEpochExhausted(expected.epoch))) {
		return initError(kerr.ProducerFenced)
	}
	switch cur.State {
	case StatePrepareCommit, StatePrepareAbort:
		return initError(kerr.ConcurrentTransactions)
	case StateEmpty, StateCompleteCommit, StateCompleteAbort:
		next, err := e.initTransition(nowMs, req.TransactionTimeoutMs, expected, s.allocate)
		if err != nil {
			return initError(err)
		}
		w, err := s.newWrite(writeInit, e, next)
		if err != nil {
			return initError(err)
		}
		return Result{ProducerID: noProducerID, ProducerEpoch: noProducerEpoch, Write: w}
	case StateOngoing:
		w, err := s.fenceAndAbort(nowMs, e)
		if err != nil {
			return initError(err)
		}
		w.fromInit = true
		return Result{ProducerID: noProducerID, ProducerEpoch: noProducerEpoch, Write: w}
	}
	return initError(errIllegalTransition)
}

func initError(err error) Result {
	return Result{Err: err, ProducerID: noProducerID, ProducerEpoch: noProducerEpoch}
}

// AddPartitions adds partitions to the transaction (AddPartitionsToTxn v3 from a client,
// or v4+ without verifyOnly: the partition leader's implicit add for a TV2 client), as
// Kafka's handleAddPartitionsToTransaction. tv is the client's transaction version (TV2
// for AddPartitionsToTxn v5+, TV0 before).
func (s *Shard) AddPartitions(now time.Time, transactionalID string, producerID int64, producerEpoch int16, partitions []TopicPartition, tv TransactionVersion) Result {
	if transactionalID == "" {
		return Result{Err: kerr.InvalidRequest}
	}
	if !s.loaded {
		return Result{Err: kerr.CoordinatorLoadInProgress}
	}
	e := s.txns[transactionalID]
	switch {
	case e == nil:
		return Result{Err: kerr.InvalidProducerIDMapping}
	case e.pending != nil:
		return Result{Err: kerr.ConcurrentTransactions}
	case e.meta.ProducerID != producerID:
		return Result{Err: kerr.InvalidProducerIDMapping}
	case e.meta.ProducerEpoch != producerEpoch:
		return Result{Err: kerr.ProducerFenced}
	case e.meta.State == StatePrepareCommit || e.meta.State == StatePrepareAbort:
		return Result{Err: kerr.ConcurrentTransactions}
	}
	if e.meta.State == StateOngoing && allIn(e.meta, partitions) {
		return Result{}
	}
	nowMs := now.UnixMilli()
	next := e.meta.clone()
	if next.State == StateEmpty || next.State == StateCompleteCommit || next.State == StateCompleteAbort {
		next.StartTimestamp = nowMs
	}
	next.State = StateOngoing
	next.Partitions = withPartitions(e.meta.Partitions, partitions)
	next.LastUpdateTimestamp = nowMs
	next.ClientTransactionVersion = normalize(tv)
	w, err := s.newWrite(writeAdd, e, next)
	if err != nil {
		return Result{Err: err}
	}
	return Result{Write: w}
}

func allIn(m Metadata, partitions []TopicPartition) bool {
	for _, tp := range partitions {
		if !m.hasPartition(tp) {
			return false
		}
	}
	return true
}

// normalize maps a client's transaction version to the two sets of rules Kafka applies:
// TV2 (epoch bump per transaction) or TV0.
func normalize(tv TransactionVersion) TransactionVersion {
	if tv.supportsEpochBump() {
		return TV2
	}
	return TV0
}

// AddOffsets adds the group's __consumer_offsets partition to the transaction
// (AddOffsetsToTxn; tv is TV2 from version 4).
func (s *Shard) AddOffsets(now time.Time, transactionalID string, producerID int64, producerEpoch int16, groupID string, tv TransactionVersion) Result {
	tp := TopicPartition{group.OffsetsTopic, group.PartitionFor(groupID, s.set.OffsetsTopicNumPartitions)}
	return s.AddPartitions(now, transactionalID, producerID, producerEpoch, []TopicPartition{tp}, tv)
}

// VerifyPartitions answers AddPartitionsToTxn v4+ with verifyOnly (KIP-890 part 1): for each
// partition, nil when it is in the ongoing transaction of this producer id and epoch, else
// TRANSACTION_ABORTABLE; the whole transaction's error when the producer does not match
// (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED) or it is completing (CONCURRENT_TRANSACTIONS).
// Nothing is written.
func (s *Shard) VerifyPartitions(transactionalID string, producerID int64, producerEpoch int16, partitions []TopicPartition) map[TopicPartition]error {
	var all error
	e := s.txns[transactionalID]
	switch {
	case transactionalID == "":
		all = kerr.InvalidRequest
	case !s.loaded:
		all = kerr.CoordinatorLoadInProgress
	case e == nil, e.meta.ProducerID != producerID:
		all = kerr.InvalidProducerIDMapping
	case e.meta.ProducerEpoch != producerEpoch:
		all = kerr.ProducerFenced
	case e.meta.State == StatePrepareCommit || e.meta.State == StatePrepareAbort:
		all = kerr.ConcurrentTransactions
	}
	out := make(map[TopicPartition]error, len(partitions))
	for _, tp := range partitions {
		switch {
		case all != nil:
			out[tp] = all
		case e.meta.hasPartition(tp):
			out[tp] = nil
		default:
			out[tp] = kerr.TransactionAbortable
		}
	}
	return out
}

// EndTxn commits or aborts the transaction, as Kafka's handleEndTransaction with its two
// rule sets: before TV2 the epoch must match and a repeated end is answered from the
// Complete state; with TV2 (EndTxn v5+) the end bumps the epoch, an abort is allowed with
// no partition added, and a retry is recognized by the bumped epoch (or the rotated
// producer id), so a late EndTxn of an earlier transaction is fenced. The answer carries
// the producer id and epoch the client continues with (v5).
func (s *Shard) EndTxn(now time.Time, transactionalID string, producerID int64, producerEpoch int16, commit bool, tv TransactionVersion) Result {
	if transactionalID == "" {
		return initError(kerr.InvalidRequest)
	}
	if !s.loaded {
		return initError(kerr.CoordinatorLoadInProgress)
	}
	e := s.txns[transactionalID]
	if e == nil {
		return initError(kerr.InvalidProducerIDMapping)
	}
	tv = normalize(tv)
	cur := e.meta
	next := StatePrepareAbort
	if commit {
		next = StatePrepareCommit
	}
	var retry bool
	if tv.supportsEpochBump() {
		retryOnOverflow := cur.PreviousProducerID == producerID && producerEpoch == maxEpoch-1 && cur.ProducerEpoch == 0
		retryOnBump := int32(cur.ProducerEpoch) == int32(producerEpoch)+1
		retry = retryOnOverflow || retryOnBump
		var validEpoch bool
		switch cur.State {
		case StatePrepareCommit, StatePrepareAbort:
			validEpoch = retryOnBump
		case StateCompleteCommit, StateCompleteAbort:
			validEpoch = retry || producerEpoch == cur.ProducerEpoch
		default:
			validEpoch = producerEpoch == cur.ProducerEpoch
		}
		switch {
		case e.pending != nil:
			return initError(kerr.ConcurrentTransactions)
		case cur.ProducerID != producerID && !retryOnOverflow:
			return initError(kerr.InvalidProducerIDMapping)
		case !validEpoch:
			return initError(kerr.ProducerFenced)
		}
	} else {
		switch {
		case cur.ProducerID != producerID:
			return initError(kerr.InvalidProducerIDMapping)
		case producerEpoch != cur.ProducerEpoch:
			return initError(kerr.ProducerFenced)
		case e.pending != nil:
			return initError(kerr.ConcurrentTransactions)
		}
		retry = true // before TV2 a repeated end is recognized by the state alone
	}
	done := Result{ProducerID: cur.ProducerID, ProducerEpoch: cur.ProducerEpoch}
	switch cur.State {
	case StateOngoing:
		return s.endWrite(now, e, next, tv, false)
	case StateCompleteCommit:
		switch {
		case commit && retry:
			return done
		case !commit && !retry && tv.supportsEpochBump():
			return s.endWrite(now, e, next, tv, true)
		}
	case StateCompleteAbort:
		switch {
		case !commit && retry:
			return done
		case !commit && tv.supportsEpochBump():
			return s.endWrite(now, e, next, tv, true)
		}
	case StatePrepareCommit:
		if commit {
			return initError(kerr.ConcurrentTransactions)
		}
	case StatePrepareAbort:
		if !commit {
			return initError(kerr.ConcurrentTransactions)
		}
	case StateEmpty:
		if !commit && tv.supportsEpochBump() {
			return s.endWrite(now, e, next, tv, true)
		}
	default:
		return initError(errIllegalTransition)
	}
	return initError(kerr.InvalidTxnState)
}

// endWrite prepares the move to PrepareCommit/PrepareAbort; with TV2 an exhausted epoch
// gets the next producer id now, which the completion rotates to.
func (s *Shard) endWrite(now time.Time, e *entry, next State, tv TransactionVersion, noPartitionAdded bool) Result {
	nextID := noProducerID
	if tv.supportsEpochBump() && isEpochExhausted(e.meta.ProducerEpoch) {
		id, err := s.allocate()
		if err != nil {
			return initError(err)
		}
		nextID = id
	}
	m, err := e.endTransition(now.UnixMilli(), next, tv, nextID, noPartitionAdded)
	if err != nil {
		return initError(err)
	}
	w, err := s.newWrite(writeEnd, e, m)
	if err != nil {
		return initError(err)
	}
	return Result{ProducerID: noProducerID, ProducerEpoch: noProducerEpoch, Write: w}
}

// Description is DescribeTransactions' answer for one id.
type Description struct {
	Err                  error
	ProducerID           int64
	ProducerEpoch        int16
	State                string
	TransactionTimeoutMs int32
	StartTimestamp       int64
	Partitions           []TopicPartition
}

// Describe answers DescribeTransactions for one id (TRANSACTIONAL_ID_NOT_FOUND for an
// unknown or expiring id).
func (s *Shard) Describe(transactionalID string) Description {
	switch {
	case transactionalID == "":
		return Description{Err: kerr.InvalidRequest}
	case !s.loaded:
		return Description{Err: kerr.CoordinatorLoadInProgress}
	}
	e := s.txns[transactionalID]
	if e == nil || e.meta.State == StateDead || (e.pending != nil && e.pending.State == StateDead) {
		return Description{Err: kerr.TransactionalIDNotFound}
	}
	m := e.meta
	return Description{
		ProducerID:           m.ProducerID,
		ProducerEpoch:        m.ProducerEpoch,
		State:                m.State.String(),
		TransactionTimeoutMs: m.TimeoutMs,
		StartTimestamp:       m.StartTimestamp,
		Partitions:           slices.Clone(m.Partitions),
	}
}

// Listing is one entry of ListTransactions.
type Listing struct {
	TransactionalID string
	ProducerID      int64
	State           string
}

// List answers ListTransactions for this partition: the ids in one of states (Kafka's names;
// unknown names are returned apart, as the response's UnknownStateFilters), with one of
// producerIDs, and running for more than minDurationMs (KIP-994; -1 for any), in id order.
// Empty filters match everything.
func (s *Shard) List(now time.Time, states []string, producerIDs []int64, minDurationMs int64) (list []Listing, unknownStates []string, err error) {
	if !s.loaded {
		return nil, nil, kerr.CoordinatorLoadInProgress
	}
	want := make(map[State]bool)
	for _, name := range states {
		if st, ok := ParseState(name); ok {
			want[st] = true
		} else {
			unknownStates = append(unknownStates, name)
		}
	}
	nowMs := now.UnixMilli()
	for _, id := range slices.Sorted(maps.Keys(s.txns)) {
		m := s.txns[id].meta
		switch {
		case m.State == StateDead:
		case len(producerIDs) > 0 && !slices.Contains(producerIDs, m.ProducerID):
		case len(states) > 0 && !want[m.State]:
		case minDurationMs >= 0 && nowMs-m.StartTimestamp <= minDurationMs:
		default:
			list = append(list, Listing{TransactionalID: id, ProducerID: m.ProducerID, State: m.State.String()})
		}
	}
	return list, unknownStates, nil
}

// Kafka API keys whose old versions know INVALID_PRODUCER_EPOCH but not PRODUCER_FENCED.
const (
	apiInitProducerID    = 22
	apiAddPartitionsToTx = 24
	apiAddOffsetsToTxn   = 25
	apiEndTxn            = 26
)

// ClientError adapts an answer to the request's version as Kafka's handlers do:
// PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH for InitProducerId before v4 and for
// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn before v2.
func ClientError(apiKey, version int16, err error) error {
	if err != kerr.ProducerFenced {
		return err
	}
	switch {
	case apiKey == apiInitProducerID && version < 4,
		(apiKey == apiAddPartitionsToTx || apiKey == apiAddOffsetsToTxn || apiKey == apiEndTxn) && version < 2:
		return kerr.InvalidProducerEpoch
	}
	return err
}
