package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// startConsumerGroupNode starts a node whose KIP-848 members heartbeat often, so that
// reconciliation takes a few hundred milliseconds.
func startConsumerGroupNode(t *testing.T) *testcluster.Node {
	return testcluster.Start(t,
		"group.initial.rebalance.delay.ms=0",
		"group.consumer.heartbeat.interval.ms=200",
		"group.consumer.session.timeout.ms=6000",
	)
}

// kip848 are the options of a member using the consumer group protocol with the server's
// range assignor.
func kip848(extra ...kgo.Opt) memberOpts {
	return memberOpts{opts: append([]kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}, extra...)}
}

func describeConsumerGroup(t *testing.T, n *testcluster.Node, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	cl := newClient(t, n)
	// ConsumerGroupDescribe goes to the group's coordinator.
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Groups[0]
}

func committedSum(t *testing.T, n *testcluster.Node, group string) int64 {
	offs, err := newAdmin(t, n).FetchOffsets(ctxT(t), group)
	if err != nil {
		return -1
	}
	var sum int64
	for _, ps := range offs {
		for _, o := range ps {
			sum += o.At
		}
	}
	return sum
}

func TestConsumerGroupJoinConsumeCommit(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "kip848", 3, nil)
	produceN(t, n, "kip848", 30)
	mo := kip848()
	mo.commit = true
	a := startMember(t, n, "a", "g848", "kip848", mo)
	waitUntil(t, 30*time.Second, "a consumed the records", func() bool { return len(a.processed()) == 30 })
	waitUntil(t, 30*time.Second, "a committed its offsets", func() bool { return committedSum(t, n, "g848") == 30 })
	if got := a.ownedPartitions(); len(got) != 3 {
		t.Fatalf("a owns %v", got)
	}

	d := describeConsumerGroup(t, n, "g848")
	if d.ErrorCode != 0 || d.State != "Stable" || d.AssignorName != "range" || len(d.Members) != 1 {
		t.Fatalf("ConsumerGroupDescribe: %+v", d)
	}
	m := d.Members[0]
	if m.MemberEpoch != d.Epoch || m.MemberType != 1 || len(m.Assignment.TopicPartitions) != 1 ||
		m.Assignment.TopicPartitions[0].Topic != "kip848" || len(m.Assignment.TopicPartitions[0].Partitions) != 3 {
		t.Fatalf("described member: %+v", m)
	}

	// ListGroups and DescribeGroups report the group as a "consumer" group.
	adm := newAdmin(t, n)
	listed, err := adm.ListGroups(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := listed["g848"]; !ok || l.ProtocolType != "consumer" || l.State != "Stable" {
		t.Fatalf("ListGroups: %+v", listed)
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.TypesFilter = []string{"consumer"}
	lresp, err := lreq.RequestWith(ctxT(t), newClient(t, n))
	if err != nil {
		t.Fatal(err)
	}
	if len(lresp.Groups) != 1 || lresp.Groups[0].Group != "g848" || lresp.Groups[0].GroupType != "consumer" {
		t.Fatalf("ListGroups of type consumer: %+v", lresp.Groups)
	}
	described, err := adm.DescribeGroups(ctxT(t), "g848")
	if err != nil {
		t.Fatal(err)
	}
	dg := described["g848"]
	if dg.Err != nil || dg.State != "Stable" || dg.ProtocolType != "consumer" || len(dg.Members) != 1 {
		t.Fatalf("DescribeGroups: %+v", dg)
	}
	if ma, ok := dg.Members[0].Assigned.AsConsumer(); !ok || len(ma.Topics) != 1 || len(ma.Topics[0].Partitions) != 3 {
		t.Fatalf("described assignment: %+v", dg.Members[0].Assigned)
	}

	cgs, err := adm.DescribeConsumerGroups(ctxT(t), "g848")
	if err != nil {
		t.Fatal(err)
	}
	if cg := cgs["g848"]; cg.Err != nil || cg.AssignorName != "range" || len(cg.Members) != 1 || len(cg.Members[0].Assignment["kip848"]) != 3 {
		t.Fatalf("kadm DescribeConsumerGroups: %+v", cg)
	}

	// A classic member of another protocol type cannot join a consumer group that has members
	// (consumers can: group_mixed_test.go).
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g848", "connect", 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
	jresp, err := join.RequestWith(ctxT(t), newClient(t, n))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(jresp.ErrorCode); err != kerr.InconsistentGroupProtocol {
		t.Fatalf("classic JoinGroup to a consumer group: %v", err)
	}

	// Once empty, the group and its offsets can be deleted.
	if dr, err := adm.DeleteGroups(ctxT(t), "g848"); err != nil || dr["g848"].Err == nil {
		t.Fatalf("deleting a group with members: %+v %v", dr, err)
	}
	a.close()
	waitUntil(t, 10*time.Second, "the group is empty", func() bool { return describeConsumerGroup(t, n, "g848").State == "Empty" })
	if dr, err := adm.DeleteGroups(ctxT(t), "g848"); err != nil || dr["g848"].Err != nil {
		t.Fatalf("DeleteGroups: %+v %v", dr, err)
	}
	if d := describeConsumerGroup(t, n, "g848"); kerr.ErrorForCode(d.ErrorCode) != kerr.GroupIDNotFound {
		t.Fatalf("deleted group: %+v", d)
	}
	if got := committedSum(t, n, "g848"); got != 0 {
		t.Fatalf("offsets of a deleted group: %d", got)
	}
}

// TestConsumerGroupStaticMemberRestart: a static member that restarts within its session
// gets its partitions back without a rebalance; the other member keeps its own.
func TestConsumerGroupStaticMemberRestart(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "static848", 4, nil)
	a := startMember(t, n, "a", "gs", "static848", kip848(kgo.InstanceID("instance-a")))
	b := startMember(t, n, "b", "gs", "static848", kip848())
	balanced(t, []*member{a, b}, 4, []int{2, 2})
	before := describeConsumerGroup(t, n, "gs")
	ownedA := a.ownedPartitions()
	b.mu.Lock()
	revokedB := len(b.revoked)
	b.mu.Unlock()

	a.close() // a static member leaves with epoch -2: it keeps its partitions
	a2 := startMember(t, n, "a2", "gs", "static848", kip848(kgo.InstanceID("instance-a")))
	balanced(t, []*member{a2, b}, 4, []int{2, 2})
	if got := a2.ownedPartitions(); !slices.Equal(got, ownedA) {
		t.Fatalf("restarted static member owns %v, had %v", got, ownedA)
	}
	after := describeConsumerGroup(t, n, "gs")
	if after.Epoch != before.Epoch || len(after.Members) != 2 {
		t.Fatalf("group epoch %d -> %d, %d members: want no rebalance", before.Epoch, after.Epoch, len(after.Members))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.revoked) != revokedB {
		t.Fatalf("b had partitions revoked during the static restart: %v", b.revoked)
	}
}

