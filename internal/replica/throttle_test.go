package replica

import (
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

func TestThrottledPartitions(t *testing.T) {
	for _, tc := range []struct {
		value string
		node  int32
		all   bool
		want  []int32
	}{
		{"*", 1, true, nil},
		{" * ", 1, true, nil},
		{"", 1, false, nil},
		{"0:1,0:2,1:1", 1, false, []int32{0, 1}},
		{"0:1,0:2,1:1", 2, false, []int32{0}},
		{"0:1,0:2,1:1", 3, false, nil},
		{"0:1, 2 : 1", 1, false, []int32{0, 2}},
		{"x:1,1:y,3,-1:1,4:1", 1, false, []int32{4}},
	} {
		all, got := ThrottledPartitions(tc.value, tc.node)
		if all != tc.all || !slices.Equal(got, tc.want) {
			t.Errorf("ThrottledPartitions(%q, %d) = %v, %v; want %v, %v", tc.value, tc.node, all, got, tc.all, tc.want)
		}
	}
}

func TestReplicationQuotaExceeded(t *testing.T) {
	start := time.Unix(1000, 0)
	cfg := quota.Config{Samples: 11, Window: time.Second}
	for _, tc := range []struct {
		name  string
		limit int64
		// record is bytes recorded one a second from start, then checked a second after the
		// last.
		record []int
		want   bool
	}{
		{"unlimited by default", math.MaxInt64, []int{1 << 30}, false},
		{"zero is unlimited", 0, []int{1 << 30}, false},
		{"nothing recorded", 100, nil, false},
		// The rate is measured over at least 10 full windows: 1,000 bytes over 10 s is 100/s.
		{"at the limit", 100, []int{1000}, false},
		{"just over", 100, []int{1001}, true},
		{"spread under", 1000, []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}, false},
		{"spread over", 1000, []int{2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := NewReplicationQuota(cfg)
			q.SetLimit(tc.limit)
			now := start
			for _, n := range tc.record {
				q.Record(n, now)
				now = now.Add(time.Second)
			}
			if got := q.Exceeded(now); got != tc.want {
				t.Errorf("Exceeded = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReplicationQuotaRecoversOverTime(t *testing.T) {
	q := NewReplicationQuota(quota.Config{Samples: 11, Window: time.Second})
	q.SetLimit(100)
	now := time.Unix(1000, 0)
	q.Record(5000, now)
	if !q.Exceeded(now.Add(time.Second)) {
		t.Fatal("5,000 bytes at once is over 100 B/s")
	}
	// Once the samples holding them are obsolete (11 windows), the rate falls back.
	if q.Exceeded(now.Add(12 * time.Second)) {
		t.Fatal("still exceeded after every sample went obsolete")
	}
}

func TestThrottledSets(t *testing.T) {
	part := func(p int32, replicas, isr []int32) metadata.Partition {
		return metadata.Partition{Partition: p, Replicas: replicas, ISR: isr, Leader: isr[0]}
	}
	img := &metadata.Image{Topics: map[string]*metadata.Topic{
		"moving": {Name: "moving", Partitions: []metadata.Partition{
			part(0, []int32{1, 2, 3}, []int32{1, 2}),
			part(1, []int32{2, 3}, []int32{2, 3}),
		}, Configs: map[string]string{
			LeaderThrottledReplicas:   "0:1,0:2,1:2",
			FollowerThrottledReplicas: "0:3,1:3,7:3",
		}},
		"all": {Name: "all", Partitions: []metadata.Partition{
			part(0, []int32{1, 3}, []int32{1}),
		}, Configs: map[string]string{LeaderThrottledReplicas: "*", FollowerThrottledReplicas: "*"}},
		"plain": {Name: "plain", Partitions: []metadata.Partition{part(0, []int32{1, 2, 3}, []int32{1, 2, 3})}},
	}}
	for _, tc := range []struct {
		node             int32
		leader, follower map[TopicPartition]bool
	}{
		{1, map[TopicPartition]bool{{"moving", 0}: false, {"all", 0}: false}, map[TopicPartition]bool{{"all", 0}: true}},
		{2, map[TopicPartition]bool{{"moving", 0}: false, {"moving", 1}: false}, nil},
		// Node 3 is out of the ISR of moving-0 and all-0, in that of moving-1; partition 7
		// does not exist. Nodes not hosting a partition never throttle it.
		{3, map[TopicPartition]bool{{"all", 0}: false}, map[TopicPartition]bool{{"moving", 0}: false, {"moving", 1}: true, {"all", 0}: false}},
		{4, nil, nil},
	} {
		leader, follower := throttledSets(img, tc.node)
		if !maps.Equal(leader, tc.leader) || !maps.Equal(follower, tc.follower) {
			t.Errorf("node %d: throttledSets = %v, %v; want %v, %v", tc.node, leader, follower, tc.leader, tc.follower)
		}
	}
}

func TestBrokerRate(t *testing.T) {
	img := &metadata.Image{BrokerConfigs: map[string]map[string]string{
		"":  {LeaderThrottledRate: "500"},
		"2": {LeaderThrottledRate: "200", FollowerThrottledRate: "300"},
	}}
	for _, tc := range []struct {
		node   int32
		name   string
		static int64
		want   int64
	}{
		{2, LeaderThrottledRate, 9, 200},
		{2, FollowerThrottledRate, 9, 300},
		{1, LeaderThrottledRate, 9, 500},
		{1, FollowerThrottledRate, 9, 9},
	} {
		if got := brokerRate(img, tc.node, tc.name, tc.static); got != tc.want {
			t.Errorf("brokerRate(node %d, %s) = %d, want %d", tc.node, tc.name, got, tc.want)
		}
	}
	if got := brokerRate(&metadata.Image{}, 1, LeaderThrottledRate, math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("empty image: %d", got)
	}
}

// TestLeaderThrottles: the leader holds back only a throttled partition, for a follower out of
// the ISR, while over the rate.
func TestLeaderThrottles(t *testing.T) {
	m := &Manager{cfg: Config{NodeID: 1}, leaderQuota: NewReplicationQuota(quota.DefaultConfig)}
	p := &Partition{TP: TopicPartition{"t", 0}}
	p.rs.isr = []int32{1, 2}
	other := &Partition{TP: TopicPartition{"t", 1}}
	other.rs.isr = []int32{1}
	now := time.Unix(1000, 0)
	m.leaderQuota.setThrottled(map[TopicPartition]bool{p.TP: false})
	if m.LeaderThrottles(p, 3, now) {
		t.Fatal("throttled with no rate set")
	}
	m.leaderQuota.SetLimit(10)
	if m.LeaderThrottles(p, 3, now) {
		t.Fatal("throttled under the rate")
	}
	m.leaderQuota.Record(1<<20, now)
	for _, tc := range []struct {
		p       *Partition
		replica int32
		want    bool
	}{
		{p, 3, true},      // out of the ISR
		{p, 2, false},     // in the ISR
		{other, 3, false}, // not a throttled partition
	} {
		if got := m.LeaderThrottles(tc.p, tc.replica, now); got != tc.want {
			t.Errorf("LeaderThrottles(%v, %d) = %v, want %v", tc.p.TP, tc.replica, got, tc.want)
		}
	}
}
