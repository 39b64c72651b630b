package group

import (
	"bytes"
	"testing"
	"time"
)

func TestMemberIDRequiredThenJoin(t *testing.T) {
	set := testSettings()
	set.InitialRebalanceDelay = 3 * time.Second
	h := newHarness(t, set)
	id, p := h.joinNew("g")
	if !p.waiting() {
		t.Fatal("join answered before the initial rebalance delay")
	}
	h.wantState("g", "PreparingRebalance")
	h.clock.Advance(2999 * time.Millisecond)
	if !p.waiting() {
		t.Fatal("join answered before the initial rebalance delay passed")
	}
	h.clock.Advance(time.Millisecond)
	r := p.result()
	if r.Err != nil || r.MemberID != id || r.Generation != 1 || r.LeaderID != id || len(r.Members) != 1 || r.Protocol == nil || *r.Protocol != "range" {
		t.Fatalf("join result %+v", r)
	}
	h.wantState("g", "CompletingRebalance")
}

func TestInitialDelayExtendsWhileMembersArrive(t *testing.T) {
	set := testSettings()
	set.InitialRebalanceDelay = 3 * time.Second
	h := newHarness(t, set)
	_, a := h.joinNew("g")
	h.clock.Advance(2 * time.Second)
	_, b := h.joinNew("g")
	h.clock.Advance(1 * time.Second) // first delay ends; a member arrived: wait another delay
	if !a.waiting() || !b.waiting() {
		t.Fatal("join phase ended although a member arrived during the initial delay")
	}
	h.clock.Advance(3 * time.Second)
	if a.result().Generation != 1 || b.result().Generation != 1 || len(a.result().Members)+len(b.result().Members) != 2 {
		t.Fatalf("results %+v %+v", a.result(), b.result())
	}
}

func TestJoinSyncHeartbeat(t *testing.T) {
	h := newHarness(t, testSettings())
	a, ja := h.joinNew("g")
	b, jb := h.joinNew("g")
	h.clock.Advance(0)
	ra, rb := ja.result(), jb.result()
	if ra.LeaderID != a || rb.LeaderID != a || len(ra.Members) != 2 || len(rb.Members) != 0 || ra.Generation != 1 {
		t.Fatalf("join results %+v / %+v", ra, rb)
	}
	// Heartbeats during CompletingRebalance are fine.
	wantErr(t, "heartbeat", h.heartbeat("g", b, 1), nil)
	sb := h.sync("g", b, 1, nil)
	if sb.calls != 0 {
		t.Fatal("follower's sync answered before the leader's")
	}
	sa := h.sync("g", a, 1, map[string][]byte{a: []byte("A"), b: []byte("B")})
	if r := sa.result(); r.Err != nil || string(r.Assignment) != "A" {
		t.Fatalf("leader sync %+v", r)
	}
	if r := sb.result(); r.Err != nil || string(r.Assignment) != "B" || *r.Protocol != "range" || *r.ProtocolType != "consumer" {
		t.Fatalf("follower sync %+v", r)
	}
	h.wantState("g", "Stable")
	wantErr(t, "heartbeat", h.heartbeat("g", a, 1), nil)
	// The assignment was persisted with the group.
	if len(h.written) != 1 {
		t.Fatalf("%d records written, want the group metadata", len(h.written))
	}
	// A late sync in Stable gets the member's assignment.
	if r := h.sync("g", b, 1, nil).result(); string(r.Assignment) != "B" {
		t.Fatalf("sync in Stable: %+v", r)
	}
}

