package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// maxVersion returns the latest versions with key capped at v, to send older requests.
func maxVersion(key kmsg.Key, v int16) *kversion.Versions {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(key.Int16(), v)
	return vs
}

// TestGroupAdmin exercises kadm's group operations against a live group and after it empties.
func TestGroupAdmin(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "adm", 2, nil)
	createTopic(t, n, "other", 1, nil)
	produceN(t, n, "adm", 10)
	m := startMember(t, n, "m", "ga", "adm", memberOpts{commit: true})
	balanced(t, []*member{m}, 2, []int{2})
	adm := newAdmin(t, n)
	ctx := ctxT(t)
	waitUntil(t, 30*time.Second, "the member committed", func() bool {
		offs, err := adm.FetchOffsets(ctx, "ga")
		return err == nil && len(offs["adm"]) == 2
	})

	listed, err := adm.ListGroups(ctx)
	if err != nil || listed["ga"].State != "Stable" || listed["ga"].ProtocolType != "consumer" {
		t.Fatalf("list groups: %+v %v", listed, err)
	}
	if stable, _ := adm.ListGroups(ctx, "Empty"); len(stable) != 0 {
		t.Fatalf("list Empty groups: %+v", stable)
	}
	described, err := adm.DescribeGroups(ctx, "ga", "nosuchgroup")
	if err != nil {
		t.Fatal(err)
	}
	d := described["ga"]
	if d.Err != nil || d.State != "Stable" || d.Protocol == "" || len(d.Members) != 1 ||
		d.Members[0].ClientHost != "/127.0.0.1" || len(d.AssignedPartitions()["adm"]) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	if c, ok := d.Members[0].Join.AsConsumer(); !ok || len(c.Topics) != 1 || c.Topics[0] != "adm" {
		t.Fatalf("member subscription: %+v", d.Members[0].Join)
	}
	// DescribeGroups v6 (KIP-1043) answers an unknown group with GROUP_ID_NOT_FOUND.
	if d := described["nosuchgroup"]; !errors.Is(d.Err, kerr.GroupIDNotFound) || d.State != "Dead" {
		t.Fatalf("describe unknown group: %+v", d)
	}

	deleted, err := adm.DeleteGroups(ctx, "ga")
	if err != nil || !errors.Is(deleted["ga"].Err, kerr.NonEmptyGroup) {
		t.Fatalf("delete live group: %+v %v", deleted, err)
	}
	// Commit to "other" as the admin would (a simple commit is refused while the group has
	// members), so the group holds offsets of a topic it does not consume.
	if r, err := adm.CommitOffsets(ctx, "ga", kadmOffsets("other", 0, 1)); err != nil || !errors.Is(r.Error(), kerr.UnknownMemberID) {
		t.Fatalf("simple commit to a non-empty group: %v %v", err, r.Error())
	}
	set := kadm.TopicsSet{}
	set.Add("adm", 0)
	od, err := adm.DeleteOffsets(ctx, "ga", set)
	if err != nil {
		t.Fatal(err)
	}
	if err, _ := od.Lookup("adm", 0); !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete offsets of a consumed topic: %v", err)
	}

	m.close()
	waitUntil(t, 30*time.Second, "the group is empty", func() bool {
		l, _ := adm.ListGroups(ctx, "Empty")
		_, ok := l["ga"]
		return ok
	})
	if r, err := adm.CommitOffsets(ctx, "ga", kadmOffsets("other", 0, 1)); err != nil || r.Error() != nil {
		t.Fatalf("simple commit to the empty group: %v %v", err, r.Error())
	}
	if od, err = adm.DeleteOffsets(ctx, "ga", set); err != nil || od.Error() != nil {
		t.Fatalf("delete offsets of the empty group: %v %v", err, od.Error())
	}
	offs, err := adm.FetchOffsets(ctx, "ga")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := offs.Lookup("adm", 0); ok {
		t.Fatal("deleted offset still fetched")
	}
	if o, ok := offs.Lookup("other", 0); !ok || o.At != 1 {
		t.Fatalf("offset of other: %+v", offs)
	}
	deleted, err = adm.DeleteGroups(ctx, "ga", "nosuchgroup")
	if err != nil || deleted["ga"].Err != nil || !errors.Is(deleted["nosuchgroup"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete groups: %+v %v", deleted, err)
	}
	if offs, _ := adm.FetchOffsets(ctx, "ga"); len(offs) != 0 {
		t.Fatalf("offsets of a deleted group: %+v", offs)
	}
	if l, _ := adm.ListGroups(ctx); len(l) != 0 {
		t.Fatalf("groups after delete: %+v", l)
	}
	// Fetching several groups at once uses OffsetFetch v8.
	adm.CommitOffsets(ctx, "x1", kadmOffsets("adm", 0, 3))
	adm.CommitOffsets(ctx, "x2", kadmOffsets("adm", 1, 4))
	many := adm.FetchManyOffsets(ctx, "x1", "x2")
	if o, _ := many["x1"].Fetched.Lookup("adm", 0); o.At != 3 {
		t.Fatalf("fetch many: %+v", many)
	}
	if o, _ := many["x2"].Fetched.Lookup("adm", 1); o.At != 4 {
		t.Fatalf("fetch many: %+v", many)
	}
}

