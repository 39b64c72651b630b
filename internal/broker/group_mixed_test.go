package broker_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// Mixed groups (Kafka 4.x): classic-protocol members (JoinGroup/SyncGroup) and KIP-848
// members (ConsumerGroupHeartbeat) in one group, with the online upgrade of a classic group
// when the first KIP-848 member joins and the downgrade when the last one leaves.

// memberTypes returns the ConsumerGroupDescribe member types of a group: 0 classic, 1
// consumer protocol.
func memberTypes(t *testing.T, n *testcluster.Node, group string) []int8 {
	d := describeConsumerGroup(t, n, group)
	var types []int8
	for _, m := range d.Members {
		types = append(types, m.MemberType)
	}
	slices.Sort(types)
	return types
}

func consumedAll(t *testing.T, members []*member, total int) {
	t.Helper()
	waitUntil(t, 60*time.Second, "the members consumed every record", func() bool {
		seen := map[[2]int64]bool{}
		for _, m := range members {
			for _, r := range m.processed() {
				seen[[2]int64{int64(r.Partition), r.Offset}] = true
			}
		}
		return len(seen) >= total
	})
}

func TestMixedGroupOnlineUpgradeAndDowngrade(t *testing.T) {
	for _, balancer := range []struct {
		name string
		opt  kgo.GroupBalancer
	}{{"eager-range", kgo.RangeBalancer()}, {"cooperative-sticky", kgo.CooperativeStickyBalancer()}} {
		t.Run(balancer.name, func(t *testing.T) {
			n := startConsumerGroupNode(t)
			createTopic(t, n, "mixed", 6, nil)
			produceN(t, n, "mixed", 60)
			classicOpts := memberOpts{commit: true, opts: []kgo.Opt{kgo.Balancers(balancer.opt)}}
			a := startMember(t, n, "a", "gmix", "mixed", classicOpts)
			b := startMember(t, n, "b", "gmix", "mixed", classicOpts)
			balanced(t, []*member{a, b}, 6, []int{3, 3})
			consumedAll(t, []*member{a, b}, 60)
			waitUntil(t, 30*time.Second, "the classic members committed", func() bool { return committedSum(t, n, "gmix") == 60 })

			// A KIP-848 member joins the classic group: it is upgraded and the partitions are
			// shared by the three members.
			mo := kip848()
			mo.commit = true
			c := startMember(t, n, "c", "gmix", "mixed", mo)
			balanced(t, []*member{a, b, c}, 6, []int{2, 2, 2})
			if got := memberTypes(t, n, "gmix"); !slices.Equal(got, []int8{0, 0, 1}) {
				t.Fatalf("member types %v, want two classic and one consumer", got)
			}
			produceN(t, n, "mixed", 30)
			consumedAll(t, []*member{a, b, c}, 90)
			waitUntil(t, 30*time.Second, "the mixed group committed", func() bool { return committedSum(t, n, "gmix") == 90 })

			// The KIP-848 member leaves: the group is a classic group again and the classic
			// members take over its partitions.
			c.close()
			balanced(t, []*member{a, b}, 6, []int{3, 3})
			waitUntil(t, 30*time.Second, "the group is classic again", func() bool {
				d := describeConsumerGroup(t, n, "gmix")
				return kerr.ErrorForCode(d.ErrorCode) == kerr.GroupIDNotFound
			})
			lg, err := newAdmin(t, n).ListGroups(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if l, ok := lg["gmix"]; !ok || l.ProtocolType != "consumer" {
				t.Fatalf("listed groups: %+v", lg)
			}
			produceN(t, n, "mixed", 30)
			consumedAll(t, []*member{a, b, c}, 120)
			waitUntil(t, 30*time.Second, "the downgraded group committed", func() bool { return committedSum(t, n, "gmix") == 120 })
		})
	}
}

// saramaClaims is a sarama ConsumerGroupHandler that records its claims of one topic.
type saramaClaims struct {
	topic  string
	mu     sync.Mutex
	claims []int32
}

func (s *saramaClaims) Setup(sess sarama.ConsumerGroupSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims = slices.Sorted(slices.Values(sess.Claims()[s.topic]))
	return nil
}

func (s *saramaClaims) Cleanup(sarama.ConsumerGroupSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims = nil
	return nil
}

func (s *saramaClaims) ConsumeClaim(sess sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		sess.MarkMessage(msg, "")
	}
	return nil
}

func (s *saramaClaims) owned() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.claims)
}