func TestFencing(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2)
	tests := []struct {
		name string
		err  error
		got  func() error
	}{
		{"heartbeat unknown member", errUnknownMember, func() error { return h.heartbeat("g", "nobody", gen) }},
		{"heartbeat unknown group", errUnknownMember, func() error { return h.heartbeat("other", ids[0], gen) }},
		{"heartbeat old generation", errIllegalGeneration, func() error { return h.heartbeat("g", ids[0], gen-1) }},
		{"heartbeat empty group id", errInvalidGroupID, func() error { return h.heartbeat("", ids[0], gen) }},
		{"heartbeat unknown instance", errUnknownMember, func() error { return h.heartbeat("g", ids[0], gen, "inst") }},
		{"sync old generation", errIllegalGeneration, func() error { return h.sync("g", ids[1], gen+1, nil).result().Err }},
		{"sync unknown member", errUnknownMember, func() error { return h.sync("g", "nobody", gen, nil).result().Err }},
		{"sync other protocol", errInconsistent, func() error {
			p := "roundrobin"
			return h.sync("g", ids[1], gen, nil, func(r *SyncRequest) { r.Protocol = &p }).result().Err
		}},
		{"join with unknown member id", errUnknownMember, func() error { return h.join("g", "nobody").result().Err }},
		{"join unknown group with member id", errUnknownMember, func() error { return h.join("nogroup", "x").result().Err }},
		{"join other protocol type", errInconsistent, func() error {
			return h.join("g", "", func(r *JoinRequest) { r.ProtocolType = "connect" }).result().Err
		}},
		{"join no common protocol", errInconsistent, func() error {
			return h.join("g", "", withProtocols(Protocol{Name: "sticky"})).result().Err
		}},
		{"join session timeout too small", errInvalidSession, func() error { return h.join("g", "", withSession(time.Second)).result().Err }},
		{"join empty group id", errInvalidGroupID, func() error { return h.join("", "").result().Err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.got(), tc.err) })
	}
	h.wantState("g", "Stable")
	if _, ok := h.shard.groups["nogroup"]; ok {
		t.Fatal("a failed join left a group behind")
	}
}

func TestNewMemberTriggersRebalance(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2)
	c, jc := h.joinNew("g")
	h.wantState("g", "PreparingRebalance")
	wantErr(t, "heartbeat during rebalance", h.heartbeat("g", ids[1], gen), errRebalance)
	// Offsets may still be committed by members while preparing.
	errs := h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: ids[1], Generation: gen, Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", 0}, Offset: 5, LeaderEpoch: -1, CommitTimestamp: -1}}})
	wantErr(t, "commit during rebalance", errs[0], nil)
	ja := h.join("g", ids[0])
	if !jc.waiting() || !ja.waiting() {
		t.Fatal("join phase ended before every member rejoined")
	}
	jb := h.join("g", ids[1])
	for _, p := range []*pendingJoin{ja, jb, jc} {
		if r := p.result(); r.Err != nil || r.Generation != gen+1 {
			t.Fatalf("rejoin %+v", r)
		}
	}
	if len(ja.result().Members) != 3 || ja.result().LeaderID != ids[0] {
		t.Fatalf("leader's join %+v", ja.result())
	}
	h.sync("g", c, gen+1, nil)
	wantErr(t, "commit while completing", h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: c, Generation: gen + 1, Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", 0}, Offset: 6, LeaderEpoch: -1, CommitTimestamp: -1}}})[0], errRebalance)
}

func TestFollowerWithSameMetadataDoesNotRebalance(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2)
	r := h.join("g", ids[1]).result()
	if r.Err != nil || r.Generation != gen || len(r.Members) != 0 {
		t.Fatalf("follower rejoin %+v", r)
	}
	h.wantState("g", "Stable")
	// The leader's rejoin always rebalances.
	h.join("g", ids[0])
	h.wantState("g", "PreparingRebalance")
}

// TestSecondRebalanceRightAfterFirst is the cooperative pattern: right after a generation
// forms, a member rejoins with new metadata (it revoked partitions), which starts another
// rebalance that the others learn of by heartbeat.
func TestSecondRebalanceRightAfterFirst(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2)
	// A third member joins: generation gen+1, during which the follower revokes.
	c, jc := h.joinNew("g")
	ja, jb := h.join("g", ids[0]), h.join("g", ids[1])
	gen2 := ja.result().Generation
	if gen2 != gen+1 || jb.result().Err != nil || jc.result().Err != nil {
		t.Fatalf("second generation: %+v", ja.result())
	}
	sb, sc := h.sync("g", ids[1], gen2, nil), h.sync("g", c, gen2, nil)
	h.sync("g", ids[0], gen2, map[string][]byte{ids[0]: []byte("a"), ids[1]: []byte("b"), c: []byte("c")})
	if sb.result().Err != nil || sc.result().Err != nil {
		t.Fatal("syncs failed")
	}
	// Right away the follower rejoins with changed metadata (it no longer owns what it gave up).
	newMeta := withProtocols(Protocol{Name: "range", Metadata: append(consumerMeta("t"), 1)})
	jb = h.join("g", ids[1], newMeta)
	h.wantState("g", "PreparingRebalance")
	wantErr(t, "leader heartbeat", h.heartbeat("g", ids[0], gen2), errRebalance)
	wantErr(t, "c heartbeat", h.heartbeat("g", c, gen2), errRebalance)
	ja, jc = h.join("g", ids[0]), h.join("g", c)
	for _, p := range []*pendingJoin{ja, jb, jc} {
		if r := p.result(); r.Err != nil || r.Generation != gen2+1 {
			t.Fatalf("third generation join %+v", r)
		}
	}
	h.sync("g", ids[0], gen2+1, map[string][]byte{ids[0]: []byte("a")})
	h.wantState("g", "Stable")
}

