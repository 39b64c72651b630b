package group

import (
	"maps"
	"slices"
)

// offsetEntry is one committed offset.
type offsetEntry struct {
	offset          int64
	leaderEpoch     int32 // -1: none
	metadata        string
	commitTimestamp int64 // ms
	// expireTimestamp is set (>= 0) only by OffsetCommit v2-v4 with a retention time: such an
	// offset expires then, whatever the group's state (Kafka's pre-KIP-211 semantics).
	expireTimestamp int64
	// order is the record's place in the partition's write order (Kafka's record offset): a
	// transaction's pending offset replaces a committed one only if written after it.
	order int64
}

// groupOffsets are a group's committed offsets. Classic groups hold them today; a KIP-848
// consumer group will hold the same.
type groupOffsets struct {
	m map[TopicPartition]offsetEntry
}

func newGroupOffsets() groupOffsets { return groupOffsets{m: make(map[TopicPartition]offsetEntry)} }

func (o *groupOffsets) empty() bool { return len(o.m) == 0 }

// partitions returns the partitions with a committed offset, sorted.
func (o *groupOffsets) partitions() []TopicPartition {
	return slices.SortedFunc(maps.Keys(o.m), compareTP)
}

// tombstones returns delete records for those of the given partitions that have an offset,
// committed (in offs, which may be nil) or pending in a transaction: as Kafka's, a tombstone
// deletes both.
func (s *Shard) tombstones(group string, offs *groupOffsets, tps []TopicPartition) []Record {
	var recs []Record
	for _, tp := range tps {
		_, ok := offs.get(tp)
		if ok || s.txn.isPending(group, tp) {
			recs = append(recs, Record{Key: offsetCommitKey(group, tp.Topic, tp.Partition)})
		}
	}
	return recs
}

func (o *groupOffsets) get(tp TopicPartition) (offsetEntry, bool) {
	if o == nil {
		return offsetEntry{}, false
	}
	e, ok := o.m[tp]
	return e, ok
}

// dropOffsets applies the tombstones of tps once written: the committed offsets (offs may be
// nil) and the pending transactional ones of those partitions go.
func (s *Shard) dropOffsets(group string, offs *groupOffsets, tps []TopicPartition) {
	for _, tp := range tps {
		if offs != nil {
			delete(offs.m, tp)
		}
		s.txn.remove(group, tp)
	}
}

// offsetPartitions returns the partitions of a group with a committed (offs may be nil) or
// pending transactional offset, sorted.
func (s *Shard) offsetPartitions(group string, offs *groupOffsets) []TopicPartition {
	set := map[TopicPartition]bool{}
	if offs != nil {
		for tp := range offs.m {
			set[tp] = true
		}
	}
	for _, tp := range s.txn.pendingPartitions(group) {
		set[tp] = true
	}
	return slices.SortedFunc(maps.Keys(set), compareTP)
}

// deleteTopicOffsets removes every group's committed offsets of the given topics, as Kafka's
// coordinator does when topics are deleted: a topic recreated under the same name starts
// without them. A failed write leaves the offsets (logged).
func (s *Shard) deleteTopicOffsets(gone map[string]bool) {
	drop := func(group string, offs *groupOffsets) {
		var tps []TopicPartition
		for _, tp := range s.offsetPartitions(group, offs) {
			if gone[tp.Topic] {
				tps = append(tps, tp)
			}
		}
		if len(tps) == 0 {
			return
		}
		if err := s.removeOffsets(group, offs, tps); err != nil {
			s.log.Warn("deleting the offsets of deleted topics", "group", group, "err", err)
			return
		}
		s.log.Info("deleted the offsets of deleted topics", "group", group, "partitions", len(tps))
	}
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		drop(id, &s.groups[id].offsets)
	}
	ids := map[string]bool{}
	for id := range s.cg.offsets {
		ids[id] = true
	}
	for _, id := range s.txn.groups() {
		if s.groups[id] == nil {
			ids[id] = true // a consumer group with only pending offsets
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		drop(id, s.cg.offsets[id])
	}
}

// removeOffsets deletes a group's offsets of the given partitions, committed (offs may be
// nil) and pending in transactions (Kafka's OffsetDelete and topic deletion do both): their
// tombstones are written first, then they leave offs and the pending transactions.
func (s *Shard) removeOffsets(group string, offs *groupOffsets, tps []TopicPartition) error {
	if err := s.persist(s.tombstones(group, offs, tps)); err != nil {
		return err
	}
	s.dropOffsets(group, offs, tps)
	return nil
}

func compareTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition - b.Partition)
}

// validateCommit checks who may commit to a group: a member of the current generation, or
// anyone (generation -1, no member id) while the group has no members.
func (g *classicGroup) validateCommit(req CommitRequest) error {
	if g.state == stateDead {
		return errCoordinatorNotAvl
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
			return err
		}
		if req.Generation != g.generation {
			return errIllegalGeneration
		}
		return nil
	}
	if g.state != stateEmpty {
		return errUnknownMember
	}
	return nil
}

// CommitOffsets handles an OffsetCommit request whose partitions the caller has checked to
// exist. The offsets are acknowledged only once written; it returns one error per offset.
func (s *Shard) CommitOffsets(req CommitRequest) []error {
	if s.isConsumerGroup(req.Group) {
		return s.commitConsumerOffsets(req)
	}
	errs := make([]error, len(req.Offsets))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	g := s.groups[req.Group]
	if g == nil {
		switch {
		case req.Generation < 0 && req.MemberID == "":
			// A simple group: committing is all it does with the coordinator.
			g = newClassicGroup(req.Group, s.nowMs())
			s.groups[req.Group] = g
		case req.APIVersion >= 9:
			return fail(errGroupIDNotFound)
		default:
			return fail(errIllegalGeneration)
		}
	}
	if err := g.validateCommit(req); err != nil {
		return fail(err)
	}
	switch g.state {
	case stateCompletingRebalance:
		// The member has its new generation but not its assignment yet.
		return fail(errRebalance)
	case stateStable, statePreparingRebalance:
		// Commits are allowed while rebalancing; the heartbeat tells the member to rejoin.
		if m := g.members[req.MemberID]; m != nil {
			s.scheduleHeartbeat(g, m, m.sessionTimeout)
		}
	}
	entries, ok := s.persistCommits(g.id, req, errs)
	if !ok {
		return errs
	}
	for i, o := range req.Offsets {
		if errs[i] == nil {
			g.offsets.m[o.TopicPartition] = entries[i]
		}
	}
	return errs
}

// FetchOffsets returns a group's committed offsets for the given partitions, or all of them
// if tps is nil. Partitions without a commit (or of an unknown group) get offset -1.
func (s *Shard) FetchOffsets(group string, tps []TopicPartition) []FetchedOffset {
	if s.isConsumerGroup(group) {
		return s.fetchConsumerOffsets(group, tps)
	}
	g := s.groups[group]
	if tps == nil {
		if g == nil {
			return nil
		}
		tps = g.offsets.partitions()
	}
	out := make([]FetchedOffset, 0, len(tps))
	for _, tp := range tps {
		f := FetchedOffset{TopicPartition: tp, Offset: -1, LeaderEpoch: -1}
		if g != nil {
			if e, ok := g.offsets.m[tp]; ok {
				f.Offset, f.LeaderEpoch, f.Metadata = e.offset, e.leaderEpoch, e.metadata
			}
		}
		out = append(out, f)
	}
	return out
}

// DeleteOffsets handles OffsetDelete: offsets of an Empty group can be deleted; a group with
// members keeps the offsets of topics it consumes (GROUP_SUBSCRIBED_TO_TOPIC). It returns a
// group-level error or one error per partition.
func (s *Shard) DeleteOffsets(group string, tps []TopicPartition) (error, []error) {
	if s.isConsumerGroup(group) {
		return s.deleteConsumerOffsets(group, tps)
	}
	g := s.groups[group]
	if g == nil || g.state == stateDead {
		return errGroupIDNotFound, nil
	}
	errs := make([]error, len(tps))
	var eligible []TopicPartition
	switch {
	case g.state == stateEmpty:
		eligible = tps
	case g.protocolType == consumerProtocolType:
		for i, tp := range tps {
			if g.isSubscribed(tp.Topic) {
				errs[i] = errSubscribedToTopic
			} else {
				eligible = append(eligible, tp)
			}
		}
	default:
		return errNonEmptyGroup, nil
	}
	if err := s.removeOffsets(g.id, &g.offsets, eligible); err != nil {
		return err, nil
	}
	return nil, errs
}

