package clustertest

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestFetchFromClosestReplica (KIP-392): with replica.selector.class=RackAwareReplicaSelector
// and racks r1..r3, the leader answers a consumer fetch from another rack with no records and
// the in-sync replica of that rack; that follower serves the records up to its high
// watermark; a franz-go consumer with client.rack reads every record through it.
func TestFetchFromClosestReplica(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector")
	// Racks per node: broker.rack=r<node id>.
	for i := range c.Nodes {
		c.Nodes[i].Set(fmt.Sprintf("broker.rack=r%d", i+1))
		c.StopNode(i)
		c.StartNode(i)
	}
	c.WaitBrokers(3)
	adm := adminFor(t, c.Addrs()[0])
	if res, err := adm.CreateTopic(ctxT(t), 1, 3, nil, "near"); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, "near", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := produceN(t, cl, "near", "n", 100); err != nil {
		t.Fatal(err)
	}
	p := waitISR(t, c, "near", 3)
	leader := int(p.Leader)
	follower := leader%3 + 1
	rack := "r" + strconv.Itoa(follower)

	fetch := func(node int, rack string) *kmsg.FetchResponseTopicPartition {
		t.Helper()
		fc, err := kgo.NewClient(kgo.SeedBrokers(c.Nodes[node-1].Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer fc.Close()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.Rack = -1, 100, 1<<20, rack
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "near"
		top, _ := c.Server(0).Image().Topic("near")
		rt.TopicID = top.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, 0, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := fc.Broker(node).Request(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		return &resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}
	at := fetch(leader, rack)
	if at.ErrorCode != 0 || int(at.PreferredReadReplica) != follower || len(at.RecordBatches) != 0 {
		t.Fatalf("leader %d, consumer in rack %s: error %d, preferred replica %d, %d bytes; want replica %d and no records",
			leader, rack, at.ErrorCode, at.PreferredReadReplica, len(at.RecordBatches), follower)
	}
	if same := fetch(leader, "r"+strconv.Itoa(leader)); same.PreferredReadReplica != -1 || len(same.RecordBatches) == 0 {
		t.Fatalf("a consumer in the leader's rack: preferred replica %d, %d bytes; want the leader's records", same.PreferredReadReplica, len(same.RecordBatches))
	}
	if f := fetch(follower, rack); f.ErrorCode != 0 || len(f.RecordBatches) == 0 {
		t.Fatalf("follower %d served error %d, %d bytes; want records", follower, f.ErrorCode, len(f.RecordBatches))
	}

	rc, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.Rack(rack),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"near": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n := 0
	ctx := ctxT(t)
	for n < 100 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("a consumer in rack %s read %d of 100 records", rack, n)
		}
		n += fs.NumRecords()
	}
}