func TestSessionTimeoutRemovesMember(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2, withSession(10*time.Second))
	for i := 0; i < 2; i++ {
		h.clock.Advance(4 * time.Second)
		wantErr(t, "heartbeat", h.heartbeat("g", ids[0], gen), nil)
	}
	h.clock.Advance(4 * time.Second)
	// ids[1] never heartbeated: it expired at 10s and the group rebalances without it.
	wantErr(t, "heartbeat after the other's expiry", h.heartbeat("g", ids[0], gen), errRebalance)
	h.wantState("g", "PreparingRebalance")
	wantErr(t, "expired member's heartbeat", h.heartbeat("g", ids[1], gen), errUnknownMember)
	r := h.join("g", ids[0]).result()
	if r.Err != nil || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rejoin %+v", r)
	}
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 3, withRebalance(20*time.Second))
	ja := h.join("g", ids[0], withRebalance(20*time.Second)) // the leader rejoins: rebalance
	jb := h.join("g", ids[1], withRebalance(20*time.Second))
	// ids[2] keeps heartbeating but never rejoins.
	for i := 0; i < 4; i++ {
		h.clock.Advance(5 * time.Second)
		if i < 3 {
			wantErr(t, "heartbeat", h.heartbeat("g", ids[2], gen), errRebalance)
		}
	}
	ra, rb := ja.result(), jb.result()
	if ra.Generation != gen+1 || rb.Generation != gen+1 || len(ra.Members) != 2 {
		t.Fatalf("join after rebalance timeout: %+v %+v", ra, rb)
	}
	wantErr(t, "removed member", h.heartbeat("g", ids[2], gen+1), errUnknownMember)
}

func TestMembersThatDoNotSyncAreRemoved(t *testing.T) {
	h := newHarness(t, testSettings())
	opts := []joinOpt{withRebalance(20 * time.Second), withSession(30 * time.Second)}
	a, ja := h.joinNew("g", opts...)
	b, jb := h.joinNew("g", opts...)
	h.clock.Advance(0)
	ja.result()
	jb.result()
	// The leader's sync completes the rebalance; b never syncs.
	wantErr(t, "leader's sync", h.sync("g", a, 1, nil).result().Err, nil)
	h.wantState("g", "Stable")
	h.clock.Advance(20 * time.Second)
	// b is removed a rebalance timeout after the join phase, and the group rebalances.
	h.wantState("g", "PreparingRebalance")
	wantErr(t, "b", h.heartbeat("g", b, 1), errUnknownMember)
}

func TestLeaderSyncStoreFailure(t *testing.T) {
	h := newHarness(t, testSettings())
	a, ja := h.joinNew("g")
	b, jb := h.joinNew("g")
	h.clock.Advance(0)
	ja.result()
	jb.result()
	sb := h.sync("g", b, 1, nil)
	h.failStore = errCoordinatorNotAvl
	sa := h.sync("g", a, 1, map[string][]byte{a: {1}, b: {2}})
	wantErr(t, "leader", sa.result().Err, errCoordinatorNotAvl)
	wantErr(t, "follower", sb.result().Err, errCoordinatorNotAvl)
	h.wantState("g", "PreparingRebalance")
}

