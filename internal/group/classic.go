package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is a classic group's state, with Kafka's names.
type groupState uint8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// consumerProtocolType is the protocol type of Kafka consumers; the coordinator reads their
// subscriptions to know which topics a group consumes.
const consumerProtocolType = "consumer"

// groupTypeClassic is the ListGroups type of groups using the JoinGroup/SyncGroup protocol.
const groupTypeClassic = "classic"

// member is one member of a classic group.
type member struct {
	id               string
	instanceID       string
	static           bool
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []Protocol
	assignment       []byte
	// joinWaiter is the pending JoinGroup response (the member awaits the join phase's end);
	// syncWaiter the pending SyncGroup response (it awaits the leader's assignment).
	joinWaiter func(JoinResult)
	syncWaiter func(SyncResult)
	// isNew marks a member added in the current join phase; if it never completes the join it
	// expires after newMemberJoinTimeout rather than its session timeout.
	isNew bool
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols are the member's current ones, in the same order.
func (m *member) matches(protocols []Protocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i, p := range protocols {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func (m *member) instanceIDPtr() *string {
	if !m.static {
		return nil
	}
	s := m.instanceID
	return &s
}

// classicGroup is a group using Kafka's classic rebalance protocol (JoinGroup/SyncGroup),
// including "simple" groups that only commit offsets. The Shard owns it; see join.go for
// its transitions.
type classicGroup struct {
	id    string
	state groupState
	// stateTime is when the group entered its state, in ms (-1 unknown); offsets of an
	// Empty group expire relative to it.
	stateTime    int64
	protocolType string // "" until a member joins (and for simple groups)
	protocol     string // the selected protocol, "" when Empty
	generation   int32
	leader       string
	members      map[string]*member
	order        []string          // member ids in join order, for deterministic iteration
	static       map[string]string // instance id -> member id
	// pending are dynamic members given an id with MEMBER_ID_REQUIRED, not yet rejoined.
	pending map[string]bool
	// pendingSync are members of the new generation that have not sent SyncGroup yet.
	pendingSync map[string]bool
	// supported counts, per protocol name, the members that support it.
	supported    map[string]int
	awaitingJoin int
	// The initial delayed join (group.initial.rebalance.delay.ms) of a new group: it is
	// extended while members keep arriving, up to the rebalance timeout.
	initialDelay   bool
	newMemberAdded bool
	delayStep      time.Duration
	delayRemaining time.Duration
	// subscribed are the topics the members subscribe to (consumer protocol); nil if unknown.
	subscribed map[string]bool
	offsets    groupOffsets
}

func newClassicGroup(id string, nowMs int64) *classicGroup {
	return &classicGroup{
		id:          id,
		state:       stateEmpty,
		stateTime:   nowMs,
		members:     make(map[string]*member),
		static:      make(map[string]string),
		pending:     make(map[string]bool),
		pendingSync: make(map[string]bool),
		supported:   make(map[string]int),
		offsets:     newGroupOffsets(),
	}
}

func (g *classicGroup) transition(s groupState, nowMs int64) {
	g.state = s
	g.stateTime = nowMs
}

func (g *classicGroup) has(id string) bool { return g.members[id] != nil }

// allJoined reports whether every member has rejoined and no member id handed out with
// MEMBER_ID_REQUIRED is still outstanding.
func (g *classicGroup) allJoined() bool {
	return len(g.members) == g.awaitingJoin && len(g.pending) == 0
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *classicGroup) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// supportsProtocols reports whether a member with these protocols may join: an Empty group
// takes any non-empty protocol type and list; otherwise the type must match and one protocol
// must be supported by every member.
func (g *classicGroup) supportsProtocols(protocolType string, protocols []Protocol) bool {
	if g.state == stateEmpty {
		return protocolType != "" && len(protocols) > 0
	}
	if g.protocolType != protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supported[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

func (g *classicGroup) countProtocols(m *member, delta int) {
	seen := make(map[string]bool, len(m.protocols))
	for _, p := range m.protocols {
		if !seen[p.Name] {
			seen[p.Name] = true
			g.supported[p.Name] += delta
			if g.supported[p.Name] == 0 {
				delete(g.supported, p.Name)
			}
		}
	}
}

// add adds a member; the caller sets its join waiter.
func (g *classicGroup) add(m *member) {
	if m.static {
		g.static[m.instanceID] = m.id
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	g.countProtocols(m, 1)
	delete(g.pending, m.id)
}

// remove removes a member without answering its waiters (see Shard.removeMember).
func (g *classicGroup) remove(id string) {
	m := g.members[id]
	if m != nil {
		g.countProtocols(m, -1)
		if m.joinWaiter != nil {
			g.awaitingJoin--
			m.joinWaiter = nil
		}
		m.syncWaiter = nil
		if m.static && g.static[m.instanceID] == id {
			delete(g.static, m.instanceID)
		}
		delete(g.members, id)
		for i, o := range g.order {
			if o == id {
				g.order = append(g.order[:i:i], g.order[i+1:]...)
				break
			}
		}
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
	delete(g.pending, id)
	delete(g.pendingSync, id)
}

// rename gives a static member its new member id (KIP-345 replacement).
func (g *classicGroup) rename(m *member, newID string) {
	old := m.id
	delete(g.members, old)
	m.id = newID
	g.members[newID] = m
	for i, o := range g.order {
		if o == old {
			g.order[i] = newID
		}
	}
	if g.leader == old {
		g.leader = newID
	}
	if g.pendingSync[old] {
		delete(g.pendingSync, old)
		g.pendingSync[newID] = true
	}
	g.static[m.instanceID] = newID
}

// electJoinedLeader makes sure the leader is a member that rejoined: if the leader has not,
// the first member that has takes over. It reports false if no member rejoined.
func (g *classicGroup) electJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if g.members[g.leader].joinWaiter != nil {
		return true
	}
	for _, id := range g.order {
		if g.members[id].joinWaiter != nil {
			g.leader = id
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports with the most votes, each member
// voting for its most preferred candidate; ties go to the protocol voted for first.
func (g *classicGroup) selectProtocol() string {
	votes := make(map[string]int)
	var first []string
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if g.supported[p.Name] == len(g.members) {
				if votes[p.Name] == 0 {
					first = append(first, p.Name)
				}
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, name := range first {
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// computeSubscribed derives the consumed topics from the members' consumer-protocol
// subscriptions (nil when unknown: another protocol type, or a subscription that does not
// parse).
func (g *classicGroup) computeSubscribed() map[string]bool {
	if g.protocolType != consumerProtocolType {
		return nil
	}
	topics := make(map[string]bool)
	if len(g.members) == 0 {
		return topics
	}
	if g.protocol == "" {
		return nil
	}
	for _, m := range g.members {
		var sub kmsg.ConsumerMemberMetadata
		if err := sub.ReadFrom(m.metadata(g.protocol)); err != nil {
			return nil
		}
		for _, t := range sub.Topics {
			topics[t] = true
		}
	}
	return topics
}

// isSubscribed reports whether the group consumes topic (true when that is unknown).
func (g *classicGroup) isSubscribed(topic string) bool {
	if g.subscribed == nil {
		return true
	}
	return g.subscribed[topic]
}

// validateMember checks that memberID is a member and, for a static member, that the
// instance id maps to it (FENCED_INSTANCE_ID when another member id took it over).
func (g *classicGroup) validateMember(memberID string, instanceID *string) error {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return errUnknownMember
		case cur != memberID:
			return errFencedInstance
		}
		return nil
	}
	if !g.has(memberID) {
		return errUnknownMember
	}
	return nil
}

// joinMembers returns the members' metadata for the selected protocol (the leader's view).
func (g *classicGroup) joinMembers() []JoinMember {
	out := make([]JoinMember, 0, len(g.order))
	for _, id := range g.order {
		m := g.members[id]
		out = append(out, JoinMember{MemberID: m.id, InstanceID: m.instanceIDPtr(), Metadata: m.metadata(g.protocol)})
	}
	return out
}

// joinResult is the successful JoinGroup response of m for the current generation.
func (g *classicGroup) joinResult(m *member, leaderID string, withMembers bool) JoinResult {
	r := JoinResult{
		MemberID:     m.id,
		Generation:   g.generation,
		ProtocolType: strPtr(g.protocolType),
		Protocol:     strPtr(g.protocol),
		LeaderID:     leaderID,
	}
	if withMembers {
		r.Members = g.joinMembers()
	}
	return r
}

// strPtr returns nil for "", else a pointer to s.
func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (g *classicGroup) describe() GroupDescription {
	d := GroupDescription{Group: g.id, State: g.state.String(), ProtocolType: g.protocolType}
	stable := g.state == stateStable
	if stable {
		d.Protocol = g.protocol
	}
	for _, id := range g.order {
		m := g.members[id]
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceIDPtr(), ClientID: m.clientID, ClientHost: m.clientHost}
		if stable {
			md.Metadata = m.metadata(g.protocol)
			md.Assignment = m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}
