package replica

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/storage"
)

// The leader's side of Kafka's ISR protocol (Partition.scala): the role taken from the image,
// each follower's log end offset and last caught-up time, the high watermark as the smallest
// log end offset in the ISR, ISR expansion and shrink through a PartitionStateSender with one
// change in flight, and the acks=all wait.

// Role is this node's part in a partition.
type Role int8

const (
	// RoleNone: the partition has no leader (Leader == -1).
	RoleNone Role = iota
	// RoleLeader: this node leads the partition.
	RoleLeader
	// RoleFollower: this node fetches the partition from its leader.
	RoleFollower
)

// Errors of the replication path; the broker maps them to Kafka error codes.
var (
	// ErrNotLeader: this node does not lead the partition (NOT_LEADER_OR_FOLLOWER).
	ErrNotLeader = errors.New("replica: not the leader of the partition")
	// ErrNotReplica: a follower fetch from a broker that is not a replica
	// (NOT_LEADER_OR_FOLLOWER, as Kafka).
	ErrNotReplica = errors.New("replica: fetching broker is not a replica of the partition")
	// ErrFencedLeaderEpoch: the caller's leader epoch is older than ours.
	ErrFencedLeaderEpoch = errors.New("replica: leader epoch is fenced")
	// ErrUnknownLeaderEpoch: the caller's leader epoch is newer than ours.
	ErrUnknownLeaderEpoch = errors.New("replica: leader epoch is unknown")
	// ErrNotEnoughReplicasAfterAppend: the records were appended but the ISR fell below
	// min.insync.replicas before they were committed.
	ErrNotEnoughReplicasAfterAppend = errors.New("replica: ISR below min.insync.replicas after append")
	// ErrReplicationTimeout: the records were not committed before the request's timeout.
	ErrReplicationTimeout = errors.New("replica: records not replicated in time")
)

// AlterPartitionRequest is one ISR change the leader asks the controller for (Kafka's
// AlterPartition v3, one partition).
type AlterPartitionRequest struct {
	TopicID        [16]byte
	Topic          string
	Partition      int32
	LeaderID       int32
	LeaderEpoch    int32
	PartitionEpoch int32 // the partition epoch the change is based on
	NewISR         []int32
}

// AlterPartitionResult is the controller's answer: the committed state, or a Kafka error code
// (ErrorCode != 0) such as FENCED_LEADER_EPOCH or INVALID_UPDATE_VERSION.
type AlterPartitionResult struct {
	ErrorCode      int16
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// PartitionStateSender sends ISR changes to the active controller. The cluster wiring
// implements it (an AlterPartition request); a call may block until the controller answers or
// ctx ends. Kafka error codes go in the result; a returned error means no answer (the change
// is proposed again later).
type PartitionStateSender interface {
	AlterPartition(ctx context.Context, req AlterPartitionRequest) (AlterPartitionResult, error)
}

// Kafka error codes the leader reacts to in AlterPartition results.
const (
	codeFencedLeaderEpoch    int16 = 74
	codeInvalidUpdateVersion int16 = 95
	codeUnknownTopicOrPart   int16 = 3
)

// env is what a manager's partitions share: this node, the clock, the ISR settings and the
// sender, and the context and wait group of in-flight AlterPartition calls.
type env struct {
	nodeID  int32
	lagTime time.Duration // replica.lag.time.max.ms
	now     func() time.Time
	sender  PartitionStateSender
	log     *slog.Logger
	ctx     context.Context
	wg      sync.WaitGroup
	// isrChanges counts the committed ISR changes (stats.go).
	isrChanges isrChanges
}

// replicationState is a partition's role and ISR state. The read lock is held by appends and
// follower-fetch updates (which change only atomics and followerState under its own lock); the
// write lock by role changes from the image and ISR changes.
type replicationState struct {
	sync.RWMutex
	role           Role
	leader         int32
	partitionEpoch int32
	replicas       []int32
	isr            []int32 // committed (from the image or an AlterPartition answer)
	// pending is the ISR proposed in an AlterPartition in flight, nil when none; maximal is
	// isr ∪ pending, the ISR the high watermark waits for meanwhile (Kafka's maximalIsr).
	pending []int32
	maximal []int32
	// held: the controller refused the change as stale (fenced epoch, old partition epoch);
	// nothing is proposed until the image brings a newer partition state.
	held bool
	// followers are the other replicas' fetch states while leading.
	followers map[int32]*followerState
	// epochStart is the log end offset when this leader epoch began.
	epochStart int64
}

// followerState is a follower as its leader sees it (Kafka's ReplicaState).
type followerState struct {
	mu                 sync.Mutex
	logEnd             int64 // -1 until its first fetch
	lastCaughtUpMs     int64
	lastFetchLeaderEnd int64
	lastFetchMs        int64
}

func (f *followerState) leo() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logEnd
}

