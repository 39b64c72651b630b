package clustertest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestBrokerOnlyNode: a node with process.roles=broker joins a 3-voter cluster: it registers
// with the active controller, which adds it to the metadata quorum as a non-voter; it follows
// the metadata log (its image has the cluster's topics), hosts replicas, serves produce and
// consume, shows as an observer in DescribeQuorum, and rejoins after a restart.
func TestBrokerOnlyNode(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	adm := adminFor(t, c.Addrs()[0])
	if res, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "before"); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	b := c.AddBroker()
	if _, ok := c.Server(b).Image().Topic("before"); !ok {
		t.Fatal("the broker-only node's image lacks a topic created before it joined")
	}
	// Four partitions of RF=4: every broker hosts one replica of each.
	if res, err := adm.CreateTopic(ctxT(t), 4, 4, map[string]*string{"min.insync.replicas": kgoStr("2")}, "wide"); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic RF=4: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, "wide", 4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Nodes[b].Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := produceN(t, cl, "wide", "x", 200); err != nil {
		t.Fatalf("acks=all through the broker-only node: %v", err)
	}
	if got := consumeAll(t, []string{c.Nodes[b].Addr()}, "wide", 200); len(got) != 200 {
		t.Fatalf("read %d records", len(got))
	}
	if p := c.Server(b).Replicas().Partition("wide", 0); p == nil {
		t.Fatal("the broker-only node hosts no replica of wide-0")
	}
	info, err := c.Server(activeController(t, c)).Quorum()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range info.Observers {
		found = found || o.ID == int32(b+1)
	}
	if !found || len(info.Voters) != 3 {
		t.Fatalf("DescribeQuorum: voters %v observers %v, want 3 voters and node %d an observer", info.Voters, info.Observers, b+1)
	}
	c.StopNode(b)
	c.StartNode(b)
	c.WaitBrokers(4)
	if err := produceN(t, cl, "wide", "y", 10); err != nil {
		t.Fatalf("after the broker-only node restarted: %v", err)
	}
}
