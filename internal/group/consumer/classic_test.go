package consumer

import (
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// classicClient simulates a consumer using the classic protocol in a consumer group: it
// joins, syncs and heartbeats like the Java consumer, revoking everything before a join when
// eager, and only what it lost when cooperative.
type classicClient struct {
	h           *harness
	group       string
	id          string
	instance    *string
	generation  int32
	topics      []string
	protocols   []string
	cooperative bool
	version     int16 // of the subscription
	owned       map[string][]int32
	session     int32
	rto         int32
}

func (h *harness) classic(group string, topics ...string) *classicClient {
	return &classicClient{h: h, group: group, topics: topics, protocols: []string{"range", "cooperative-sticky"},
		version: 3, owned: map[string][]int32{}, session: 10000, rto: 30000, generation: -1}
}

func (c *classicClient) subscription() []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = c.version
	m.Topics = c.topics
	if c.cooperative {
		keys := mapsKeys(c.owned)
		sort.Strings(keys)
		for _, t := range keys {
			op := kmsg.NewConsumerMemberMetadataOwnedPartition()
			op.Topic, op.Partitions = t, c.owned[t]
			m.OwnedPartitions = append(m.OwnedPartitions, op)
		}
	}
	return m.AppendTo(nil)
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (c *classicClient) joinRequest() ClassicJoin {
	req := ClassicJoin{
		Group: c.group, MemberID: c.id, InstanceID: c.instance, ClientID: "classic", ClientHost: "/10.0.0.1",
		SessionTimeout: c.session, RebalanceTimeout: c.rto, ProtocolType: "consumer", RequireKnownMemberID: true,
	}
	sub := c.subscription()
	for _, p := range c.protocols {
		req.Protocols = append(req.Protocols, ClassicProtocol{Name: p, Metadata: sub})
	}
	return req
}

// join sends JoinGroup (twice for a new dynamic member: KIP-394).
func (c *classicClient) join() error {
	c.h.t.Helper()
	if !c.cooperative {
		c.owned = map[string][]int32{} // eager: everything is revoked before a join
	}
	for range 2 {
		res, recs, err := c.h.s.ClassicJoinGroup(c.h.now, c.joinRequest())
		if err != nil && len(recs) > 0 {
			c.h.t.Fatalf("join failed with %v but emitted records", err)
		}
		c.h.record(recs)
		if errors.Is(err, kerr.MemberIDRequired) {
			c.id = res.MemberID
			continue
		}
		if err != nil {
			return err
		}
		c.id, c.generation = res.MemberID, res.Generation
		if res.Protocol != c.protocols[0] {
			c.h.t.Fatalf("join protocol %q, want %q", res.Protocol, c.protocols[0])
		}
		return nil
	}
	c.h.t.Fatal("MEMBER_ID_REQUIRED twice")
	return nil
}

// sync sends SyncGroup and takes the assignment; it reports whether the member revoked
// partitions (a cooperative member then rejoins).
func (c *classicClient) sync() (revoked bool, err error) {
	c.h.t.Helper()
	pt, pn := "consumer", c.protocols[0]
	b, err := c.h.s.ClassicSyncGroup(c.h.now, ClassicSync{Group: c.group, MemberID: c.id, InstanceID: c.instance, Generation: c.generation, ProtocolType: &pt, Protocol: &pn})
	if err != nil {
		return false, err
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		c.h.t.Fatalf("assignment does not decode: %v", err)
	}
	if a.Version != c.version {
		c.h.t.Fatalf("assignment version %d, subscription version %d", a.Version, c.version)
	}
	next := map[string][]int32{}
	for _, t := range a.Topics {
		next[t.Topic] = t.Partitions
	}
	for t, ps := range c.owned {
		for _, p := range ps {
			if !slices.Contains(next[t], p) {
				revoked = true
			}
		}
	}
	c.owned = next
	return revoked && c.cooperative, nil
}

func (c *classicClient) heartbeat() error {
	return c.h.s.ClassicHeartbeat(c.h.now, c.group, c.id, c.instance, c.generation)
}

// rebalance joins and syncs until the member holds an assignment it need not revoke from.
func (c *classicClient) rebalance() {
	c.h.t.Helper()
	for range 10 {
		if err := c.join(); err != nil {
			c.h.t.Fatalf("join of %s: %v", c.id, err)
		}
		revoked, err := c.sync()
		if errors.Is(err, kerr.RebalanceInProgress) {
			continue
		}
		if err != nil {
			c.h.t.Fatalf("sync of %s: %v", c.id, err)
		}
		if !revoked {
			return
		}
	}
	c.h.t.Fatalf("member %s keeps rebalancing", c.id)
}

func (c *classicClient) assignment() Assignment {
	a := Assignment{}
	for t, ps := range c.owned {
		if len(ps) > 0 {
			a[tid(t)] = slices.Clone(ps)
		}
	}
	return a.normalized()
}

// convergeMixed runs members of both protocols until the group is Stable and every classic
// heartbeat passes; then no partition is owned twice and all are owned.
func (h *harness) convergeMixed(group string, partitions int, consumers []*client, classics []*classicClient) {
	h.t.Helper()
	for range 30 {
		for _, c := range consumers {
			if resp := c.beat(); resp.ErrorCode != 0 {
				h.t.Fatalf("heartbeat of %s: %v", c.id, kerr.ErrorForCode(resp.ErrorCode))
			}
		}
		calm := true
		for _, c := range classics {
			switch err := c.heartbeat(); {
			case errors.Is(err, kerr.RebalanceInProgress):
				calm = false
				c.rebalance()
			case err != nil:
				h.t.Fatalf("heartbeat of classic %s: %v", c.id, err)
			}
		}
		if calm && h.s.Describe(group).State == StateStable {
			all := slices.Clone(consumers)
			for _, c := range classics {
				all = append(all, &client{id: c.id, owned: c.assignment()})
			}
			disjoint(h.t, all...)
			if n := countAll(all...); n != partitions {
				h.t.Fatalf("%d partitions owned, want %d:\n%s", n, partitions, dump(h.s))
			}
			return
		}
	}
	h.t.Fatalf("group %s did not converge:\n%s", group, dump(h.s))
}

// stableMember joins a consumer-protocol member and lets it converge alone.
func (h *harness) stableMember(group, id string, topics ...string) *client {
	h.t.Helper()
	c := h.client(group, id, topics...)
	c.join()
	h.converge(group, c)
	return c
}

func wantErr(t *testing.T, what string, err error, want *kerr.Error) {
	t.Helper()
	if want == nil && err == nil {
		return
	}
	if want == nil || !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func TestClassicMembersJoinConsumerGroup(t *testing.T) {
	for _, cooperative := range []bool{false, true} {
		t.Run(map[bool]string{false: "eager", true: "cooperative"}[cooperative], func(t *testing.T) {
			h := newHarness(t, topic("t", 6))
			a := h.client("g", "a", "t")
			a.join()
			h.converge("g", a)

			// A classic member joins: it is never the leader, its generation is its epoch.
			x := h.classic("g", "t")
			x.cooperative = cooperative
			x.rebalance()
			if x.generation != h.s.groups["g"].epoch || !h.s.groups["g"].members[x.id].classic.equal(&classicMeta{sessionTimeout: 10000, protocols: h.s.groups["g"].members[x.id].classic.protocols}) {
				t.Fatalf("classic member: generation %d, group:\n%s", x.generation, dump(h.s))
			}
			h.convergeMixed("g", 6, []*client{a}, []*classicClient{x})
			if got := x.assignment().count(); got != 3 {
				t.Fatalf("classic member owns %d partitions, want 3:\n%s", got, dump(h.s))
			}
			// A third member (classic) makes the others give up partitions.
			y := h.classic("g", "t")
			y.cooperative = cooperative
			y.rebalance()
			h.convergeMixed("g", 6, []*client{a}, []*classicClient{x, y})
			for _, c := range []*classicClient{x, y} {
				if got := c.assignment().count(); got != 2 {
					t.Fatalf("classic member %s owns %d partitions, want 2:\n%s", c.id, got, dump(h.s))
				}
			}
			d := h.s.Describe("g")
			types := map[string]int8{}
			for _, m := range d.Members {
				types[m.MemberID] = m.MemberType
			}
			if types[a.id] != 1 || types[x.id] != 0 || types[y.id] != 0 {
				t.Fatalf("member types %v", types)
			}
		})
	}
}

func TestClassicMemberErrors(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	a := h.stableMember("g", "a", "t")
	x := h.classic("g", "t")
	x.rebalance()

	wantErr(t, "heartbeat with a stale generation", h.s.ClassicHeartbeat(h.now, "g", x.id, nil, x.generation-1), kerr.IllegalGeneration)
	wantErr(t, "heartbeat of an unknown member", h.s.ClassicHeartbeat(h.now, "g", "nobody", nil, x.generation), kerr.UnknownMemberID)
	wantErr(t, "classic heartbeat of a consumer member", h.s.ClassicHeartbeat(h.now, "g", a.id, nil, a.epoch), kerr.UnknownMemberID)
	_, err := h.s.ClassicSyncGroup(h.now, ClassicSync{Group: "g", MemberID: x.id, Generation: x.generation, Protocol: ptr("roundrobin")})
	wantErr(t, "sync with another protocol", err, kerr.InconsistentGroupProtocol)
	_, err = h.s.ClassicSyncGroup(h.now, ClassicSync{Group: "g", MemberID: x.id, Generation: x.generation, ProtocolType: ptr("connect")})
	wantErr(t, "sync with another protocol type", err, kerr.InconsistentGroupProtocol)

	// Joins: another protocol type, protocols no classic member supports, a malformed
	// subscription.
	bad := h.classic("g", "t")
	req := bad.joinRequest()
	req.ProtocolType = "connect"
	_, recs, err := h.s.ClassicJoinGroup(h.now, req)
	wantErr(t, "join with protocol type connect", err, kerr.InconsistentGroupProtocol)
	req = bad.joinRequest()
	req.Protocols = []ClassicProtocol{{Name: "roundrobin", Metadata: bad.subscription()}}
	_, recs2, err := h.s.ClassicJoinGroup(h.now, req)
	wantErr(t, "join with an unsupported protocol", err, kerr.InconsistentGroupProtocol)
	req = bad.joinRequest()
	req.Protocols[0].Metadata = []byte{0, 1, 0}
	req.MemberID = "m1"
	_, recs3, err := h.s.ClassicJoinGroup(h.now, req)
	wantErr(t, "join with a malformed subscription", err, kerr.InconsistentGroupProtocol)
	if len(recs)+len(recs2)+len(recs3) != 0 {
		t.Fatal("failed joins emitted records")
	}

	// A static classic member: another member id for its instance is fenced, an unknown
	// instance with a member id is unknown.
	s := h.classic("g", "t")
	inst := "i1"
	s.instance = &inst
	s.rebalance()
	other := s.joinRequest()
	other.MemberID = "impostor"
	_, _, err = h.s.ClassicJoinGroup(h.now, other)
	wantErr(t, "join with another member id", err, kerr.FencedInstanceID)
	wantErr(t, "heartbeat with another member id", h.s.ClassicHeartbeat(h.now, "g", "impostor", &inst, s.generation), kerr.FencedInstanceID)
	unknown := "i2"
	other.InstanceID = &unknown
	_, _, err = h.s.ClassicJoinGroup(h.now, other)
	wantErr(t, "join of an unknown instance with a member id", err, kerr.UnknownMemberID)

	// Offset commits: a classic member commits with its generation at any version.
	if err := h.s.ValidateOffsetCommit("g", x.id, x.generation, 2, false); err != nil {
		t.Fatalf("classic commit v2: %v", err)
	}
	wantErr(t, "classic commit with a stale generation", h.s.ValidateOffsetCommit("g", x.id, x.generation-1, 8, false), kerr.IllegalGeneration)
	wantErr(t, "consumer member commit at v8", h.s.ValidateOffsetCommit("g", a.id, a.epoch, 8, false), kerr.UnsupportedVersion)
}

func ptr[T any](v T) *T { return &v }

func TestClassicMemberTimeouts(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	a := h.stableMember("g", "a", "t")

	// A member that joins and never syncs is fenced after its rebalance timeout.
	x := h.classic("g", "t")
	x.rto = 5000
	if err := x.join(); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(4 * time.Second)
	a.beat()
	h.advance(2 * time.Second)
	if _, ok := h.s.groups["g"].members[x.id]; ok {
		t.Fatalf("member that did not sync was not fenced:\n%s", dump(h.s))
	}

	// A member whose session expires is fenced after its own session timeout (10 s), not the
	// consumer groups' 45 s.
	y := h.classic("g", "t")
	y.rebalance()
	for range 5 {
		h.advance(2 * time.Second)
		a.beat()
	}
	h.advance(time.Second)
	if _, ok := h.s.groups["g"].members[y.id]; ok {
		t.Fatalf("member whose session expired was not fenced:\n%s", dump(h.s))
	}

	// A member told to rejoin that does not is fenced after its rebalance timeout, even while
	// it keeps heartbeating.
	z := h.classic("g", "t")
	z.rebalance()
	w := h.client("g", "w", "t")
	w.join() // bumps the group epoch: z must rejoin
	wantErr(t, "heartbeat after the epoch moved", z.heartbeat(), kerr.RebalanceInProgress)
	for range 15 {
		h.advance(2 * time.Second)
		a.beat()
		w.beat()
		_ = z.heartbeat()
	}
	if _, ok := h.s.groups["g"].members[z.id]; ok {
		t.Fatalf("member that did not rejoin was not fenced:\n%s", dump(h.s))
	}
}

func TestUpgradeClassicGroup(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	assign := func(ps ...int32) []byte {
		a := kmsg.NewConsumerMemberAssignment()
		a.Version = 1
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = "t", ps
		a.Topics = append(a.Topics, at)
		return a.AppendTo(nil)
	}
	x, y := h.classic("g", "t"), h.classic("g", "t")
	x.id, y.id, x.generation, y.generation = "x", "y", 7, 7
	from := &ClassicGroup{Group: "g", ProtocolType: "consumer", Generation: 7, Protocol: "range", Members: []ClassicMember{
		{MemberID: "x", ClientID: "cx", SessionTimeout: 10000, RebalanceTimeout: 30000, Protocols: []ClassicProtocol{{"range", x.subscription()}}, Assignment: assign(0, 1)},
		{MemberID: "y", ClientID: "cy", SessionTimeout: 10000, RebalanceTimeout: 30000, Protocols: []ClassicProtocol{{"range", y.subscription()}}, Assignment: assign(2, 3)},
	}}
	x.owned, y.owned = map[string][]int32{"t": {0, 1}}, map[string][]int32{"t": {2, 3}}

	// Refusals leave no group behind.
	refusals := map[string]func(*Config, *ClassicGroup){
		"policy disabled":  func(c *Config, _ *ClassicGroup) { c.MigrationPolicy = MigrationDisabled },
		"policy downgrade": func(c *Config, _ *ClassicGroup) { c.MigrationPolicy = MigrationDowngrade },
		"protocol type":    func(_ *Config, g *ClassicGroup) { g.ProtocolType = "connect" },
		"too many members": func(c *Config, _ *ClassicGroup) { c.MaxSize = 1 },
		"malformed":        func(_ *Config, g *ClassicGroup) { g.Members[0].Protocols = []ClassicProtocol{{"range", []byte{0}}} },
		"user data": func(_ *Config, g *ClassicGroup) {
			a := kmsg.NewConsumerMemberAssignment()
			a.UserData = []byte("custom")
			g.Members[0].Assignment = a.AppendTo(nil)
		},
	}
	for name, change := range refusals {
		cfg := h.cfg
		f := *from
		f.Members = slices.Clone(from.Members)
		change(&cfg, &f)
		s := New(cfg, h.topics)
		resp, recs := s.HeartbeatUpgrading(h.now, "c", "/h", h.client("g", "a", "t").request(0), &f)
		if resp.ErrorCode != kerr.GroupIDNotFound.Code || len(recs) != 0 || s.Has("g") {
			t.Errorf("%s: error %v, %d records, group exists %v", name, kerr.ErrorForCode(resp.ErrorCode), len(recs), s.Has("g"))
		}
	}

	a := h.client("g", "a", "t")
	resp, recs := h.s.HeartbeatUpgrading(h.now, "client-a", "/h", a.request(0), from)
	expectErr(t, resp, nil)
	h.record(recs)
	a.apply(resp)
	g := h.s.groups["g"]
	if g.epoch != 8 || g.members["x"].epoch != 7 || g.members["x"].classic == nil || !g.members["x"].assigned.equal(Assignment{tid("t"): {0, 1}}) {
		t.Fatalf("upgraded group:\n%s", dump(h.s))
	}
	if a.owned.count() != 0 {
		t.Fatalf("the new member got partitions the classic members still own: %v", fmtAssignment(a.owned))
	}
	// The classic members learn of the new epoch from their heartbeat, rejoin and release.
	wantErr(t, "classic heartbeat after the upgrade", x.heartbeat(), kerr.RebalanceInProgress)
	h.convergeMixed("g", 4, []*client{a}, []*classicClient{x, y})
	if a.owned.count() == 0 {
		t.Fatalf("the new member got nothing:\n%s", dump(h.s))
	}
}

func TestDowngradeWhenLastConsumerMemberLeaves(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	a := h.stableMember("g", "a", "t")
	x, y := h.classic("g", "t"), h.classic("g", "t")
	x.rebalance()
	y.rebalance()
	h.convergeMixed("g", 4, []*client{a}, []*classicClient{x, y})
	epoch := h.s.groups["g"].epoch

	// With the policy at "upgrade" the group stays a consumer group.
	h.s.cfg.MigrationPolicy = MigrationUpgrade
	b := h.client("g", "b", "t")
	b.join()
	b.leave()
	if len(h.s.Downgrades()) != 0 || !h.s.Has("g") {
		t.Fatal("downgraded although the policy is upgrade")
	}
	h.s.cfg.MigrationPolicy = MigrationBidirectional
	h.convergeMixed("g", 4, []*client{a}, []*classicClient{x, y})
	epoch = h.s.groups["g"].epoch
	targets := map[string]Assignment{x.id: h.s.groups["g"].target[x.id], y.id: h.s.groups["g"].target[y.id]}

	expectErr(t, a.leave(), nil)
	downs := h.s.Downgrades()
	if len(downs) != 1 || h.s.Has("g") {
		t.Fatalf("downgrades %+v, consumer group left: %v", downs, h.s.Has("g"))
	}
	d := downs[0]
	if d.Group != "g" || d.Generation != epoch || len(d.Members) != 2 {
		t.Fatalf("downgraded group %+v, want generation %d and 2 members", d, epoch)
	}
	for _, m := range d.Members {
		got := Assignment{}
		for _, tn := range m.Target {
			got[tid(tn.Topic)] = tn.Partitions
		}
		if !got.equal(targets[m.MemberID]) || m.SessionTimeout != 10000 || m.RebalanceTimeout != 30000 || len(m.Protocols) != 2 {
			t.Fatalf("downgraded member %+v, target %v", m, fmtAssignment(targets[m.MemberID]))
		}
	}
	sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].MemberID < d.Members[j].MemberID })

	// Reverting the operation (its write failed) brings the consumer group back.
	h.s.Revert()
	if !h.s.Has("g") || len(h.s.groups["g"].members) != 3 {
		t.Fatalf("revert did not restore the group:\n%s", dump(h.s))
	}
}

