package group

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// opsSeeds are inputs that reach the interesting paths quickly: classic members forming a group
// and syncing, a KIP-848 member joining it (an upgrade), leaving (a downgrade), timeouts.
var opsSeeds = [][]byte{
	// Two classic members form "g" and sync; a KIP-848 member joins (an upgrade), all
	// heartbeat, the KIP-848 member leaves (a downgrade), time passes.
	{0, 0, 9, 0, 1, 0, 2, 0, 0, 1, 0, 0, 9, 0, 1, 0, 1, 1, 2, 0, 2, 1, 4, 0, 5, 0, 0, 0, 0, 1,
		9, 1, 5, 0, 1, 0, 1, 1, 5, 0, 2, 0, 8, 8, 8, 16, 7, 0, 9, 2, 0, 0, 0, 1, 9, 0, 1, 0, 1, 1, 9, 6},
	// KIP-848 members on "g" and "h", a classic member joins "g", commits, static leave.
	{4, 0, 4, 1, 4, 132, 5, 0, 5, 1, 5, 132, 0, 2, 9, 1, 1, 2, 5, 0, 5, 1, 8, 10, 4, 4, 7, 4, 9, 4, 10, 0},
	// Static classic members, KIP-394 joins, junk assignments, the session timing out.
	{0, 4, 0, 4, 0, 21, 0, 21, 9, 0, 1, 4, 1, 13, 3, 12, 0, 4, 9, 3, 1, 4, 9, 5, 9, 6},
}

// FuzzShardOps drives one coordinator shard with a sequence of classic (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup, OffsetCommit) and KIP-848 (ConsumerGroupHeartbeat) operations of a few
// members on two groups, decoded from the input, with a manual clock. Whatever the clients do:
// nothing panics, every JoinGroup and SyncGroup is answered exactly once (at the latest once
// the clock has passed every timeout), and the records written replay into a new shard.
func FuzzShardOps(f *testing.F) {
	for _, s := range opsSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			data = data[:400]
		}
		runShardOps(t, data)
	})
}

type classicSlot struct {
	id       string
	gen      int32
	instance *string
	leader   bool
	members  []JoinMember
}

type consumerSlot struct {
	id       string
	epoch    int32
	owned    []int32
	instance *string
}

