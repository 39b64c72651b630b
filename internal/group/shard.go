package group

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group/consumer"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/storage"
)

// Settings are the coordinator's tunables, named after Kafka's broker settings.
type Settings struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long a new group's first
	// rebalance waits for more members (extended while they keep coming).
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are group.min.session.timeout.ms and
	// group.max.session.timeout.ms (INVALID_SESSION_TIMEOUT outside).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxGroupSize is group.max.size; 0 means unlimited.
	MaxGroupSize int
	// OffsetsRetention is offsets.retention.minutes.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes.
	OffsetMetadataMaxBytes int
	// NewMemberJoinTimeout bounds how long a member that joined for the first time may wait
	// in a rebalance (Kafka's fixed 5 minutes).
	NewMemberJoinTimeout time.Duration
	// Consumer configures KIP-848 consumer groups (group.consumer.*); zero fields take
	// Kafka's defaults.
	Consumer consumer.Config
}

// DefaultSettings returns Kafka's defaults.
func DefaultSettings() Settings {
	return Settings{
		InitialRebalanceDelay:         3 * time.Second,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		OffsetMetadataMaxBytes:        4096,
		NewMemberJoinTimeout:          5 * time.Minute,
		Consumer:                      consumer.DefaultConfig(),
	}
}

// Errors with Kafka codes the state machine returns.
var (
	errUnknownMember        error = kerr.UnknownMemberID
	errFencedInstance       error = kerr.FencedInstanceID
	errIllegalGeneration    error = kerr.IllegalGeneration
	errRebalance            error = kerr.RebalanceInProgress
	errInconsistent         error = kerr.InconsistentGroupProtocol
	errInvalidGroupID       error = kerr.InvalidGroupID
	errNotCoordinator       error = kerr.NotCoordinator
	errCoordinatorNotAvl    error = kerr.CoordinatorNotAvailable
	errGroupIDNotFound      error = kerr.GroupIDNotFound
	errNonEmptyGroup        error = kerr.NonEmptyGroup
	errSubscribedToTopic    error = kerr.GroupSubscribedToTopic
	errMetadataTooLarge     error = kerr.OffsetMetadataTooLarge
	errGroupMaxSize         error = kerr.GroupMaxSizeReached
	errInvalidSession       error = kerr.InvalidSessionTimeout
	errMemberIDRequired     error = kerr.MemberIDRequired
	errLoadInProgress       error = kerr.CoordinatorLoadInProgress
	errUnknownServerError   error = kerr.UnknownServerError
	errUnstableOffsetCommit error = kerr.UnstableOffsetCommit
)

// Shard is the state machine of one __consumer_offsets partition: the groups hashed to it,
// their members and committed offsets. It does no I/O and reads no clock of its own: time and
// timers come from its timers, and records to persist go to its store, which appends them to
// the partition and returns only when they are written. It is not safe for concurrent use:
// the coordinator calls it with the partition's lock held, timer callbacks included.
//
// Requests that wait (JoinGroup, SyncGroup) take a done callback, called exactly once, maybe
// later from another request or a timer; it must not block.
type Shard struct {
	partition int32
	set       Settings
	log       *slog.Logger
	timers    timers
	store     func([]Record) error
	newID     func() string
	groups    map[string]*classicGroup
	// cg holds the KIP-848 consumer groups (consumer_groups.go).
	cg *consumerGroups
	// loading holds the replayed state until finishLoad builds the groups.
	loading *loadState
	// storeTxn appends records as one transactional batch of the producer (TxnOffsetCommit).
	storeTxn func(recs []Record, producerID int64, epoch int16) error
	// txn holds the transactional offset commits (TxnOffsetCommit) awaiting their markers.
	txn txnOffsets
	// order numbers the offset records written or replayed, in log order (offsetEntry.order).
	order int64
}

func newShard(partition int32, set Settings, logger *slog.Logger, t timers, store func([]Record) error, newID func() string) *Shard {
	return &Shard{
		partition: partition,
		set:       set,
		log:       logger,
		timers:    t,
		store:     store,
		newID:     newID,
		groups:    make(map[string]*classicGroup),
		cg:        newConsumerGroups(set.Consumer, set.MaxGroupSize),
		loading:   &loadState{groups: map[string]*kmsg.GroupMetadataValue{}, offsets: map[string]map[TopicPartition]offsetEntry{}},
		txn:       newTxnOffsets(),
	}
}

