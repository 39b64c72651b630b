package group

import (
	"maps"
	"slices"
	"time"
)

// This file holds the classic rebalance protocol of a Shard: JoinGroup, SyncGroup, Heartbeat
// and LeaveGroup, the join and sync phases, and the timeouts that drive them. It follows
// Kafka's GroupCoordinator (classic protocol) transition for transition:
//
//	Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
//	  ▲                  ▲       │ (no member left)                              │ leader's
//	  └──────────────────┼───────┘                                               │ SyncGroup
//	                     └──── join with new metadata, leave, session timeout ◀── Stable
//
// Dead is the state of a deleted or unloaded group. Errors are Kafka's: UNKNOWN_MEMBER_ID
// for ids the group does not know, FENCED_INSTANCE_ID for a static member's replaced id,
// ILLEGAL_GENERATION for a stale generation, REBALANCE_IN_PROGRESS to make members rejoin.

func joinError(memberID string, err error) JoinResult {
	return JoinResult{Err: err, MemberID: memberID, Generation: -1}
}

func hbKey(g *classicGroup, memberID string) timerKey {
	return timerKey{kind: timerHeartbeat, group: g.id, member: memberID}
}

// JoinGroup handles a JoinGroup request. done gets the response: at once for errors and for
// members that need no rebalance, else when the join phase completes.
func (s *Shard) JoinGroup(req JoinRequest, done func(JoinResult)) {
	switch {
	case req.Group == "":
		done(joinError(req.MemberID, errInvalidGroupID))
		return
	case req.SessionTimeout < s.set.MinSessionTimeout || req.SessionTimeout > s.set.MaxSessionTimeout:
		done(joinError(req.MemberID, errInvalidSession))
		return
	}
	if s.joinConsumerGroup(req, done) {
		return // a consumer group with members (consumer_groups.go)
	}
	unknown := req.MemberID == ""
	g := s.groups[req.Group]
	if g == nil {
		if !unknown {
			done(joinError(req.MemberID, errUnknownMember))
			return
		}
		g = newClassicGroup(req.Group, s.nowMs())
		s.groups[req.Group] = g
	}
	if !s.acceptJoiningMember(g, req.MemberID) {
		if m := g.members[req.MemberID]; m != nil {
			s.removeMemberAndUpdateGroup(g, m, errGroupMaxSize)
		} else if g.pending[req.MemberID] {
			delete(g.pending, req.MemberID)
			s.timers.cancel(timerKey{kind: timerPending, group: g.id, member: req.MemberID})
			s.maybeCompleteJoin(g)
		}
		done(joinError("", errGroupMaxSize))
		return
	}
	if unknown {
		s.joinNewMember(g, req, done)
	} else {
		s.joinCurrentMember(g, req, done)
	}
	s.maybeCompleteJoin(g)
	if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && g.generation == 0 && g.offsets.empty() {
		delete(s.groups, g.id) // a failed first join leaves no group behind
	}
}

// acceptJoiningMember applies group.max.size as Kafka does: while preparing a rebalance the
// members that rejoined count, otherwise the group's size.
func (s *Shard) acceptJoiningMember(g *classicGroup, memberID string) bool {
	max := s.set.MaxGroupSize
	if max <= 0 {
		return true
	}
	switch g.state {
	case stateEmpty, stateDead:
		return true
	case statePreparingRebalance:
		m := g.members[memberID]
		return (m != nil && m.joinWaiter != nil) || g.awaitingJoin < max
	default:
		return g.has(memberID) || len(g.members) < max
	}
}

func (s *Shard) joinNewMember(g *classicGroup, req JoinRequest, done func(JoinResult)) {
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		done(joinError("", errInconsistent))
		return
	}
	prefix := req.ClientID
	if req.InstanceID != nil {
		prefix = *req.InstanceID
	}
	newID := prefix + "-" + s.newID()
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok {
			s.replaceStaticMember(g, old, newID, req, done)
			return
		}
		s.addMemberAndRebalance(g, newID, req, done)
		return
	}
	if req.RequireKnownMemberID {
		// KIP-394: hand out an id and wait (a session timeout) for the member to rejoin with it.
		g.pending[newID] = true
		gid := g
		s.timers.schedule(timerKey{kind: timerPending, group: g.id, member: newID}, req.SessionTimeout, func() {
			s.expirePending(gid, newID)
		})
		done(JoinResult{Err: errMemberIDRequired, MemberID: newID, Generation: -1})
		return
	}
	s.addMemberAndRebalance(g, newID, req, done)
}