// TestGroupRawProtocol drives the classic protocol with raw requests: KIP-394 member ids,
// fencing errors, and a member that stops heartbeating and is removed after its session
// timeout.
func TestGroupRawProtocol(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "raw", 1, nil)
	cl := newClient(t, n)
	ctx := ctxT(t)
	br := cl.Broker(1)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.SetVersion(4)
	fc.CoordinatorKeys = []string{"raw-group", "other"}
	fcr, err := fc.RequestWith(ctx, br)
	if err != nil || len(fcr.Coordinators) != 2 || fcr.Coordinators[0].ErrorCode != 0 || fcr.Coordinators[0].NodeID != 1 {
		t.Fatalf("find coordinator: %+v %v", fcr, err)
	}
	fc = kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "txn"
	fc.CoordinatorType = 1
	old := newClient(t, n, kgo.MaxVersions(maxVersion(kmsg.FindCoordinator, 3)))
	if fcr, err := fc.RequestWith(ctx, old.Broker(1)); err != nil || fcr.Version != 3 || fcr.ErrorCode != 0 || fcr.NodeID != 1 {
		t.Fatalf("transaction coordinator: %+v %v", fcr, err)
	}

	join := func(memberID string) *kmsg.JoinGroupResponse {
		t.Helper()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = "raw-group"
		req.MemberID = memberID
		req.SessionTimeoutMillis = 6000
		req.RebalanceTimeoutMillis = 6000
		req.ProtocolType = "consumer"
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{"raw"}
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctx, br)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := join("")
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("join without member id: %+v", first)
	}
	joined := join(first.MemberID)
	if joined.ErrorCode != 0 || joined.Generation != 1 || joined.LeaderID != first.MemberID || len(joined.Members) != 1 {
		t.Fatalf("join: %+v", joined)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "raw-group", joined.MemberID, joined.Generation
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), joined.Protocol
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = joined.MemberID, []byte("mine")
	sync.GroupAssignment = append(sync.GroupAssignment, a)
	if sr, err := sync.RequestWith(ctx, br); err != nil || sr.ErrorCode != 0 || string(sr.MemberAssignment) != "mine" {
		t.Fatalf("sync: %+v %v", sr, err)
	}
	heartbeat := func(memberID string, gen int32) int16 {
		t.Helper()
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = "raw-group", memberID, gen
		resp, err := req.RequestWith(ctx, br)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	for _, tc := range []struct {
		name   string
		member string
		gen    int32
		want   *kerr.Error
	}{
		{"current", joined.MemberID, 1, nil},
		{"old generation", joined.MemberID, 0, kerr.IllegalGeneration},
		{"unknown member", "nobody", 1, kerr.UnknownMemberID},
	} {
		want := int16(0)
		if tc.want != nil {
			want = tc.want.Code
		}
		if got := heartbeat(tc.member, tc.gen); got != want {
			t.Errorf("heartbeat %s: %v, want %v", tc.name, kerr.ErrorForCode(got), tc.want)
		}
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.MemberID, commit.Generation = "raw-group", joined.MemberID, 2
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "raw" // named up to v9; from v10 by id
	ct.TopicID = topicIDOf(t, n, "raw")
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset = 1
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	if cr, err := commit.RequestWith(ctx, br); err != nil || cr.Topics[0].Partitions[0].ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("commit with a wrong generation: %+v %v", cr, err)
	}

	// The member stops heartbeating: after its session timeout (6s) it is gone.
	stopped := time.Now()
	waitUntil(t, 30*time.Second, "the silent member is removed", func() bool {
		return time.Since(stopped) > 6*time.Second && heartbeat(joined.MemberID, 1) == kerr.UnknownMemberID.Code
	})
	desc := kmsg.NewPtrDescribeGroupsRequest()
	desc.Groups = []string{"raw-group"}
	if dr, err := desc.RequestWith(ctx, br); err != nil || dr.Groups[0].State != "Empty" || len(dr.Groups[0].Members) != 0 {
		t.Fatalf("describe after expiry: %+v %v", dr, err)
	}
}

