package group

import (
	"maps"
	"slices"

	"github.com/samsa-io/samsa/internal/records"
)

// Transactional offset commits (TxnOffsetCommit, API key 28), as Kafka's coordinator keeps
// them: the offsets are written to the partition as one transactional batch of the producer
// and stay pending, invisible to OffsetFetch, until the transaction's marker is written to
// the partition (CompleteTransaction): a commit applies them, an abort drops them. Replaying
// the partition does the same with the batches and markers it reads; offsets whose marker is
// not in the log stay pending.

// TxnCommitRequest is a TxnOffsetCommit for one group.
type TxnCommitRequest struct {
	CommitRequest
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
}

// txnOffsets are a shard's pending transactional offsets, by producer id then group.
type txnOffsets struct {
	pending map[int64]map[string]map[TopicPartition]offsetEntry
	// replaying is the producer of the transactional batch being replayed (-1: none).
	replaying int64
}

func newTxnOffsets() txnOffsets {
	return txnOffsets{pending: map[int64]map[string]map[TopicPartition]offsetEntry{}, replaying: -1}
}

func (t *txnOffsets) add(producerID int64, group string, tp TopicPartition, e offsetEntry) {
	groups := t.pending[producerID]
	if groups == nil {
		groups = map[string]map[TopicPartition]offsetEntry{}
		t.pending[producerID] = groups
	}
	m := groups[group]
	if m == nil {
		m = map[TopicPartition]offsetEntry{}
		groups[group] = m
	}
	m[tp] = e
}

// remove drops every transaction's pending offset of the group's partition (a tombstone of
// the key was written). The group stays open in those transactions (hasOpen) until their
// markers, as in Kafka.
func (t *txnOffsets) remove(group string, tp TopicPartition) {
	for _, groups := range t.pending {
		delete(groups[group], tp)
	}
}

// hasOpen reports whether a transaction has written offsets of the group (even if
// tombstones removed them since).
func (t *txnOffsets) hasOpen(group string) bool {
	for _, groups := range t.pending {
		if _, ok := groups[group]; ok {
			return true
		}
	}
	return false
}

// pendingPartitions returns the partitions of the group with an offset pending.
func (t *txnOffsets) pendingPartitions(group string) []TopicPartition {
	var out []TopicPartition
	for _, groups := range t.pending {
		for tp := range groups[group] {
			if !slices.Contains(out, tp) {
				out = append(out, tp)
			}
		}
	}
	return out
}