func (s *Shard) scheduleExpiration() {
	if s.set.OffsetsRetentionCheckInterval <= 0 {
		return
	}
	s.timers.schedule(timerKey{kind: timerExpire}, s.set.OffsetsRetentionCheckInterval, func() {
		s.ExpireOffsets()
		s.scheduleExpiration()
	})
}

// ExpireOffsets removes expired offsets (offsets.retention.minutes) as Kafka does: all
// offsets of a group that has been Empty for the retention time; in a Stable consumer group,
// offsets of topics it no longer consumes, by commit time; in a simple group, by commit time.
// An Empty group left without offsets is deleted. As in Kafka, an offset with a
// transactional offset pending for its partition does not expire, and a group with an open
// transaction is not deleted. It runs every
// offsets.retention.check.interval.ms.
func (s *Shard) ExpireOffsets() {
	now := s.nowMs()
	retention := s.set.OffsetsRetention.Milliseconds()
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		var base func(e offsetEntry) int64
		var keep map[string]bool
		switch {
		case g.protocolType == "" && g.state == stateEmpty:
			base = func(e offsetEntry) int64 { return e.commitTimestamp }
		case g.state == stateEmpty:
			base = func(e offsetEntry) int64 {
				if g.stateTime >= 0 {
					return g.stateTime
				}
				return e.commitTimestamp
			}
		case g.protocolType == consumerProtocolType && g.subscribed != nil && g.state == stateStable:
			base = func(e offsetEntry) int64 { return e.commitTimestamp }
			keep = g.subscribed
		}
		var expired []TopicPartition
		if base != nil {
			for _, tp := range g.offsets.partitions() {
				e := g.offsets.m[tp]
				if keep[tp.Topic] || s.txn.isPending(g.id, tp) {
					continue // Kafka keeps an offset a transaction is about to replace
				}
				if e.expireTimestamp >= 0 && now >= e.expireTimestamp ||
					e.expireTimestamp < 0 && now-base(e) >= retention {
					expired = append(expired, tp)
				}
			}
		}
		recs := s.tombstones(g.id, &g.offsets, expired)
		dead := g.state == stateEmpty && len(g.offsets.m) == len(expired) && len(g.pending) == 0 && !s.txn.hasOpen(g.id)
		if dead {
			recs = append(recs, Record{Key: groupMetadataKey(g.id)})
		}
		if len(recs) == 0 {
			continue
		}
		if err := s.persist(recs); err != nil {
			s.log.Warn("expiring offsets", "group", g.id, "err", err)
			continue
		}
		s.dropOffsets(g.id, &g.offsets, expired)
		if len(expired) > 0 {
			s.log.Info("expired offsets", "group", g.id, "partitions", len(expired))
		}
		if dead {
			s.dropGroup(g)
		}
	}
	s.expireConsumerOffsets()
}

// persistCommits builds the offset entries of a commit (refusing metadata over
// offset.metadata.max.bytes in errs) and writes their records. ok is false when the write
// failed, every partition then carrying the error in errs.
func (s *Shard) persistCommits(group string, req CommitRequest, errs []error) (entries []offsetEntry, ok bool) {
	return s.persistCommitsWith(group, req, errs, s.persist)
}

// persistCommitsWith is persistCommits writing through write (s.persist, or a transactional
// write for TxnOffsetCommit).
func (s *Shard) persistCommitsWith(group string, req CommitRequest, errs []error, write func([]Record) error) (entries []offsetEntry, ok bool) {
	now := s.nowMs()
	var recs []Record
	entries = make([]offsetEntry, len(req.Offsets))
	for i, o := range req.Offsets {
		md := ""
		if o.Metadata != nil {
			md = *o.Metadata
		}
		if len(md) > s.set.OffsetMetadataMaxBytes {
			errs[i] = errMetadataTooLarge
			continue
		}
		e := offsetEntry{offset: o.Offset, leaderEpoch: max(o.LeaderEpoch, -1), metadata: md, commitTimestamp: now, expireTimestamp: -1, order: s.nextOrder()}
		if o.CommitTimestamp >= 0 {
			e.commitTimestamp = o.CommitTimestamp
		}
		if req.RetentionTime >= 0 {
			e.expireTimestamp = now + req.RetentionTime.Milliseconds()
		}
		entries[i] = e
		recs = append(recs, Record{Key: offsetCommitKey(group, o.Topic, o.Partition), Value: offsetCommitValue(e)})
	}
	if err := write(recs); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return nil, false
	}
	return entries, true
}
