package group

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group/consumer"
)

// consumerAssignment is a ConsumerProtocolAssignment of partitions of "t".
func consumerAssignment(ps ...int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = "t", ps
	a.Topics = append(a.Topics, at)
	return a.AppendTo(nil)
}

func decodeAssignment(t *testing.T, b []byte) []int32 {
	t.Helper()
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		t.Fatalf("assignment: %v", err)
	}
	var ps []int32
	for _, at := range a.Topics {
		if at.Topic == "t" {
			ps = append(ps, at.Partitions...)
		}
	}
	return ps
}

// classicPair forms a Stable classic group "g" of two consumers of "t" (2 partitions), one
// partition each, with an offset committed.
func classicPair(t *testing.T, h *harness) (ids []string, gen int32) {
	t.Helper()
	a, pa := h.joinNew("g")
	b, pb := h.joinNew("g")
	h.clock.Advance(0)
	ra, rb := pa.result(), pb.result()
	if ra.Err != nil || rb.Err != nil {
		t.Fatalf("joins: %v %v", ra.Err, rb.Err)
	}
	gen = ra.Generation
	leader, follower := a, b
	if rb.LeaderID == b {
		leader, follower = b, a
	}
	fs := h.sync("g", follower, gen, nil)
	if r := h.sync("g", leader, gen, map[string][]byte{a: consumerAssignment(0), b: consumerAssignment(1)}).result(); r.Err != nil {
		t.Fatalf("leader sync: %v", r.Err)
	}
	if r := fs.result(); r.Err != nil {
		t.Fatalf("follower sync: %v", r.Err)
	}
	errs := h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: a, Generation: gen, APIVersion: 8, RetentionTime: -1,
		Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", 0}, Offset: 11, LeaderEpoch: -1, CommitTimestamp: -1}}})
	wantErr(t, "classic commit", errs[0], nil)
	return []string{a, b}, gen
}