func TestConsumerGroupThreeMembersSixPartitions(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "six848", 6, nil)
	var ms []*member
	for i := 0; i < 3; i++ {
		ms = append(ms, startMember(t, n, fmt.Sprint("c", i), "g6", "six848", kip848()))
	}
	balanced(t, ms, 6, []int{2, 2, 2})
	produceN(t, n, "six848", 60)
	waitUntil(t, 30*time.Second, "the members consumed every record", func() bool {
		total := 0
		for _, m := range ms {
			total += len(m.processed())
		}
		return total >= 60
	})
	for _, m := range ms {
		for _, r := range m.processed() {
			owned := false
			for _, p := range m.ownedPartitions() {
				owned = owned || p == r.Partition
			}
			if !owned {
				t.Fatalf("%s consumed partition %d it does not own", m.name, r.Partition)
			}
		}
	}
}

func TestConsumerGroupMemberLeaveMovesPartitions(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "leave848", 6, nil)
	a := startMember(t, n, "a", "gl", "leave848", kip848())
	b := startMember(t, n, "b", "gl", "leave848", kip848())
	c := startMember(t, n, "c", "gl", "leave848", kip848())
	balanced(t, []*member{a, b, c}, 6, []int{2, 2, 2})
	epoch := describeConsumerGroup(t, n, "gl").Epoch
	c.close() // leaves the group with member epoch -1
	balanced(t, []*member{a, b}, 6, []int{3, 3})
	d := describeConsumerGroup(t, n, "gl")
	if len(d.Members) != 2 || d.Epoch <= epoch {
		t.Fatalf("after c left: epoch %d (was %d), %d members", d.Epoch, epoch, len(d.Members))
	}
}

