package consumer

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinSingleMember(t *testing.T) {
	h := newHarness(t, topic("orders", 6))
	a := h.client("g", "member-a", "orders")
	resp := a.join()
	expectErr(t, resp, nil)
	if *resp.MemberID != "member-a" || resp.MemberEpoch != 1 || resp.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("join response: id %v epoch %d interval %d", *resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis)
	}
	if got := partitionsOf(a.owned, "orders"); !slices.Equal(got, ints(0, 1, 2, 3, 4, 5)) {
		t.Fatalf("assignment = %v", got)
	}
	d := h.s.Describe("g")
	if d.State != StateStable || d.Epoch != 1 || d.AssignmentEpoch != 1 || d.AssignorName != AssignorUniform {
		t.Fatalf("describe: state %s epoch %d assignment epoch %d assignor %s", d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName)
	}
	m := d.Members[0]
	if m.MemberID != "member-a" || m.MemberEpoch != 1 || m.ClientID != "client-member-a" || m.MemberType != 1 ||
		len(m.Assignment.TopicPartitions) != 1 || m.Assignment.TopicPartitions[0].Topic != "orders" ||
		len(m.TargetAssignment.TopicPartitions[0].Partitions) != 6 || !slices.Equal(m.SubscribedTopics, []string{"orders"}) {
		t.Fatalf("describe member: %+v", m)
	}
	// A heartbeat with nothing new carries no assignment; a full one does.
	if resp := a.keepalive(); resp.Assignment != nil || resp.MemberEpoch != 1 {
		t.Fatalf("keepalive: epoch %d assignment %v", resp.MemberEpoch, resp.Assignment)
	}
	if resp := a.beat(); resp.Assignment == nil {
		t.Fatal("a full heartbeat must carry the assignment")
	}
}

func TestV0ServerGeneratesMemberID(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	c := h.client("g", "", "t")
	c.version = 0
	resp := c.join()
	expectErr(t, resp, nil)
	if *resp.MemberID != "gen-1" || c.owned.count() != 2 {
		t.Fatalf("member id %q, owned %v", *resp.MemberID, c.owned)
	}
	// v1 requires the client to bring its member id.
	c1 := h.client("g", "", "t")
	expectErr(t, c1.join(), kerr.InvalidRequest)
}

func TestThreeMembersShareSixPartitions(t *testing.T) {
	h := newHarness(t, topic("orders", 6))
	a, b, c := h.client("g", "a", "orders"), h.client("g", "b", "orders"), h.client("g", "c", "orders")
	a.join()
	b.join()
	c.join()
	h.converge("g", a, b, c)
	for _, cl := range []*client{a, b, c} {
		if cl.owned.count() != 2 || cl.epoch != 3 {
			t.Fatalf("%s owns %v at epoch %d", cl.id, cl.owned, cl.epoch)
		}
	}
	disjoint(t, a, b, c)
	if countAll(a, b, c) != 6 {
		t.Fatal("not every partition is assigned")
	}
}

func TestRevocationBeforeReassignment(t *testing.T) {
	h := newHarness(t, topic("t", 6))
	a, b := h.client("g", "a", "t"), h.client("g", "b", "t")
	a.join()
	if a.owned.count() != 6 {
		t.Fatalf("a owns %v", a.owned)
	}
	// b joins: the group epoch moves to 2, b's target is half the partitions, but a still
	// owns them, so b gets nothing yet.
	resp := b.join()
	if resp.MemberEpoch != 2 || b.owned.count() != 0 {
		t.Fatalf("b: epoch %d owned %v", resp.MemberEpoch, b.owned)
	}
	if st := h.s.Describe("g").State; st != StateReconciling {
		t.Fatalf("state %s", st)
	}
	// A keepalive (no owned partitions reported) cannot count as a revocation; a's
	// heartbeat tells it to revoke and keeps it at epoch 1.
	resp = a.keepalive()
	if resp.MemberEpoch != 1 || resp.Assignment == nil || len(resp.Assignment.Topics[0].Partitions) != 3 {
		t.Fatalf("a after b joined: epoch %d assignment %v", resp.MemberEpoch, resp.Assignment)
	}
	// The simulated client revoked at once; but until it reports so, b still waits.
	if resp := b.keepalive(); b.owned.count() != 0 || resp.MemberEpoch != 2 {
		t.Fatalf("b got partitions before a revoked them: %v", b.owned)
	}
	resp = a.keepalive() // still not reporting its owned partitions
	if resp.MemberEpoch != 1 {
		t.Fatalf("a moved to epoch %d without reporting its revocation", resp.MemberEpoch)
	}
	resp = a.beat() // reports the 3 it kept
	if resp.MemberEpoch != 2 {
		t.Fatalf("a after revoking: epoch %d", resp.MemberEpoch)
	}
	resp = b.keepalive()
	if b.owned.count() != 3 || resp.Assignment == nil {
		t.Fatalf("b after a revoked: %v", b.owned)
	}
	disjoint(t, a, b)
	if st := h.s.Describe("g").State; st != StateStable {
		t.Fatalf("state %s", st)
	}
}

