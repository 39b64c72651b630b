package group

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group/consumer"
	"github.com/samsa-io/samsa/internal/metadata"
)

// KIP-848 consumer groups in the coordinator. A Shard keeps them beside its classic groups:
// their state machine (package consumer), whose records share the partition with the
// classic records, and their committed offsets, kept and persisted like a classic group's.
// A group id is either a classic group or a consumer group: a ConsumerGroupHeartbeat that
// joins an empty classic group (or a simple group, which only has offsets) converts it, and
// so does a JoinGroup to an empty consumer group; the offsets stay. Groups with members
// convert as group.consumer.migration.policy allows, and consumer groups take classic members
// (mixed_groups.go).

// groupTypeConsumer is the ListGroups type of KIP-848 groups.
const groupTypeConsumer = "consumer"

// timerConsumerGroups is the shard's one timer for its consumer groups, set to their next
// session or rebalance deadline.
const timerConsumerGroups timerKind = 100

// consumerRetryDelay is how long a failed write of expired members waits before the retry.
const consumerRetryDelay = time.Second

// consumerGroups is a shard's consumer groups.
type consumerGroups struct {
	sm      *consumer.Groups
	offsets map[string]*groupOffsets
	// timerAt is when the shard's consumer-group timer fires, if timerSet.
	timerAt  time.Time
	timerSet bool
}

// consumerConfig completes a consumer-group configuration with Kafka's defaults.
func consumerConfig(cfg consumer.Config) consumer.Config {
	def := consumer.DefaultConfig()
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = def.HeartbeatInterval
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = def.SessionTimeout
	}
	if len(cfg.Assignors) == 0 {
		cfg.Assignors = def.Assignors
	}
	return cfg
}

// newConsumerGroups returns a shard's consumer groups; classicMaxSize is group.max.size,
// which bounds downgrades to classic groups.
func newConsumerGroups(cfg consumer.Config, classicMaxSize int) *consumerGroups {
	cfg = consumerConfig(cfg)
	cfg.ClassicMaxSize = classicMaxSize
	return &consumerGroups{sm: consumer.New(cfg, nil), offsets: make(map[string]*groupOffsets)}
}

// topicsOf returns the topics of an image as the consumer groups see them.
func topicsOf(img *metadata.Image) []consumer.Topic {
	if img == nil {
		return nil
	}
	names := img.TopicNames()
	out := make([]consumer.Topic, 0, len(names))
	for _, n := range names {
		if t, ok := img.Topic(n); ok {
			out = append(out, consumer.Topic{Name: n, ID: consumer.TopicID(t.ID), Partitions: int32(len(t.Partitions))})
		}
	}
	return out
}

// isConsumerGroup reports whether id is one of the shard's consumer groups.
func (s *Shard) isConsumerGroup(id string) bool { return s.cg.sm.Has(id) }

// setConsumerTopics gives the consumer groups a new view of the topics.
func (s *Shard) setConsumerTopics(topics []consumer.Topic) { s.cg.sm.SetTopics(topics) }

// replayConsumer applies a consumer-group record while loading.
func (s *Shard) replayConsumer(key, value []byte) error {
	if err := s.cg.sm.Replay(consumer.Record{Key: key, Value: value}); err != nil {
		return errors.Join(ErrCorruptRecord, err)
	}
	return nil
}

// finishConsumerLoad ends loading for the consumer groups: they take their offsets from
// the replayed ones, their members get a full session timeout.
func (s *Shard) finishConsumerLoad(ls *loadState) {
	for id, offs := range ls.offsets {
		if s.isConsumerGroup(id) {
			s.cg.offsets[id] = &groupOffsets{m: offs}
			delete(ls.offsets, id)
			delete(ls.groups, id) // a consumer group replaced it (conversions write a tombstone first)
		}
	}
	s.cg.sm.Loaded(s.timers.now())
	s.scheduleConsumerTimer()
}

