package consumer

import (
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's online migration between the two protocols, under group.consumer.migration.policy:
//
//   - Upgrade: the first ConsumerGroupHeartbeat member joining a classic group with members
//     converts it. Every classic member becomes a member of the consumer group with the same
//     member id, its epoch the classic generation, its subscription and assignment decoded
//     from the consumer protocol; the target assignment starts as the current one, and the
//     group epoch is the generation. The joining member then bumps the epoch as any new
//     member does, and the classic members learn it from their next Heartbeat.
//   - Downgrade: when members leave (or are fenced) and only members using the classic
//     protocol remain, the group becomes a classic group again: Stable at a generation equal to
//     the group epoch, each member holding its target assignment, and the coordinator starts a
//     rebalance so that the members' assignor takes over. So does a classic static member that
//     takes the place of the last ConsumerGroupHeartbeat member, without the rebalance if its
//     subscription is the same.
//
// The conversions write the tombstones of the old group's records and the new group's records
// in one batch.

// ClassicGroup is a classic group as the conversions exchange it with the coordinator.
type ClassicGroup struct {
	Group string
	// ProtocolType is the classic group's protocol type (upgrade only: it must be "consumer").
	ProtocolType string
	// Generation is the classic generation (upgrade) or the consumer group's epoch (downgrade).
	Generation int32
	// Protocol is the classic group's selected protocol, whose metadata holds the members'
	// subscriptions (upgrade only; the first protocol of a member if empty).
	Protocol string
	Members  []ClassicMember
	// Rebalance (downgrade only) tells the coordinator to start a rebalance in the classic
	// group: always when members left, only if the subscription changed when a classic static
	// member replaced the last consumer-protocol member.
	Rebalance bool
}

// ClassicMember is a member of a ClassicGroup.
type ClassicMember struct {
	MemberID   string
	InstanceID string // "" for a dynamic member
	ClientID   string
	ClientHost string
	// SessionTimeout and RebalanceTimeout are in ms.
	SessionTimeout   int32
	RebalanceTimeout int32
	Protocols        []ClassicProtocol
	// Assignment is the member's ConsumerProtocolAssignment (upgrade; empty if it has none).
	Assignment []byte
	// Target is the member's target assignment by topic name (downgrade).
	Target []TopicNamed
}

// upgrade converts the classic group from to a consumer group (see the comment above).
func (s *Groups) upgrade(o *op, from *ClassicGroup) error {
	refuse := func(why string) error {
		return errorf(kerr.GroupIDNotFound, "Cannot upgrade classic group %s to consumer group because %s.", from.Group, why)
	}
	switch {
	case !s.cfg.MigrationPolicy.upgrade():
		return refuse("online upgrade is disabled")
	case from.ProtocolType != consumerProtocolType:
		return refuse("the group does not use the consumer embedded protocol")
	case s.cfg.MaxSize > 0 && len(from.Members) > s.cfg.MaxSize:
		return refuse("the group size exceeds the consumer group maximum size")
	}
	type imported struct {
		m      *member
		target Assignment
	}
	members := make([]imported, 0, len(from.Members))
	for _, cm := range from.Members {
		meta := cm.Protocols[0].Metadata
		for _, p := range cm.Protocols {
			if p.Name == from.Protocol {
				meta = p.Metadata
			}
		}
		sub, err := decodeSubscription(meta)
		if err != nil {
			return refuse("the embedded consumer protocol is malformed")
		}
		assigned := Assignment{}
		if len(cm.Assignment) > 0 {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(cm.Assignment); err != nil {
				return refuse("the embedded consumer protocol is malformed")
			}
			if len(a.UserData) > 0 {
				return refuse("an unsupported custom assignor is in use. Please refer to the documentation or switch to a default assignor before re-attempting the upgrade")
			}
			for _, t := range a.Topics {
				tv, ok := s.topics.byName[t.Topic]
				for _, p := range t.Partitions {
					if ok && p >= 0 { // a negative partition could not be persisted
						assigned[tv.ID] = append(assigned[tv.ID], p)
					}
				}
			}
			assigned = assigned.normalized()
		}
		m := newMember(cm.MemberID)
		m.instanceID, m.clientID, m.clientHost = cm.InstanceID, cm.ClientID, cm.ClientHost
		if sub.Rack != nil {
			m.rackID = *sub.Rack
		}
		names := slices.Clone(sub.Topics)
		sort.Strings(names)
		m.topicNames = slices.Compact(names)
		m.rebalanceTimeout = cm.RebalanceTimeout
		m.classic = &classicMeta{sessionTimeout: cm.SessionTimeout, protocols: append([]ClassicProtocol(nil), cm.Protocols...)}
		m.epoch, m.previousEpoch, m.state = from.Generation, from.Generation, MemberStable
		m.assigned = assigned
		members = append(members, imported{m: m, target: assigned})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].m.id < members[j].m.id })

	g := newGroup(from.Group)
	s.groups[from.Group] = g
	o.undo[from.Group] = nil // the group did not exist before
	for _, im := range members {
		o.emit(memberMetadataRecord(g.id, im.m.id, im.m.metadata()))
	}
	hash := s.topics.metadataHash(s.subscribedTopicNames(g))
	o.emit(groupMetadataRecord(g.id, groupMetadataValue{epoch: from.Generation, metadataHash: hash}))
	g.metadataStale = false
	for _, im := range members {
		o.emit(memberTargetRecord(g.id, im.m.id, im.target))
	}
	o.emit(targetAssignmentRecord(g.id, from.Generation))
	for _, im := range members {
		o.emit(currentAssignmentRecord(g.id, im.m.id, im.m.currentAssignment()))
		g.sessionDeadline[im.m.id] = o.now.Add(ms(im.m.classic.sessionTimeout))
		s.noteDeadline(g.sessionDeadline[im.m.id])
	}
	return nil
}