func (s *Shard) joinCurrentMember(g *classicGroup, req JoinRequest, done func(JoinResult)) {
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		done(joinError(req.MemberID, errInconsistent))
		return
	}
	if g.pending[req.MemberID] {
		s.timers.cancel(timerKey{kind: timerPending, group: g.id, member: req.MemberID})
		req.InstanceID = nil // a pending member is dynamic by construction
		s.addMemberAndRebalance(g, req.MemberID, req, done)
		return
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		done(joinError(req.MemberID, err))
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		s.updateMemberAndRebalance(g, m, req, done)
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost the join response: give it again.
			done(g.joinResult(m, g.leader, g.leader == m.id))
			return
		}
		s.updateMemberAndRebalance(g, m, req, done)
	case stateStable:
		if g.leader == m.id || !m.matches(req.Protocols) {
			// A leader's join always rebalances (it may have seen metadata change).
			s.updateMemberAndRebalance(g, m, req, done)
			return
		}
		done(g.joinResult(m, g.leader, false))
	default:
		done(joinError(req.MemberID, errUnknownMember))
	}
}

func (s *Shard) addMemberAndRebalance(g *classicGroup, id string, req JoinRequest, done func(JoinResult)) {
	m := &member{
		id:               id,
		clientID:         req.ClientID,
		clientHost:       req.ClientHost,
		sessionTimeout:   req.SessionTimeout,
		rebalanceTimeout: req.RebalanceTimeout,
		protocolType:     req.ProtocolType,
		protocols:        slices.Clone(req.Protocols),
		isNew:            true,
	}
	if req.InstanceID != nil {
		m.static, m.instanceID = true, *req.InstanceID
	}
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m)
	s.setJoinWaiter(g, m, done)
	// A new member cannot heartbeat before its join completes; bound its wait instead.
	s.scheduleHeartbeat(g, m, s.set.NewMemberJoinTimeout)
	s.maybePrepareRebalance(g)
}

func (s *Shard) updateMember(g *classicGroup, m *member, req JoinRequest, done func(JoinResult)) {
	g.countProtocols(m, -1)
	m.protocols = slices.Clone(req.Protocols)
	g.countProtocols(m, 1)
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	s.setJoinWaiter(g, m, done)
}

func (s *Shard) updateMemberAndRebalance(g *classicGroup, m *member, req JoinRequest, done func(JoinResult)) {
	s.updateMember(g, m, req, done)
	s.maybePrepareRebalance(g)
}

// replaceStaticMember handles a static member rejoining without a member id (KIP-345): it
// takes over the old member id's place. In a Stable group whose protocol would not change it
// gets its assignment back without a rebalance.
func (s *Shard) replaceStaticMember(g *classicGroup, oldID, newID string, req JoinRequest, done func(JoinResult)) {
	prevLeader := g.leader
	m := g.members[oldID]
	// Fence whoever still waits with the old id.
	s.invokeJoin(g, m, joinError(oldID, errFencedInstance))
	s.invokeSync(m, SyncResult{Err: errFencedInstance})
	g.rename(m, newID)
	s.timers.cancel(hbKey(g, oldID))
	s.scheduleHeartbeat(g, m, m.sessionTimeout)

	old := *m
	s.updateMember(g, m, req, done)
	switch g.state {
	case stateStable:
		if g.selectProtocol() != g.protocol {
			s.maybePrepareRebalance(g)
			return
		}
		assignment := make(map[string][]byte, len(g.members))
		for id, mm := range g.members {
			assignment[id] = mm.assignment
		}
		if err := s.storeGroup(g, assignment); err != nil {
			// Undo the replacement: the old member id stays valid.
			s.setJoinWaiter(g, m, nil)
			g.countProtocols(m, -1)
			m.protocols, m.sessionTimeout, m.rebalanceTimeout = old.protocols, old.sessionTimeout, old.rebalanceTimeout
			m.clientID, m.clientHost = old.clientID, old.clientHost
			g.countProtocols(m, 1)
			g.rename(m, oldID)
			s.timers.cancel(hbKey(g, newID))
			s.scheduleHeartbeat(g, m, m.sessionTimeout)
			done(JoinResult{Err: err, Generation: g.generation, ProtocolType: strPtr(g.protocolType), Protocol: strPtr(g.protocol), LeaderID: prevLeader})
			return
		}
		if req.SupportsSkipAssignment {
			// JoinGroup v9: a static leader learns it leads but must not reassign.
			leader := g.leader == newID
			r := g.joinResult(m, g.leader, leader)
			r.SkipAssignment = leader
			s.invokeJoin(g, m, r)
			return
		}
		// Before v9 the old leader id is returned, so a restarted leader does not assign.
		s.invokeJoin(g, m, g.joinResult(m, prevLeader, false))
	case stateCompletingRebalance:
		s.maybePrepareRebalance(g)
	case statePreparingRebalance:
		// The member is part of the ongoing join phase.
	}
}