func TestMemberLeaveMovesPartitions(t *testing.T) {
	h := newHarness(t, topic("t", 6))
	a, b, c := h.client("g", "a", "t"), h.client("g", "b", "t"), h.client("g", "c", "t")
	a.join()
	b.join()
	c.join()
	h.converge("g", a, b, c)
	resp := c.leave()
	expectErr(t, resp, nil)
	if resp.MemberEpoch != -1 || *resp.MemberID != "c" {
		t.Fatalf("leave response %+v", resp)
	}
	d := h.s.Describe("g")
	if d.Epoch != 4 || d.State != StateAssigning || len(d.Members) != 2 {
		t.Fatalf("after leave: epoch %d state %s members %d", d.Epoch, d.State, len(d.Members))
	}
	h.converge("g", a, b)
	if a.owned.count() != 3 || b.owned.count() != 3 {
		t.Fatalf("a %v b %v", a.owned, b.owned)
	}
	disjoint(t, a, b)
	// The member is gone.
	expectErr(t, c.beat(), kerr.UnknownMemberID)
	// Leaving twice, or from a group that does not exist.
	expectErr(t, c.leave(), kerr.UnknownMemberID)
	x := h.client("nope", "x", "t")
	expectErr(t, x.leave(), kerr.GroupIDNotFound)
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	a, b := h.client("g", "a", "t"), h.client("g", "b", "t")
	a.join()
	b.join()
	h.converge("g", a, b)
	if dl, ok := h.s.NextDeadline(); !ok || dl.After(h.now.Add(45*time.Second)) {
		t.Fatalf("next deadline %v %v", dl, ok)
	}
	// a heartbeats every 5s, b goes silent.
	for i := 0; i < 8; i++ {
		if recs := h.advance(5 * time.Second); len(recs) != 0 {
			t.Fatalf("fenced too early, after %d heartbeats", i)
		}
		a.beat()
	}
	recs := h.advance(5 * time.Second) // 45s since b's last heartbeat
	if len(recs) == 0 {
		t.Fatal("b was not fenced at its session timeout")
	}
	d := h.s.Describe("g")
	if len(d.Members) != 1 || d.Members[0].MemberID != "a" {
		t.Fatalf("members after expiry: %+v", d.Members)
	}
	h.converge("g", a)
	if a.owned.count() != 4 {
		t.Fatalf("a owns %v", a.owned)
	}
	expectErr(t, b.beat(), kerr.UnknownMemberID)
}

func TestRebalanceTimeoutFencesMemberThatDoesNotRevoke(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	a, b := h.client("g", "a", "t"), h.client("g", "b", "t")
	a.rebalance = 10000
	a.join()
	b.join()
	a.keepalive() // told to revoke; the rebalance timeout starts
	for i := 0; i < 2; i++ {
		h.advance(4 * time.Second)
		a.keepalive() // alive, but never reports the revocation
		b.keepalive()
	}
	if b.owned.count() != 0 {
		t.Fatalf("b got %v while a still owns them", b.owned)
	}
	if recs := h.advance(2 * time.Second); len(recs) == 0 {
		t.Fatal("a was not fenced at its rebalance timeout")
	}
	expectErr(t, a.keepalive(), kerr.UnknownMemberID)
	b.beat()
	h.converge("g", b)
	if b.owned.count() != 4 {
		t.Fatalf("b owns %v", b.owned)
	}
}

