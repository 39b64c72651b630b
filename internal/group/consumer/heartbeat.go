package consumer

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Error is a Kafka error with the message a response carries.
type Error struct {
	Err     *kerr.Error
	Message string
}

func (e *Error) Error() string { return e.Err.Message + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }

func errorf(k *kerr.Error, format string, args ...any) *Error {
	return &Error{Err: k, Message: fmt.Sprintf(format, args...)}
}

// op is one operation: the records it emitted, each already applied to the state, and
// copies of the groups it changed as they were before, for Revert.
type op struct {
	s       *Groups
	now     time.Time
	records []Record
	err     error             // the first record that failed to apply (a bug)
	undo    map[string]*group // group id → the group before the operation (nil: absent)
	// downgrades are the groups the operation converted to classic groups.
	downgrades []ClassicGroup
}

func newOp(s *Groups, now time.Time) *op {
	o := &op{s: s, now: now, undo: make(map[string]*group)}
	s.lastOp = o
	return o
}

func (o *op) emit(r Record) {
	if k, err := decodeKey(r.Key); err == nil {
		if _, saved := o.undo[k.group]; !saved {
			var before *group
			if g := o.s.groups[k.group]; g != nil {
				before = g.clone()
			}
			o.undo[k.group] = before
		}
	}
	o.records = append(o.records, r)
	if err := o.s.Replay(r); err != nil && o.err == nil {
		o.err = err
	}
}

// Revert undoes the last operation (Heartbeat, Tick or DeleteGroup) that emitted records:
// the coordinator calls it when writing them failed, so that the state matches the log.
func (s *Groups) Revert() {
	if o := s.lastOp; o != nil {
		s.revert(o)
	}
}

// Downgrades returns the groups the last operation converted to classic groups (see
// ClassicGroup): the coordinator builds them and writes their group metadata with the
// operation's records.
func (s *Groups) Downgrades() []ClassicGroup {
	if s.lastOp == nil {
		return nil
	}
	return s.lastOp.downgrades
}

// revert undoes an operation.
func (s *Groups) revert(o *op) {
	if s.lastOp == o {
		s.lastOp = nil
	}
	for id, before := range o.undo {
		if before == nil || (!before.persisted && len(before.members) == 0) {
			delete(s.groups, id)
			continue
		}
		before.metadataStale = true
		s.groups[id] = before
	}
	s.recomputeDeadline()
}

// Heartbeat handles a ConsumerGroupHeartbeat request (v0 or v1, req.Version) from a client
// with the given client id and host. It returns the response and the records to persist,
// which are already applied: the caller must write them before it sends the response.
func (s *Groups) Heartbeat(now time.Time, clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, []Record) {
	return s.HeartbeatUpgrading(now, clientID, clientHost, req, nil)
}

// HeartbeatUpgrading is Heartbeat for a member joining (epoch 0) the classic group from,
// which has members: the group is converted to a consumer group first (Kafka's online
// upgrade, see Upgrade), in the same operation. With from nil it is Heartbeat.
func (s *Groups) HeartbeatUpgrading(now time.Time, clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest, from *ClassicGroup) (*kmsg.ConsumerGroupHeartbeatResponse, []Record) {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = req.Version
	o := newOp(s, now)
	var err error
	if from != nil {
		if req.MemberEpoch != 0 {
			err = errorf(kerr.GroupIDNotFound, "Group %s is not a consumer group.", from.Group)
		} else {
			err = s.upgrade(o, from)
		}
	}
	if err == nil {
		err = s.heartbeat(o, clientID, clientHost, req, resp)
	}
	if err == nil && o.err != nil {
		err = errorf(kerr.UnknownServerError, "%v", o.err)
	}
	if err != nil {
		s.revert(o)
		// A group this request created in memory, and that nothing persisted, goes away.
		if g := s.groups[req.Group]; g != nil && !g.persisted && len(g.members) == 0 {
			delete(s.groups, req.Group)
		}
		*resp = kmsg.NewConsumerGroupHeartbeatResponse()
		resp.Version = req.Version
		setError(err, &resp.ErrorCode, &resp.ErrorMessage)
		return resp, nil
	}
	return resp, o.records
}