// update records a fetch at fetchOffset made when the leader's log end was leaderEnd: the
// follower is caught up as of this fetch if it asked for the leader's end, and as of its
// previous fetch if it asked for at least the leader's end at that fetch (Kafka's rule).
func (f *followerState) update(fetchOffset, leaderEnd, nowMs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fetchOffset >= leaderEnd {
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, nowMs)
	} else if fetchOffset >= f.lastFetchLeaderEnd {
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, f.lastFetchMs)
	}
	f.logEnd, f.lastFetchLeaderEnd, f.lastFetchMs = fetchOffset, leaderEnd, nowMs
}

// caughtUp reports whether the follower has the leader's end or was caught up within lag.
func (f *followerState) caughtUp(leaderEnd, nowMs int64, lag time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logEnd == leaderEnd || nowMs-f.lastCaughtUpMs <= lag.Milliseconds()
}

func (p *Partition) nowMs() int64 {
	if p.env == nil {
		return time.Now().UnixMilli()
	}
	return p.env.now().UnixMilli()
}

func (p *Partition) nodeID() int32 {
	if p.env == nil {
		return -1
	}
	return p.env.nodeID
}

// applyImage takes the partition's role and ISR from the image. It reports whether this node
// just became the leader. A leader ignores an image whose partition epoch is older than the
// state it has (an AlterPartition answer can arrive before the image that records it).
func (p *Partition) applyImage(mp metadata.Partition) (becameLeader bool) {
	self := p.nodeID()
	p.rs.Lock()
	defer func() {
		p.rs.Unlock()
		p.wake() // acks=all waits and fetches look at the role again
	}()
	p.replicated.Store(len(mp.Replicas) > 1)
	role := RoleNone
	switch {
	case mp.Leader == self && self >= 0:
		role = RoleLeader
	case mp.Leader >= 0:
		role = RoleFollower
	}
	newEpoch := mp.LeaderEpoch != p.leaderEpoch.Load()
	if role == p.rs.role && !newEpoch && p.rs.replicas != nil && (mp.PartitionEpoch < p.rs.partitionEpoch ||
		mp.PartitionEpoch == p.rs.partitionEpoch && slices.Equal(mp.Replicas, p.rs.replicas)) {
		// Nothing newer than what we have. (The replicas are compared too: an AlterPartition
		// answer that completed a reassignment brings the partition epoch of the image that
		// changes the replicas.)
		return false
	}
	p.rs.leader, p.rs.partitionEpoch = mp.Leader, mp.PartitionEpoch
	p.rs.replicas, p.rs.isr = slices.Clone(mp.Replicas), slices.Clone(mp.ISR)
	p.rs.pending, p.rs.maximal, p.rs.held = nil, p.rs.isr, false
	p.leaderEpoch.Store(mp.LeaderEpoch)
	if role != RoleLeader {
		p.rs.role, p.rs.followers = role, nil
		return false
	}
	nowMs := p.nowMs()
	isNew := p.rs.role != RoleLeader || newEpoch
	old := p.rs.followers
	p.rs.followers = make(map[int32]*followerState, len(mp.Replicas))
	for _, id := range mp.Replicas {
		if id == self {
			continue
		}
		if f := old[id]; f != nil && !isNew {
			p.rs.followers[id] = f
			continue
		}
		// A new leader knows nothing of its followers' logs; those in the ISR count as
		// caught up now, so they are not dropped before they can fetch.
		f := &followerState{logEnd: -1, lastFetchLeaderEnd: -1}
		if slices.Contains(mp.ISR, id) {
			f.lastCaughtUpMs = nowMs
		}
		p.rs.followers[id] = f
	}
	if isNew {
		p.rs.epochStart = p.log.LogEndOffset()
	}
	p.rs.role = RoleLeader
	p.maybeIncrementHighWatermarkLocked()
	return isNew
}