// scheduleConsumerTimer sets the shard's consumer-group timer to the next deadline.
func (s *Shard) scheduleConsumerTimer() {
	key := timerKey{kind: timerConsumerGroups}
	dl, ok := s.cg.sm.NextDeadline()
	if ok == s.cg.timerSet && dl.Equal(s.cg.timerAt) {
		return // already set (most heartbeats move no deadline earlier)
	}
	s.cg.timerAt, s.cg.timerSet = dl, ok
	if !ok {
		s.timers.cancel(key)
		return
	}
	s.timers.schedule(key, dl.Sub(s.timers.now()), s.consumerTimerFired)
}

// consumerTimerFired fences the members whose session or rebalance timeout expired.
func (s *Shard) consumerTimerFired() {
	s.cg.timerSet = false
	recs := s.cg.sm.Tick(s.timers.now())
	if err := s.persistConsumer(recs); err != nil {
		s.cg.sm.Revert()
		s.cg.timerAt, s.cg.timerSet = s.timers.now().Add(consumerRetryDelay), true
		s.timers.schedule(timerKey{kind: timerConsumerGroups}, consumerRetryDelay, s.consumerTimerFired)
		return
	}
	s.scheduleConsumerTimer()
}

func toRecords(recs []consumer.Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = Record{Key: r.Key, Value: r.Value}
	}
	return out
}