func TestStaticMemberRejoin(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	s := h.client("g", "s1", "t").static("instance-1")
	d := h.client("g", "d", "t")
	s.join()
	d.join()
	h.converge("g", s, d)
	owned := s.owned.clone()
	epoch := h.s.Describe("g").Epoch

	// Another process with the same instance id cannot join while s1 holds it.
	other := h.client("g", "s2", "t").static("instance-1")
	expectErr(t, other.join(), kerr.UnreleasedInstanceID)

	// A dynamic member cannot leave "for now".
	expectErr(t, d.leaveFor(LeaveGroupStaticMemberEpoch), kerr.InvalidRequest)

	// s1 leaves for now: it keeps its partitions and the group epoch does not move.
	resp := s.leave()
	expectErr(t, resp, nil)
	if resp.MemberEpoch != LeaveGroupStaticMemberEpoch {
		t.Fatalf("static leave epoch %d", resp.MemberEpoch)
	}
	d.beat()
	if d.owned.count() != 2 || h.s.Describe("g").Epoch != epoch {
		t.Fatalf("d took partitions of a static member that left for now: %v", d.owned)
	}

	// The restarted process rejoins with a new member id and gets the same partitions at
	// once, without a rebalance.
	s2 := h.client("g", "s2", "t").static("instance-1")
	resp = s2.join()
	expectErr(t, resp, nil)
	if !s2.owned.equal(owned) || resp.MemberEpoch != epoch || h.s.Describe("g").Epoch != epoch {
		t.Fatalf("rejoined static member: owned %v (had %v), epoch %d, group epoch %d", s2.owned, owned, resp.MemberEpoch, h.s.Describe("g").Epoch)
	}
	for _, m := range h.s.Describe("g").Members {
		if m.MemberID == "s1" {
			t.Fatal("the replaced member is still in the group")
		}
	}
	// The old member id is fenced by the new one.
	s.epoch = epoch
	expectErr(t, s.beat(), kerr.FencedInstanceID)

	// A static member that leaves for now and never comes back is fenced at its session
	// timeout, and its partitions move.
	s2.leave()
	for i := 0; i < 9; i++ {
		h.advance(5 * time.Second)
		d.beat()
	}
	h.converge("g", d)
	if d.owned.count() != 4 {
		t.Fatalf("d owns %v after the static member expired", d.owned)
	}
}

// TestStaticLeaveWithoutInstanceID: franz-go's static leave carries epoch -2 but no
// instance id.
func TestStaticLeaveWithoutInstanceID(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	s := h.client("g", "s", "t").static("i")
	s.join()
	s.instance = nil
	resp := s.leaveFor(LeaveGroupStaticMemberEpoch)
	expectErr(t, resp, nil)
	if resp.MemberEpoch != LeaveGroupStaticMemberEpoch || h.s.groups["g"].members["s"].epoch != LeaveGroupStaticMemberEpoch {
		t.Fatalf("static leave: %+v", resp)
	}
	s2 := h.client("g", "s2", "t").static("i")
	if resp := s2.join(); resp.ErrorCode != 0 || s2.owned.count() != 2 || resp.MemberEpoch != 1 {
		t.Fatalf("rejoin after the leave: %+v", resp)
	}
}

func TestStaticMemberRejoinWithSameMemberID(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	s := h.client("g", "s", "t").static("i")
	s.join()
	resp := s.join() // e.g. after FENCED_MEMBER_EPOCH, with the same member id
	expectErr(t, resp, nil)
	if resp.MemberEpoch != 1 || s.owned.count() != 2 {
		t.Fatalf("rejoin: epoch %d owned %v", resp.MemberEpoch, s.owned)
	}
}