func TestClassicLeaveGroup(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	a, b := h.client("g", "a", "t"), h.client("g", "b", "t")
	a.join()
	b.join()
	h.converge("g", a, b)
	x := h.classic("g", "t")
	inst := "i"
	x.instance = &inst
	x.rebalance()

	wrong := "wrong"
	errs, recs := h.s.ClassicLeaveGroup(h.now, "g", []ClassicLeave{{MemberID: "nobody"}, {MemberID: wrong, InstanceID: &inst}, {InstanceID: ptr("unknown")}})
	if len(recs) != 0 || !errors.Is(errs[0], kerr.UnknownMemberID) || !errors.Is(errs[1], kerr.FencedInstanceID) || !errors.Is(errs[2], kerr.UnknownMemberID) {
		t.Fatalf("leave errors %v, %d records", errs, len(recs))
	}
	// kafka-consumer-groups --delete-members removes a consumer member; then the static
	// classic member by instance id alone, in one request with the other consumer member:
	// the group empties without a downgrade.
	epoch := h.s.groups["g"].epoch
	errs, recs = h.s.ClassicLeaveGroup(h.now, "g", []ClassicLeave{{MemberID: a.id}})
	h.record(recs)
	if errs[0] != nil || h.s.groups["g"].epoch != epoch+1 || len(h.s.Downgrades()) != 0 {
		t.Fatalf("leave: %v\n%s", errs, dump(h.s))
	}
	errs, recs = h.s.ClassicLeaveGroup(h.now, "g", []ClassicLeave{{InstanceID: &inst}, {MemberID: b.id}})
	h.record(recs)
	if errs[0] != nil || errs[1] != nil || !h.s.IsEmpty("g") || len(h.s.Downgrades()) != 0 {
		t.Fatalf("leave: %v\n%s", errs, dump(h.s))
	}
}