func (s *Shard) nowMs() int64 { return s.timers.now().UnixMilli() }

// nextOrder numbers the next offset record. The shard writes its records one at a time with
// the partition's lock held, and replays them in log order, so the numbers order records as
// their log offsets do.
func (s *Shard) nextOrder() int64 {
	s.order++
	return s.order
}

// current reports whether g is still the shard's group of that name (a timer may outlive it).
func (s *Shard) current(g *classicGroup) bool { return s.groups[g.id] == g }

// persist appends records through the store, mapping failures to Kafka's error codes the
// way Kafka's coordinator does for its appends.
func (s *Shard) persist(recs []Record) error {
	return s.persistWith(s.store, recs)
}

// persistWith is persist through the given store.
func (s *Shard) persistWith(store func([]Record) error, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	err := store(recs)
	if err == nil {
		return nil
	}
	if storage.IsDiskFull(err) {
		// The log says so once per episode. Kafka answers NOT_COORDINATOR here, which clients
		// retry until their timeout; KAFKA_STORAGE_ERROR reaches the consumer as an error.
		return kerr.KafkaStorageError
	}
	s.log.Warn("writing __consumer_offsets", "partition", s.partition, "records", len(recs), "err", err)
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke
	case errors.Is(err, storage.ErrClosed), errors.Is(err, replica.ErrNotLeader):
		// Leadership moved: the new leader's coordinator has the partition.
		return errNotCoordinator
	case errors.Is(err, storage.ErrRecordBatchTooLarge):
		return errUnknownServerError
	default:
		return errCoordinatorNotAvl
	}
}

// storeGroup writes the group's metadata record with the given assignment.
func (s *Shard) storeGroup(g *classicGroup, assignment map[string][]byte) error {
	return s.persist([]Record{{Key: groupMetadataKey(g.id), Value: groupMetadataValue(g, assignment)}})
}

// ListGroups lists the groups in the given states and of the given types (both
// case-insensitive; empty means any).
func (s *Shard) ListGroups(states, types []string) []GroupListing {
	var out []GroupListing
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		if g.state == stateDead {
			continue
		}
		if len(states) > 0 && !containsFold(states, g.state.String()) {
			continue
		}
		if len(types) > 0 && !containsFold(types, groupTypeClassic) {
			continue
		}
		out = append(out, GroupListing{Group: g.id, ProtocolType: g.protocolType, State: g.state.String(), Type: groupTypeClassic})
	}
	return append(out, s.listConsumerGroups(states, types)...)
}

// DescribeGroup describes a group; an unknown group is described as Dead with no error, as
// Kafka does.
func (s *Shard) DescribeGroup(id string) GroupDescription {
	if d, ok := s.describeConsumerGroup(id); ok {
		return d
	}
	g := s.groups[id]
	if g == nil {
		return GroupDescription{Group: id, State: stateDead.String()}
	}
	return g.describe()
}

// DeleteGroup deletes an Empty group and its offsets, the pending transactional ones too, as
// Kafka does (NON_EMPTY_GROUP if it has members, GROUP_ID_NOT_FOUND if there is no such
// group).
func (s *Shard) DeleteGroup(id string) error {
	if s.isConsumerGroup(id) {
		return s.deleteConsumerGroup(id)
	}
	g := s.groups[id]
	switch {
	case g == nil || g.state == stateDead:
		return errGroupIDNotFound
	case g.state != stateEmpty:
		return errNonEmptyGroup
	}
	tps := s.offsetPartitions(g.id, &g.offsets)
	recs := s.tombstones(g.id, &g.offsets, tps)
	recs = append(recs, Record{Key: groupMetadataKey(g.id)})
	if err := s.persist(recs); err != nil {
		return err
	}
	s.dropOffsets(g.id, &g.offsets, tps)
	s.dropGroup(g)
	return nil
}

// dropGroup removes a group (Dead) with its timers.
func (s *Shard) dropGroup(g *classicGroup) {
	g.transition(stateDead, s.nowMs())
	s.timers.cancel(timerKey{kind: timerJoin, group: g.id})
	s.timers.cancel(timerKey{kind: timerSync, group: g.id})
	delete(s.groups, g.id)
}