func runShardOps(t *testing.T, data []byte) {
	h := newConsumerHarness(t)
	groups := []string{"g", "h"}
	var classics [3]classicSlot
	var consumers [3]consumerSlot
	var joins []*pendingJoin
	var syncs []*pendingSync
	joinsSent := 0
	inst := func(b byte, name string) *string {
		if b&4 == 0 {
			return nil
		}
		return &name
	}
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	for len(data) > 0 {
		op, arg := next()%12, next()
		group := groups[arg>>7&1]
		slot := int(arg) % 3
		switch op {
		case 0: // classic JoinGroup
			c := &classics[slot]
			c.instance = inst(arg, "ci"+string(rune('0'+slot)))
			protos := []Protocol{{Name: "range", Metadata: consumerMeta("t")}, {Name: "cooperative-sticky", Metadata: consumerMeta("t")}}
			if arg&8 != 0 {
				protos = protos[1:]
			}
			p := &pendingJoin{t: t}
			h.shard.JoinGroup(JoinRequest{Group: group, MemberID: c.id, InstanceID: c.instance, ClientID: "c", ClientHost: "/h",
				SessionTimeout: 10 * time.Second, RebalanceTimeout: time.Duration(1+arg%3) * 5 * time.Second,
				ProtocolType: consumerProtocolType, Protocols: protos, RequireKnownMemberID: arg&16 != 0,
				SupportsSkipAssignment: arg&32 != 0}, func(r JoinResult) {
				p.done(r)
				if p.calls > 1 {
					t.Fatalf("JoinGroup of %q answered %d times", c.id, p.calls)
				}
				if r.Err == nil || errors.Is(r.Err, errMemberIDRequired) {
					c.id, c.gen = r.MemberID, r.Generation
					c.leader, c.members = r.LeaderID == r.MemberID, r.Members
				}
			})
			joins = append(joins, p)
		case 1: // classic SyncGroup; a leader assigns every partition to itself or sends junk
			c := &classics[slot]
			var assignments map[string][]byte
			if c.leader {
				assignments = map[string][]byte{}
				a := kmsg.NewConsumerMemberAssignment()
				a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: []int32{0, 1}}}
				for _, m := range c.members {
					assignments[m.MemberID] = nil
				}
				assignments[c.id] = a.AppendTo(nil)
				if arg&8 != 0 {
					assignments[c.id] = []byte{0xff, 1}
				}
			}
			p := &pendingSync{t: t}
			h.shard.SyncGroup(SyncRequest{Group: group, MemberID: c.id, InstanceID: c.instance, Generation: c.gen, Assignments: assignments},
				func(r SyncResult) {
					p.done(r)
					if p.calls > 1 {
						t.Fatalf("SyncGroup of %q answered %d times", c.id, p.calls)
					}
				})
			syncs = append(syncs, p)
		case 2: // classic Heartbeat
			c := &classics[slot]
			_ = h.shard.Heartbeat(HeartbeatRequest{Group: group, MemberID: c.id, InstanceID: c.instance, Generation: c.gen})
		case 3: // classic LeaveGroup, by member id or by instance id alone
			c := &classics[slot]
			m := LeaveMember{MemberID: c.id, InstanceID: c.instance}
			if arg&8 != 0 {
				m.MemberID = ""
			}
			_, _ = h.shard.LeaveGroup(group, []LeaveMember{m})
		case 4, 5, 6: // ConsumerGroupHeartbeat: join, beat, beat at a wrong epoch
			c := &consumers[slot]
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version = 1
			req.Group, req.MemberID = group, c.id
			c.instance = inst(arg, "ki"+string(rune('0'+slot)))
			req.InstanceID = c.instance
			req.RebalanceTimeoutMillis = 30000
			req.SubscribedTopicNames = []string{"t"}
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			switch op {
			case 4: // from v1 the client names itself; a static member keeps its id
				if c.instance == nil || c.id == "" {
					joinsSent++
					c.id = fmt.Sprintf("k%d-%d", slot, joinsSent)
				}
				req.MemberID, req.MemberEpoch, c.owned = c.id, 0, nil
			case 5:
				req.MemberEpoch = c.epoch
				if len(c.owned) > 0 {
					req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: topicT.ID, Partitions: c.owned})
				}
			case 6:
				req.MemberEpoch = c.epoch + 1 + int32(arg&1)
			}
			if req.MemberID == "" && req.MemberEpoch != 0 {
				continue
			}
			resp := h.shard.ConsumerGroupHeartbeat("k", "/h", req)
			if resp.ErrorCode == 0 {
				if resp.MemberID != nil {
					c.id = *resp.MemberID
				}
				c.epoch = resp.MemberEpoch
				if resp.Assignment != nil {
					c.owned = nil
					for _, tp := range resp.Assignment.Topics {
						c.owned = append(c.owned, tp.Partitions...)
					}
				}
			}
		case 7: // ConsumerGroupHeartbeat leave (static members: -2)
			c := &consumers[slot]
			if c.id == "" {
				continue
			}
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version = 1
			req.Group, req.MemberID, req.InstanceID, req.MemberEpoch = group, c.id, c.instance, -1
			if c.instance != nil {
				req.MemberEpoch = -2
			}
			h.shard.ConsumerGroupHeartbeat("k", "/h", req)
		case 8: // OffsetCommit by a classic member's generation or a consumer's epoch
			req := CommitRequest{Group: group, Generation: -1, APIVersion: int16(arg % 11),
				Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", int32(arg>>4) % 3}, Offset: int64(arg), LeaderEpoch: -1}}}
			if arg&8 != 0 {
				req.MemberID, req.Generation = classics[slot].id, classics[slot].gen
			} else if arg&16 != 0 {
				req.MemberID, req.Generation = consumers[slot].id, consumers[slot].epoch
			}
			h.shard.CommitOffsets(req)
		case 9: // time passes
			h.clock.Advance([]time.Duration{100 * time.Millisecond, time.Second, 3 * time.Second, 6 * time.Second,
				11 * time.Second, 31 * time.Second, 46 * time.Second}[int(arg)%7])
			h.shard.ConsumerGroupDescribe(group)
		case 10:
			_ = h.shard.DeleteGroup(group)
		case 11:
			h.shard.DescribeGroup(group)
			h.shard.ListGroups(nil, nil)
		}
	}
	// Every request waiting in the coordinator is answered once all timeouts have passed.
	for range 4 {
		h.clock.Advance(5 * time.Minute)
	}
	for i, p := range joins {
		if p.calls != 1 {
			t.Fatalf("JoinGroup %d answered %d times", i, p.calls)
		}
	}
	for i, p := range syncs {
		if p.calls != 1 {
			t.Fatalf("SyncGroup %d answered %d times", i, p.calls)
		}
	}
	// What was written loads into a new coordinator.
	h.reload()
	for _, g := range groups {
		h.shard.DescribeGroup(g)
		h.shard.ConsumerGroupDescribe(g)
	}
}