func TestStaticMemberRejoinKeepsAssignment(t *testing.T) {
	for _, v9 := range []bool{false, true} {
		name := "v8"
		if v9 {
			name = "v9"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, testSettings())
			opts := []joinOpt{withInstance("i1")}
			if v9 {
				opts = append(opts, withV9())
			}
			ja := h.join("g", "", opts...)
			jb := h.join("g", "", withInstance("i2"))
			h.clock.Advance(0)
			a, b := ja.result().MemberID, jb.result().MemberID
			if ja.result().LeaderID != a {
				t.Fatalf("leader %s, want %s", ja.result().LeaderID, a)
			}
			h.sync("g", b, 1, nil)
			h.sync("g", a, 1, map[string][]byte{a: []byte("A"), b: []byte("B")})
			h.wantState("g", "Stable")
			before := len(h.written)

			// The leader restarts: it joins without member id, same instance id.
			r := h.join("g", "", opts...).result()
			if r.Err != nil || r.Generation != 1 || r.MemberID == a {
				t.Fatalf("static rejoin %+v", r)
			}
			if v9 {
				if r.LeaderID != r.MemberID || !r.SkipAssignment || len(r.Members) != 2 {
					t.Fatalf("v9 static leader rejoin %+v", r)
				}
			} else if r.LeaderID != a || r.SkipAssignment || len(r.Members) != 0 {
				t.Fatalf("static leader rejoin %+v: want the old leader id and no members", r)
			}
			h.wantState("g", "Stable")
			if len(h.written) != before+1 {
				t.Fatal("the new member id was not persisted")
			}
			if s := h.sync("g", r.MemberID, 1, nil, func(q *SyncRequest) { q.InstanceID = strPtr("i1") }).result(); s.Err != nil || !bytes.Equal(s.Assignment, []byte("A")) {
				t.Fatalf("sync after static rejoin %+v", s)
			}
			wantErr(t, "old member id", h.heartbeat("g", a, 1, "i1"), errFencedInstance)
			wantErr(t, "new member id", h.heartbeat("g", r.MemberID, 1, "i1"), nil)
			wantErr(t, "other member", h.heartbeat("g", b, 1, "i2"), nil)
		})
	}
}

func TestStaticMemberWithNewProtocolRebalances(t *testing.T) {
	h := newHarness(t, testSettings())
	rr := Protocol{Name: "roundrobin", Metadata: consumerMeta("t")}
	rg := Protocol{Name: "range", Metadata: consumerMeta("t")}
	ja := h.join("g", "", withInstance("i1"), withProtocols(rg, rr))
	jb := h.join("g", "", withInstance("i2"), withProtocols(rg, rr))
	h.clock.Advance(0)
	a, b := ja.result().MemberID, jb.result().MemberID
	h.sync("g", b, 1, nil)
	h.sync("g", a, 1, nil)
	// i2 restarts preferring roundrobin: the vote would be a tie, still "range" (first voted).
	h.join("g", "", withInstance("i2"), withProtocols(rr, rg))
	h.wantState("g", "Stable")
	// i1 also moves to roundrobin only: the selected protocol changes, so rebalance.
	p := h.join("g", "", withInstance("i1"), withProtocols(rr))
	h.wantState("g", "PreparingRebalance")
	if !p.waiting() {
		t.Fatal("static member's join answered before the rebalance")
	}
}

func TestStaticMembersSurviveRebalanceWithoutRejoining(t *testing.T) {
	h := newHarness(t, testSettings())
	ja := h.join("g", "", withInstance("i1"), withRebalance(10*time.Second), withSession(30*time.Second))
	jb := h.join("g", "", withInstance("i2"), withRebalance(10*time.Second), withSession(30*time.Second))
	h.clock.Advance(0)
	a, b := ja.result().MemberID, jb.result().MemberID
	h.sync("g", b, 1, nil)
	h.sync("g", a, 1, nil)
	ra := h.join("g", a, withInstance("i1"), withRebalance(10*time.Second), withSession(30*time.Second))
	h.clock.Advance(10 * time.Second)
	if r := ra.result(); r.Generation != 2 || len(r.Members) != 2 {
		t.Fatalf("static member that did not rejoin should stay: %+v", r)
	}
	// Its session timeout (not rejoining) removes it eventually.
	h.sync("g", a, 2, nil)
	h.wantState("g", "Stable")
	h.clock.Advance(30 * time.Second)
	wantErr(t, "expired static member", h.heartbeat("g", b, 2, "i2"), errUnknownMember)
}