// groups returns the groups with an open transaction, sorted.
func (t *txnOffsets) groups() []string {
	set := map[string]bool{}
	for _, groups := range t.pending {
		for id := range groups {
			set[id] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// isPending reports whether a transaction has an offset of the group's partition pending.
func (t *txnOffsets) isPending(group string, tp TopicPartition) bool {
	for _, groups := range t.pending {
		if _, ok := groups[group][tp]; ok {
			return true
		}
	}
	return false
}

// sequencer is the part of a Log that numbers a producer's batches (replicaLog).
type sequencer interface {
	NextSequence(producerID int64, epoch int16) int32
}

func (l replicaLog) NextSequence(producerID int64, epoch int16) int32 {
	return l.p.Log().NextSequence(producerID, epoch)
}

// appendTxn is the shard's transactional store: one batch of the producer appended to the
// partition, numbered after the producer's previous batch there. It runs with part.mu held.
func (part *partition) appendTxn(recs []Record, producerID int64, epoch int16) error {
	seq := int32(0)
	if sq, ok := part.log.(sequencer); ok {
		seq = sq.NextSequence(producerID, epoch)
	}
	return part.log.AppendAsLeader(BuildTxnBatch(recs, part.clock.Now().UnixMilli(), producerID, epoch, seq))
}

// validateTxnCommit is validateCommit for TxnOffsetCommit: without a member (generation -1,
// no member id) a group with members accepts it too, as Kafka's does.
func (g *classicGroup) validateTxnCommit(req CommitRequest) error {
	if g.state != stateDead && req.Generation < 0 && req.MemberID == "" && req.InstanceID == nil {
		return nil
	}
	return g.validateCommit(req)
}

// CommitTxnOffsets handles a TxnOffsetCommit whose partitions the caller has checked to
// exist: it validates the group and member, writes the offsets as a transactional batch of
// the producer and keeps them pending. It returns one error per offset.
func (s *Shard) CommitTxnOffsets(req TxnCommitRequest) []error {
	errs := make([]error, len(req.Offsets))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if s.storeTxn == nil {
		return fail(errCoordinatorNotAvl)
	}
	if s.isConsumerGroup(req.Group) {
		if err := s.cg.sm.ValidateOffsetCommit(req.Group, req.MemberID, req.Generation, req.APIVersion, true); err != nil {
			return fail(unwrapConsumerError(err))
		}
	} else if g := s.groups[req.Group]; g != nil {
		if err := g.validateTxnCommit(req.CommitRequest); err != nil {
			return fail(err)
		}
	} else if req.Generation >= 0 || req.MemberID != "" {
		return fail(errIllegalGeneration)
	}
	write := func(recs []Record) error {
		return s.persistWith(func(recs []Record) error { return s.storeTxn(recs, req.ProducerID, req.ProducerEpoch) }, recs)
	}
	entries, ok := s.persistCommitsWith(req.Group, req.CommitRequest, errs, write)
	if !ok {
		return errs
	}
	if s.groups[req.Group] == nil && !s.isConsumerGroup(req.Group) {
		// A simple group, as Kafka's coordinator creates when it replays the offsets.
		s.groups[req.Group] = newClassicGroup(req.Group, s.nowMs())
	}
	for i, o := range req.Offsets {
		if errs[i] == nil {
			s.txn.add(req.ProducerID, req.Group, o.TopicPartition, entries[i])
		}
	}
	return errs
}

// completeTxn ends a producer's transaction on the partition: a commit applies its pending
// offsets, an abort drops them. As in Kafka, a pending offset replaces the committed one only
// if its record was written after the committed one's: a plain OffsetCommit made while the
// transaction was open wins over the transaction's.
func (s *Shard) completeTxn(producerID int64, commit bool) {
	groups := s.txn.pending[producerID]
	delete(s.txn.pending, producerID)
	if !commit {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		offs := s.committedOffsets(id)
		for tp, e := range groups[id] {
			if cur, ok := offs[tp]; !ok || e.order > cur.order {
				offs[tp] = e
			}
		}
	}
}

// committedOffsets returns the map of a group's committed offsets (the replayed ones while
// loading), creating the group (a simple one) or its map if needed.
func (s *Shard) committedOffsets(id string) map[TopicPartition]offsetEntry {
	switch {
	case s.loading != nil:
		offs := s.loading.offsets[id]
		if offs == nil {
			offs = map[TopicPartition]offsetEntry{}
			s.loading.offsets[id] = offs
		}
		return offs
	case s.isConsumerGroup(id):
		offs := s.cg.offsets[id]
		if offs == nil {
			o := newGroupOffsets()
			offs = &o
			s.cg.offsets[id] = offs
		}
		return offs.m
	default:
		g := s.groups[id]
		if g == nil {
			g = newClassicGroup(id, s.nowMs())
			s.groups[id] = g
		}
		return g.offsets.m
	}
}

// replayBatch follows the batches of a replay: the records of a transactional batch are
// pending offsets of its producer, a transaction marker completes the producer's.
func (s *Shard) replayBatch(batch []byte, h *records.Header) {
	s.txn.replaying = -1
	if !h.IsControl() {
		if h.IsTransactional() {
			s.txn.replaying = h.ProducerID
		}
		return
	}
	typ, _, isMarker, err := records.ParseControl(batch, h)
	if err != nil || !isMarker {
		return
	}
	s.completeTxn(h.ProducerID, typ == records.ControlCommit)
}

// CommitTxnOffsets commits transactional offsets; see Shard.CommitTxnOffsets.
func (c *Coordinator) CommitTxnOffsets(req TxnCommitRequest) []error {
	return c.commitWith(req.Group, len(req.Offsets), func(s *Shard) []error { return s.CommitTxnOffsets(req) })
}

// CompleteTransaction tells the coordinator of __consumer_offsets partition p that the
// producer's transaction marker (commit or abort), at markerOffset in the partition, was
// written to it. While the partition loads, the marker waits for the load to end: applied
// then unless the replay read it (an offset below the replay's end).
func (c *Coordinator) CompleteTransaction(p int32, producerID int64, commit bool, markerOffset int64) {
	c.mu.Lock()
	part := c.mu.partitions[p]
	c.mu.Unlock()
	if part == nil {
		return // not loaded yet: a load will replay the marker
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	switch part.mu.state {
	case partitionActive:
		part.mu.shard.completeTxn(producerID, commit)
	case partitionLoading:
		part.mu.markers = append(part.mu.markers, txnMarker{producerID: producerID, commit: commit, offset: markerOffset})
	}
}

// txnMarker is a transaction marker written while its partition was loading.
type txnMarker struct {
	producerID int64
	commit     bool
	offset     int64
}

// applyMarkersLocked applies the markers written during the load that the replay, which
// read the log below replayEnd, did not see. part.mu is held.
func (part *partition) applyMarkersLocked(replayEnd int64) {
	for _, m := range part.mu.markers {
		if m.offset >= replayEnd {
			part.mu.shard.completeTxn(m.producerID, m.commit)
		}
	}
	part.mu.markers = nil
}
