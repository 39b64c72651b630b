package clustertest

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// coordinatorOf returns the node coordinating a group (keyType 0) or a transactional id (1),
// retrying while the coordinator's topic is created and loaded.
func coordinatorOf(t *testing.T, c *testcluster.Cluster, keyType int, key string) int32 {
	t.Helper()
	adm := adminFor(t, c.Addrs()[0])
	deadline := time.Now().Add(testTimeout)
	for {
		resps := adm.FindGroupCoordinators(ctxT(t), key)
		if keyType == 1 {
			resps = adm.FindTxnCoordinators(ctxT(t), key)
		}
		r := resps[key]
		if r.Err == nil {
			return r.NodeID
		}
		if time.Now().After(deadline) {
			t.Fatalf("coordinator of %q: %v", key, r.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// groupAwayFrom returns a group name whose coordinator is not node.
func groupAwayFrom(t *testing.T, c *testcluster.Cluster, prefix string, node int32) string {
	t.Helper()
	for i := range 50 {
		g := prefix + strconv.Itoa(i)
		if coordinatorOf(t, c, 0, g) != node {
			return g
		}
	}
	t.Fatalf("every group of prefix %s is coordinated by node %d", prefix, node)
	return ""
}

// TestTxnOffsetsAcrossBrokers: the group coordinator and the transaction coordinator are
// different brokers, so TxnOffsetCommit's check of the transaction and the markers written to
// __consumer_offsets cross the network. A franz-go GroupTransactSession aborts (no offsets,
// nothing read_committed) then commits (offsets and output visible); raw requests show the
// offsets pending (UNSTABLE_OFFSET_COMMIT, not fetched) until EndTxn commits them.
// DescribeProducers answers on the partition's leader only.
func TestTxnOffsetsAcrossBrokers(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "transaction.state.log.num.partitions=1", "transaction.state.log.replication.factor=3",
		"offsets.topic.num.partitions=6", "offsets.topic.replication.factor=3")
	const in, out = "eos-in", "eos-out"
	createReplicated(t, c, in, 1)
	createReplicated(t, c, out, 1)
	txnCoord := coordinatorOf(t, c, 1, "tx-any") // one __transaction_state partition: every id's
	group := groupAwayFrom(t, c, "eos-g", txnCoord)
	t.Logf("transaction coordinator node %d, group %s on node %d", txnCoord, group, coordinatorOf(t, c, 0, group))

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic(in))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := produceN(t, cl, in, "v", 4); err != nil {
		t.Fatal(err)
	}

	if testcluster.ConsumeTransformProduce(t, c.Addrs(), group, in, out, 4, false) {
		t.Fatal("the aborted transaction committed")
	}
	if got := testcluster.CommittedOffset(t, c.Addrs(), group, in); got != -1 {
		t.Fatalf("committed offset %d after the abort, want none", got)
	}
	if !testcluster.ConsumeTransformProduce(t, c.Addrs(), group, in, out, 4, true) {
		t.Fatal("the transaction did not commit")
	}
	waitStableOffset(t, c, group, in, 4)
	if got := readCommitted(t, c, out, 4); len(got) != 4 {
		t.Fatalf("read_committed output %q, want the 4 committed records", got)
	}

	// DescribeProducers: the output partition's leader knows the session's producer, with no
	// transaction open after the commit; a follower answers NOT_LEADER_OR_FOLLOWER.
	described, err := adminFor(t, c.Addrs()[0]).DescribeProducers(ctxT(t), kadm.TopicsSet{out: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	dp := described[out].Partitions[0]
	if dp.Err != nil || len(dp.ActiveProducers) != 1 {
		t.Fatalf("producers of %s/0 on its leader %d: %+v %v, want the session's producer", out, dp.Leader, dp.ActiveProducers, dp.Err)
	}
	follower := (int(dp.Leader) % 3) // the index of the node after the leader (node ids are 1-3)
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = out, []int32{0}
	req.Topics = append(req.Topics, rt)
	fresp := requestTo(t, c.Addrs()[follower], req).(*kmsg.DescribeProducersResponse)
	if err := kerr.ErrorForCode(fresp.Topics[0].Partitions[0].ErrorCode); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("DescribeProducers on follower node %d: %v, want NOT_LEADER_OR_FOLLOWER", follower+1, err)
	}

	raw := groupAwayFrom(t, c, "eos-raw", txnCoord)
	x := testcluster.NewRawTxn(t, c.Addrs(), "tx-eos-raw")
	x.CommitOffset(raw, in, 2)
	if _, err := testcluster.StableOffset(t, c.Addrs(), raw, in); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("require_stable fetch of the pending offset: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	if got := testcluster.CommittedOffset(t, c.Addrs(), raw, in); got != -1 {
		t.Fatalf("pending offset %d visible before the commit", got)
	}
	x.End(true)
	waitStableOffset(t, c, raw, in, 2)
}

// waitStableOffset waits for the group's offset of topic/0, fetched with require_stable, to
// be want: EndTxn answers once the commit is decided, and the marker reaches the group's
// coordinator right after.
func waitStableOffset(t *testing.T, c *testcluster.Cluster, group, topic string, want int64) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got, err := testcluster.StableOffset(t, c.Addrs(), group, topic)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: offset %d (%v), want %d", group, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