// unload fails every waiting request with NOT_COORDINATOR: leadership of the partition moved
// (or the broker is shutting down). The caller stops the timers.
func (s *Shard) unload() {
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		for _, mid := range g.order {
			m := g.members[mid]
			s.invokeJoin(g, m, JoinResult{Err: errNotCoordinator, MemberID: m.id, Generation: -1})
			s.invokeSync(m, SyncResult{Err: errNotCoordinator})
		}
		g.transition(stateDead, s.nowMs())
	}
	s.groups = make(map[string]*classicGroup)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// loadState is what replaying a partition has found so far: the last group metadata record
// and the last offset commit of every key, tombstones removing them.
type loadState struct {
	groups  map[string]*kmsg.GroupMetadataValue
	offsets map[string]map[TopicPartition]offsetEntry
}

// replay applies one record of the partition during loading. Records of unknown key versions
// (Kafka's newer coordinator records) are skipped.
func (s *Shard) replay(key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrCorruptRecord, len(key))
	}
	if consumer.IsRecord(key) {
		return s.replayConsumer(key, value)
	}
	ls := s.loading
	version := int16(key[0])<<8 | int16(key[1])
	switch version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: offset commit key: %w", ErrCorruptRecord, err)
		}
		tp := TopicPartition{k.Topic, k.Partition}
		if value == nil {
			if m := ls.offsets[k.Group]; m != nil {
				delete(m, tp)
			}
			s.txn.remove(k.Group, tp)
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: offset commit value: %w", ErrCorruptRecord, err)
		}
		e := offsetEntry{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTimestamp: v.CommitTimestamp, expireTimestamp: -1, order: s.nextOrder()}
		if v.Version >= 3 {
			e.leaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 {
			e.expireTimestamp = v.ExpireTimestamp
		}
		if s.txn.replaying >= 0 {
			s.txn.add(s.txn.replaying, k.Group, tp, e)
			return nil
		}
		m := ls.offsets[k.Group]
		if m == nil {
			m = make(map[TopicPartition]offsetEntry)
			ls.offsets[k.Group] = m
		}
		m[tp] = e
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: group metadata key: %w", ErrCorruptRecord, err)
		}
		if value == nil {
			delete(ls.groups, k.Group)
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: group metadata value: %w", ErrCorruptRecord, err)
		}
		ls.groups[k.Group] = v
	}
	return nil
}

// finishLoad turns the replayed records into groups: a group with members is Stable in its
// last generation (its members get a session timeout to come back), one without is Empty;
// offsets without group metadata belong to simple groups. It starts offset expiration.
func (s *Shard) finishLoad() {
	ls := s.loading
	s.loading = nil
	s.finishConsumerLoad(ls)
	now := s.nowMs()
	for id, v := range ls.groups {
		g := newClassicGroup(id, now)
		g.protocolType = v.ProtocolType
		g.generation = v.Generation
		if v.Protocol != nil {
			g.protocol = *v.Protocol
		}
		if v.CurrentStateTimestamp >= 0 {
			g.stateTime = v.CurrentStateTimestamp
		} else {
			g.stateTime = -1
		}
		for _, mv := range v.Members {
			m := &member{
				id:               mv.MemberID,
				clientID:         mv.ClientID,
				clientHost:       mv.ClientHost,
				sessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
				rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
				protocolType:     v.ProtocolType,
				protocols:        []Protocol{{Name: g.protocol, Metadata: mv.Subscription}},
				assignment:       mv.Assignment,
			}
			if m.rebalanceTimeout < 0 {
				m.rebalanceTimeout = m.sessionTimeout
			}
			if mv.InstanceID != nil {
				m.static, m.instanceID = true, *mv.InstanceID
			}
			g.add(m)
		}
		if v.Leader != nil && g.has(*v.Leader) {
			g.leader = *v.Leader
		}
		if len(g.members) > 0 {
			g.state = stateStable
		}
		g.subscribed = g.computeSubscribed()
		s.groups[id] = g
	}
	for id, offs := range ls.offsets {
		g := s.groups[id]
		if g == nil {
			if len(offs) == 0 {
				continue
			}
			g = newClassicGroup(id, now)
			g.stateTime = -1
			s.groups[id] = g
		}
		g.offsets.m = offs
	}
	for _, id := range s.txn.groups() {
		if s.groups[id] == nil && !s.isConsumerGroup(id) {
			// Offsets pending in a transaction make a simple group, as in Kafka.
			g := newClassicGroup(id, now)
			g.stateTime = -1
			s.groups[id] = g
		}
	}
	for _, g := range s.groups {
		for _, m := range g.members {
			s.scheduleHeartbeat(g, m, m.sessionTimeout)
		}
	}
	s.scheduleExpiration()
}
