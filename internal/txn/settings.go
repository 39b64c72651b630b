package txn

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/internal/group"
)

// StateTopic is the internal compacted topic holding the transaction coordinator's state.
const StateTopic = "__transaction_state"

// Kafka's defaults of the transaction coordinator's broker settings.
const (
	DefaultMaxTimeout                      = 15 * time.Minute   // transaction.max.timeout.ms 900000
	DefaultTransactionalIDExpiration       = 7 * 24 * time.Hour // transactional.id.expiration.ms 604800000
	DefaultAbortTimedOutInterval           = 10 * time.Second   // transaction.abort.timed.out.transaction.cleanup.interval.ms 10000
	DefaultRemoveExpiredInterval           = time.Hour          // transaction.remove.expired.transaction.cleanup.interval.ms 3600000
	DefaultStateLogNumPartitions           = 50                 // transaction.state.log.num.partitions
	DefaultStateLogReplicationFactor       = 3                  // transaction.state.log.replication.factor
	DefaultStateLogSegmentBytes            = 104857600          // transaction.state.log.segment.bytes
	DefaultStateLogMinISR                  = 2                  // transaction.state.log.min.isr
	defaultOffsetsTopicNumPartitions       = 50                 // offsets.topic.num.partitions
	noProducerID                     int64 = -1                 // RecordBatch.NO_PRODUCER_ID
	noProducerEpoch                  int16 = -1                 // RecordBatch.NO_PRODUCER_EPOCH
	maxEpoch                         int16 = math.MaxInt16      // an epoch never handed to a client
)

// Settings are the coordinator's tunables, named after Kafka's broker settings.
type Settings struct {
	// MaxTimeout is transaction.max.timeout.ms: a larger transaction.timeout.ms in
	// InitProducerId is INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// TransactionalIDExpiration is transactional.id.expiration.ms: an id with no transaction
	// in progress and no update for that long is removed (tombstone).
	TransactionalIDExpiration time.Duration
	// AbortTimedOutInterval is transaction.abort.timed.out.transaction.cleanup.interval.ms:
	// how often the runtime calls Shard.AbortTimedOut.
	AbortTimedOutInterval time.Duration
	// RemoveExpiredInterval is transaction.remove.expired.transaction.cleanup.interval.ms:
	// how often the runtime calls Shard.ExpireTransactionalIDs.
	RemoveExpiredInterval time.Duration
	// StateLogNumPartitions is transaction.state.log.num.partitions (PartitionFor's modulus
	// when the topic does not exist yet; otherwise its actual partition count).
	StateLogNumPartitions int32
	// StateLogReplicationFactor is transaction.state.log.replication.factor.
	StateLogReplicationFactor int16
	// StateLogSegmentBytes is transaction.state.log.segment.bytes.
	StateLogSegmentBytes int32
	// StateLogMinISR is transaction.state.log.min.isr (the topic's min.insync.replicas).
	StateLogMinISR int32
	// OffsetsTopicNumPartitions is the partition count of __consumer_offsets, which
	// AddOffsetsToTxn needs to find a group's partition.
	OffsetsTopicNumPartitions int32
	// TransactionVersion is the finalized level of the transaction.version feature: it
	// chooses the value version written (0 below TV1) and the rules of coordinator-initiated
	// aborts (epoch bump with TV2).
	TransactionVersion TransactionVersion
}

// DefaultSettings returns Kafka's defaults (transaction.version 2, as Kafka 4.x clusters).
func DefaultSettings() Settings {
	return Settings{
		MaxTimeout:                DefaultMaxTimeout,
		TransactionalIDExpiration: DefaultTransactionalIDExpiration,
		AbortTimedOutInterval:     DefaultAbortTimedOutInterval,
		RemoveExpiredInterval:     DefaultRemoveExpiredInterval,
		StateLogNumPartitions:     DefaultStateLogNumPartitions,
		StateLogReplicationFactor: DefaultStateLogReplicationFactor,
		StateLogSegmentBytes:      DefaultStateLogSegmentBytes,
		StateLogMinISR:            DefaultStateLogMinISR,
		OffsetsTopicNumPartitions: defaultOffsetsTopicNumPartitions,
		TransactionVersion:        TV2,
	}
}

