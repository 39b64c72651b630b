package consumer

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"
)

// MemberState is where a member is in its reconciliation towards its target assignment.
type MemberState int8

const (
	// MemberStable: the member owns its whole assignment at its epoch.
	MemberStable MemberState = 0
	// MemberUnrevokedPartitions: the member must revoke partitions before it moves on.
	MemberUnrevokedPartitions MemberState = 1
	// MemberUnreleasedPartitions: the member waits for partitions other members still own.
	MemberUnreleasedPartitions MemberState = 2
)

func (s MemberState) String() string {
	switch s {
	case MemberStable:
		return "stable"
	case MemberUnrevokedPartitions:
		return "unrevoked_partitions"
	case MemberUnreleasedPartitions:
		return "unreleased_partitions"
	}
	return "unknown"
}

// Special member epochs of ConsumerGroupHeartbeat.
const (
	LeaveGroupMemberEpoch       int32 = -1 // the member leaves
	LeaveGroupStaticMemberEpoch int32 = -2 // a static member leaves for now and will be back
)

// Group states as ListGroups and the describe APIs report them.
const (
	StateEmpty       = "Empty"
	StateAssigning   = "Assigning"
	StateReconciling = "Reconciling"
	StateStable      = "Stable"
)

// Config holds the consumer-group settings of the broker.
type Config struct {
	// HeartbeatInterval is group.consumer.heartbeat.interval.ms (5s).
	HeartbeatInterval time.Duration
	// SessionTimeout is group.consumer.session.timeout.ms (45s).
	SessionTimeout time.Duration
	// MaxSize is group.consumer.max.size (unlimited when 0).
	MaxSize int
	// Assignors is group.consumer.assignors: the server assignors members may choose, the
	// first being the default ("uniform", "range").
	Assignors []string
	// NewMemberID generates member ids for ConsumerGroupHeartbeat v0 joins; nil uses random
	// UUIDs.
	NewMemberID func() string
	// MigrationPolicy is group.consumer.migration.policy: whether a classic group with members
	// converts to a consumer group when a member joins with ConsumerGroupHeartbeat (upgrade),
	// and a consumer group whose last ConsumerGroupHeartbeat member leaves back to a classic
	// group (downgrade). "" is Kafka's default, bidirectional.
	MigrationPolicy MigrationPolicy
	// ClassicMaxSize is group.max.size, the most members of a classic group (unlimited when
	// 0): a consumer group larger than that is not downgraded.
	ClassicMaxSize int
}

// MigrationPolicy is a value of group.consumer.migration.policy.
type MigrationPolicy string

// The migration policies. Empty groups convert either way whatever the policy.
const (
	MigrationBidirectional MigrationPolicy = "bidirectional"
	MigrationUpgrade       MigrationPolicy = "upgrade"
	MigrationDowngrade     MigrationPolicy = "downgrade"
	MigrationDisabled      MigrationPolicy = "disabled"
)

func (p MigrationPolicy) upgrade() bool {
	return p == "" || p == MigrationBidirectional || p == MigrationUpgrade
}

func (p MigrationPolicy) downgrade() bool {
	return p == "" || p == MigrationBidirectional || p == MigrationDowngrade
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		HeartbeatInterval: 5 * time.Second,
		SessionTimeout:    45 * time.Second,
		Assignors:         []string{AssignorUniform, AssignorRange},
	}
}

// Validate checks a configuration.
func (c Config) Validate() error {
	if c.HeartbeatInterval <= 0 || c.SessionTimeout <= 0 {
		return fmt.Errorf("consumer group heartbeat interval and session timeout must be positive")
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return fmt.Errorf("group.consumer.heartbeat.interval.ms must be lower than group.consumer.session.timeout.ms")
	}
	if len(c.Assignors) == 0 {
		return fmt.Errorf("group.consumer.assignors must name at least one assignor")
	}
	for _, a := range c.Assignors {
		if assignorFor(a) == nil {
			return fmt.Errorf("group.consumer.assignors: unknown assignor %q (known: uniform, range)", a)
		}
	}
	switch c.MigrationPolicy {
	case "", MigrationBidirectional, MigrationUpgrade, MigrationDowngrade, MigrationDisabled:
	default:
		return fmt.Errorf("group.consumer.migration.policy: unknown policy %q (known: bidirectional, upgrade, downgrade, disabled)", c.MigrationPolicy)
	}
	return nil
}

func randomMemberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Groups is the consumer groups of one coordinator shard (one __consumer_offsets partition).
// It is not safe for concurrent use: the coordinator serializes calls.
type Groups struct {
	cfg    Config
	topics *topicView
	groups map[string]*group
	// resolved caches the topics each regular expression matches in the current view.
	resolved map[string][]string
	lastOp   *op // the last operation that may have emitted records, for Revert
	// deadline is at or before the earliest session or rebalance deadline (if hasDeadline).
	deadline    time.Time
	hasDeadline bool
}

// New returns an empty shard. cfg must be valid.
func New(cfg Config, topics []Topic) *Groups {
	if cfg.NewMemberID == nil {
		cfg.NewMemberID = randomMemberID
	}
	return &Groups{cfg: cfg, topics: newTopicView(topics), groups: make(map[string]*group), resolved: make(map[string][]string)}
}

type group struct {
	id              string
	epoch           int32
	metadataHash    int64
	assignmentEpoch int32
	members         map[string]*member
	target          map[string]Assignment // member id → target assignment
	// partitionEpochs holds, for every partition a member owns (assigned or pending
	// revocation), the epoch of that member; a partition not in it is free.
	partitionEpochs map[TopicID]map[int32]int32

	// Soft state, not persisted.
	persisted       bool // a record of the group exists
	metadataStale   bool // the topic view changed since the metadata hash was computed
	sessionDeadline map[string]time.Time
	rebalanceTimer  map[string]rebalanceTimer
	// joinDeadline and syncDeadline are the deadlines of members using the classic protocol:
	// to rejoin after being told to (REBALANCE_IN_PROGRESS), and to sync after joining.
	joinDeadline map[string]time.Time
	syncDeadline map[string]time.Time
}

type rebalanceTimer struct {
	epoch int32
	at    time.Time
}

type member struct {
	id               string
	instanceID       string
	rackID           string
	clientID         string
	clientHost       string
	topicNames       []string // sorted, duplicate-free
	regex            string
	serverAssignor   string
	rebalanceTimeout int32 // ms
	// classic is set while the member uses the classic protocol (JoinGroup, SyncGroup,
	// Heartbeat) inside this consumer group.
	classic *classicMeta

	epoch             int32
	previousEpoch     int32
	state             MemberState
	assigned          Assignment
	pendingRevocation Assignment
}

func newGroup(id string) *group {
	return &group{
		id:              id,
		members:         make(map[string]*member),
		target:          make(map[string]Assignment),
		partitionEpochs: make(map[TopicID]map[int32]int32),
		sessionDeadline: make(map[string]time.Time),
		rebalanceTimer:  make(map[string]rebalanceTimer),
		joinDeadline:    make(map[string]time.Time),
		syncDeadline:    make(map[string]time.Time),
		metadataStale:   true,
	}
}

// clone deep-copies a group, soft state included.
func (g *group) clone() *group {
	c := *g
	c.members = make(map[string]*member, len(g.members))
	for id, m := range g.members {
		c.members[id] = m.clone()
	}
	c.target = make(map[string]Assignment, len(g.target))
	for id, a := range g.target {
		c.target[id] = a.clone()
	}
	c.partitionEpochs = make(map[TopicID]map[int32]int32, len(g.partitionEpochs))
	for t, ps := range g.partitionEpochs {
		c.partitionEpochs[t] = maps.Clone(ps)
	}
	c.sessionDeadline = maps.Clone(g.sessionDeadline)
	c.rebalanceTimer = maps.Clone(g.rebalanceTimer)
	c.joinDeadline = maps.Clone(g.joinDeadline)
	c.syncDeadline = maps.Clone(g.syncDeadline)
	return &c
}

func newMember(id string) *member {
	return &member{id: id, previousEpoch: -1, rebalanceTimeout: -1, assigned: Assignment{}, pendingRevocation: Assignment{}}
}

func (m *member) clone() *member {
	c := *m
	c.topicNames = slices.Clone(m.topicNames)
	c.assigned = m.assigned.clone()
	c.pendingRevocation = m.pendingRevocation.clone()
	c.classic = m.classic.clone()
	return &c
}

func (m *member) metadata() memberMetadataValue {
	return memberMetadataValue{
		instanceID: m.instanceID, rackID: m.rackID, clientID: m.clientID, clientHost: m.clientHost,
		topicNames: m.topicNames, regex: m.regex, serverAssignor: m.serverAssignor,
		rebalanceTimeout: m.rebalanceTimeout, classic: m.classic,
	}
}

func (m *member) sameMetadata(o *member) bool {
	return m.instanceID == o.instanceID && m.rackID == o.rackID && m.clientID == o.clientID &&
		m.clientHost == o.clientHost && slices.Equal(m.topicNames, o.topicNames) && m.regex == o.regex &&
		m.serverAssignor == o.serverAssignor && m.rebalanceTimeout == o.rebalanceTimeout &&
		m.classic.equal(o.classic)
}

