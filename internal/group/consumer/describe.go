package consumer

import (
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describe returns the ConsumerGroupDescribe view of a group; a group that does not exist
// is GROUP_ID_NOT_FOUND. Members are in member id order.
func (s *Groups) Describe(group string) kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = group
	g := s.groups[group]
	if g == nil {
		setError(errorf(kerr.GroupIDNotFound, "Group %s not found.", group), &d.ErrorCode, &d.ErrorMessage)
		return d
	}
	d.State = g.state()
	d.Epoch = g.epoch
	d.AssignmentEpoch = g.assignmentEpoch
	d.AssignorName = s.assignorName(g)
	for _, id := range g.sortedMemberIDs() {
		m := g.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		if m.instanceID != "" {
			v := m.instanceID
			dm.InstanceID = &v
		}
		if m.rackID != "" {
			v := m.rackID
			dm.RackID = &v
		}
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topicNames)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			v := m.regex
			dm.SubscribedTopicRegex = &v
		}
		dm.Assignment = s.describeAssignment(m.assigned)
		dm.TargetAssignment = s.describeAssignment(g.target[id])
		dm.MemberType = 1 // a member using the consumer protocol
		if m.classic != nil {
			dm.MemberType = 0 // a member using the classic protocol
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// describeAssignment names the topics of an assignment, leaving out deleted topics.
func (s *Groups) describeAssignment(a Assignment) kmsg.Assignment {
	out := kmsg.NewAssignment()
	out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, tp := range a.list() {
		t, ok := s.topics.byID[tp.TopicID]
		if !ok {
			continue
		}
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID, at.Topic, at.Partitions = tp.TopicID, t.Name, tp.Partitions
		out.TopicPartitions = append(out.TopicPartitions, at)
	}
	return out
}

// Listing is one group as ListGroups reports it.
type Listing struct {
	Group string
	State string
}

// List returns the consumer groups in id order.
func (s *Groups) List() []Listing {
	out := make([]Listing, 0, len(s.groups))
	for id, g := range s.groups {
		out = append(out, Listing{Group: id, State: g.state()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// MemberView is one member as the classic DescribeGroups reports it.
type MemberView struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Topics     []string     // subscribed topic names, including those its regex matches
	Assigned   []TopicNamed // current assignment by topic name
}

// TopicNamed is a topic's partitions named by topic name.
type TopicNamed struct {
	Topic      string
	Partitions []int32
}

// GroupView is what the classic APIs (DescribeGroups) need of a consumer group.
type GroupView struct {
	State    string
	Assignor string
	Members  []MemberView
}

// View returns a consumer group's summary for DescribeGroups, or false if it does not exist.
func (s *Groups) View(group string) (GroupView, bool) {
	g := s.groups[group]
	if g == nil {
		return GroupView{}, false
	}
	v := GroupView{State: g.state(), Assignor: s.assignorName(g)}
	for _, id := range g.sortedMemberIDs() {
		m := g.members[id]
		mv := MemberView{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		for _, t := range s.memberTopics(m) {
			mv.Topics = append(mv.Topics, s.topics.byID[t].Name)
		}
		sort.Strings(mv.Topics)
		for _, tp := range m.assigned.list() {
			if t, ok := s.topics.byID[tp.TopicID]; ok {
				mv.Assigned = append(mv.Assigned, TopicNamed{Topic: t.Name, Partitions: tp.Partitions})
			}
		}
		v.Members = append(v.Members, mv)
	}
	return v, true
}

// ValidateOffsetCommit checks an OffsetCommit (or TxnOffsetCommit, transactional) to a
// consumer group as Kafka 4.x does: from OffsetCommit v9 the generation field carries the
// member epoch. A commit without a member (epoch < 0) is allowed while the group is empty.
func (s *Groups) ValidateOffsetCommit(group, memberID string, memberEpoch int32, apiVersion int16, transactional bool) error {
	g := s.groups[group]
	if g == nil {
		return errorf(kerr.GroupIDNotFound, "Group %s not found.", group)
	}
	if memberEpoch < 0 && len(g.members) == 0 {
		return nil
	}
	m := g.members[memberID]
	if m == nil {
		return errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", memberID, group)
	}
	if m.classic != nil {
		// A classic member commits with its generation, its member epoch, at any version.
		if memberEpoch != m.epoch {
			return errorf(kerr.IllegalGeneration, "The received generation id %d does not match the expected member epoch %d.", memberEpoch, m.epoch)
		}
		return nil
	}
	if !transactional && apiVersion < 9 {
		return errorf(kerr.UnsupportedVersion, "OffsetCommit version 9 or above must be used by members using the modern group protocol")
	}
	if memberEpoch != m.epoch {
		return errorf(kerr.StaleMemberEpoch, "The received member epoch %d does not match the current member epoch %d.", memberEpoch, m.epoch)
	}
	return nil
}

// ValidateOffsetFetch checks an OffsetFetch of a consumer group: from v9 a member passes
// its id and epoch; a request without them (memberID nil, epoch < 0) is always allowed.
func (s *Groups) ValidateOffsetFetch(group string, memberID *string, memberEpoch int32) error {
	if memberID == nil && memberEpoch < 0 {
		return nil
	}
	g := s.groups[group]
	if g == nil {
		return errorf(kerr.GroupIDNotFound, "Group %s not found.", group)
	}
	id := ""
	if memberID != nil {
		id = *memberID
	}
	m := g.members[id]
	if m == nil {
		return errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", id, group)
	}
	if memberEpoch != m.epoch {
		return errorf(kerr.StaleMemberEpoch, "The received member epoch %d does not match the current member epoch %d.", memberEpoch, m.epoch)
	}
	return nil
}

// IsSubscribedToTopic reports whether a member of the group subscribes to the topic, by
// name or regular expression (OffsetDelete refuses such topics with GROUP_SUBSCRIBED_TO_TOPIC).
func (s *Groups) IsSubscribedToTopic(group, topic string) bool {
	g := s.groups[group]
	if g == nil {
		return false
	}
	_, ok := slices.BinarySearch(s.subscribedTopicNames(g), topic)
	return ok
}

// DeleteGroup removes an empty group (DeleteGroups, or the conversion of an empty group to
// a classic group) and returns the records to persist; a group with members is
// NON_EMPTY_GROUP. Its committed offsets are the caller's.
func (s *Groups) DeleteGroup(group string) ([]Record, error) {
	g := s.groups[group]
	if g == nil {
		return nil, errorf(kerr.GroupIDNotFound, "Group %s not found.", group)
	}
	if len(g.members) > 0 {
		return nil, errorf(kerr.NonEmptyGroup, "The group is not empty.")
	}
	o := newOp(s, time.Time{})
	ids := make([]string, 0, len(g.target))
	for id := range g.target {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		o.emit(tombstone(TypeMemberTargetAssignment, group, id))
	}
	o.emit(tombstone(TypeTargetAssignment, group, ""))
	o.emit(tombstone(TypeGroupMetadata, group, ""))
	if o.err != nil {
		return o.records, o.err
	}
	return o.records, nil
}