func TestClassicMemberRecordsSurviveReplay(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	a := h.client("g", "a", "t")
	a.join()
	x := h.classic("g", "t")
	x.rebalance()
	// The harness already checks that replaying the records rebuilds the state; check the
	// classic metadata's encoding explicitly too.
	rebuilt := New(h.cfg, h.topics)
	for _, r := range h.log {
		if err := rebuilt.Replay(r); err != nil {
			t.Fatal(err)
		}
	}
	m := rebuilt.groups["g"].members[x.id]
	if m.classic == nil || m.classic.sessionTimeout != 10000 || len(m.classic.protocols) != 2 || m.classic.protocolName() != "range" {
		t.Fatalf("replayed classic member %+v", m.classic)
	}
	// A consumer-protocol heartbeat from the same member id makes it a consumer member.
	c := h.client("g", x.id, "t")
	c.epoch = x.generation
	c.owned = x.assignment()
	expectErr(t, c.beat(), nil)
	if h.s.groups["g"].members[x.id].classic != nil {
		t.Fatal("member kept its classic metadata")
	}
}

func TestStaticClassicMemberReplacingLastConsumerMemberDowngrades(t *testing.T) {
	for _, tc := range []struct {
		name      string
		topics    []string
		rebalance bool
	}{{"same subscription", []string{"t"}, false}, {"new subscription", []string{"t", "u"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, topic("t", 4), topic("u", 1))
			a := h.client("g", "a", "t").static("i1")
			a.join()
			h.converge("g", a)
			x := h.classic("g", "t")
			x.rebalance()
			h.convergeMixed("g", 4, []*client{a}, []*classicClient{x})
			expectErr(t, a.leave(), nil) // a static member leaving for now (epoch -2)
			if len(h.s.Downgrades()) != 0 {
				t.Fatal("a static member's temporary leave downgraded the group")
			}

			// The same instance comes back with the classic protocol.
			c := h.classic("g", tc.topics...)
			inst := "i1"
			c.instance = &inst
			if err := c.join(); err != nil {
				t.Fatal(err)
			}
			downs := h.s.Downgrades()
			if len(downs) != 1 || h.s.Has("g") || downs[0].Rebalance != tc.rebalance || len(downs[0].Members) != 2 {
				t.Fatalf("downgrades %+v, consumer group left: %v", downs, h.s.Has("g"))
			}
			for _, m := range downs[0].Members {
				if m.MemberID == c.id && (m.InstanceID != "i1" || len(m.Target) == 0) {
					t.Fatalf("the replacing member in the classic group: %+v", m)
				}
			}
		})
	}
}