// recordLeaderEpochStart writes the leader epoch's start offset into the log's epoch cache
// when this node leads a replicated partition, as Kafka's new leader does, so a follower's
// OffsetForLeaderEpoch for the previous epoch is answered before the first append.
func (p *Partition) recordLeaderEpochStart() {
	p.rs.RLock()
	lead, start, epoch := p.rs.role == RoleLeader, p.rs.epochStart, p.leaderEpoch.Load()
	p.rs.RUnlock()
	if lead && p.replicated.Load() {
		if err := p.log.AssignEpochStart(epoch, start); err != nil && p.env != nil {
			p.env.log.Warn("recording leader epoch start", "topic", p.TP.Topic, "partition", p.TP.Partition, "err", err)
		}
	}
}

// Role returns this node's role, the leader's id and the leader epoch.
func (p *Partition) Role() (role Role, leader, leaderEpoch int32) {
	p.rs.RLock()
	defer p.rs.RUnlock()
	return p.rs.role, p.rs.leader, p.leaderEpoch.Load()
}

// IsLeader reports whether this node leads the partition.
func (p *Partition) IsLeader() bool {
	p.rs.RLock()
	defer p.rs.RUnlock()
	return p.rs.role == RoleLeader
}

// Replicated reports whether the partition has more than one replica.
func (p *Partition) Replicated() bool { return p.replicated.Load() }

// ISR returns the committed in-sync replicas.
func (p *Partition) ISR() []int32 {
	p.rs.RLock()
	defer p.rs.RUnlock()
	return slices.Clone(p.rs.isr)
}

// inISR reports whether id is in the committed ISR (no copy, unlike ISR).
func (p *Partition) inISR(id int32) bool {
	p.rs.RLock()
	defer p.rs.RUnlock()
	return containsID(p.rs.isr, id)
}

// appendReplicated appends as the leader of a replicated partition. The read lock keeps the
// role from changing under the append; the high watermark moves only if the ISR is the leader
// alone.
func (p *Partition) appendReplicated(batches []byte) (storage.AppendResult, error) {
	p.rs.RLock()
	if p.rs.role != RoleLeader {
		p.rs.RUnlock()
		return storage.AppendResult{}, ErrNotLeader
	}
	res, err := p.log.AppendAsLeader(batches, p.leaderEpoch.Load())
	if err == nil && !res.Duplicate {
		p.maybeIncrementHighWatermarkLocked()
	}
	p.rs.RUnlock()
	if err == nil && !res.Duplicate {
		p.wake()
	}
	return res, err
}

// maybeIncrementHighWatermarkLocked moves the high watermark to the smallest log end offset
// among the leader and the followers in the maximal ISR (an unknown one holds it where it
// is). It never lowers it. Called with rs held (read or write).
func (p *Partition) maybeIncrementHighWatermarkLocked() bool {
	if p.rs.role != RoleLeader {
		return false
	}
	hw := p.log.LogEndOffset()
	for id, f := range p.rs.followers {
		if !slices.Contains(p.rs.maximal, id) {
			continue
		}
		if leo := f.leo(); leo < hw {
			hw = leo
		}
	}
	return hw >= 0 && p.advanceHighWatermark(hw)
}

// CheckFollowerFetch checks a follower's fetch as Kafka does: the leader epoch first
// (ErrFencedLeaderEpoch, ErrUnknownLeaderEpoch; -1 skips it), then leadership (ErrNotLeader),
// then that the fetching broker is a replica (ErrNotReplica).
func (p *Partition) CheckFollowerFetch(replicaID, currentLeaderEpoch int32) error {
	p.rs.RLock()
	defer p.rs.RUnlock()
	if err := checkEpoch(currentLeaderEpoch, p.leaderEpoch.Load()); err != nil {
		return err
	}
	if p.rs.role != RoleLeader {
		return ErrNotLeader
	}
	if _, ok := p.rs.followers[replicaID]; !ok {
		return ErrNotReplica
	}
	return nil
}