func (m *member) currentAssignment() currentAssignmentValue {
	return currentAssignmentValue{
		epoch: m.epoch, previousEpoch: m.previousEpoch, state: m.state,
		assigned: m.assigned, pendingRevocation: m.pendingRevocation,
	}
}

func (m *member) sameAssignmentState(o *member) bool {
	return m.epoch == o.epoch && m.previousEpoch == o.previousEpoch && m.state == o.state &&
		m.assigned.equal(o.assigned) && m.pendingRevocation.equal(o.pendingRevocation)
}

// reconciledTo reports whether the member owns its whole target of the given epoch.
func (m *member) reconciledTo(epoch int32) bool {
	return m.state == MemberStable && m.epoch == epoch
}

func (g *group) state() string {
	switch {
	case len(g.members) == 0:
		return StateEmpty
	case g.epoch > g.assignmentEpoch:
		return StateAssigning
	}
	for _, m := range g.members {
		if !m.reconciledTo(g.assignmentEpoch) {
			return StateReconciling
		}
	}
	return StateStable
}

func (g *group) staticMember(instanceID string) *member {
	for _, m := range g.members {
		if m.instanceID == instanceID {
			return m
		}
	}
	return nil
}

func (g *group) sortedMemberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// partitionEpoch returns the epoch of the member owning a partition, or -1.
func (g *group) partitionEpoch(t TopicID, p int32) int32 {
	if e, ok := g.partitionEpochs[t][p]; ok {
		return e
	}
	return -1
}

func (g *group) removePartitionEpochs(a Assignment) {
	for t, ps := range a {
		m := g.partitionEpochs[t]
		for _, p := range ps {
			delete(m, p)
		}
		if len(m) == 0 {
			delete(g.partitionEpochs, t)
		}
	}
}

func (g *group) addPartitionEpochs(a Assignment, epoch int32) {
	for t, ps := range a {
		m := g.partitionEpochs[t]
		if m == nil {
			m = make(map[int32]int32)
			g.partitionEpochs[t] = m
		}
		for _, p := range ps {
			m[p] = epoch
		}
	}
}

// preferredAssignor is the server assignor most members ask for (ties broken by name), or
// "" when none asks for one.
func (g *group) preferredAssignor() string {
	counts := make(map[string]int)
	for _, m := range g.members {
		if m.serverAssignor != "" {
			counts[m.serverAssignor]++
		}
	}
	best := ""
	for name, n := range counts {
		if best == "" || n > counts[best] || (n == counts[best] && name < best) {
			best = name
		}
	}
	return best
}