func TestAssignorSelection(t *testing.T) {
	h := newHarness(t, topic("x", 4), topic("y", 4))
	a, b := h.client("g", "a", "x", "y"), h.client("g", "b", "x", "y")
	rng := AssignorRange
	a.assignor, b.assignor = &rng, &rng
	a.join()
	b.join()
	h.converge("g", a, b)
	if name := h.s.Describe("g").AssignorName; name != AssignorRange {
		t.Fatalf("assignor %s", name)
	}
	// Range co-partitions topics with the same partition count.
	for _, c := range []*client{a, b} {
		if !slices.Equal(partitionsOf(c.owned, "x"), partitionsOf(c.owned, "y")) || c.owned.count() != 4 {
			t.Fatalf("%s owns %v", c.id, fmtAssignment(c.owned))
		}
	}
	if !slices.Equal(partitionsOf(a.owned, "x"), ints(0, 1)) {
		t.Fatalf("a owns %v", fmtAssignment(a.owned))
	}

	bad := "sticky"
	c := h.client("g", "c", "x")
	c.assignor = &bad
	expectErr(t, c.join(), kerr.UnsupportedAssignor)

	// Without ServerAssignor the default (uniform) applies.
	h2 := newHarness(t, topic("x", 4))
	d := h2.client("g", "d", "x")
	d.join()
	if name := h2.s.Describe("g").AssignorName; name != AssignorUniform {
		t.Fatalf("default assignor %s", name)
	}
}

func TestRegexSubscription(t *testing.T) {
	h := newHarness(t, topic("orders-eu", 2), topic("orders-us", 2), topic("payments", 3))
	re := "orders-.*"
	a := h.client("g", "a")
	a.regex = &re
	resp := a.join()
	expectErr(t, resp, nil)
	if a.owned.count() != 4 || partitionsOf(a.owned, "payments") != nil {
		t.Fatalf("a owns %v", fmtAssignment(a.owned))
	}
	d := h.s.Describe("g")
	if d.Members[0].SubscribedTopicRegex == nil || *d.Members[0].SubscribedTopicRegex != re {
		t.Fatalf("describe regex: %+v", d.Members[0])
	}
	epoch := d.Epoch

	// A new matching topic bumps the epoch on the next heartbeat and gets assigned.
	h.setTopics(topic("orders-eu", 2), topic("orders-us", 2), topic("payments", 3), topic("orders-ap", 1))
	resp = a.beat()
	if resp.MemberEpoch != epoch+1 || a.owned.count() != 5 {
		t.Fatalf("after a new topic: epoch %d owned %v", resp.MemberEpoch, fmtAssignment(a.owned))
	}
	// A topic that does not match changes nothing.
	h.setTopics(topic("orders-eu", 2), topic("orders-us", 2), topic("payments", 3), topic("orders-ap", 1), topic("audit", 1))
	if resp = a.beat(); resp.MemberEpoch != epoch+1 {
		t.Fatalf("an unrelated topic bumped the epoch to %d", resp.MemberEpoch)
	}

	// The regex must match the whole name.
	part := "orders"
	b := h.client("g2", "b")
	b.regex = &part
	b.join()
	if b.owned.count() != 0 {
		t.Fatalf("regex %q matched %v", part, fmtAssignment(b.owned))
	}

	bad := "orders-("
	c := h.client("g3", "c")
	c.regex = &bad
	expectErr(t, c.join(), kerr.InvalidRegularExpression)
	if h.s.Has("g3") {
		t.Fatal("a failed join left a group behind")
	}
}

func TestPartitionCountChange(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	a, b := h.client("g", "a", "t"), h.client("g", "b", "t")
	a.join()
	b.join()
	h.converge("g", a, b)
	epoch := h.s.Describe("g").Epoch
	h.setTopics(topic("t", 6))
	h.converge("g", a, b)
	if got := h.s.Describe("g").Epoch; got != epoch+1 {
		t.Fatalf("group epoch %d, want %d", got, epoch+1)
	}
	if a.owned.count() != 3 || b.owned.count() != 3 {
		t.Fatalf("a %v b %v", fmtAssignment(a.owned), fmtAssignment(b.owned))
	}
	disjoint(t, a, b)

	// A topic that is deleted leaves the assignments.
	h.setTopics()
	h.converge("g", a, b)
	if a.owned.count() != 0 || b.owned.count() != 0 {
		t.Fatalf("a %v b %v after the topic was deleted", a.owned, b.owned)
	}
}

func TestSubscriptionChange(t *testing.T) {
	h := newHarness(t, topic("x", 2), topic("y", 2))
	a, b := h.client("g", "a", "x"), h.client("g", "b", "x")
	a.join()
	b.join()
	h.converge("g", a, b)
	b.topics = []string{"y"}
	h.converge("g", a, b)
	if !slices.Equal(partitionsOf(a.owned, "x"), ints(0, 1)) || !slices.Equal(partitionsOf(b.owned, "y"), ints(0, 1)) || a.owned.count() != 2 || b.owned.count() != 2 {
		t.Fatalf("a %v b %v", fmtAssignment(a.owned), fmtAssignment(b.owned))
	}
}

