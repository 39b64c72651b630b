package clustertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestClusterMetrics scrapes the three nodes' /metrics while a follower stops and comes back:
// one node is the active controller; the leader of an RF 3 topic (min.insync.replicas=2)
// reports it under-replicated and at min ISR while the follower is away, and the ISR expansion
// that takes the follower back; the active controller reports offline the partition whose
// only replica was on the stopped node.
func TestClusterMetrics(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "samsa.metrics.address=127.0.0.1:0", "min.insync.replicas=2")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// "replicated" on nodes 1, 2, 3 (led by 1, the preferred); "solo" on node 3 alone.
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, tp := range []struct {
		name     string
		replicas []int32
	}{{"replicated", []int32{1, 2, 3}}, {"solo", []int32{3}}} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tp.name, -1, -1
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Replicas = tp.replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != 0 {
			t.Fatalf("creating %s: error code %d", st.Topic, st.ErrorCode)
		}
	}
	if err := produceN(t, cl, "replicated", "r", 10); err != nil {
		t.Fatal(err)
	}

	scrape := func(i int) testcluster.Scraped { return testcluster.Scrape(t, c.Server(i).MetricsAddr()) }
	// wait polls until every metric of want has its value on node i.
	wait := func(what string, i int, want map[string]float64) {
		t.Helper()
		testcluster.PollUntil(t, 30*time.Second, what, func() (bool, string) {
			s := scrape(i)
			for name, v := range want {
				if got := s.Get(name); got != v {
					return false, fmt.Sprintf("node %d: %s %v, want %v", i+1, name, got, v)
				}
			}
			return true, ""
		})
	}
	// offline sums samsa_offline_partitions and samsa_active_controller over the running nodes.
	offline := func() (offline, active float64) {
		for i := range c.Nodes {
			if c.Running(i) {
				s := scrape(i)
				offline += s.Get("samsa_offline_partitions")
				active += s.Get("samsa_active_controller")
			}
		}
		return offline, active
	}
	waitOffline := func(want float64) {
		t.Helper()
		testcluster.PollUntil(t, 30*time.Second, fmt.Sprintf("%v offline partitions", want), func() (bool, string) {
			o, a := offline()
			return o == want && a == 1, fmt.Sprintf("offline %v, active controllers %v", o, a)
		})
	}

	wait("node 1 leading a fully replicated partition", 0, map[string]float64{
		"samsa_partitions": 1, "samsa_leader_partitions": 1, "samsa_under_replicated_partitions": 0,
		"samsa_under_min_isr_partitions": 0, "samsa_at_min_isr_partitions": 0,
	})
	wait("node 3 hosting both partitions, leading solo", 2, map[string]float64{
		"samsa_partitions": 2, "samsa_leader_partitions": 1,
	})
	waitOffline(0)
	expands := scrape(0).Get("samsa_isr_expands_total")

	c.StopNode(2)
	wait("node 1's partition under-replicated, at min ISR", 0, map[string]float64{
		"samsa_under_replicated_partitions": 1, "samsa_at_min_isr_partitions": 1, "samsa_under_min_isr_partitions": 0,
	})
	waitOffline(1)

	c.StartNode(2)
	wait("node 1's partition fully replicated again", 0, map[string]float64{
		"samsa_under_replicated_partitions": 0, "samsa_at_min_isr_partitions": 0,
	})
	waitOffline(0)
	leader := scrape(0)
	if got := leader.Get("samsa_isr_expands_total"); got <= expands {
		t.Errorf("samsa_isr_expands_total of the leader: %v after the follower came back, %v before", got, expands)
	}
	if got := leader.Get("samsa_requests_total", "request", "FetchFollower"); got <= 0 {
		t.Errorf("the leader counted %v FetchFollower requests", got)
	}
}
