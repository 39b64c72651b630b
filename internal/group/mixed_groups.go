package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group/consumer"
)

// Mixed groups (Kafka 4.x): members of both protocols in one group. A consumer group with
// members serves JoinGroup, SyncGroup, Heartbeat and LeaveGroup from classic members (the
// state machine's Classic* operations); a ConsumerGroupHeartbeat that joins a classic group
// with members converts it to a consumer group (upgrade), and a consumer group whose last
// ConsumerGroupHeartbeat member leaves, while classic members remain, becomes a classic group
// again (downgrade), as group.consumer.migration.policy allows. See package consumer's
// migration.go for the conversions themselves; this file routes the requests and moves the
// groups, their offsets and their timers between the shard's two kinds of groups.

// classicJoinConsumerGroup handles a JoinGroup to a consumer group with members.
func (s *Shard) classicJoinConsumerGroup(req JoinRequest, done func(JoinResult)) {
	cj := consumer.ClassicJoin{
		Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID,
		ClientID: req.ClientID, ClientHost: req.ClientHost,
		SessionTimeout: durationMs(req.SessionTimeout), RebalanceTimeout: durationMs(req.RebalanceTimeout),
		ProtocolType: req.ProtocolType, RequireKnownMemberID: req.RequireKnownMemberID,
	}
	cj.Protocols = classicProtocols(req.Protocols)
	res, recs, err := s.cg.sm.ClassicJoinGroup(s.timers.now(), cj)
	if err == nil {
		if err = s.persistConsumer(recs); err != nil {
			s.cg.sm.Revert()
		}
	}
	s.scheduleConsumerTimer()
	if err != nil {
		done(JoinResult{Err: unwrapConsumerError(err), MemberID: res.MemberID, Generation: -1})
		return
	}
	protocolType := consumerProtocolType
	done(JoinResult{MemberID: res.MemberID, Generation: res.Generation, ProtocolType: &protocolType, Protocol: &res.Protocol})
}

func durationMs(d time.Duration) int32 { return int32(d.Milliseconds()) }

// classicProtocols converts a JoinGroup's protocols for the consumer state machine.
func classicProtocols(ps []Protocol) []consumer.ClassicProtocol {
	out := make([]consumer.ClassicProtocol, len(ps))
	for i, p := range ps {
		out[i] = consumer.ClassicProtocol{Name: p.Name, Metadata: p.Metadata}
	}
	return out
}

// classicSyncConsumerGroup handles a SyncGroup to a consumer group.
func (s *Shard) classicSyncConsumerGroup(req SyncRequest, done func(SyncResult)) {
	a, err := s.cg.sm.ClassicSyncGroup(s.timers.now(), consumer.ClassicSync{
		Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID,
		Generation: req.Generation, ProtocolType: req.ProtocolType, Protocol: req.Protocol,
	})
	s.scheduleConsumerTimer()
	if err != nil {
		done(SyncResult{Err: unwrapConsumerError(err)})
		return
	}
	done(SyncResult{ProtocolType: req.ProtocolType, Protocol: req.Protocol, Assignment: a})
}

// classicHeartbeatConsumerGroup handles a Heartbeat to a consumer group.
func (s *Shard) classicHeartbeatConsumerGroup(req HeartbeatRequest) error {
	err := s.cg.sm.ClassicHeartbeat(s.timers.now(), req.Group, req.MemberID, req.InstanceID, req.Generation)
	s.scheduleConsumerTimer()
	return unwrapConsumerError(err)
}

// classicLeaveConsumerGroup handles a LeaveGroup to a consumer group (members of either
// protocol may be named).
func (s *Shard) classicLeaveConsumerGroup(group string, members []LeaveMember) (error, []error) {
	leaving := make([]consumer.ClassicLeave, len(members))
	for i, m := range members {
		leaving[i] = consumer.ClassicLeave{MemberID: m.MemberID, InstanceID: m.InstanceID}
	}
	errs, recs := s.cg.sm.ClassicLeaveGroup(s.timers.now(), group, leaving)
	if len(recs) > 0 {
		if err := s.persistConsumer(recs); err != nil {
			s.cg.sm.Revert()
			s.scheduleConsumerTimer()
			return err, nil
		}
	}
	for i := range errs {
		errs[i] = unwrapConsumerError(errs[i])
	}
	s.scheduleConsumerTimer()
	return nil, errs
}