func setError(err error, code *int16, msg **string) {
	e, ok := err.(*Error)
	if !ok {
		e = errorf(kerr.UnknownServerError, "%v", err)
	}
	*code = e.Err.Code
	m := e.Message
	*msg = &m
}

func (s *Groups) validate(req *kmsg.ConsumerGroupHeartbeatRequest) *Error {
	invalid := func(msg string) *Error { return errorf(kerr.InvalidRequest, "%s", msg) }
	if (req.Version >= 1 || req.MemberEpoch > 0 || req.MemberEpoch == LeaveGroupMemberEpoch) && req.MemberID == "" {
		return invalid("MemberId can't be empty.")
	}
	if req.Group == "" {
		return invalid("GroupId can't be empty.")
	}
	if req.InstanceID != nil && *req.InstanceID == "" {
		return invalid("InstanceId can't be empty.")
	}
	if req.RackID != nil && *req.RackID == "" {
		return invalid("RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		if req.RebalanceTimeoutMillis == -1 {
			return invalid("RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Topics == nil || len(req.Topics) != 0 {
			return invalid("TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch == LeaveGroupStaticMemberEpoch:
		// Kafka requires the instance id here; leave accepts its absence from a known static
		// member (see the package doc).
	case req.MemberEpoch < LeaveGroupStaticMemberEpoch:
		return invalid("MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil && !slices.Contains(s.cfg.Assignors, *req.ServerAssignor) {
		return errorf(kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: %s.",
			*req.ServerAssignor, strings.Join(s.cfg.Assignors, ", "))
	}
	return nil
}

func ownedPartitions(topics []kmsg.ConsumerGroupHeartbeatRequestTopic) []TopicPartitions {
	if topics == nil {
		return nil
	}
	out := make([]TopicPartitions, 0, len(topics))
	for _, t := range topics {
		out = append(out, TopicPartitions{TopicID: t.TopicID, Partitions: t.Partitions})
	}
	return out
}

// checkEpoch refuses a heartbeat whose member epoch is not the member's, except a rejoin
// (epoch 0) and the previous epoch with owned partitions within the current assignment (the
// response that bumped the epoch may have been lost).
func checkEpoch(m *member, epoch int32, owned []TopicPartitions) *Error {
	if epoch == 0 {
		return nil
	}
	if epoch > m.epoch {
		return errorf(kerr.FencedMemberEpoch, "The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	}
	if epoch < m.epoch && (epoch != m.previousEpoch || !isSubset(owned, m.assigned)) {
		return errorf(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	}
	return nil
}

func isSubset(owned []TopicPartitions, a Assignment) bool {
	if owned == nil {
		return false
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !a.has(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

func (s *Groups) heartbeat(o *op, clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) error {
	if err := s.validate(req); err != nil {
		return err
	}
	if req.MemberEpoch == LeaveGroupMemberEpoch || req.MemberEpoch == LeaveGroupStaticMemberEpoch {
		return s.leave(o, req, resp)
	}
	join := req.MemberEpoch == 0
	g := s.groups[req.Group]
	if g == nil {
		if !join {
			return errorf(kerr.UnknownMemberID, "Group %s not found.", req.Group)
		}
		g = newGroup(req.Group)
		s.groups[req.Group] = g
	}
	if s.cfg.MaxSize > 0 && len(g.members) >= s.cfg.MaxSize && (req.MemberID == "" || g.members[req.MemberID] == nil) {
		return errorf(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of %d members.", s.cfg.MaxSize)
	}
	memberID := req.MemberID
	if memberID == "" {
		memberID = s.cfg.NewMemberID()
	}
	owned := ownedPartitions(req.Topics)

	// Find the member: an existing one, a new one, or a static member replacing its
	// previous incarnation.
	var old, replaced *member
	if req.InstanceID == nil {
		old = g.members[memberID]
		if old == nil && !join {
			return errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", memberID, g.id)
		}
		if old != nil {
			if err := checkEpoch(old, req.MemberEpoch, owned); err != nil {
				return err
			}
		}
	} else {
		instanceID := *req.InstanceID
		existing := g.staticMember(instanceID)
		switch {
		case join && existing == nil:
			old = g.members[memberID]
		case join && existing.id == memberID:
			old = existing // a rejoin under the same member id (see the package doc)
		case join && existing.epoch != LeaveGroupStaticMemberEpoch && existing.classic == nil:
			return errorf(kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", memberID, instanceID, existing.id)
		case join:
			replaced = existing
		case existing == nil:
			return errorf(kerr.UnknownMemberID, "Instance id %s is unknown.", instanceID)
		case existing.id != memberID:
			return errorf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", memberID, instanceID, existing.id)
		default:
			if err := checkEpoch(existing, req.MemberEpoch, owned); err != nil {
				return err
			}
			old = existing
		}
	}

	prev := memberBefore(old, replaced, memberID) // the member as it was before this request
	upd := prev.clone()
	if req.InstanceID != nil {
		upd.instanceID = *req.InstanceID
	}
	if req.RackID != nil {
		upd.rackID = *req.RackID
	}
	if req.RebalanceTimeoutMillis != -1 {
		upd.rebalanceTimeout = req.RebalanceTimeoutMillis
	}
	if req.ServerAssignor != nil {
		upd.serverAssignor = *req.ServerAssignor
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		sort.Strings(names)
		upd.topicNames = slices.Compact(names)
	}
	if req.SubscribedTopicRegex != nil {
		upd.regex = *req.SubscribedTopicRegex
	}
	upd.clientID, upd.clientHost = clientID, clientHost
	upd.classic = nil // a member of the classic protocol moves to this one
	if upd.regex != prev.regex && upd.regex != "" {
		if _, err := compileRegex(upd.regex); err != nil {
			return errorf(kerr.InvalidRegularExpression, "SubscribedTopicRegex `%s` is not a valid regular expression: %v.", upd.regex, err)
		}
	}

	// Everything is validated: from here on, emit records.
	m := s.updateMember(o, g, prev, upd, old == nil && replaced == nil, replaced, owned)
	delete(g.joinDeadline, memberID)
	delete(g.syncDeadline, memberID)
	g.sessionDeadline[memberID] = o.now.Add(s.cfg.SessionTimeout)
	s.noteDeadline(g.sessionDeadline[memberID])

	resp.MemberID = &memberID
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(s.cfg.HeartbeatInterval.Milliseconds())
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if join || full || !m.assigned.equal(prev.assigned) {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for _, tp := range m.assigned.list() {
			t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			t.TopicID, t.Partitions = tp.TopicID, tp.Partitions
			a.Topics = append(a.Topics, t)
		}
		resp.Assignment = &a
	}
	return nil
}

// memberBefore is a joining or heartbeating member as it was before the request: the
// existing member (old), the previous incarnation of a static member it replaces (under its
// new id, at epoch 0), or a new member.
func memberBefore(old, replaced *member, memberID string) *member {
	switch {
	case old != nil:
		return old.clone()
	case replaced != nil:
		prev := replaced.clone()
		prev.id = memberID
		prev.epoch, prev.previousEpoch = 0, 0
		return prev
	}
	return newMember(memberID)
}

// updateMember emits the records of a member's join or heartbeat, for both protocols: the
// replacement of a static member's previous incarnation, the member's new metadata (upd,
// prev being the member before the request), the group epoch bump its subscription or the
// topics' metadata call for, the new target assignment, and the member's reconciliation with
// the partitions it reports it owns. It returns the updated member.
func (s *Groups) updateMember(o *op, g *group, prev, upd *member, isNew bool, replaced *member, owned []TopicPartitions) *member {
	if replaced != nil {
		target := g.target[replaced.id]
		s.removeMemberRecords(o, g, replaced.id)
		o.emit(memberMetadataRecord(g.id, upd.id, prev.metadata()))
		o.emit(memberTargetRecord(g.id, upd.id, target))
		o.emit(currentAssignmentRecord(g.id, upd.id, prev.currentAssignment()))
	}
	if isNew || !upd.sameMetadata(prev) {
		o.emit(memberMetadataRecord(g.id, upd.id, upd.metadata()))
	}
	subscriptionChanged := !slices.Equal(upd.topicNames, prev.topicNames) || upd.regex != prev.regex

	// Bump the group epoch if the group is new, the subscription changed, or the metadata
	// of the subscribed topics changed.
	bump := g.epoch == 0 || subscriptionChanged
	if bump || g.metadataStale {
		hash := s.topics.metadataHash(s.subscribedTopicNames(g))
		g.metadataStale = false
		if bump || hash != g.metadataHash {
			o.emit(groupMetadataRecord(g.id, groupMetadataValue{epoch: g.epoch + 1, metadataHash: hash}))
		}
	}
	if g.epoch > g.assignmentEpoch {
		s.updateTarget(o, g)
	}
	m := g.members[upd.id]
	s.reconcile(o, g, m, owned, subscriptionChanged)
	return m
}

// removeMemberRecords emits the tombstones removing a member, in Kafka's order.
func (s *Groups) removeMemberRecords(o *op, g *group, memberID string) {
	o.emit(tombstone(TypeCurrentAssignment, g.id, memberID))
	o.emit(tombstone(TypeMemberTargetAssignment, g.id, memberID))
	o.emit(tombstone(TypeMemberMetadata, g.id, memberID))
}

// assignorName is the assignor a group uses: the one most of its members ask for, else the
// default.
func (s *Groups) assignorName(g *group) string {
	if name := g.preferredAssignor(); name != "" && slices.Contains(s.cfg.Assignors, name) {
		return name
	}
	return s.cfg.Assignors[0]
}

// updateTarget computes the target assignment of the group epoch and emits its changes.
func (s *Groups) updateTarget(o *op, g *group) {
	ids := g.sortedMemberIDs()
	members := make([]assignorMember, 0, len(ids))
	partitions := make(map[TopicID]int32)
	for _, id := range ids {
		m := g.members[id]
		topics := s.memberTopics(m)
		for _, t := range topics {
			partitions[t] = s.topics.byID[t].Partitions
		}
		members = append(members, assignorMember{id: id, instanceID: m.instanceID, topics: topics, current: g.target[id]})
	}
	result := assignorFor(s.assignorName(g))(members, partitions)
	for _, id := range ids {
		next := result[id]
		if next == nil {
			next = Assignment{}
		}
		if cur, ok := g.target[id]; !ok || !cur.equal(next) {
			o.emit(memberTargetRecord(g.id, id, next))
		}
	}
	o.emit(targetAssignmentRecord(g.id, g.epoch))
}

// reconcile moves a member towards its target assignment (Kafka's CurrentAssignmentBuilder)
// and emits its new current assignment if it changed.
func (s *Groups) reconcile(o *op, g *group, m *member, owned []TopicPartitions, subscriptionChanged bool) {
	targetEpoch := g.assignmentEpoch
	if !subscriptionChanged && m.reconciledTo(targetEpoch) {
		return
	}
	subscribed := make(map[TopicID]bool)
	for _, t := range s.memberTopics(m) {
		subscribed[t] = true
	}
	var next *member
	switch m.state {
	case MemberStable:
		if m.epoch != targetEpoch {
			next = computeNext(g, m, m.epoch, targetEpoch, g.target[m.id], subscribed, owned)
		} else if subscriptionChanged {
			next = keepSubscribed(m, subscribed, owned)
		}
	case MemberUnrevokedPartitions:
		if ownsAny(owned, m.pendingRevocation) {
			if subscriptionChanged {
				next = keepSubscribed(m, subscribed, owned)
			}
		} else {
			next = computeNext(g, m, m.epoch, targetEpoch, g.target[m.id], subscribed, owned)
		}
	case MemberUnreleasedPartitions:
		next = computeNext(g, m, m.epoch, targetEpoch, g.target[m.id], subscribed, owned)
	}
	if next == nil || next.sameAssignmentState(m) {
		return
	}
	o.emit(currentAssignmentRecord(g.id, m.id, next.currentAssignment()))
	if next.state == MemberUnrevokedPartitions && m.classic == nil {
		// (A classic member revokes by rejoining; its join deadline bounds it instead.)
		g.rebalanceTimer[m.id] = rebalanceTimer{epoch: next.epoch, at: o.now.Add(ms(next.rebalanceTimeout))}
		s.noteDeadline(g.rebalanceTimer[m.id].at)
	} else {
		delete(g.rebalanceTimer, m.id)
	}
}

// ownsAny reports whether the owned partitions a member reported include any of a; a
// member that did not report them (a nil list) is assumed to own them all.
func ownsAny(owned []TopicPartitions, a Assignment) bool {
	if owned == nil {
		return true
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if a.has(t.TopicID, p) {
				return true
			}
		}
	}
	return false
}

func (m *member) updateEpoch(epoch int32) {
	m.previousEpoch, m.epoch = m.epoch, epoch
}

// computeNext is the next state of a member moving towards its target: keep what is both
// assigned and targeted; revoke the rest first; then take the targeted partitions that no
// other member owns any more.
func computeNext(g *group, m *member, epoch, targetEpoch int32, target Assignment, subscribed map[TopicID]bool, owned []TopicPartitions) *member {
	assigned, pendingRevocation, pendingAssignment := Assignment{}, Assignment{}, Assignment{}
	unreleased := false
	topics := make(map[TopicID]bool)
	for t := range target {
		topics[t] = true
	}
	for t := range m.assigned {
		topics[t] = true
	}
	for t := range topics {
		want := target[t]
		if !subscribed[t] {
			want = nil
		}
		cur := m.assigned[t]
		keep := intersect(cur, want)
		if len(keep) > 0 {
			assigned[t] = keep
		}
		if rev := subtract(cur, keep); len(rev) > 0 {
			pendingRevocation[t] = rev
		}
		var free []int32
		for _, p := range subtract(want, keep) {
			if g.partitionEpoch(t, p) != -1 && !m.pendingRevocation.has(t, p) {
				unreleased = true
				continue
			}
			free = append(free, p)
		}
		if len(free) > 0 {
			pendingAssignment[t] = free
		}
	}
	next := m.clone()
	switch {
	case len(pendingRevocation) > 0 && ownsAny(owned, pendingRevocation):
		next.state = MemberUnrevokedPartitions
		next.updateEpoch(epoch)
		next.assigned, next.pendingRevocation = assigned, pendingRevocation
	default:
		for t, ps := range pendingAssignment {
			assigned[t] = union(assigned[t], ps)
		}
		next.state = MemberStable
		if unreleased {
			next.state = MemberUnreleasedPartitions
		}
		next.updateEpoch(targetEpoch)
		next.assigned, next.pendingRevocation = assigned, Assignment{}
	}
	return next
}

// keepSubscribed drops the topics a member no longer subscribes to from its current
// assignment, revoking them first if the member still owns them.
func keepSubscribed(m *member, subscribed map[TopicID]bool, owned []TopicPartitions) *member {
	assigned, pending := m.assigned.clone(), m.pendingRevocation.clone()
	removed := false
	for t, ps := range m.assigned {
		if !subscribed[t] {
			delete(assigned, t)
			pending[t] = union(pending[t], ps)
			removed = true
		}
	}
	if !removed {
		return nil
	}
	next := m.clone()
	next.updateEpoch(m.epoch)
	next.assigned = assigned
	if ownsAny(owned, pending) {
		next.state = MemberUnrevokedPartitions
		next.pendingRevocation = pending
	}
	return next
}

// leave handles a heartbeat with member epoch -1 (leave) or -2 (a static member leaving
// for now: it keeps its assignment until it rejoins or its session expires).
func (s *Groups) leave(o *op, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) error {
	g := s.groups[req.Group]
	if req.MemberEpoch == LeaveGroupStaticMemberEpoch && req.InstanceID == nil {
		// franz-go leaves with epoch -2 but without its instance id: accept it from a member
		// that is static, refuse it like Kafka from any other.
		var m *member
		if g != nil {
			m = g.members[req.MemberID]
		}
		if m == nil || m.instanceID == "" {
			return errorf(kerr.InvalidRequest, "InstanceId can't be null.")
		}
		instanceID := m.instanceID
		req = &kmsg.ConsumerGroupHeartbeatRequest{Version: req.Version, Group: req.Group, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, InstanceID: &instanceID}
	}
	if g == nil {
		return errorf(kerr.GroupIDNotFound, "Group %s not found.", req.Group)
	}
	memberID := req.MemberID
	resp.MemberID = &memberID
	resp.MemberEpoch = req.MemberEpoch
	if req.InstanceID == nil {
		m := g.members[req.MemberID]
		if m == nil {
			return errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
		}
		s.fence(o, g, m)
		return nil
	}
	m := g.staticMember(*req.InstanceID)
	if m == nil {
		return errorf(kerr.UnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
	}
	if m.id != req.MemberID {
		return errorf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, m.id)
	}
	if req.MemberEpoch == LeaveGroupStaticMemberEpoch {
		next := m.clone()
		next.epoch = LeaveGroupStaticMemberEpoch
		next.pendingRevocation = Assignment{}
		o.emit(currentAssignmentRecord(g.id, m.id, next.currentAssignment()))
		return nil
	}
	s.fence(o, g, m)
	return nil
}

// fence removes a member and bumps the group epoch.
func (s *Groups) fence(o *op, g *group, m *member) {
	s.fenceMembers(o, g, []*member{m})
}

// fenceMembers removes members and bumps the group epoch once, or converts the group to a
// classic group if only members using the classic protocol remain (see downgrade).
func (s *Groups) fenceMembers(o *op, g *group, ms []*member) {
	if len(ms) == 0 {
		return
	}
	if s.canDowngrade(g, ms) {
		s.downgrade(o, g, ms)
		return
	}
	for _, m := range ms {
		s.removeMemberRecords(o, g, m.id)
	}
	hash := s.topics.metadataHash(s.subscribedTopicNames(g))
	o.emit(groupMetadataRecord(g.id, groupMetadataValue{epoch: g.epoch + 1, metadataHash: hash}))
}

// Tick fences the members whose session expired, or that did not revoke partitions within
// their rebalance timeout, and returns the records to persist.
func (s *Groups) Tick(now time.Time) []Record {
	o := newOp(s, now)
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := s.groups[id]
		if g == nil {
			continue
		}
		for _, mid := range g.sortedMemberIDs() {
			if s.groups[id] != g {
				break // downgraded to a classic group
			}
			m := g.members[mid]
			expired := func(deadlines map[string]time.Time) bool {
				dl, ok := deadlines[mid]
				return ok && !now.Before(dl)
			}
			if expired(g.sessionDeadline) || expired(g.joinDeadline) || expired(g.syncDeadline) {
				s.fence(o, g, m)
				continue
			}
			if rt, ok := g.rebalanceTimer[mid]; ok && !now.Before(rt.at) {
				delete(g.rebalanceTimer, mid)
				if m.epoch == rt.epoch {
					s.fence(o, g, m)
				}
			}
		}
	}
	s.recomputeDeadline()
	return o.records
}

// NextDeadline returns when Tick should next run: at or before the earliest session or
// rebalance deadline (it may be early: a deadline that moved later is noticed when Tick
// runs, which keeps heartbeats from scanning every member).
func (s *Groups) NextDeadline() (time.Time, bool) {
	return s.deadline, s.hasDeadline
}

// noteDeadline records that a deadline was set.
func (s *Groups) noteDeadline(t time.Time) {
	if !s.hasDeadline || t.Before(s.deadline) {
		s.deadline, s.hasDeadline = t, true
	}
}

// recomputeDeadline finds the earliest deadline of every member.
func (s *Groups) recomputeDeadline() {
	s.hasDeadline = false
	for _, g := range s.groups {
		for _, t := range g.sessionDeadline {
			s.noteDeadline(t)
		}
		for _, rt := range g.rebalanceTimer {
			s.noteDeadline(rt.at)
		}
		for _, t := range g.joinDeadline {
			s.noteDeadline(t)
		}
		for _, t := range g.syncDeadline {
			s.noteDeadline(t)
		}
	}
}