func checkEpoch(theirs, ours int32) error {
	switch {
	case theirs < 0 || theirs == ours:
		return nil
	case theirs > ours:
		return ErrUnknownLeaderEpoch
	default:
		return ErrFencedLeaderEpoch
	}
}

// UpdateFollowerFetch records a follower's fetch from fetchOffset (its log end offset), made
// when the leader's log end was leaderEnd: it moves the high watermark (waking waiting fetches
// and produces) and proposes adding the follower to the ISR once it has caught up.
func (p *Partition) UpdateFollowerFetch(replicaID int32, fetchOffset, leaderEnd int64) error {
	nowMs := p.nowMs()
	p.rs.RLock()
	f := p.rs.followers[replicaID]
	if p.rs.role != RoleLeader || f == nil {
		p.rs.RUnlock()
		return ErrNotLeader
	}
	f.update(fetchOffset, leaderEnd, nowMs)
	moved := p.maybeIncrementHighWatermarkLocked()
	expand := p.shouldExpandLocked(replicaID, f)
	p.rs.RUnlock()
	if expand {
		p.maybeExpandISR(replicaID)
	}
	if moved {
		p.wake()
	}
	return nil
}

// shouldExpandLocked is Kafka's isFollowerInSync for a follower outside the ISR with no
// change in flight: its log end is at or past the high watermark and the leader epoch's start.
func (p *Partition) shouldExpandLocked(id int32, f *followerState) bool {
	if p.rs.pending != nil || p.rs.held || p.env == nil || p.env.sender == nil || slices.Contains(p.rs.isr, id) {
		return false
	}
	leo := f.leo()
	return leo >= p.HighWatermark() && leo >= p.rs.epochStart
}

// maybeExpandISR proposes the ISR plus the follower, checking again under the write lock.
func (p *Partition) maybeExpandISR(id int32) {
	p.rs.Lock()
	defer p.rs.Unlock()
	f := p.rs.followers[id]
	if p.rs.role != RoleLeader || f == nil || !p.shouldExpandLocked(id, f) {
		return
	}
	isr := append(slices.Clone(p.rs.isr), id)
	slices.Sort(isr)
	p.proposeLocked(isr)
}

// outOfSyncLocked returns the ISR followers not caught up within the lag time.
func (p *Partition) outOfSyncLocked(nowMs int64) []int32 {
	leaderEnd := p.log.LogEndOffset()
	var out []int32
	for _, id := range p.rs.isr {
		f := p.rs.followers[id]
		if f != nil && !f.caughtUp(leaderEnd, nowMs, p.env.lagTime) {
			out = append(out, id)
		}
	}
	return out
}

// maybeShrinkISR proposes an ISR without the followers that have not caught up within
// replica.lag.time.max.ms (run every half of it). It reports whether it proposed a change.
func (p *Partition) maybeShrinkISR() bool {
	if p.env == nil || p.env.sender == nil || !p.replicated.Load() {
		return false
	}
	nowMs := p.nowMs()
	p.rs.Lock()
	defer p.rs.Unlock()
	if p.rs.role != RoleLeader || p.rs.pending != nil || p.rs.held {
		return false
	}
	out := p.outOfSyncLocked(nowMs)
	if len(out) == 0 {
		return false
	}
	isr := slices.DeleteFunc(slices.Clone(p.rs.isr), func(id int32) bool { return slices.Contains(out, id) })
	p.env.log.Info("shrinking ISR", "topic", p.TP.Topic, "partition", p.TP.Partition, "isr", p.rs.isr, "new_isr", isr, "out_of_sync", out)
	p.proposeLocked(isr)
	return true
}