func TestFencingErrors(t *testing.T) {
	h := newHarness(t, topic("t", 6))
	a, b, c := h.client("g", "a", "t"), h.client("g", "b", "t"), h.client("g", "c", "t")
	a.join()
	b.join()
	c.join()
	h.converge("g", a, b, c)
	epoch := a.epoch
	prev := h.s.groups["g"].members["a"].previousEpoch
	if epoch != 3 || prev != 1 { // a went from epoch 1 to 3 in one step
		t.Fatalf("a at epoch %d, previous %d", epoch, prev)
	}

	a.epoch = epoch + 1
	expectErr(t, a.beat(), kerr.FencedMemberEpoch)
	a.epoch = 2 // smaller, and not the previous epoch
	expectErr(t, a.beat(), kerr.FencedMemberEpoch)
	// The previous epoch is accepted if the member owns a subset of its assignment: the
	// response that moved it may have been lost.
	a.epoch = prev
	expectErr(t, a.beat(), nil)
	if a.epoch != epoch {
		t.Fatalf("a epoch %d", a.epoch)
	}
	// ... but not with a partition it does not have.
	a.epoch = prev
	a.owned[tid("t")] = ints(0, 1, 2, 3)
	expectErr(t, a.beat(), kerr.FencedMemberEpoch)
	// ... nor without telling which partitions it owns.
	a.epoch = prev
	expectErr(t, a.keepalive(), kerr.FencedMemberEpoch)
	// A fenced member rejoins with epoch 0 and the same member id.
	resp := a.join()
	expectErr(t, resp, nil)
	if resp.MemberEpoch != epoch || a.owned.count() != 2 {
		t.Fatalf("rejoin: epoch %d owned %v", resp.MemberEpoch, a.owned)
	}

	x := h.client("g", "stranger", "t")
	x.epoch = 3
	expectErr(t, x.beat(), kerr.UnknownMemberID)
	y := h.client("no-such-group", "y", "t")
	y.epoch = 1
	expectErr(t, y.beat(), kerr.UnknownMemberID)
	if h.s.Has("no-such-group") {
		t.Fatal("a heartbeat with epoch > 0 created a group")
	}
}