// subscribedTopicNames returns the sorted names of the topics the members subscribe to by
// name or through a regular expression that matches an existing topic.
func (s *Groups) subscribedTopicNames(g *group) []string {
	set := make(map[string]bool)
	regexes := make(map[string]bool)
	for _, m := range g.members {
		for _, t := range m.topicNames {
			set[t] = true
		}
		if m.regex != "" {
			regexes[m.regex] = true
		}
	}
	for re := range regexes {
		for _, t := range s.resolveRegex(re) {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (s *Groups) resolveRegex(re string) []string {
	if names, ok := s.resolved[re]; ok {
		return names
	}
	var names []string
	if c, err := compileRegex(re); err == nil { // an invalid one was refused at subscription
		names = s.topics.resolve(c)
	}
	s.resolved[re] = names
	return names
}

// memberTopics returns the ids of the existing topics a member subscribes to, sorted.
func (s *Groups) memberTopics(m *member) []TopicID {
	var ids []TopicID
	seen := make(map[TopicID]bool)
	add := func(name string) {
		if t, ok := s.topics.byName[name]; ok && !seen[t.ID] {
			seen[t.ID] = true
			ids = append(ids, t.ID)
		}
	}
	for _, n := range m.topicNames {
		add(n)
	}
	if m.regex != "" {
		for _, n := range s.resolveRegex(m.regex) {
			add(n)
		}
	}
	sortTopicIDs(ids)
	return ids
}

// SetTopics replaces the topic view. Groups notice changes to their subscribed topics on
// their next heartbeat, which bumps their epoch.
func (s *Groups) SetTopics(topics []Topic) {
	s.topics = newTopicView(topics)
	s.resolved = make(map[string][]string)
	for _, g := range s.groups {
		g.metadataStale = true
	}
}

// Replay applies one record read from __consumer_offsets. Records of other types are
// refused with an error wrapping ErrCorruptRecord; use IsRecord to route them.
func (s *Groups) Replay(r Record) error {
	k, err := decodeKey(r.Key)
	if err != nil {
		return err
	}
	g := s.groups[k.group]
	if g == nil {
		if r.Value == nil {
			return nil // a tombstone for a group already gone
		}
		g = newGroup(k.group)
		s.groups[k.group] = g
	}
	g.persisted = true
	switch k.typ {
	case TypeGroupMetadata:
		if r.Value == nil {
			s.removeGroup(g)
			return nil
		}
		v, err := decodeGroupMetadata(r.Value)
		if err != nil {
			return err
		}
		g.epoch, g.metadataHash = v.epoch, v.metadataHash
	case TypeMemberMetadata:
		m := g.members[k.member]
		if r.Value == nil {
			if m != nil {
				g.removePartitionEpochs(m.assigned)
				g.removePartitionEpochs(m.pendingRevocation)
				delete(g.members, k.member)
				delete(g.sessionDeadline, k.member)
				delete(g.rebalanceTimer, k.member)
				delete(g.joinDeadline, k.member)
				delete(g.syncDeadline, k.member)
			}
			return nil
		}
		v, err := decodeMemberMetadata(r.Value)
		if err != nil {
			return err
		}
		if m == nil {
			m = newMember(k.member)
			g.members[k.member] = m
		}
		m.instanceID, m.rackID, m.clientID, m.clientHost = v.instanceID, v.rackID, v.clientID, v.clientHost
		m.topicNames, m.regex, m.serverAssignor, m.rebalanceTimeout = v.topicNames, v.regex, v.serverAssignor, v.rebalanceTimeout
		m.classic = v.classic
		if m.classic == nil {
			delete(g.joinDeadline, k.member)
			delete(g.syncDeadline, k.member)
		}
	case TypeTargetAssignment:
		if r.Value == nil {
			g.assignmentEpoch = 0
			return nil
		}
		e, err := decodeTargetAssignment(r.Value)
		if err != nil {
			return err
		}
		g.assignmentEpoch = e
	case TypeMemberTargetAssignment:
		if r.Value == nil {
			delete(g.target, k.member)
			return nil
		}
		a, err := decodeMemberTarget(r.Value)
		if err != nil {
			return err
		}
		g.target[k.member] = a
	case TypeCurrentAssignment:
		m := g.members[k.member]
		if r.Value == nil {
			if m != nil {
				g.removePartitionEpochs(m.assigned)
				g.removePartitionEpochs(m.pendingRevocation)
				m.epoch, m.previousEpoch, m.state = LeaveGroupMemberEpoch, -1, MemberStable
				m.assigned, m.pendingRevocation = Assignment{}, Assignment{}
			}
			return nil
		}
		v, err := decodeCurrentAssignment(r.Value)
		if err != nil {
			return err
		}
		if m == nil {
			m = newMember(k.member)
			g.members[k.member] = m
		}
		g.removePartitionEpochs(m.assigned)
		g.removePartitionEpochs(m.pendingRevocation)
		m.epoch, m.previousEpoch, m.state = v.epoch, v.previousEpoch, v.state
		m.assigned, m.pendingRevocation = v.assigned, v.pendingRevocation
		g.addPartitionEpochs(m.assigned, m.epoch)
		g.addPartitionEpochs(m.pendingRevocation, m.epoch)
	}
	return nil
}

func (s *Groups) removeGroup(g *group) {
	delete(s.groups, g.id)
}

// Loaded arms the soft state after a shard was rebuilt with Replay: every member gets a
// full session timeout from now (a classic member its own, where Kafka gives every member the
// consumer-group session timeout), members revoking partitions a full rebalance timeout, and
// every group re-checks its topics' metadata on its next heartbeat.
func (s *Groups) Loaded(now time.Time) {
	for _, g := range s.groups {
		g.metadataStale = true
		for id, m := range g.members {
			g.sessionDeadline[id] = now.Add(s.sessionTimeout(m))
			if m.state == MemberUnrevokedPartitions && m.classic == nil {
				g.rebalanceTimer[id] = rebalanceTimer{epoch: m.epoch, at: now.Add(ms(m.rebalanceTimeout))}
			}
		}
	}
	s.recomputeDeadline()
}

func ms(v int32) time.Duration { return time.Duration(v) * time.Millisecond }

// Has reports whether a consumer group exists.
func (s *Groups) Has(group string) bool {
	_, ok := s.groups[group]
	return ok
}

// IsEmpty reports whether a consumer group exists and has no members.
func (s *Groups) IsEmpty(group string) bool {
	g, ok := s.groups[group]
	return ok && len(g.members) == 0
}