// proposeLocked sends an ISR change; until it is answered the high watermark waits for the
// union of the old and new ISR, and no other change is proposed.
func (p *Partition) proposeLocked(isr []int32) {
	p.rs.pending = isr
	p.rs.maximal = union(p.rs.isr, isr)
	req := AlterPartitionRequest{
		TopicID: p.TopicID, Topic: p.TP.Topic, Partition: p.TP.Partition,
		LeaderID: p.env.nodeID, LeaderEpoch: p.leaderEpoch.Load(), PartitionEpoch: p.rs.partitionEpoch,
		NewISR: slices.Clone(isr),
	}
	e := p.env
	from := len(p.rs.isr)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		res, err := e.sender.AlterPartition(e.ctx, req)
		if err == nil && res.ErrorCode == 0 {
			// Committed: counted here, as the image may bring the new ISR before the answer.
			e.isrChanges.count(from, len(res.ISR))
		}
		p.alterPartitionDone(req, res, err)
	}()
}

// alterPartitionDone applies the controller's answer to an ISR change, unless the partition
// state has moved on since it was sent (the image got there first).
func (p *Partition) alterPartitionDone(req AlterPartitionRequest, res AlterPartitionResult, err error) {
	p.rs.Lock()
	if p.rs.role != RoleLeader || p.rs.pending == nil || p.leaderEpoch.Load() != req.LeaderEpoch || p.rs.partitionEpoch != req.PartitionEpoch {
		p.rs.Unlock()
		return
	}
	switch {
	case err != nil:
		// No answer: forget the proposal; the next check proposes again.
		p.env.log.Warn("AlterPartition failed", "topic", p.TP.Topic, "partition", p.TP.Partition, "err", err)
		p.rs.pending, p.rs.maximal = nil, p.rs.isr
	case res.ErrorCode == codeFencedLeaderEpoch || res.ErrorCode == codeInvalidUpdateVersion || res.ErrorCode == codeUnknownTopicOrPart:
		// Our state is stale: keep the maximal ISR and wait for the image (as Kafka).
		p.env.log.Info("AlterPartition refused; waiting for metadata", "topic", p.TP.Topic, "partition", p.TP.Partition, "code", res.ErrorCode)
		p.rs.held = true
	case res.ErrorCode != 0:
		p.env.log.Warn("AlterPartition refused", "topic", p.TP.Topic, "partition", p.TP.Partition, "code", res.ErrorCode)
		p.rs.pending, p.rs.maximal = nil, p.rs.isr
	case res.LeaderEpoch != req.LeaderEpoch || res.PartitionEpoch <= p.rs.partitionEpoch:
		p.rs.pending, p.rs.maximal = nil, p.rs.isr
	default:
		p.rs.isr, p.rs.partitionEpoch = slices.Clone(res.ISR), res.PartitionEpoch
		p.rs.pending, p.rs.maximal = nil, p.rs.isr
	}
	p.maybeIncrementHighWatermarkLocked()
	p.rs.Unlock()
	p.wake()
}

// WaitReplicated blocks an acks=all produce until the high watermark reaches end (the offset
// after the batch), without polling: it wakes on every append, high-watermark move, ISR or role
// change. It answers ErrNotEnoughReplicasAfterAppend when the records are committed with fewer
// than minISR replicas in the ISR, or the ISR shrinks below minISR first; ErrNotLeader when
// leadership is lost; ErrReplicationTimeout when timeout fires; ctx's error when ctx ends.
func (p *Partition) WaitReplicated(ctx context.Context, end int64, minISR int, timeout <-chan struct{}) error {
	epoch := p.LeaderEpoch()
	for {
		wake := p.Wait()
		p.rs.RLock()
		lead := p.rs.role == RoleLeader && p.leaderEpoch.Load() == epoch
		isr, maximal := len(p.rs.isr), len(p.rs.maximal)
		p.rs.RUnlock()
		switch {
		case !lead:
			return ErrNotLeader
		case p.HighWatermark() >= end:
			if maximal < minISR {
				return ErrNotEnoughReplicasAfterAppend
			}
			return nil
		case isr < minISR:
			return ErrNotEnoughReplicasAfterAppend
		}
		select {
		case <-wake:
		case <-timeout:
			return ErrReplicationTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func union(a, b []int32) []int32 {
	out := slices.Clone(a)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
