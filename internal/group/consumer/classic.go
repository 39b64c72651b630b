package consumer

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file holds the members of a consumer group that use the classic protocol (Kafka's
// mixed groups): a JoinGroup, SyncGroup, Heartbeat or LeaveGroup sent to a consumer group with
// members. Such a member is a member like the others, subscribed to the topics of its
// ConsumerProtocolSubscription and assigned by the group's server-side assignor; it is never
// the leader and its own assignor never runs. It reconciles only when it joins, reporting in
// its subscription the partitions it still owns: an eager member owns none (it revoked all
// before joining) and moves straight to its target, a cooperative one first gets its
// assignment without the partitions it must give up, revokes them and rejoins. Its Heartbeat
// answers REBALANCE_IN_PROGRESS whenever it has something to catch up with. Its generation
// is its member epoch.

// ClassicProtocol is one protocol of a classic member's JoinGroup: the assignor name and the
// member's ConsumerProtocolSubscription.
type ClassicProtocol struct {
	Name     string
	Metadata []byte
}

// classicMeta is what a member using the classic protocol adds (Kafka's
// ClassicMemberMetadata): its session timeout and the protocols of its last JoinGroup.
type classicMeta struct {
	sessionTimeout int32 // ms
	protocols      []ClassicProtocol
}

func (c *classicMeta) clone() *classicMeta {
	if c == nil {
		return nil
	}
	d := *c
	d.protocols = slices.Clone(c.protocols)
	return &d
}

func (c *classicMeta) equal(o *classicMeta) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.sessionTimeout == o.sessionTimeout && slices.EqualFunc(c.protocols, o.protocols, func(a, b ClassicProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

// protocolName is the protocol a classic member is told it uses: the first of its join.
func (c *classicMeta) protocolName() string { return c.protocols[0].Name }

// sessionTimeout is a member's session timeout: its own if it uses the classic protocol.
func (s *Groups) sessionTimeout(m *member) time.Duration {
	if m.classic != nil {
		return ms(m.classic.sessionTimeout)
	}
	return s.cfg.SessionTimeout
}

// ClassicJoin is a JoinGroup request to a consumer group.
type ClassicJoin struct {
	Group      string
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	// SessionTimeout and RebalanceTimeout are in ms.
	SessionTimeout       int32
	RebalanceTimeout     int32
	ProtocolType         string
	Protocols            []ClassicProtocol
	RequireKnownMemberID bool // JoinGroup v4+ (KIP-394)
}

// ClassicJoinResult is the JoinGroup response of a member of a consumer group: it is never
// the leader, and its generation is its member epoch.
type ClassicJoinResult struct {
	MemberID   string
	Generation int32
	Protocol   string
}

// ClassicJoinGroup handles a JoinGroup to a consumer group with members. It returns the
// response and the records to persist (already applied); on an error the result carries the
// member id to return (a new one with MEMBER_ID_REQUIRED) and there are no records.
func (s *Groups) ClassicJoinGroup(now time.Time, req ClassicJoin) (ClassicJoinResult, []Record, error) {
	o := newOp(s, now)
	res, err := s.classicJoin(o, req)
	if err == nil && o.err != nil {
		err = errorf(kerr.UnknownServerError, "%v", o.err)
	}
	if err != nil {
		s.revert(o)
		return res, nil, err
	}
	return res, o.records, nil
}

func (s *Groups) classicJoin(o *op, req ClassicJoin) (ClassicJoinResult, error) {
	res := ClassicJoinResult{MemberID: req.MemberID, Generation: -1}
	g := s.groups[req.Group]
	if g == nil || len(g.members) == 0 {
		return res, errorf(kerr.UnknownMemberID, "Group %s not found.", req.Group)
	}
	if s.cfg.MigrationPolicy == MigrationDisabled {
		return res, errorf(kerr.InconsistentGroupProtocol, "Cannot join the consumer group %s with the classic protocol because the group migration is disabled.", g.id)
	}
	memberID := req.MemberID
	if memberID == "" {
		memberID = s.cfg.NewMemberID()
	}
	var existing *member // the static member of the instance id
	if req.InstanceID != nil {
		existing = g.staticMember(*req.InstanceID)
	}
	if s.cfg.MaxSize > 0 && len(g.members) >= s.cfg.MaxSize && g.members[memberID] == nil && existing == nil {
		return res, errorf(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of %d members.", s.cfg.MaxSize)
	}
	if req.ProtocolType != consumerProtocolType || !g.supportsClassicProtocols(req.Protocols) {
		return res, errorf(kerr.InconsistentGroupProtocol, "Member %s's protocols are not supported.", memberID)
	}
	if req.MemberID == "" && req.InstanceID == nil && req.RequireKnownMemberID {
		res.MemberID = memberID
		return res, errorf(kerr.MemberIDRequired, "Member %s must rejoin with its member id.", memberID)
	}

	var old, replaced *member
	switch {
	case req.InstanceID == nil:
		old = g.members[memberID]
	case req.MemberID == "":
		replaced = existing // nil: a new static member
	case existing == nil:
		return res, errorf(kerr.UnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
	case existing.id != memberID:
		return res, errorf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", memberID, *req.InstanceID, existing.id)
	default:
		old = existing
	}
	sub, err := decodeSubscription(req.Protocols[0].Metadata)
	if err != nil {
		return res, errorf(kerr.InconsistentGroupProtocol, "Malformed embedded consumer protocol in subscription deserialization.")
	}

	prev := memberBefore(old, replaced, memberID) // the member as it was before this request
	upd := prev.clone()
	if req.InstanceID != nil {
		upd.instanceID = *req.InstanceID
	}
	if sub.Rack != nil && *sub.Rack != "" {
		upd.rackID = *sub.Rack
	}
	upd.rebalanceTimeout = req.RebalanceTimeout
	names := slices.Clone(sub.Topics)
	sort.Strings(names)
	upd.topicNames = slices.Compact(names)
	upd.regex = ""
	upd.clientID, upd.clientHost = req.ClientID, req.ClientHost
	upd.classic = &classicMeta{sessionTimeout: req.SessionTimeout, protocols: slices.Clone(req.Protocols)}

	m := s.updateMember(o, g, prev, upd, old == nil && replaced == nil, replaced, s.ownedByName(sub.OwnedPartitions))
	res = ClassicJoinResult{MemberID: memberID, Generation: m.epoch, Protocol: m.classic.protocolName()}
	if replaced != nil && replaced.classic == nil && s.canDowngrade(g, nil) {
		// A classic static member took the place of the last member using the consumer
		// protocol: the group becomes a classic group now, rebalancing only if the
		// subscription changed (Kafka's validateOnlineDowngradeWithReplacedMember).
		changed := !slices.Equal(prev.topicNames, upd.topicNames) || prev.regex != ""
		s.downgrade(o, g, nil)
		o.downgrades[len(o.downgrades)-1].Rebalance = changed
		return res, nil
	}
	delete(g.joinDeadline, memberID)
	delete(g.rebalanceTimer, memberID)
	g.sessionDeadline[memberID] = o.now.Add(ms(req.SessionTimeout))
	g.syncDeadline[memberID] = o.now.Add(ms(req.RebalanceTimeout))
	s.noteDeadline(g.sessionDeadline[memberID])
	s.noteDeadline(g.syncDeadline[memberID])
	return res, nil
}

// consumerProtocolType is the protocol type of Kafka consumers, the only one a consumer
// group accepts from classic members.
const consumerProtocolType = "consumer"

// supportsClassicProtocols reports whether a classic member with these protocols may join:
// one of them must be supported by every member using the classic protocol.
func (g *group) supportsClassicProtocols(protocols []ClassicProtocol) bool {
	if len(protocols) == 0 {
		return false
	}
	classic := 0
	counts := make(map[string]int)
	for _, m := range g.members {
		if m.classic == nil {
			continue
		}
		classic++
		seen := make(map[string]bool)
		for _, p := range m.classic.protocols {
			if !seen[p.Name] {
				seen[p.Name] = true
				counts[p.Name]++
			}
		}
	}
	for _, p := range protocols {
		if counts[p.Name] == classic {
			return true
		}
	}
	return false
}

// decodeSubscription reads a ConsumerProtocolSubscription (versions 0 to 3).
func decodeSubscription(b []byte) (kmsg.ConsumerMemberMetadata, error) {
	var sub kmsg.ConsumerMemberMetadata
	err := sub.ReadFrom(b)
	return sub, err
}

// SubscriptionVersion is the version of a ConsumerProtocolSubscription (0 if unreadable,
// at most 3): the assignments a classic member gets are encoded at that version.
func SubscriptionVersion(b []byte) int16 {
	if len(b) < 2 {
		return 0
	}
	v := int16(binary.BigEndian.Uint16(b))
	return max(0, min(v, 3))
}

// ownedByName maps the owned partitions of a subscription to topic ids, leaving out topics
// that do not exist. It is never nil: a classic member always reports what it owns.
func (s *Groups) ownedByName(owned []kmsg.ConsumerMemberMetadataOwnedPartition) []TopicPartitions {
	out := []TopicPartitions{}
	for _, o := range owned {
		if t, ok := s.topics.byName[o.Topic]; ok && len(o.Partitions) > 0 {
			out = append(out, TopicPartitions{TopicID: t.ID, Partitions: o.Partitions})
		}
	}
	return out
}

// classicMember finds the member a SyncGroup, Heartbeat or LeaveGroup names, by member id or,
// for a static member, by instance id.
func classicMember(g *group, memberID string, instanceID *string) (*member, error) {
	if instanceID == nil {
		m := g.members[memberID]
		if m == nil {
			return nil, errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", memberID, g.id)
		}
		return m, nil
	}
	m := g.staticMember(*instanceID)
	if m == nil {
		return nil, errorf(kerr.UnknownMemberID, "Member with instance id %s is not a member of group %s.", *instanceID, g.id)
	}
	if m.id != memberID {
		return nil, errorf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", memberID, *instanceID, m.id)
	}
	return m, nil
}

// usingClassic finds a member of a SyncGroup or Heartbeat and checks its generation.
func (s *Groups) usingClassic(group, memberID string, instanceID *string, generation int32) (*group, *member, error) {
	g := s.groups[group]
	if g == nil || len(g.members) == 0 {
		return nil, nil, errorf(kerr.UnknownMemberID, "Group %s not found.", group)
	}
	m, err := classicMember(g, memberID, instanceID)
	if err != nil {
		return nil, nil, err
	}
	if m.classic == nil {
		return nil, nil, errorf(kerr.UnknownMemberID, "Member %s does not use the classic protocol.", memberID)
	}
	if generation != m.epoch {
		return nil, nil, errorf(kerr.IllegalGeneration, "The request generation id %d is not equal to the member epoch %d of member %s.", generation, m.epoch, memberID)
	}
	return g, m, nil
}

// askToRejoin answers REBALANCE_IN_PROGRESS and gives the member its rebalance timeout to
// rejoin, if it does not have a deadline already.
func (s *Groups) askToRejoin(now time.Time, g *group, m *member) error {
	if _, ok := g.joinDeadline[m.id]; !ok {
		g.joinDeadline[m.id] = now.Add(ms(m.rebalanceTimeout))
		s.noteDeadline(g.joinDeadline[m.id])
	}
	return errorf(kerr.RebalanceInProgress, "A new rebalance is triggered in group %s and member %s should rejoin to catch up.", g.id, m.id)
}

// ClassicSync is a SyncGroup request to a consumer group.
type ClassicSync struct {
	Group        string
	MemberID     string
	InstanceID   *string
	Generation   int32
	ProtocolType *string
	Protocol     *string
}

// ClassicSyncGroup handles a SyncGroup to a consumer group: it returns the member's current
// assignment as a ConsumerProtocolAssignment of its subscription's version. The assignments
// a classic leader would send are ignored: the group's assignor assigns. No records.
func (s *Groups) ClassicSyncGroup(now time.Time, req ClassicSync) ([]byte, error) {
	g, m, err := s.usingClassic(req.Group, req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return nil, err
	}
	if req.ProtocolType != nil && *req.ProtocolType != consumerProtocolType {
		return nil, errorf(kerr.InconsistentGroupProtocol, "The protocol type %s from member %s request is not equal to the group protocol type %s.", *req.ProtocolType, m.id, consumerProtocolType)
	}
	if req.Protocol != nil && *req.Protocol != m.classic.protocolName() {
		return nil, errorf(kerr.InconsistentGroupProtocol, "The protocol name %s from member %s request is not equal to the protocol name %s returned in the join response.", *req.Protocol, m.id, m.classic.protocolName())
	}
	if g.epoch > m.epoch && m.state != MemberUnrevokedPartitions {
		return nil, s.askToRejoin(now, g, m)
	}
	delete(g.syncDeadline, m.id)
	g.sessionDeadline[m.id] = now.Add(s.sessionTimeout(m))
	s.noteDeadline(g.sessionDeadline[m.id])

	a := kmsg.NewConsumerMemberAssignment()
	a.Version = SubscriptionVersion(m.classic.protocols[0].Metadata)
	for _, tp := range m.assigned.list() {
		if t, ok := s.topics.byID[tp.TopicID]; ok {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic, at.Partitions = t.Name, slices.Clone(tp.Partitions)
			a.Topics = append(a.Topics, at)
		}
	}
	sort.Slice(a.Topics, func(i, j int) bool { return a.Topics[i].Topic < a.Topics[j].Topic })
	return a.AppendTo(nil), nil
}

// ClassicHeartbeat handles a Heartbeat to a consumer group: it keeps the member's session and
// answers REBALANCE_IN_PROGRESS when the member must rejoin: the group epoch moved past its
// epoch, it must revoke partitions, or the partitions it waits for were released.
func (s *Groups) ClassicHeartbeat(now time.Time, group, memberID string, instanceID *string, generation int32) error {
	g, m, err := s.usingClassic(group, memberID, instanceID, generation)
	if err != nil {
		return err
	}
	g.sessionDeadline[m.id] = now.Add(s.sessionTimeout(m))
	s.noteDeadline(g.sessionDeadline[m.id])
	if m.epoch < g.epoch || m.state == MemberUnrevokedPartitions ||
		(m.state == MemberUnreleasedPartitions && !g.waitingOnUnreleased(m)) {
		return s.askToRejoin(now, g, m)
	}
	return nil
}

// waitingOnUnreleased reports whether a partition of the member's target is still owned by
// another member.
func (g *group) waitingOnUnreleased(m *member) bool {
	for t, ps := range g.target[m.id] {
		for _, p := range ps {
			if !m.assigned.has(t, p) && g.partitionEpoch(t, p) != -1 {
				return true
			}
		}
	}
	return false
}

// ClassicLeave is one member of a LeaveGroup: by member id, or by instance id for a static
// member (MemberID "" removes it whatever its member id, as kafka-consumer-groups does).
type ClassicLeave struct {
	MemberID   string
	InstanceID *string
}

// ClassicLeaveGroup handles a LeaveGroup to a consumer group, for members of either protocol:
// the members named are removed together (one epoch bump, or a downgrade if only classic
// members stay). It returns one error per member and the records to persist.
func (s *Groups) ClassicLeaveGroup(now time.Time, group string, leaving []ClassicLeave) ([]error, []Record) {
	o := newOp(s, now)
	errs := make([]error, len(leaving))
	g := s.groups[group]
	if g == nil {
		for i := range errs {
			errs[i] = errorf(kerr.UnknownMemberID, "Group %s not found.", group)
		}
		return errs, nil
	}
	var fenced []*member
	for i, l := range leaving {
		var m *member
		switch {
		case l.InstanceID == nil:
			if m = g.members[l.MemberID]; m == nil {
				errs[i] = errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", l.MemberID, g.id)
			}
		default:
			m = g.staticMember(*l.InstanceID)
			switch {
			case m == nil:
				errs[i] = errorf(kerr.UnknownMemberID, "Instance id %s is unknown.", *l.InstanceID)
			case l.MemberID != "" && m.id != l.MemberID:
				errs[i] = errorf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", l.MemberID, *l.InstanceID, m.id)
				m = nil
			}
		}
		if m != nil && !slices.Contains(fenced, m) {
			fenced = append(fenced, m)
		}
	}
	s.fenceMembers(o, g, fenced)
	if o.err != nil {
		s.revert(o)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = errorf(kerr.UnknownServerError, "%v", o.err)
			}
		}
		return errs, nil
	}
	s.recomputeDeadline()
	return errs, o.records
}