func TestLeaveGroup(t *testing.T) {
	h := newHarness(t, testSettings())
	ja := h.join("g", "", withInstance("i1"))
	_, jb := h.joinNew("g")
	_, jc := h.joinNew("g")
	h.clock.Advance(0)
	a, b, c := ja.result().MemberID, jb.result().MemberID, jc.result().MemberID
	h.sync("g", a, 1, nil)
	pending := h.join("g", "").result().MemberID // MEMBER_ID_REQUIRED: a pending member
	groupErr, errs := h.shard.LeaveGroup("g", []LeaveMember{
		{MemberID: b},
		{MemberID: "nobody"},
		{InstanceID: strPtr("i1")}, // by instance id alone
		{MemberID: pending},
		{MemberID: c, InstanceID: strPtr("i9")},
	})
	wantErr(t, "group", groupErr, nil)
	for i, want := range []error{nil, errUnknownMember, nil, nil, errUnknownMember} {
		wantErr(t, "member", errs[i], want)
	}
	if len(h.shard.groups["g"].members) != 1 {
		t.Fatalf("members left: %v", h.shard.groups["g"].order)
	}
	h.shard.LeaveGroup("g", []LeaveMember{{MemberID: c}})
	h.wantState("g", "Empty")
	if g := h.shard.groups["g"]; g.generation != 2 {
		t.Fatalf("generation %d after the last member left, want 2", g.generation)
	}
	if _, errs := h.shard.LeaveGroup("nogroup", []LeaveMember{{MemberID: "x"}}); !isErr(errs[0], errUnknownMember) {
		t.Fatalf("leave unknown group: %v", errs[0])
	}
}

func isErr(got, want error) bool { return got == want }

func TestProtocolSelection(t *testing.T) {
	p := func(names ...string) []Protocol {
		var out []Protocol
		for _, n := range names {
			out = append(out, Protocol{Name: n, Metadata: consumerMeta("t")})
		}
		return out
	}
	tests := []struct {
		name    string
		members [][]Protocol
		want    string
	}{
		{"single", [][]Protocol{p("range", "roundrobin")}, "range"},
		{"majority", [][]Protocol{p("range", "roundrobin"), p("roundrobin", "range"), p("roundrobin")}, "roundrobin"},
		{"only common", [][]Protocol{p("sticky", "range"), p("range")}, "range"},
		{"tie goes to first vote", [][]Protocol{p("a", "b"), p("b", "a")}, "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testSettings())
			var joins []*pendingJoin
			for _, ps := range tc.members {
				joins = append(joins, h.join("g", "", withoutKIP394(), withProtocols(ps...)))
			}
			h.clock.Advance(0)
			for _, j := range joins {
				if r := j.result(); r.Err != nil || *r.Protocol != tc.want {
					t.Fatalf("join %+v, want protocol %s", r, tc.want)
				}
			}
		})
	}
}

func TestGroupMaxSize(t *testing.T) {
	set := testSettings()
	set.MaxGroupSize = 2
	h := newHarness(t, set)
	h.stableGroup("g", 2)
	wantErr(t, "third member", h.join("g", "").result().Err, errGroupMaxSize)
	h.wantState("g", "Stable")
	// A member id handed out while there was room is dropped when the group is full.
	set.MaxGroupSize = 3
	h.shard.set = set
	pending := h.join("g", "").result().MemberID
	set.MaxGroupSize = 2
	h.shard.set = set
	wantErr(t, "pending member", h.join("g", pending).result().Err, errGroupMaxSize)
	if len(h.shard.groups["g"].pending) != 0 {
		t.Fatal("the refused pending member is still pending")
	}
}

func TestPendingMemberExpires(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 1)
	pending := h.join("g", "").result().MemberID
	for i := 0; i < 2; i++ { // the pending member's session timeout passes
		h.clock.Advance(5 * time.Second)
		wantErr(t, "heartbeat", h.heartbeat("g", ids[0], gen), nil)
	}
	if r := h.join("g", pending).result(); r.Err != nil {
		// An expired pending id is unknown; Kafka answers UNKNOWN_MEMBER_ID.
		wantErr(t, "rejoin after pending expiry", r.Err, errUnknownMember)
	} else {
		t.Fatal("expired pending member was accepted")
	}
}