// TopicConfigs are the configs __transaction_state is created with, as Kafka enforces them.
func (s Settings) TopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":                 "compact",
		"compression.type":               "uncompressed",
		"unclean.leader.election.enable": "false",
		"min.insync.replicas":            strconv.Itoa(int(s.StateLogMinISR)),
		"segment.bytes":                  strconv.Itoa(int(s.StateLogSegmentBytes)),
	}
}

// PartitionFor returns the __transaction_state partition of a transactional id, as Kafka
// computes it: Utils.abs(transactionalId.hashCode) % partitions (Java's String.hashCode),
// the same function as the group coordinator's.
func PartitionFor(transactionalID string, numPartitions int32) int32 {
	return group.PartitionFor(transactionalID, numPartitions)
}

// TransactionVersion is a level of Kafka's transaction.version feature (KIP-890): TV1
// writes flexible (version 1) state records, TV2 bumps the producer epoch on every
// transaction end (EndTxn v5, AddPartitionsToTxn v5, AddOffsetsToTxn v4).
type TransactionVersion int16

// Transaction versions.
const (
	TV0 TransactionVersion = 0
	TV1 TransactionVersion = 1
	TV2 TransactionVersion = 2
)

func (v TransactionVersion) supportsEpochBump() bool { return v >= TV2 }

// logValueVersion is the TransactionLogValue version written at this level.
func (v TransactionVersion) logValueVersion() int16 {
	if v >= TV1 {
		return 1
	}
	return 0
}

// State is a transaction state; its value is the TransactionStatus of the state record.
type State int8

// Kafka's transaction states.
const (
	StateEmpty State = iota
	StateOngoing
	StatePrepareCommit
	StatePrepareAbort
	StateCompleteCommit
	StateCompleteAbort
	StateDead
	StatePrepareEpochFence
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String returns Kafka's name of the state (DescribeTransactions, ListTransactions).
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "Unknown"
	}
	return stateNames[s]
}

// ParseState returns the state of a Kafka state name (exact, as Kafka's fromName).
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

func (s State) valid() bool { return s >= StateEmpty && s <= StatePrepareEpochFence }

// validPrevious reports whether a transition from prev to s is allowed (Kafka's
// TransactionState.validPreviousStates).
func (s State) validPrevious(prev State) bool {
	switch s {
	case StateEmpty:
		return prev == StateEmpty || prev == StateCompleteCommit || prev == StateCompleteAbort
	case StateOngoing:
		return prev == StateOngoing || prev == StateEmpty || prev == StateCompleteCommit || prev == StateCompleteAbort
	case StatePrepareCommit, StatePrepareEpochFence:
		return prev == StateOngoing
	case StatePrepareAbort:
		return prev == StateOngoing || prev == StatePrepareEpochFence || prev == StateEmpty ||
			prev == StateCompleteCommit || prev == StateCompleteAbort
	case StateCompleteCommit:
		return prev == StatePrepareCommit
	case StateCompleteAbort:
		return prev == StatePrepareAbort
	case StateDead:
		return prev == StateEmpty || prev == StateCompleteCommit || prev == StateCompleteAbort
	}
	return false
}

// expirationAllowed reports whether an id in this state may expire.
func (s State) expirationAllowed() bool {
	return s == StateEmpty || s == StateCompleteCommit || s == StateCompleteAbort
}

// TopicPartition names a partition in a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) less(o TopicPartition) bool {
	if c := strings.Compare(tp.Topic, o.Topic); c != 0 {
		return c < 0
	}
	return tp.Partition < o.Partition
}

// isEpochExhausted is Kafka's rule: a client never gets the last epoch, so that the
// coordinator can always fence it.
func isEpochExhausted(epoch int16) bool { return epoch >= maxEpoch-1 }