// setJoinWaiter sets (or clears, with nil) the member's pending JoinGroup response, keeping
// the count of members awaiting the join phase. A replaced waiter is told to rejoin.
func (s *Shard) setJoinWaiter(g *classicGroup, m *member, done func(JoinResult)) {
	prev := m.joinWaiter
	switch {
	case done != nil && prev == nil:
		g.awaitingJoin++
	case done == nil && prev != nil:
		g.awaitingJoin--
	}
	m.joinWaiter = done
	if prev != nil && done != nil {
		prev(joinError(m.id, errRebalance))
	}
}

// invokeJoin answers the member's pending JoinGroup, if any.
func (s *Shard) invokeJoin(g *classicGroup, m *member, r JoinResult) bool {
	w := m.joinWaiter
	if w == nil {
		return false
	}
	m.joinWaiter = nil
	g.awaitingJoin--
	w(r)
	return true
}

// invokeSync answers the member's pending SyncGroup, if any.
func (s *Shard) invokeSync(m *member, r SyncResult) bool {
	w := m.syncWaiter
	if w == nil {
		return false
	}
	m.syncWaiter = nil
	w(r)
	return true
}

func (s *Shard) maybePrepareRebalance(g *classicGroup) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		s.prepareRebalance(g)
	}
}

// prepareRebalance starts a join phase: members must rejoin within the rebalance timeout. A
// new (Empty) group first waits group.initial.rebalance.delay.ms for more members.
func (s *Shard) prepareRebalance(g *classicGroup) {
	if g.state == stateCompletingRebalance {
		s.resetAndPropagateAssignmentError(g, errRebalance)
	}
	s.timers.cancel(timerKey{kind: timerSync, group: g.id})
	initial := g.state == stateEmpty
	g.transition(statePreparingRebalance, s.nowMs())
	key := timerKey{kind: timerJoin, group: g.id}
	if initial {
		d := s.set.InitialRebalanceDelay
		g.initialDelay = true
		g.newMemberAdded = false
		g.delayStep = d
		g.delayRemaining = max(g.rebalanceTimeout()-d, 0)
		s.timers.schedule(key, d, func() { s.onJoinTimer(g) })
		return
	}
	g.initialDelay = false
	s.timers.schedule(key, g.rebalanceTimeout(), func() { s.onJoinTimer(g) })
	s.maybeCompleteJoin(g)
}