// canDowngrade reports whether removing the members leaves only members using the classic
// protocol, and the policy and group.max.size let the group become a classic group.
func (s *Groups) canDowngrade(g *group, leaving []*member) bool {
	if !s.cfg.MigrationPolicy.downgrade() {
		return false
	}
	gone := make(map[string]bool, len(leaving))
	for _, m := range leaving {
		gone[m.id] = true
	}
	remaining := 0
	for id, m := range g.members {
		if gone[id] {
			continue
		}
		if m.classic == nil {
			return false
		}
		remaining++
	}
	return remaining > 0 && (s.cfg.ClassicMaxSize <= 0 || remaining <= s.cfg.ClassicMaxSize)
}

// downgrade converts a consumer group to a classic group without the leaving members: it
// emits the tombstones of every record of the group and hands the classic group to the
// coordinator through the operation's downgrades.
func (s *Groups) downgrade(o *op, g *group, leaving []*member) {
	gone := make(map[string]bool, len(leaving))
	for _, m := range leaving {
		gone[m.id] = true
	}
	cg := ClassicGroup{Group: g.id, ProtocolType: consumerProtocolType, Generation: g.epoch, Rebalance: true}
	ids := g.sortedMemberIDs()
	for _, id := range ids {
		m := g.members[id]
		if gone[id] {
			continue
		}
		cm := ClassicMember{
			MemberID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			SessionTimeout: m.classic.sessionTimeout, RebalanceTimeout: m.rebalanceTimeout,
			Protocols: append([]ClassicProtocol(nil), m.classic.protocols...),
		}
		for _, tp := range g.target[id].list() {
			if t, ok := s.topics.byID[tp.TopicID]; ok {
				cm.Target = append(cm.Target, TopicNamed{Topic: t.Name, Partitions: append([]int32(nil), tp.Partitions...)})
			}
		}
		sort.Slice(cm.Target, func(i, j int) bool { return cm.Target[i].Topic < cm.Target[j].Topic })
		cg.Members = append(cg.Members, cm)
	}
	for _, id := range ids {
		o.emit(tombstone(TypeCurrentAssignment, g.id, id))
	}
	targets := make([]string, 0, len(g.target))
	for id := range g.target {
		targets = append(targets, id)
	}
	sort.Strings(targets)
	for _, id := range targets {
		o.emit(tombstone(TypeMemberTargetAssignment, g.id, id))
	}
	o.emit(tombstone(TypeTargetAssignment, g.id, ""))
	for _, id := range ids {
		o.emit(tombstone(TypeMemberMetadata, g.id, id))
	}
	o.emit(tombstone(TypeGroupMetadata, g.id, ""))
	o.downgrades = append(o.downgrades, cg)
}