func TestConsumerGroupCommitsSurviveRestart(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "durable848", 3, nil)
	produceN(t, n, "durable848", 30)
	mo := kip848()
	mo.commit = true
	a := startMember(t, n, "a", "gd848", "durable848", mo)
	waitUntil(t, 30*time.Second, "30 offsets committed", func() bool { return committedSum(t, n, "gd848") == 30 })
	a.close()
	before := describeConsumerGroup(t, n, "gd848")

	n.Restart()
	waitUntil(t, 30*time.Second, "the commits are back after the restart", func() bool { return committedSum(t, n, "gd848") == 30 })
	after := describeConsumerGroup(t, n, "gd848")
	if after.ErrorCode != 0 || after.Epoch != before.Epoch || after.State != "Empty" {
		t.Fatalf("group after the restart: %+v (before: epoch %d)", after, before.Epoch)
	}
	resumesAfterCommits(t, n, "gd848", "durable848", mo)
}

// TestConsumerGroupsAndClassicGroupsCoexist: a classic group and a consumer group consume
// the same topic independently; an empty consumer group converts to a classic group when a
// classic member joins, and back, keeping its offsets.
func TestConsumerGroupsAndClassicGroupsCoexist(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "both", 2, nil)
	produceN(t, n, "both", 20)
	classic := startMember(t, n, "classic", "gc", "both", memberOpts{commit: true})
	mo := kip848()
	mo.commit = true
	modern := startMember(t, n, "modern", "gm", "both", mo)
	for _, m := range []*member{classic, modern} {
		waitUntil(t, 30*time.Second, m.name+" consumed everything", func() bool { return len(m.processed()) == 20 })
	}
	waitUntil(t, 30*time.Second, "both committed", func() bool {
		return committedSum(t, n, "gc") == 20 && committedSum(t, n, "gm") == 20
	})
	modern.close()

	// The empty consumer group becomes a classic group; its offsets stay.
	produceN(t, n, "both", 4)
	conv := startMember(t, n, "conv", "gm", "both", memberOpts{commit: true})
	waitUntil(t, 30*time.Second, "the classic member resumed after the commits", func() bool { return len(conv.processed()) >= 4 })
	for _, r := range conv.processed() {
		if r.Offset < 10 {
			t.Fatalf("re-consumed committed record %d/%d", r.Partition, r.Offset)
		}
	}
	if d := describeConsumerGroup(t, n, "gm"); kerr.ErrorForCode(d.ErrorCode) != kerr.GroupIDNotFound {
		t.Fatalf("ConsumerGroupDescribe of a classic group: %+v", d)
	}
	// The member commits after it records what it read: closing it before the commit lands
	// would cancel the commit (a race of the test, seen on a loaded machine).
	waitUntil(t, 30*time.Second, "the classic member committed", func() bool { return committedSum(t, n, "gm") == 24 })
	conv.close()

	// And back.
	back := startMember(t, n, "back", "gm", "both", kip848())
	balanced(t, []*member{back}, 2, []int{2})
	if d := describeConsumerGroup(t, n, "gm"); d.ErrorCode != 0 || len(d.Members) != 1 {
		t.Fatalf("after converting back: %+v", d)
	}
	if got := committedSum(t, n, "gm"); got != 24 {
		t.Fatalf("committed %d after the conversions", got)
	}
}