// onJoinTimer ends the join phase when its deadline passes, or extends the initial delay
// while new members keep joining.
func (s *Shard) onJoinTimer(g *classicGroup) {
	if !s.current(g) || g.state != statePreparingRebalance {
		return
	}
	if g.initialDelay && g.newMemberAdded && g.delayRemaining > 0 {
		g.newMemberAdded = false
		delay := min(s.set.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining = max(g.delayRemaining-g.delayStep, 0)
		g.delayStep = delay
		s.timers.schedule(timerKey{kind: timerJoin, group: g.id}, delay, func() { s.onJoinTimer(g) })
		return
	}
	s.completeJoin(g)
}

// maybeCompleteJoin ends the join phase early once every member has rejoined (never during
// the initial delay).
func (s *Shard) maybeCompleteJoin(g *classicGroup) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		s.completeJoin(g)
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin are removed, the
// next generation starts with a protocol and a leader, and every member gets its JoinGroup
// response (the leader with the members' metadata). Members then have a rebalance timeout to
// send SyncGroup.
func (s *Shard) completeJoin(g *classicGroup) {
	s.timers.cancel(timerKey{kind: timerJoin, group: g.id})
	g.initialDelay = false
	for _, id := range slices.Clone(g.order) {
		if m := g.members[id]; m.joinWaiter == nil && !m.static {
			s.removeMember(g, m, errUnknownMember)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members are left and none rejoined: wait for them (or their session
		// timeouts) another rebalance timeout.
		s.timers.schedule(timerKey{kind: timerJoin, group: g.id}, g.rebalanceTimeout(), func() { s.onJoinTimer(g) })
		return
	}
	now := s.nowMs()
	g.generation++
	g.pendingSync = make(map[string]bool)
	if len(g.members) == 0 {
		g.protocol = ""
		g.transition(stateEmpty, now)
		g.subscribed = g.computeSubscribed()
		if err := s.storeGroup(g, nil); err != nil {
			s.log.Warn("writing empty group metadata", "group", g.id, "generation", g.generation, "err", err)
		}
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(stateCompletingRebalance, now)
	g.subscribed = g.computeSubscribed()
	s.log.Info("group rebalanced", "group", g.id, "generation", g.generation, "members", len(g.members), "protocol", g.protocol, "leader", g.leader)
	for _, id := range g.order {
		m := g.members[id]
		s.invokeJoin(g, m, g.joinResult(m, g.leader, id == g.leader))
		s.scheduleHeartbeat(g, m, m.sessionTimeout)
		m.isNew = false
		g.pendingSync[id] = true
	}
	gen := g.generation
	s.timers.schedule(timerKey{kind: timerSync, group: g.id}, g.rebalanceTimeout(), func() { s.onSyncTimer(g, gen) })
}

// onSyncTimer removes the members that have not sent SyncGroup a rebalance timeout after the
// join phase ended, and rebalances without them.
func (s *Shard) onSyncTimer(g *classicGroup, generation int32) {
	if !s.current(g) || g.generation != generation {
		return
	}
	if g.state != stateCompletingRebalance && g.state != stateStable || len(g.pendingSync) == 0 {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(g.pendingSync)) {
		if m := g.members[id]; m != nil {
			s.removeMember(g, m, errUnknownMember)
		}
	}
	s.log.Info("removed members that did not sync", "group", g.id, "generation", generation)
	s.prepareRebalance(g)
}

// SyncGroup handles a SyncGroup request. Followers wait for the leader's assignment; the
// leader's request persists the assignment and completes everyone's.
func (s *Shard) SyncGroup(req SyncRequest, done func(SyncResult)) {
	if req.Group == "" {
		done(SyncResult{Err: errInvalidGroupID})
		return
	}
	if s.isConsumerGroup(req.Group) {
		s.classicSyncConsumerGroup(req, done)
		return
	}
	g := s.groups[req.Group]
	if g == nil {
		done(SyncResult{Err: errUnknownMember})
		return
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		done(SyncResult{Err: err})
		return
	}
	switch {
	case req.Generation != g.generation:
		done(SyncResult{Err: errIllegalGeneration})
		return
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		done(SyncResult{Err: errInconsistent})
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case stateEmpty:
		done(SyncResult{Err: errUnknownMember})
	case statePreparingRebalance:
		done(SyncResult{Err: errRebalance})
	case stateCompletingRebalance:
		if prev := m.syncWaiter; prev != nil {
			m.syncWaiter = nil
			prev(SyncResult{Err: errRebalance})
		}
		m.syncWaiter = done
		s.removePendingSync(g, m.id)
		if g.leader != m.id {
			return
		}
		assignment := make(map[string][]byte, len(g.members))
		for _, id := range g.order {
			assignment[id] = req.Assignments[id]
			if assignment[id] == nil {
				assignment[id] = []byte{}
			}
		}
		if err := s.storeGroup(g, assignment); err != nil {
			s.resetAndPropagateAssignmentError(g, err)
			s.maybePrepareRebalance(g)
			return
		}
		for id, a := range assignment {
			g.members[id].assignment = a
		}
		s.propagateAssignment(g, nil)
		g.transition(stateStable, s.nowMs())
	case stateStable:
		s.removePendingSync(g, m.id)
		done(SyncResult{ProtocolType: strPtr(g.protocolType), Protocol: strPtr(g.protocol), Assignment: m.assignment})
		s.scheduleHeartbeat(g, m, m.sessionTimeout)
	}
}

func (s *Shard) removePendingSync(g *classicGroup, id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		s.timers.cancel(timerKey{kind: timerSync, group: g.id})
	}
}

// propagateAssignment answers the waiting SyncGroup requests: with each member's assignment
// if err is nil, else with err. Answered members get a fresh session timeout.
func (s *Shard) propagateAssignment(g *classicGroup, err error) {
	for _, id := range g.order {
		m := g.members[id]
		r := SyncResult{Err: err}
		if err == nil {
			r = SyncResult{ProtocolType: strPtr(g.protocolType), Protocol: strPtr(g.protocol), Assignment: m.assignment}
		}
		if s.invokeSync(m, r) {
			s.scheduleHeartbeat(g, m, m.sessionTimeout)
		}
	}
}

func (s *Shard) resetAndPropagateAssignmentError(g *classicGroup, err error) {
	for _, m := range g.members {
		m.assignment = nil
	}
	s.propagateAssignment(g, err)
}

// Heartbeat handles a Heartbeat request: it keeps the member's session alive and tells it
// whether a rebalance is under way.
func (s *Shard) Heartbeat(req HeartbeatRequest) error {
	if req.Group == "" {
		return errInvalidGroupID
	}
	if s.isConsumerGroup(req.Group) {
		return s.classicHeartbeatConsumerGroup(req)
	}
	g := s.groups[req.Group]
	if g == nil {
		return errUnknownMember
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return err
	}
	if req.Generation != g.generation {
		return errIllegalGeneration
	}
	m := g.members[req.MemberID]
	switch g.state {
	case stateEmpty:
		return errUnknownMember
	case statePreparingRebalance:
		s.scheduleHeartbeat(g, m, m.sessionTimeout)
		return errRebalance
	default:
		s.scheduleHeartbeat(g, m, m.sessionTimeout)
		return nil
	}
}

// scheduleHeartbeat (re)starts a member's session deadline.
func (s *Shard) scheduleHeartbeat(g *classicGroup, m *member, d time.Duration) {
	id := m.id
	s.timers.schedule(hbKey(g, id), d, func() { s.onHeartbeatTimer(g, id) })
}

// onHeartbeatTimer removes a member whose session expired. A member waiting in a rebalance
// is bounded by the rebalance timeout instead, unless it is new (its join timed out).
func (s *Shard) onHeartbeatTimer(g *classicGroup, id string) {
	if !s.current(g) {
		return
	}
	m := g.members[id]
	if m == nil {
		return
	}
	if !m.isNew && (m.joinWaiter != nil || m.syncWaiter != nil) {
		return
	}
	s.log.Info("member session expired", "group", g.id, "member", id, "generation", g.generation)
	s.removeMemberAndUpdateGroup(g, m, errUnknownMember)
}

func (s *Shard) expirePending(g *classicGroup, id string) {
	if !s.current(g) || !g.pending[id] {
		return
	}
	delete(g.pending, id)
	s.maybeCompleteJoin(g)
}

// removeMember removes a member, answering its waiting requests with err and stopping its
// session timer.
func (s *Shard) removeMember(g *classicGroup, m *member, err error) {
	s.invokeJoin(g, m, joinError("", err))
	s.invokeSync(m, SyncResult{Err: err})
	s.timers.cancel(hbKey(g, m.id))
	g.remove(m.id)
}

// removeMemberAndUpdateGroup removes a member and rebalances the rest.
func (s *Shard) removeMemberAndUpdateGroup(g *classicGroup, m *member, err error) {
	s.removeMember(g, m, err)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		s.maybePrepareRebalance(g)
	case statePreparingRebalance:
		s.maybeCompleteJoin(g)
	}
}

// LeaveGroup removes members. It returns a group-level error, or one error per member.
func (s *Shard) LeaveGroup(group string, members []LeaveMember) (error, []error) {
	if group == "" {
		return errInvalidGroupID, nil
	}
	if s.isConsumerGroup(group) {
		return s.classicLeaveConsumerGroup(group, members)
	}
	errs := make([]error, len(members))
	g := s.groups[group]
	if g == nil {
		for i := range errs {
			errs[i] = errUnknownMember
		}
		return nil, errs
	}
	for i, lm := range members {
		switch {
		case lm.MemberID == "":
			// Administrative removal of a static member by instance id.
			id, ok := "", false
			if lm.InstanceID != nil {
				id, ok = g.static[*lm.InstanceID]
			}
			if !ok {
				errs[i] = errUnknownMember
				continue
			}
			s.leave(g, g.members[id], lm.Reason)
		case g.pending[lm.MemberID]:
			delete(g.pending, lm.MemberID)
			s.timers.cancel(timerKey{kind: timerPending, group: g.id, member: lm.MemberID})
			s.maybeCompleteJoin(g)
		default:
			if err := g.validateMember(lm.MemberID, lm.InstanceID); err != nil {
				errs[i] = err
				continue
			}
			s.leave(g, g.members[lm.MemberID], lm.Reason)
		}
	}
	return nil, errs
}

func (s *Shard) leave(g *classicGroup, m *member, reason string) {
	s.log.Info("member left group", "group", g.id, "member", m.id, "reason", reason)
	s.removeMemberAndUpdateGroup(g, m, errUnknownMember)
}