// TestGroupLeaveGroupVersions leaves with LeaveGroup v0 (one member) and v3 (a batch).
func TestGroupLeaveGroupVersions(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "lv", 2, nil)
	a := startMember(t, n, "a", "gl", "lv", memberOpts{})
	b := startMember(t, n, "b", "gl", "lv", memberOpts{})
	balanced(t, []*member{a, b}, 2, []int{1, 1})
	idA, gen := a.cl.GroupMetadata()
	cl := newClient(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	v0 := kmsg.NewPtrLeaveGroupRequest()
	v0.Group, v0.MemberID = "gl", "nobody"
	old := newClient(t, n, kgo.MaxVersions(maxVersion(kmsg.LeaveGroup, 0)))
	if r, err := v0.RequestWith(ctx, old.Broker(1)); err != nil || r.Version != 0 || r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave v0: %+v %v", r, err)
	}
	v3 := kmsg.NewPtrLeaveGroupRequest()
	v3.Group = "gl"
	for _, id := range []string{idA, "nobody"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		v3.Members = append(v3.Members, m)
	}
	r, err := v3.RequestWith(ctx, cl.Broker(1))
	if err != nil || r.ErrorCode != 0 || len(r.Members) != 2 || r.Members[0].ErrorCode != 0 || r.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave v3: %+v %v", r, err)
	}
	// The removed member notices (its heartbeat fails) and rejoins; the group rebalances.
	waitUntil(t, 30*time.Second, "a rejoins with a new member id", func() bool {
		id, g := a.cl.GroupMetadata()
		_, gb := b.cl.GroupMetadata()
		return id != idA && g > gen && gb == g
	})
	balanced(t, []*member{a, b}, 2, []int{1, 1})
}

// TestGroupOffsetsTopic checks the internal topic: created on the first FindCoordinator with
// offsets.topic.num.partitions partitions and cleanup.policy=compact, and holding Kafka's
// record formats in the partition Kafka would pick for the group.
func TestGroupOffsetsTopic(t *testing.T) {
	n := testcluster.Start(t, "group.initial.rebalance.delay.ms=0", "offsets.topic.num.partitions=7")
	createTopic(t, n, "fmt", 1, nil)
	adm := newAdmin(t, n)
	ctx := ctxT(t)
	if r, err := adm.CommitOffsets(ctx, "format-group", kadmOffsets("fmt", 0, 42)); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	td, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	topic := td["__consumer_offsets"]
	if topic.Err != nil || !topic.IsInternal || len(topic.Partitions) != 7 {
		t.Fatalf("offsets topic: %+v", topic)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On("__consumer_offsets", nil); err != nil || configValue(c.Configs, "cleanup.policy") != "compact" {
		t.Fatalf("offsets topic configs: %+v %v", c, err)
	}

	// Read the group's partition (Utils.abs(hashCode) % 7) and decode Kafka's key and value.
	p := group.PartitionFor("format-group", 7)
	cl := newClient(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"__consumer_offsets": {p: kgo.NewOffset().AtStart()}}))
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records in partition %d, want the commit", len(recs), p)
	}
	var key kmsg.OffsetCommitKey
	var value kmsg.OffsetCommitValue
	if err := key.ReadFrom(recs[0].Key); err != nil || key.Group != "format-group" || key.Topic != "fmt" || key.Partition != 0 {
		t.Fatalf("key %+v: %v", key, err)
	}
	if err := value.ReadFrom(recs[0].Value); err != nil || value.Offset != 42 || value.CommitTimestamp <= 0 {
		t.Fatalf("value %+v: %v", value, err)
	}
}

func configValue(cs []kadm.Config, name string) string {
	for _, c := range cs {
		if c.Key == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}
