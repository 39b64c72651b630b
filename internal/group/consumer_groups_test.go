package group

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group/consumer"
)

var topicT = consumer.Topic{Name: "t", ID: consumer.TopicID{1}, Partitions: 2}

func newConsumerHarness(t *testing.T) *harness {
	h := newHarness(t, testSettings())
	h.shard.setConsumerTopics([]consumer.Topic{topicT})
	return h
}

// cgJoin sends a joining ConsumerGroupHeartbeat (v1) for a member subscribed to "t".
func (h *harness) cgHeartbeat(group, memberID string, epoch int32, owned ...int32) *kmsg.ConsumerGroupHeartbeatResponse {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = group, memberID, epoch
	req.RebalanceTimeoutMillis = 30000
	req.SubscribedTopicNames = []string{"t"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if len(owned) > 0 {
		req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: topicT.ID, Partitions: owned})
	}
	return h.shard.ConsumerGroupHeartbeat("client", "/127.0.0.1", req)
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var code int16
	if want != nil {
		code = want.Code
	}
	if got != code {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// reload replays everything written into a new shard, as a new coordinator would.
func (h *harness) reload() {
	h.t.Helper()
	s := h.newShard(testSettings())
	s.setConsumerTopics([]consumer.Topic{topicT})
	for _, r := range h.written {
		if err := s.replay(r.Key, r.Value); err != nil {
			h.t.Fatal(err)
		}
	}
	s.finishLoad()
	h.shard = s
}

func TestConsumerGroupInShard(t *testing.T) {
	h := newConsumerHarness(t)
	resp := h.cgHeartbeat("g", "m1", 0)
	wantCode(t, "join", resp.ErrorCode, nil)
	if resp.MemberEpoch != 1 || resp.Assignment == nil || len(resp.Assignment.Topics[0].Partitions) != 2 {
		t.Fatalf("join: %+v", resp)
	}
	if len(h.written) == 0 || !consumer.IsRecord(h.written[0].Key) {
		t.Fatal("the join wrote no consumer-group records")
	}
	if l := h.shard.ListGroups(nil, []string{"consumer"}); len(l) != 1 || l[0].Type != "consumer" || l[0].State != "Stable" || l[0].ProtocolType != "consumer" {
		t.Fatalf("list: %+v", l)
	}
	if l := h.shard.ListGroups([]string{"Empty"}, nil); len(l) != 0 {
		t.Fatalf("list Empty: %+v", l)
	}
	if d := h.shard.DescribeGroup("g"); d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "uniform" || len(d.Members) != 1 {
		t.Fatalf("describe: %+v", d)
	}

	// Commits carry the member epoch from OffsetCommit v9.
	commit := func(gen int32, version int16) error {
		return h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: "m1", Generation: gen, APIVersion: version, RetentionTime: -1,
			Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", 0}, Offset: 42, LeaderEpoch: -1, CommitTimestamp: -1}}})[0]
	}
	wantErr(t, "commit", commit(1, 9), nil)
	wantErr(t, "stale commit", commit(0, 9), kerr.StaleMemberEpoch)
	wantErr(t, "old version", commit(1, 8), kerr.UnsupportedVersion)
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 42 {
		t.Fatalf("fetch: %+v", got)
	}
	gerr, errs := h.shard.DeleteOffsets("g", []TopicPartition{{"t", 0}})
	if gerr != nil || !errors.Is(errs[0], kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete offsets of a subscribed topic: %v %v", gerr, errs)
	}
	wantErr(t, "delete a group with members", h.shard.DeleteGroup("g"), kerr.NonEmptyGroup)

	// A classic member joining a consumer group with members gets a member id to rejoin
	// with first (KIP-394), like in a classic group; mixed_groups_test.go goes on.
	if r := h.join("g", "").result(); !errors.Is(r.Err, kerr.MemberIDRequired) || r.MemberID == "" {
		t.Fatalf("classic join: %+v", r)
	}

	// A restart finds the group, the member and the offsets; the member's session runs again.
	h.reload()
	if d := h.shard.ConsumerGroupDescribe("g"); d.ErrorCode != 0 || d.Epoch != 1 || len(d.Members) != 1 || d.Members[0].MemberEpoch != 1 {
		t.Fatalf("after reload: %+v", d)
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 42 {
		t.Fatalf("offsets after reload: %+v", got)
	}
	wantCode(t, "heartbeat after reload", h.cgHeartbeat("g", "m1", 1, 0, 1).ErrorCode, nil)
	h.clock.Advance(45 * time.Second)
	if d := h.shard.ConsumerGroupDescribe("g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("the session did not expire: %+v", d)
	}
	// An empty consumer group can be deleted, offsets included.
	wantErr(t, "delete", h.shard.DeleteGroup("g"), nil)
	if got := h.shard.FetchOffsets("g", nil); len(got) != 0 {
		t.Fatalf("offsets of a deleted group: %+v", got)
	}
	h.reload()
	if d := h.shard.ConsumerGroupDescribe("g"); !errors.Is(kerr.ErrorForCode(d.ErrorCode), kerr.GroupIDNotFound) {
		t.Fatalf("deleted group after reload: %+v", d)
	}
}

func TestConsumerGroupWriteFailureReverts(t *testing.T) {
	h := newConsumerHarness(t)
	h.failStore = kerr.NotEnoughReplicas
	resp := h.cgHeartbeat("g", "m1", 0)
	if resp.ErrorCode == 0 {
		t.Fatal("join succeeded without its records")
	}
	if h.shard.isConsumerGroup("g") {
		t.Fatal("the failed join left a group")
	}
	h.failStore = nil
	if resp := h.cgHeartbeat("g", "m1", 0); resp.ErrorCode != 0 || resp.MemberEpoch != 1 {
		t.Fatalf("join after the failure: %+v", resp)
	}
	// An expiry that cannot be written is retried.
	h.failStore = kerr.NotEnoughReplicas
	h.clock.Advance(45 * time.Second)
	if d := h.shard.ConsumerGroupDescribe("g"); len(d.Members) != 1 {
		t.Fatal("the member was removed although its removal was not written")
	}
	h.failStore = nil
	h.clock.Advance(time.Second)
	if d := h.shard.ConsumerGroupDescribe("g"); len(d.Members) != 0 {
		t.Fatal("the expiry was not retried")
	}
}

func TestGroupConversions(t *testing.T) {
	h := newConsumerHarness(t)
	// A simple group: offsets only.
	errs := h.shard.CommitOffsets(CommitRequest{Group: "g", Generation: -1, RetentionTime: -1,
		Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", 1}, Offset: 7, LeaderEpoch: -1, CommitTimestamp: -1}}})
	wantErr(t, "simple commit", errs[0], nil)

	// It becomes a consumer group when a member joins; the offsets stay.
	wantCode(t, "join", h.cgHeartbeat("g", "m1", 0).ErrorCode, nil)
	if h.shard.groups["g"] != nil || !h.shard.isConsumerGroup("g") {
		t.Fatal("not converted")
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("offsets after the conversion: %+v", got)
	}
	h.reload()
	if !h.shard.isConsumerGroup("g") || h.shard.groups["g"] != nil {
		t.Fatal("the conversion did not survive a reload")
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("offsets after reload: %+v", got)
	}

	// Once empty, it becomes a classic group again when a classic member joins.
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Version, leave.Group, leave.MemberID, leave.MemberEpoch = 1, "g", "m1", -1
	wantCode(t, "leave", h.shard.ConsumerGroupHeartbeat("c", "h", leave).ErrorCode, nil)
	id, p := h.joinNew("g")
	h.clock.Advance(0)
	if r := p.result(); r.Err != nil || r.MemberID != id {
		t.Fatalf("classic join: %+v", r)
	}
	if h.shard.isConsumerGroup("g") {
		t.Fatal("still a consumer group")
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("offsets after converting back: %+v", got)
	}
	// A classic group refuses consumer-protocol heartbeats other than joins (which upgrade it,
	// see mixed_groups_test.go).
	if resp := h.cgHeartbeat("g", "m2", 1); !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.GroupIDNotFound) {
		t.Fatalf("heartbeat to a classic group: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if d := h.shard.ConsumerGroupDescribe("g"); !errors.Is(kerr.ErrorForCode(d.ErrorCode), kerr.GroupIDNotFound) {
		t.Fatalf("ConsumerGroupDescribe of a classic group: %+v", d)
	}
	h.reload()
	if h.shard.isConsumerGroup("g") || h.shard.groups["g"] == nil {
		t.Fatal("the conversion back did not survive a reload")
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("offsets after the second reload: %+v", got)
	}
}

func TestConsumerGroupOffsetExpiration(t *testing.T) {
	set := testSettings()
	h := newHarness(t, set)
	h.shard.setConsumerTopics([]consumer.Topic{topicT, {Name: "u", ID: consumer.TopicID{2}, Partitions: 1}})
	wantCode(t, "join", h.cgHeartbeat("g", "m1", 0).ErrorCode, nil)
	errs := h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: "m1", Generation: 1, APIVersion: 9, RetentionTime: -1, Offsets: []CommitOffset{
		{TopicPartition: TopicPartition{"t", 0}, Offset: 1, LeaderEpoch: -1, CommitTimestamp: -1},
		{TopicPartition: TopicPartition{"u", 0}, Offset: 2, LeaderEpoch: -1, CommitTimestamp: -1},
	}})
	wantErr(t, "commit", errs[0], nil)
	// The member keeps heartbeating past the retention: the offset of the topic it does not
	// subscribe to expires, the other stays.
	for elapsed := time.Duration(0); elapsed <= set.OffsetsRetention+set.OffsetsRetentionCheckInterval; elapsed += 30 * time.Second {
		h.clock.Advance(30 * time.Second)
		wantCode(t, "heartbeat", h.cgHeartbeat("g", "m1", 1, 0, 1).ErrorCode, nil)
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Topic != "t" {
		t.Fatalf("offsets after the retention: %+v", got)
	}
	// Once the group is empty, its last offset expires and the group goes.
	h.clock.Advance(time.Minute) // the session expires
	h.clock.Advance(set.OffsetsRetention + set.OffsetsRetentionCheckInterval)
	if h.shard.isConsumerGroup("g") || len(h.shard.FetchOffsets("g", nil)) != 0 {
		t.Fatal("the empty group with expired offsets was not deleted")
	}
	h.reload()
	if h.shard.isConsumerGroup("g") || len(h.shard.FetchOffsets("g", nil)) != 0 {
		t.Fatal("the expired group came back after a reload")
	}
}
