package clustertest

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// describePartitions describes topic through node addr with DescribeTopicPartitions (the
// request Kafka 4.x's kafka-topics --describe sends) and returns its partitions.
func describePartitions(t *testing.T, addr, topic string) []kmsg.DescribeTopicPartitionsResponseTopicPartition {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	rt.Topic = topic
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("DescribeTopicPartitions %s: %+v", topic, resp.Topics)
	}
	return resp.Topics[0].Partitions
}

// TestDescribeTopicPartitionsShowsOfflineReplicas: DescribeTopicPartitions on a 3-node
// cluster shows an RF=3 topic's replicas and full ISR; once a node is stopped it shows that
// node among every partition's offline replicas, out of the ISR and leading nothing, while
// it stays a replica; after the restart no replica is offline and the ISR fills again.
func TestDescribeTopicPartitionsShowsOfflineReplicas(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	createReplicated(t, c, "dtp", 3)

	// waitDescribed polls node i's answer until every partition satisfies cond.
	waitDescribed := func(i int, what string, cond func(kmsg.DescribeTopicPartitionsResponseTopicPartition) bool) []kmsg.DescribeTopicPartitionsResponseTopicPartition {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for {
			ps := describePartitions(t, c.Nodes[i].Addr(), "dtp")
			if len(ps) == 3 && !slices.ContainsFunc(ps, func(p kmsg.DescribeTopicPartitionsResponseTopicPartition) bool { return !cond(p) }) {
				return ps
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: partitions never %s: %+v", i+1, what, ps)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	all := []int32{1, 2, 3}
	sorted := func(s []int32) []int32 { s = slices.Clone(s); slices.Sort(s); return s }
	waitDescribed(0, "fully replicated", func(p kmsg.DescribeTopicPartitionsResponseTopicPartition) bool {
		return slices.Equal(sorted(p.Replicas), all) && slices.Equal(sorted(p.ISR), all) &&
			len(p.OfflineReplicas) == 0 && slices.Contains(all, p.LeaderID)
	})

	const victim = 2 // node 3
	c.StopNode(victim)
	other := runningNode(c, victim)
	ps := waitDescribed(other, "showing node 3 offline", func(p kmsg.DescribeTopicPartitionsResponseTopicPartition) bool {
		return slices.Equal(p.OfflineReplicas, []int32{3}) && !slices.Contains(p.ISR, 3) && len(p.ISR) == 2 &&
			p.LeaderID != 3 && p.LeaderID > 0 && slices.Equal(sorted(p.Replicas), all)
	})
	for _, p := range ps {
		t.Logf("node 3 stopped: dtp-%d leader %d (epoch %d) replicas %v ISR %v offline %v", p.Partition, p.LeaderID, p.LeaderEpoch, p.Replicas, p.ISR, p.OfflineReplicas)
	}

	c.StartNode(victim)
	c.WaitBrokers(3)
	waitDescribed(victim, "back to full ISR", func(p kmsg.DescribeTopicPartitionsResponseTopicPartition) bool {
		return len(p.OfflineReplicas) == 0 && slices.Equal(sorted(p.ISR), all)
	})
}