// TestSaramaJoinsConsumerGroup: a sarama (classic protocol) consumer joins a KIP-848 group
// that has a member; the server's assignor shares the partitions between them.
func TestSaramaJoinsConsumerGroup(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "smix", 4, nil)
	k := startMember(t, n, "k", "gsmix", "smix", kip848())
	balanced(t, []*member{k}, 4, []int{4})

	cfg := saramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cg, err := sarama.NewConsumerGroup([]string{n.Addr()}, "gsmix", cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &saramaClaims{topic: "smix"}
	consumeWithSarama(t, cg, "smix", h)
	waitUntil(t, 60*time.Second, "sarama and the KIP-848 member share the partitions", func() bool {
		s, kp := h.owned(), k.ownedPartitions()
		if len(s) != 2 || len(kp) != 2 {
			return false
		}
		all := slices.Sorted(slices.Values(append(s, kp...)))
		return slices.Equal(all, []int32{0, 1, 2, 3})
	})
	if got := memberTypes(t, n, "gsmix"); !slices.Equal(got, []int8{0, 1}) {
		t.Fatalf("member types %v", got)
	}
}

// TestStaticClassicMemberReplacesKIP848Member: a static KIP-848 member leaves for now (epoch
// -2) and the same instance comes back with the classic protocol while a classic member stays:
// the group is a classic group at once, and both members consume.
func TestStaticClassicMemberReplacesKIP848Member(t *testing.T) {
	n := startConsumerGroupNode(t)
	createTopic(t, n, "srepl", 4, nil)
	classicOpts := memberOpts{opts: []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}}
	a := startMember(t, n, "a", "gsr", "srepl", kip848(kgo.InstanceID("instance-a")))
	balanced(t, []*member{a}, 4, []int{4})
	x := startMember(t, n, "x", "gsr", "srepl", classicOpts)
	balanced(t, []*member{a, x}, 4, []int{2, 2})
	if got := memberTypes(t, n, "gsr"); !slices.Equal(got, []int8{0, 1}) {
		t.Fatalf("member types %v", got)
	}
	a.close()
	a2 := startMember(t, n, "a2", "gsr", "srepl", memberOpts{opts: append(classicOpts.opts, kgo.InstanceID("instance-a"))})
	waitUntil(t, 30*time.Second, "the group is a classic group", func() bool {
		return kerr.ErrorForCode(describeConsumerGroup(t, n, "gsr").ErrorCode) == kerr.GroupIDNotFound
	})
	balanced(t, []*member{a2, x}, 4, []int{2, 2})
	produceN(t, n, "srepl", 40)
	consumedAll(t, []*member{a2, x}, 40)
}

// TestMigrationPolicyDisabled: with group.consumer.migration.policy=disabled a KIP-848 member
// cannot join a classic group that has members, nor a classic member a KIP-848 group that has
// members.
func TestMigrationPolicyDisabled(t *testing.T) {
	n := testcluster.Start(t, "group.initial.rebalance.delay.ms=0", "group.consumer.heartbeat.interval.ms=200",
		"group.consumer.migration.policy=disabled")
	createTopic(t, n, "nomig", 2, nil)
	c := startMember(t, n, "c", "gclassic", "nomig", memberOpts{})
	balanced(t, []*member{c}, 2, []int{2})
	k := startMember(t, n, "k", "gkip", "nomig", kip848())
	balanced(t, []*member{k}, 2, []int{2})
	cl := newClient(t, n)

	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "gclassic", "m-new", 0, 30000
	hb.SubscribedTopicNames, hb.Topics = []string{"nomig"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hresp, err := hb.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if kerr.ErrorForCode(hresp.ErrorCode) != kerr.GroupIDNotFound || hresp.ErrorMessage == nil ||
		!strings.Contains(*hresp.ErrorMessage, "online upgrade is disabled") {
		t.Fatalf("KIP-848 join of a classic group: %v %v", kerr.ErrorForCode(hresp.ErrorCode), hresp.ErrorMessage)
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "gkip", "consumer", 10000, 10000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"nomig"}
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	join.MemberID = "m-classic"
	jresp, err := join.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if kerr.ErrorForCode(jresp.ErrorCode) != kerr.InconsistentGroupProtocol {
		t.Fatalf("classic join of a KIP-848 group: %v", kerr.ErrorForCode(jresp.ErrorCode))
	}
	balanced(t, []*member{c}, 2, []int{2})
	balanced(t, []*member{k}, 2, []int{2})
}
