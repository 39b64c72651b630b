package clustertest

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

const testTimeout = 60 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// adminFor returns an admin client bootstrapped on one node only.
func adminFor(t *testing.T, addr string) *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// activeController returns the index of the node that is the quorum's leader, as DescribeQuorum
// answers it.
func activeController(t *testing.T, c *testcluster.Cluster) int {
	t.Helper()
	for _, addr := range c.Addrs() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rp := kmsg.NewDescribeQuorumRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), cl)
		cl.Close()
		if err != nil || resp.ErrorCode != 0 || len(resp.Topics) == 0 {
			continue
		}
		return int(resp.Topics[0].Partitions[0].LeaderID) - 1
	}
	t.Fatal("no node answered DescribeQuorum")
	return -1
}

// TestThreeNodeMetadata: three combined nodes form one cluster. Metadata and DescribeCluster
// on any node list the three brokers; DescribeQuorum names one leader and three voters;
// topics created through a node that is not the active controller (forwarded) are visible on
// every node at once; when the active controller stops, another takes over and metadata
// changes continue; the stopped node restarts and catches up.
func TestThreeNodeMetadata(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	leader := activeController(t, c)
	for i, addr := range c.Addrs() {
		adm := adminFor(t, addr)
		meta, err := adm.BrokerMetadata(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		var ids []int32
		for _, b := range meta.Brokers {
			ids = append(ids, b.NodeID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []int32{1, 2, 3}) {
			t.Errorf("node %d lists brokers %v, want 1 2 3", i+1, ids)
		}
		if meta.Cluster != c.ClusterID {
			t.Errorf("node %d: cluster id %q, want %q", i+1, meta.Cluster, c.ClusterID)
		}
	}

	// CreateTopics sent to a node that is not the active controller (a raw request to that
	// node: a client would route it to the ControllerID Metadata names, which any node may be).
	follower := (leader + 1) % 3
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Nodes[follower].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "forwarded", 3, 1
	req.Topics = append(req.Topics, rt)
	resp, err := cl.Broker(follower+1).Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.(*kmsg.CreateTopicsResponse).Topics[0]; ct.ErrorCode != 0 || ct.TopicID == [16]byte{} {
		t.Fatalf("CreateTopics through node %d (not the controller): error %d, id %v", follower+1, ct.ErrorCode, ct.TopicID)
	}
	// The forwarding node answers once its own image has the topic (a Metadata request the
	// client sends to another node may still miss it, as in Kafka).
	if tp, ok := c.Server(follower).Image().Topic("forwarded"); !ok || len(tp.Partitions) != 3 {
		t.Fatalf("the forwarding node's image lacks the topic it created: %v", ok)
	}
	waitTopicEverywhere(t, c, "forwarded", 3)

	c.StopNode(leader)
	var adm2 *kadm.Client
	for i := range c.Nodes {
		if c.Running(i) {
			adm2 = adminFor(t, c.Nodes[i].Addr())
			break
		}
	}
	res, err := adm2.CreateTopic(ctxT(t), 2, 1, nil, "after-failover")
	// A CreateTopics in flight while the controller moves may have been applied before its
	// answer was lost, and its retry then finds the topic (as with Kafka's admin client).
	// (kadm returns the topic's error as err too.)
	if err = cmp.Or(err, res.Err); err != nil && !strings.Contains(err.Error(), kerr.TopicAlreadyExists.Message) {
		t.Fatalf("CreateTopic after the controller stopped: %v", err)
	}
	newLeader := activeController(t, c)
	if newLeader == leader {
		t.Fatalf("node %d still reported as the active controller after it stopped", leader+1)
	}
	c.StartNode(leader)
	waitTopicEverywhere(t, c, "after-failover", 2)
}

// createReplicated creates topic with the given partitions on every node (RF 3) through node
// 1, and waits until every running node has it with a full ISR of partition 0 (waitISR).
func createReplicated(t *testing.T, c *testcluster.Cluster, topic string, partitions int) {
	t.Helper()
	res, err := adminFor(t, c.Addrs()[0]).CreateTopic(ctxT(t), int32(partitions), 3, nil, topic)
	if err != nil || res.Err != nil {
		t.Fatalf("CreateTopic %s: %v %v", topic, err, res.Err)
	}
	waitTopicEverywhere(t, c, topic, partitions)
	waitISR(t, c, topic, 3)
}

func waitTopicEverywhere(t *testing.T, c *testcluster.Cluster, topic string, partitions int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for i := range c.Nodes {
		if !c.Running(i) {
			continue
		}
		for {
			img := c.Server(i).Image()
			if tp, ok := img.Topic(topic); ok && len(tp.Partitions) == partitions {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never showed topic %s", i+1, topic)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