func TestInvalidRequests(t *testing.T) {
	h := newHarness(t, topic("t", 1))
	empty := ""
	base := func() *kmsg.ConsumerGroupHeartbeatRequest {
		return h.client("g", "m", "t").request(0)
	}
	cases := []struct {
		name string
		edit func(r *kmsg.ConsumerGroupHeartbeatRequest)
		want *kerr.Error
	}{
		{"v1 without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		{"v0 heartbeat without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Version, r.MemberID, r.MemberEpoch = 0, "", 3 }, kerr.InvalidRequest},
		{"empty group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest},
		{"empty instance id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = &empty }, kerr.InvalidRequest},
		{"empty rack id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = &empty }, kerr.InvalidRequest},
		{"join without rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest},
		{"join with owned partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: tid("t"), Partitions: []int32{0}}}
		}, kerr.InvalidRequest},
		{"join with null owned partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, kerr.InvalidRequest},
		{"join without subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest},
		{"dynamic member leaving with -2", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 }, kerr.InvalidRequest},
		{"epoch -3", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { s := "cooperative-sticky"; r.ServerAssignor = &s }, kerr.UnsupportedAssignor},
		{"join with an empty subscription is valid", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = []string{} }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			c.edit(r)
			resp := h.heartbeat(r)
			expectErr(t, resp, c.want)
			if c.want != nil && (resp.ErrorMessage == nil || *resp.ErrorMessage == "") {
				t.Fatal("no error message")
			}
		})
	}
}

func TestGroupMaxSize(t *testing.T) {
	h := newHarness(t, topic("t", 3))
	h.cfg.MaxSize = 2
	h.s = New(h.cfg, h.topics)
	a, b, c := h.client("g", "a", "t"), h.client("g", "b", "t"), h.client("g", "c", "t")
	a.join()
	b.join()
	expectErr(t, c.join(), kerr.GroupMaxSizeReached)
	expectErr(t, a.join(), nil) // members already in may rejoin
}

func TestGroupStates(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	a, b := h.client("g", "a", "t"), h.client("g", "b", "t")
	a.join()
	if st := h.s.Describe("g").State; st != StateStable {
		t.Fatalf("state %s", st)
	}
	b.join()
	if st := h.s.Describe("g").State; st != StateReconciling {
		t.Fatalf("state %s", st)
	}
	h.converge("g", a, b)
	b.leave()
	if st := h.s.Describe("g").State; st != StateAssigning {
		t.Fatalf("state %s after a leave", st)
	}
	a.leave()
	if st := h.s.Describe("g").State; st != StateEmpty {
		t.Fatalf("state %s after everyone left", st)
	}
	if l := h.s.List(); len(l) != 1 || l[0].Group != "g" || l[0].State != StateEmpty {
		t.Fatalf("list %+v", l)
	}
	d := h.s.Describe("missing")
	if kerr.ErrorForCode(d.ErrorCode) != kerr.GroupIDNotFound {
		t.Fatalf("describe missing: %v", d.ErrorCode)
	}
}

func TestDeleteGroup(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	a := h.client("g", "a", "t")
	a.join()
	if _, err := h.s.DeleteGroup("g"); err == nil || !isKerr(err, kerr.NonEmptyGroup) {
		t.Fatalf("delete non-empty group: %v", err)
	}
	a.leave()
	recs, err := h.s.DeleteGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	h.record(recs)
	if h.s.Has("g") {
		t.Fatal("group still exists")
	}
	if _, err := h.s.DeleteGroup("g"); !isKerr(err, kerr.GroupIDNotFound) {
		t.Fatalf("delete missing group: %v", err)
	}
	// The id can be used again.
	b := h.client("g", "b", "t")
	if resp := b.join(); resp.MemberEpoch != 1 {
		t.Fatalf("new group epoch %d", resp.MemberEpoch)
	}
}

func isKerr(err error, want *kerr.Error) bool {
	e, ok := err.(*Error)
	return ok && e.Err == want
}

func TestOffsetCommitValidation(t *testing.T) {
	h := newHarness(t, topic("t", 2))
	a := h.client("g", "a", "t")
	a.join()
	h.client("empty", "e", "t").join()
	h.client("empty", "e", "t").leave()
	cases := []struct {
		name    string
		group   string
		member  string
		epoch   int32
		version int16
		want    *kerr.Error
	}{
		{"member at its epoch", "g", "a", 1, 9, nil},
		{"stale epoch", "g", "a", 0, 9, kerr.StaleMemberEpoch},
		{"newer epoch", "g", "a", 2, 9, kerr.StaleMemberEpoch},
		{"unknown member", "g", "zz", 1, 9, kerr.UnknownMemberID},
		{"admin commit to a group with members", "g", "", -1, 9, kerr.UnknownMemberID},
		{"old OffsetCommit version", "g", "a", 1, 8, kerr.UnsupportedVersion},
		{"admin commit to an empty group", "empty", "", -1, 9, nil},
		{"member commit to an empty group", "empty", "e", 1, 9, kerr.UnknownMemberID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := h.s.ValidateOffsetCommit(c.group, c.member, c.epoch, c.version, false)
			if (c.want == nil) != (err == nil) || (c.want != nil && !isKerr(err, c.want)) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// Transactional commits from members do not need OffsetCommit v9.
	if err := h.s.ValidateOffsetCommit("g", "a", 1, 3, true); err != nil {
		t.Fatal(err)
	}
	id := "a"
	if err := h.s.ValidateOffsetFetch("g", nil, -1); err != nil {
		t.Fatal(err)
	}
	if err := h.s.ValidateOffsetFetch("g", &id, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.s.ValidateOffsetFetch("g", &id, 0); !isKerr(err, kerr.StaleMemberEpoch) {
		t.Fatalf("stale fetch: %v", err)
	}
	other := "b"
	if err := h.s.ValidateOffsetFetch("g", &other, 1); !isKerr(err, kerr.UnknownMemberID) {
		t.Fatalf("unknown member fetch: %v", err)
	}
	if !h.s.IsSubscribedToTopic("g", "t") || h.s.IsSubscribedToTopic("g", "u") || h.s.IsSubscribedToTopic("empty", "t") {
		t.Fatal("IsSubscribedToTopic")
	}
}

func TestReplayThenContinue(t *testing.T) {
	h := newHarness(t, topic("t", 6))
	a, b, c := h.client("g", "a", "t"), h.client("g", "b", "t"), h.client("g", "c", "t")
	a.join()
	b.join()
	c.join()
	h.converge("g", a, b, c)
	b.keepalive()
	c.leave() // the group is now Assigning

	// A new coordinator loads the records.
	s2 := New(h.cfg, h.topics)
	for _, r := range h.log {
		if !IsRecord(r.Key) {
			t.Fatal("IsRecord refused one of our records")
		}
		if err := s2.Replay(r); err != nil {
			t.Fatal(err)
		}
	}
	s2.Loaded(h.now)
	h.s = s2
	if dl, ok := s2.NextDeadline(); !ok || !dl.Equal(h.now.Add(45*time.Second)) {
		t.Fatalf("deadline after load %v", dl)
	}
	h.converge("g", a, b)
	if a.owned.count() != 3 || b.owned.count() != 3 {
		t.Fatalf("a %v b %v", a.owned, b.owned)
	}
	// Members that never come back expire.
	h.advance(45 * time.Second)
	if len(h.s.Describe("g").Members) != 0 {
		t.Fatal("members did not expire after the load")
	}
}

func TestRevertUndoesTheLastOperation(t *testing.T) {
	h := newHarness(t, topic("t", 4))
	a := h.client("g", "a", "t")
	a.join()
	before := dump(h.s)
	// b's join is refused by the log: the state goes back to before it.
	b := h.client("g", "b", "t")
	_, recs := h.s.Heartbeat(h.now, "c", "h", b.request(0))
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	h.s.Revert()
	if got := dump(h.s); got != before {
		t.Fatalf("after revert:\n%s\nwant:\n%s", got, before)
	}
	// A new group's first join, reverted, leaves no group.
	c := h.client("g2", "c", "t")
	h.s.Heartbeat(h.now, "c", "h", c.request(0))
	h.s.Revert()
	if h.s.Has("g2") {
		t.Fatal("reverted join left its group")
	}
	// Expirations too.
	h.now = h.now.Add(time.Minute)
	if recs := h.s.Tick(h.now); len(recs) == 0 {
		t.Fatal("nothing expired")
	}
	h.s.Revert()
	if got := dump(h.s); got != before {
		t.Fatalf("after reverting the expiry:\n%s", got)
	}
	h.check()
}

// TestSubscriptionChangeWhileRevoking: a member that still owns partitions it must revoke
// and drops a topic from its subscription must revoke that topic too.
func TestSubscriptionChangeWhileRevoking(t *testing.T) {
	h := newHarness(t, topic("x", 2), topic("y", 2))
	a := h.client("g", "a", "x", "y")
	a.join()
	b := h.client("g", "b", "x")
	b.join()
	a.keepalive() // told to revoke, but a has not done it yet
	a.owned = Assignment{tid("x"): {0, 1}, tid("y"): {0, 1}}
	if m := h.s.groups["g"].members["a"]; m.state != MemberUnrevokedPartitions {
		t.Fatalf("a is %v", m.state)
	}
	a.topics = []string{"x"}
	resp := a.beat() // still owns everything, and no longer wants y
	if partitionsOf(a.owned, "y") != nil {
		t.Fatalf("a still assigned y: %v", fmtAssignment(a.owned))
	}
	m := h.s.groups["g"].members["a"]
	if m.state != MemberUnrevokedPartitions || m.pendingRevocation[tid("y")] == nil || resp.MemberEpoch != m.epoch {
		t.Fatalf("a: state %v pending %v", m.state, fmtAssignment(m.pendingRevocation))
	}
	h.converge("g", a, b)
	if a.owned.count() != 1 || b.owned.count() != 1 || partitionsOf(a.owned, "y") != nil {
		t.Fatalf("a %v b %v", fmtAssignment(a.owned), fmtAssignment(b.owned))
	}
}