// upgradeFrom describes a classic group with members for its conversion to a consumer group.
func upgradeFrom(g *classicGroup) *consumer.ClassicGroup {
	from := &consumer.ClassicGroup{Group: g.id, ProtocolType: g.protocolType, Generation: g.generation, Protocol: g.protocol}
	for _, id := range g.order {
		m := g.members[id]
		cm := consumer.ClassicMember{
			MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			SessionTimeout: durationMs(m.sessionTimeout), RebalanceTimeout: durationMs(m.rebalanceTimeout),
			Assignment: m.assignment,
		}
		cm.Protocols = classicProtocols(m.protocols)
		from.Members = append(from.Members, cm)
	}
	return from
}

// retireUpgraded removes a classic group that became a consumer group: its waiting joins
// and syncs are told to rejoin (they land in the consumer group), its timers stop, and its
// offsets move to the consumer group.
func (s *Shard) retireUpgraded(g *classicGroup) {
	for _, id := range slices.Clone(g.order) {
		m := g.members[id]
		s.invokeJoin(g, m, joinError(m.id, errRebalance))
		s.invokeSync(m, SyncResult{Err: errRebalance})
		s.timers.cancel(hbKey(g, id))
	}
	for id := range g.pending {
		s.timers.cancel(timerKey{kind: timerPending, group: g.id, member: id})
	}
	offs := g.offsets
	s.dropGroup(g)
	s.cg.offsets[g.id] = &offs
	s.log.Info("converted a classic group with members to a consumer group", "group", g.id, "generation", g.generation, "members", len(g.members))
}

// downgradedGroup builds the classic group a consumer group became, and its group metadata
// record: Stable at the consumer group's epoch, each member holding its target assignment,
// encoded at the version of its subscription for the selected protocol.
func (s *Shard) downgradedGroup(d consumer.ClassicGroup) (*classicGroup, Record) {
	g := newClassicGroup(d.Group, s.nowMs())
	g.state, g.generation = stateStable, d.Generation
	for _, cm := range d.Members {
		m := &member{
			id: cm.MemberID, clientID: cm.ClientID, clientHost: cm.ClientHost,
			sessionTimeout:   time.Duration(cm.SessionTimeout) * time.Millisecond,
			rebalanceTimeout: time.Duration(cm.RebalanceTimeout) * time.Millisecond,
			protocolType:     consumerProtocolType,
		}
		if cm.InstanceID != "" {
			m.static, m.instanceID = true, cm.InstanceID
		}
		for _, p := range cm.Protocols {
			m.protocols = append(m.protocols, Protocol{Name: p.Name, Metadata: p.Metadata})
		}
		g.add(m)
	}
	g.protocol = g.selectProtocol()
	g.subscribed = g.computeSubscribed()
	assignment := make(map[string][]byte, len(d.Members))
	for _, cm := range d.Members {
		m := g.members[cm.MemberID]
		a := kmsg.NewConsumerMemberAssignment()
		a.Version = consumer.SubscriptionVersion(m.metadata(g.protocol))
		for _, t := range cm.Target {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic, at.Partitions = t.Topic, t.Partitions
			a.Topics = append(a.Topics, at)
		}
		m.assignment = a.AppendTo(nil)
		assignment[m.id] = m.assignment
	}
	return g, Record{Key: groupMetadataKey(g.id), Value: groupMetadataValue(g, assignment)}
}

// installDowngraded makes a downgraded group one of the shard's classic groups, with the
// consumer group's offsets, and starts the rebalance that hands assignment back to the
// members' own assignor (unless rebalance is false: a static member's replacement with the
// same subscription keeps the group Stable).
func (s *Shard) installDowngraded(g *classicGroup, rebalance bool) {
	if offs := s.cg.offsets[g.id]; offs != nil {
		g.offsets = *offs
	}
	delete(s.cg.offsets, g.id)
	s.groups[g.id] = g
	for _, id := range g.order {
		m := g.members[id]
		s.scheduleHeartbeat(g, m, m.sessionTimeout)
	}
	s.log.Info("converted a consumer group to a classic group: only classic members remain", "group", g.id, "generation", g.generation, "members", len(g.members))
	if rebalance {
		s.prepareRebalance(g)
	}
}

// persistConsumer writes the records of a consumer-group operation, with the extra records
// first, and the group metadata of the groups the operation downgraded last; once written,
// the downgraded groups become classic groups. On an error nothing is installed: the caller
// reverts the operation.
func (s *Shard) persistConsumer(recs []consumer.Record, extra ...Record) error {
	all := append(extra, toRecords(recs)...)
	downs := s.cg.sm.Downgrades()
	downgraded := make([]*classicGroup, len(downs))
	for i, d := range downs {
		g, rec := s.downgradedGroup(d)
		downgraded[i] = g
		all = append(all, rec)
	}
	if err := s.persist(all); err != nil {
		return err
	}
	for i, g := range downgraded {
		s.installDowngraded(g, downs[i].Rebalance)
	}
	return nil
}