// ConsumerGroupHeartbeat handles a ConsumerGroupHeartbeat request.
func (s *Shard) ConsumerGroupHeartbeat(clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	fail := func(err error, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
		resp.Version = req.Version
		resp.ErrorCode = errCode(err)
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	// A classic group of that id: an empty one converts when a member joins, one with
	// members is upgraded (mixed_groups.go).
	var convert *classicGroup
	var extra []Record
	var from *consumer.ClassicGroup
	if g := s.groups[req.Group]; g != nil && g.state != stateDead {
		if req.MemberEpoch != 0 {
			return fail(kerr.GroupIDNotFound, "Group "+req.Group+" is not a consumer group.")
		}
		convert = g
		extra = []Record{{Key: groupMetadataKey(g.id)}}
		if len(g.members) > 0 {
			from = upgradeFrom(g)
		}
	}
	resp, recs := s.cg.sm.HeartbeatUpgrading(s.timers.now(), clientID, clientHost, req, from)
	if resp.ErrorCode != 0 || (len(recs) == 0 && convert == nil) {
		s.scheduleConsumerTimer()
		return resp
	}
	if err := s.persistConsumer(recs, extra...); err != nil {
		s.cg.sm.Revert()
		s.scheduleConsumerTimer()
		return fail(err, "")
	}
	switch {
	case from != nil:
		s.retireUpgraded(convert)
	case convert != nil:
		offs := convert.offsets
		s.dropGroup(convert)
		s.cg.offsets[req.Group] = &offs
		s.log.Info("converted an empty classic group to a consumer group", "group", req.Group)
	}
	s.scheduleConsumerTimer()
	return resp
}

// ConsumerGroupDescribe describes a group for ConsumerGroupDescribe.
func (s *Shard) ConsumerGroupDescribe(id string) kmsg.ConsumerGroupDescribeResponseGroup {
	if !s.isConsumerGroup(id) {
		if g := s.groups[id]; g != nil && g.state != stateDead {
			d := kmsg.NewConsumerGroupDescribeResponseGroup()
			d.Group = id
			d.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + id + " is not a consumer group."
			d.ErrorMessage = &msg
			return d
		}
	}
	return s.cg.sm.Describe(id)
}

// joinConsumerGroup handles a JoinGroup whose group id is a consumer group: an empty one is
// converted to a classic group (and the join goes on: it returns false); one with members
// takes the member in (mixed_groups.go).
func (s *Shard) joinConsumerGroup(req JoinRequest, done func(JoinResult)) bool {
	if !s.isConsumerGroup(req.Group) {
		return false
	}
	if !s.cg.sm.IsEmpty(req.Group) {
		s.classicJoinConsumerGroup(req, done)
		return true
	}
	if err := s.dropConsumerGroup(req.Group, false); err != nil {
		done(joinError(req.MemberID, err))
		return true
	}
	g := newClassicGroup(req.Group, s.nowMs())
	if offs := s.cg.offsets[req.Group]; offs != nil {
		g.offsets = *offs
	}
	delete(s.cg.offsets, req.Group)
	s.groups[req.Group] = g
	s.log.Info("converted an empty consumer group to a classic group", "group", req.Group)
	return false
}

// dropConsumerGroup deletes an empty consumer group, with its offsets if withOffsets.
func (s *Shard) dropConsumerGroup(id string, withOffsets bool) error {
	recs, err := s.cg.sm.DeleteGroup(id)
	if err != nil {
		return unwrapConsumerError(err)
	}
	var extra []Record
	var tps []TopicPartition
	if withOffsets {
		tps = s.offsetPartitions(id, s.cg.offsets[id])
		extra = s.tombstones(id, s.cg.offsets[id], tps)
	}
	if err := s.persistConsumer(recs, extra...); err != nil {
		s.cg.sm.Revert()
		return err
	}
	if withOffsets {
		s.dropOffsets(id, s.cg.offsets[id], tps)
		delete(s.cg.offsets, id)
	}
	s.scheduleConsumerTimer()
	return nil
}

// unwrapConsumerError turns the state machine's errors into the Kafka errors the
// coordinator's callers map to codes.
func unwrapConsumerError(err error) error {
	var ce *consumer.Error
	if errors.As(err, &ce) {
		return ce.Err
	}
	return err
}

// deleteConsumerGroup handles DeleteGroups for a consumer group.
func (s *Shard) deleteConsumerGroup(id string) error {
	return s.dropConsumerGroup(id, true)
}

// listConsumerGroups lists the consumer groups in the given states and of the given types.
func (s *Shard) listConsumerGroups(states, types []string) []GroupListing {
	if len(types) > 0 && !containsFold(types, groupTypeConsumer) {
		return nil
	}
	var out []GroupListing
	for _, l := range s.cg.sm.List() {
		if len(states) > 0 && !containsFold(states, l.State) {
			continue
		}
		out = append(out, GroupListing{Group: l.Group, ProtocolType: consumerProtocolType, State: l.State, Type: groupTypeConsumer})
	}
	return out
}

// describeConsumerGroup describes a consumer group for DescribeGroups: protocol type
// "consumer", the assignor as protocol, and each member's subscription and assignment in the
// consumer protocol's encoding.
func (s *Shard) describeConsumerGroup(id string) (GroupDescription, bool) {
	v, ok := s.cg.sm.View(id)
	if !ok {
		return GroupDescription{}, false
	}
	d := GroupDescription{Group: id, State: v.State, ProtocolType: consumerProtocolType, Protocol: v.Assignor}
	for _, m := range v.Members {
		md := MemberDescription{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost}
		if m.InstanceID != "" {
			inst := m.InstanceID
			md.InstanceID = &inst
		}
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Version = 3
		meta.Topics = m.Topics
		if meta.Topics == nil {
			meta.Topics = []string{}
		}
		md.Metadata = meta.AppendTo(nil)
		assign := kmsg.NewConsumerMemberAssignment()
		assign.Version = 3
		for _, t := range m.Assigned {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic, at.Partitions = t.Topic, t.Partitions
			assign.Topics = append(assign.Topics, at)
		}
		md.Assignment = assign.AppendTo(nil)
		d.Members = append(d.Members, md)
	}
	return d, true
}

// commitConsumerOffsets handles an OffsetCommit to a consumer group: from v9 the generation
// is the member epoch (STALE_MEMBER_EPOCH when it is not the member's).
func (s *Shard) commitConsumerOffsets(req CommitRequest) []error {
	errs := make([]error, len(req.Offsets))
	if err := s.cg.sm.ValidateOffsetCommit(req.Group, req.MemberID, req.Generation, req.APIVersion, false); err != nil {
		err = unwrapConsumerError(err)
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	entries, ok := s.persistCommits(req.Group, req, errs)
	if !ok {
		return errs
	}
	offs := s.cg.offsets[req.Group]
	if offs == nil {
		o := newGroupOffsets()
		offs = &o
		s.cg.offsets[req.Group] = offs
	}
	for i, o := range req.Offsets {
		if errs[i] == nil {
			offs.m[o.TopicPartition] = entries[i]
		}
	}
	return errs
}

// fetchConsumerOffsets returns a consumer group's committed offsets (all if tps is nil).
func (s *Shard) fetchConsumerOffsets(group string, tps []TopicPartition) []FetchedOffset {
	offs := s.cg.offsets[group]
	if offs == nil {
		o := newGroupOffsets()
		offs = &o
	}
	if tps == nil {
		tps = offs.partitions()
	}
	out := make([]FetchedOffset, 0, len(tps))
	for _, tp := range tps {
		f := FetchedOffset{TopicPartition: tp, Offset: -1, LeaderEpoch: -1}
		if e, ok := offs.m[tp]; ok {
			f.Offset, f.LeaderEpoch, f.Metadata = e.offset, e.leaderEpoch, e.metadata
		}
		out = append(out, f)
	}
	return out
}

// deleteConsumerOffsets handles OffsetDelete for a consumer group: the offsets of topics a
// member subscribes to stay (GROUP_SUBSCRIBED_TO_TOPIC).
func (s *Shard) deleteConsumerOffsets(group string, tps []TopicPartition) (error, []error) {
	errs := make([]error, len(tps))
	var eligible []TopicPartition
	for i, tp := range tps {
		if s.cg.sm.IsSubscribedToTopic(group, tp.Topic) {
			errs[i] = errSubscribedToTopic
		} else {
			eligible = append(eligible, tp)
		}
	}
	if err := s.removeOffsets(group, s.cg.offsets[group], eligible); err != nil {
		return err, nil
	}
	return nil, errs
}

// expireConsumerOffsets expires the offsets of consumer groups as Kafka does: an offset of a
// topic no member subscribes to expires offsets.retention.minutes after its commit; an empty
// group left without offsets is deleted.
func (s *Shard) expireConsumerOffsets() {
	now := s.nowMs()
	retention := s.set.OffsetsRetention.Milliseconds()
	for _, id := range slices.Sorted(maps.Keys(s.cg.offsets)) {
		offs := s.cg.offsets[id]
		var expired []TopicPartition
		for _, tp := range offs.partitions() {
			e := offs.m[tp]
			if s.cg.sm.IsSubscribedToTopic(id, tp.Topic) || s.txn.isPending(id, tp) {
				continue
			}
			if e.expireTimestamp >= 0 && now >= e.expireTimestamp || e.expireTimestamp < 0 && now-e.commitTimestamp >= retention {
				expired = append(expired, tp)
			}
		}
		if len(expired) == 0 {
			continue
		}
		if err := s.removeOffsets(id, offs, expired); err != nil {
			s.log.Warn("expiring offsets", "group", id, "err", err)
			continue
		}
		s.log.Info("expired offsets", "group", id, "partitions", len(expired))
		if offs.empty() && s.cg.sm.IsEmpty(id) && !s.txn.hasOpen(id) {
			if err := s.dropConsumerGroup(id, true); err != nil {
				s.log.Warn("deleting expired group", "group", id, "err", err)
			}
		}
	}
}

// ConsumerGroupHeartbeat handles a ConsumerGroupHeartbeat request.
func (c *Coordinator) ConsumerGroupHeartbeat(clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	var resp *kmsg.ConsumerGroupHeartbeatResponse
	err := errInvalidGroupID
	if req.Group != "" {
		err = c.withShard(req.Group, func(s *Shard) { resp = s.ConsumerGroupHeartbeat(clientID, clientHost, req) })
	}
	if err != nil {
		resp = kmsg.NewPtrConsumerGroupHeartbeatResponse()
		resp.Version = req.Version
		resp.ErrorCode = errCode(err)
	}
	return resp
}

// ConsumerGroupDescribe describes a group for ConsumerGroupDescribe.
func (c *Coordinator) ConsumerGroupDescribe(id string) kmsg.ConsumerGroupDescribeResponseGroup {
	var d kmsg.ConsumerGroupDescribeResponseGroup
	if err := c.withShard(id, func(s *Shard) { d = s.ConsumerGroupDescribe(id) }); err != nil {
		d = kmsg.NewConsumerGroupDescribeResponseGroup()
		d.Group = id
		d.ErrorCode = errCode(err)
	}
	return d
}

// FetchOffsetsForMember is OffsetFetch from v9, where a member of a consumer group names
// itself and its epoch (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID). Without a member (nil id,
// epoch -1) it is FetchOffsets.
// With requireStable (OffsetFetch v7+), a partition with a transactional offset pending is
// answered UNSTABLE_OFFSET_COMMIT, as Kafka does.
func (c *Coordinator) FetchOffsetsForMember(group string, memberID *string, memberEpoch int32, tps []TopicPartition, requireStable bool) ([]FetchedOffset, error) {
	var out []FetchedOffset
	var verr error
	if err := c.withShard(group, func(s *Shard) {
		if s.isConsumerGroup(group) {
			if err := s.cg.sm.ValidateOffsetFetch(group, memberID, memberEpoch); err != nil {
				verr = unwrapConsumerError(err)
				return
			}
		}
		out = s.FetchOffsets(group, tps)
		if requireStable {
			for i := range out {
				if s.txn.isPending(group, out[i].TopicPartition) {
					out[i] = FetchedOffset{TopicPartition: out[i].TopicPartition, Offset: -1, LeaderEpoch: -1, Err: errUnstableOffsetCommit}
				}
			}
		}
	}); err != nil {
		return nil, err
	}
	return out, verr
}

// setConsumerTopics gives every loaded shard's consumer groups the image's topics (shards
// loaded later take them from c.consumerTopics), and deletes the committed offsets of the
// topics deleted (or recreated under the same name) since the previous image.
func (c *Coordinator) setConsumerTopics(img *metadata.Image) {
	topics := topicsOf(img)
	prev := c.consumerTopics.Swap(&topics)
	gone := deletedTopics(prev, topics)
	c.mu.Lock()
	parts := slices.Collect(maps.Values(c.mu.partitions))
	c.mu.Unlock()
	for _, part := range parts {
		part.mu.Lock()
		if part.mu.state == partitionActive {
			part.mu.shard.setConsumerTopics(topics)
			if len(gone) > 0 {
				part.mu.shard.deleteTopicOffsets(gone)
			}
		}
		part.mu.Unlock()
	}
}

// deletedTopics returns the names of the topics of prev that next no longer has under the
// same topic id.
func deletedTopics(prev *[]consumer.Topic, next []consumer.Topic) map[string]bool {
	if prev == nil {
		return nil
	}
	ids := make(map[string]consumer.TopicID, len(next))
	for _, t := range next {
		ids[t.Name] = t.ID
	}
	var gone map[string]bool
	for _, t := range *prev {
		if id, ok := ids[t.Name]; !ok || id != t.ID {
			if gone == nil {
				gone = make(map[string]bool)
			}
			gone[t.Name] = true
		}
	}
	return gone
}

// initConsumerTopics gives a shard being loaded the latest topics.
func (c *Coordinator) initConsumerTopics(s *Shard) {
	if t := c.consumerTopics.Load(); t != nil {
		s.setConsumerTopics(*t)
	}
}

// errCode maps an error to its Kafka code (UNKNOWN_SERVER_ERROR for others).
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