func TestOnlineUpgradeAndDowngrade(t *testing.T) {
	h := newConsumerHarness(t)
	ids, gen := classicPair(t, h)
	a, b := ids[0], ids[1]

	// b rejoins with a new subscription: the group prepares a rebalance and b's join waits.
	parked := h.join("g", b, withProtocols(Protocol{Name: "range", Metadata: consumerMeta("t", "u")}))
	if !parked.waiting() {
		t.Fatal("the rejoin did not wait for the rebalance")
	}

	// A write failure leaves the classic group as it was.
	h.failStore = kerr.NotEnoughReplicas
	if resp := h.cgHeartbeat("g", "c", 0); resp.ErrorCode == 0 || h.shard.isConsumerGroup("g") || h.shard.groups["g"] == nil || !parked.waiting() {
		t.Fatalf("failed upgrade: %v, consumer group %v", kerr.ErrorForCode(resp.ErrorCode), h.shard.isConsumerGroup("g"))
	}
	h.failStore = nil

	// A consumer-protocol member joins: the group is upgraded, the waiting join is told to
	// rejoin, the members keep their ids and partitions at the classic generation.
	resp := h.cgHeartbeat("g", "c", 0)
	wantCode(t, "upgrade", resp.ErrorCode, nil)
	if !h.shard.isConsumerGroup("g") || h.shard.groups["g"] != nil {
		t.Fatal("not upgraded")
	}
	if r := parked.result(); !errors.Is(r.Err, kerr.RebalanceInProgress) {
		t.Fatalf("the waiting join got %+v", r)
	}
	if resp.MemberEpoch != gen+1 || (resp.Assignment != nil && len(resp.Assignment.Topics) > 0) {
		t.Fatalf("the new member: epoch %d, assignment %+v (the classic members still own both partitions)", resp.MemberEpoch, resp.Assignment)
	}
	d := h.shard.ConsumerGroupDescribe("g")
	if d.Epoch != gen+1 || len(d.Members) != 3 {
		t.Fatalf("upgraded group: %+v", d)
	}
	for _, m := range d.Members {
		if (m.MemberType == 0) != (m.MemberID != "c") {
			t.Fatalf("member %s has type %d", m.MemberID, m.MemberType)
		}
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 11 {
		t.Fatalf("offsets after the upgrade: %+v", got)
	}

	// The classic members hear of it on their next heartbeat and rejoin; the join answers at
	// once with the member epoch as generation, and the sync gives the assignment.
	wantErr(t, "classic heartbeat", h.heartbeat("g", a, gen), kerr.RebalanceInProgress)
	classicRound := func(id string) (int32, []int32) {
		t.Helper()
		r := h.join("g", id).result()
		if r.Err != nil || r.LeaderID != "" || len(r.Members) != 0 || r.Protocol == nil || *r.Protocol != "range" {
			t.Fatalf("classic join in a consumer group: %+v", r)
		}
		s := h.sync("g", id, r.Generation, nil).result()
		if s.Err != nil {
			t.Fatalf("classic sync: %v", s.Err)
		}
		return r.Generation, decodeAssignment(t, s.Assignment)
	}
	// (b's parked join had changed its subscription, so its rejoin bumps the epoch again and
	// a must rejoin once more: loop until every heartbeat passes.)
	gens := map[string]int32{}
	owned := map[string][]int32{}
	cEpoch := resp.MemberEpoch
	var cOwned []int32
	for round := 0; ; round++ {
		if round == 5 {
			t.Fatalf("the mixed group did not settle: %+v", h.shard.ConsumerGroupDescribe("g"))
		}
		for _, id := range ids {
			if g, ok := gens[id]; !ok || h.heartbeat("g", id, g) != nil {
				gens[id], owned[id] = classicRound(id)
			}
		}
		c := h.cgHeartbeat("g", "c", cEpoch, cOwned...)
		wantCode(t, "consumer heartbeat", c.ErrorCode, nil)
		cEpoch = c.MemberEpoch
		if c.Assignment != nil {
			cOwned = nil
			for _, at := range c.Assignment.Topics {
				cOwned = append(cOwned, at.Partitions...)
			}
		}
		if h.heartbeat("g", a, gens[a]) == nil && h.heartbeat("g", b, gens[b]) == nil && h.shard.ConsumerGroupDescribe("g").State == "Stable" {
			break
		}
	}
	// Two partitions, three members: the classic members keep theirs, c idles.
	if len(owned[a])+len(owned[b])+len(cOwned) != 2 || len(owned[a]) != 1 || len(owned[b]) != 1 || owned[a][0] == owned[b][0] {
		t.Fatalf("after the rejoins: a %v, b %v, c %v", owned[a], owned[b], cOwned)
	}
	genA, genB := gens[a], gens[b]
	wantErr(t, "classic heartbeat when reconciled", h.heartbeat("g", a, genA), nil)
	errs := h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: a, Generation: genA, APIVersion: 8, RetentionTime: -1,
		Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", 0}, Offset: 12, LeaderEpoch: -1, CommitTimestamp: -1}}})
	wantErr(t, "classic commit in a consumer group", errs[0], nil)

	// A restart rebuilds the mixed group.
	h.reload()
	if d := h.shard.ConsumerGroupDescribe("g"); d.ErrorCode != 0 || len(d.Members) != 3 {
		t.Fatalf("after reload: %+v", d)
	}
	wantErr(t, "classic heartbeat after reload", h.heartbeat("g", b, genB), nil)

	// The consumer-protocol member leaves: only classic members remain and the group becomes
	// a classic group at the group epoch, rebalancing, with its offsets.
	epoch := h.shard.ConsumerGroupDescribe("g").Epoch
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Version, leave.Group, leave.MemberID, leave.MemberEpoch = 1, "g", "c", -1
	wantCode(t, "leave", h.shard.ConsumerGroupHeartbeat("client", "/h", leave).ErrorCode, nil)
	g := h.shard.groups["g"]
	if g != nil && len(g.members) == 2 {
		if got := decodeAssignment(t, g.members[a].assignment); len(got) != 1 || got[0] != owned[a][0] {
			t.Fatalf("a holds %v in the downgraded group, its target was %v", got, owned[a])
		}
	}
	if h.shard.isConsumerGroup("g") || g == nil || g.generation != epoch || g.state != statePreparingRebalance || len(g.members) != 2 || g.protocol != "range" {
		t.Fatalf("downgraded group: %+v", g)
	}
	if got := h.shard.FetchOffsets("g", nil); len(got) != 1 || got[0].Offset != 12 {
		t.Fatalf("offsets after the downgrade: %+v", got)
	}
	wantErr(t, "heartbeat in the downgraded group", h.heartbeat("g", a, epoch), kerr.RebalanceInProgress)
	pa, pb := h.join("g", a), h.join("g", b)
	ra, rb := pa.result(), pb.result()
	if ra.Err != nil || rb.Err != nil || ra.Generation != epoch+1 {
		t.Fatalf("rejoins after the downgrade: %+v %+v", ra, rb)
	}
	h.reload()
	if h.shard.isConsumerGroup("g") || h.shard.groups["g"] == nil {
		t.Fatal("the downgrade did not survive a reload")
	}
}

func TestMixedGroupSessionExpiryDowngrades(t *testing.T) {
	h := newConsumerHarness(t)
	classicPair(t, h)
	wantCode(t, "upgrade", h.cgHeartbeat("g", "c", 0).ErrorCode, nil)
	// The consumer member stops heartbeating; the classic members keep their sessions with
	// heartbeats (REBALANCE_IN_PROGRESS, they do not rejoin) within their rebalance timeout.
	ids := []string{}
	for _, m := range h.shard.ConsumerGroupDescribe("g").Members {
		if m.MemberID != "c" {
			ids = append(ids, m.MemberID)
		}
	}
	for elapsed := time.Duration(0); elapsed < 46*time.Second; elapsed += 5 * time.Second {
		h.clock.Advance(5 * time.Second)
		if h.shard.groups["g"] != nil {
			break
		}
		for _, id := range ids {
			r := h.join("g", id).result() // rejoining keeps them within the rebalance timeout
			if r.Err != nil {
				t.Fatalf("rejoin: %v", r.Err)
			}
			if s := h.sync("g", id, r.Generation, nil).result(); s.Err != nil && !errors.Is(s.Err, kerr.RebalanceInProgress) {
				t.Fatalf("sync: %v", s.Err)
			}
		}
	}
	if g := h.shard.groups["g"]; g == nil || len(g.members) != 2 {
		t.Fatalf("the group was not downgraded when the consumer member's session expired: %+v", h.shard.ConsumerGroupDescribe("g"))
	}
}

func TestMigrationPolicy(t *testing.T) {
	set := testSettings()
	set.Consumer.MigrationPolicy = "disabled"
	h := newHarness(t, set)
	h.shard.setConsumerTopics(consumerTopicsForTest())
	classicPair(t, h)
	if resp := h.cgHeartbeat("g", "c", 0); !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.GroupIDNotFound) || h.shard.isConsumerGroup("g") {
		t.Fatalf("upgrade with the policy disabled: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// A classic member cannot join a consumer group with members either.
	wantCode(t, "join", h.cgHeartbeat("h", "c", 0).ErrorCode, nil)
	if r := h.join("h", "m", withoutKIP394()).result(); !errors.Is(r.Err, kerr.InconsistentGroupProtocol) {
		t.Fatalf("classic join with the policy disabled: %+v", r)
	}
}

func consumerTopicsForTest() []consumer.Topic { return []consumer.Topic{topicT} }
