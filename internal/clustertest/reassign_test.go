package clustertest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// createAssigned creates topic with one partition on the given replicas (through node 1).
func createAssigned(t *testing.T, c *testcluster.Cluster, topic string, replicas []int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Replicas = replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	resp := requestTo(t, c.Addrs()[0], req).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("CreateTopics %s on %v: %v", topic, replicas, kerr.ErrorForCode(code))
	}
	waitTopicEverywhere(t, c, topic, 1)
}

// listReassignments lists the reassignments in progress with a null topic list (every
// partition), through node i's client listener.
func listReassignments(t *testing.T, c *testcluster.Cluster, i int) []kmsg.ListPartitionReassignmentsResponseTopic {
	t.Helper()
	return listReassignmentsAt(t, c.Addrs()[i])
}

// listReassignmentsAt is listReassignments through the listener at addr.
func listReassignmentsAt(t *testing.T, addr string) []kmsg.ListPartitionReassignmentsResponseTopic {
	t.Helper()
	resp := requestTo(t, addr, kmsg.NewPtrListPartitionReassignmentsRequest()).(*kmsg.ListPartitionReassignmentsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ListPartitionReassignments through %s: %v", addr, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.Topics
}

// reassign asks, through adm, for topic-0 to move to replicas (nil: cancel) and fails the test
// on any error.
func reassign(t *testing.T, adm *kadm.Client, topic string, replicas []int32) {
	t.Helper()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, replicas)
	res, err := adm.AlterPartitionAssignments(ctxT(t), req)
	if err != nil {
		t.Fatalf("AlterPartitionReassignments %s-0 to %v: %v", topic, replicas, err)
	}
	if r := res[topic][0]; r.Err != nil {
		t.Fatalf("AlterPartitionReassignments %s-0 to %v: %v %s", topic, replicas, r.Err, r.ErrMessage)
	}
}

// waitNoPartitionDir waits until node i has no directory for topic-0 in its log dir.
func waitNoPartitionDir(t *testing.T, c *testcluster.Cluster, i int, topic string) {
	t.Helper()
	dir := filepath.Join(c.Nodes[i].Dir, topic+"-0")
	deadline := time.Now().Add(testTimeout)
	for {
		_, err := os.Stat(dir)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d still has %s (%v)", i+1, dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWithTopic starts 3 nodes with topic (one partition on nodes 1,2, led by 1, both in
// the ISR) and returns them with a producer to partition 0 (acks=all).
func startWithTopic(t *testing.T, topic string) (*testcluster.Cluster, *kgo.Client) {
	t.Helper()
	c := testcluster.StartCluster(t, 3)
	createAssigned(t, c, topic, []int32{1, 2})
	waitISR(t, c, topic, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

// TestReassignPartition moves an RF=2 partition from nodes 1,2 (led by 1) to 2,3 with the
// admin client while a producer writes acks=all: the reassignment is listed while node 3
// catches up, completes (the leadership leaves node 1 for node 2), node 1 deletes its log,
// node 3 holds the whole log, and every acknowledged record is read back in order.
func TestReassignPartition(t *testing.T) {
	c, cl := startWithTopic(t, "mv")
	const before, during = 3000, 200
	if err := produceN(t, cl, "mv", "a", before); err != nil {
		t.Fatalf("acks=all before the move: %v", err)
	}

	adm := adminFor(t, c.Addrs()[2])
	reassign(t, adm, "mv", []int32{2, 3})
	if err := produceN(t, cl, "mv", "b", during); err != nil {
		t.Fatalf("acks=all during the move: %v", err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		listed, err := adm.ListPartitionReassignments(ctxT(t), kadm.TopicsSet{"mv": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed.Sorted()) == 0 && len(listReassignments(t, c, 0)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reassignment never completed: %+v", listed.Sorted())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range c.Nodes {
		p := waitPartition(t, c, i, "mv", 0, "moved to 2,3", func(p metadata.Partition) bool {
			return slices.Equal(p.Replicas, []int32{2, 3}) && !p.Reassigning()
		})
		if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2, 3}) {
			t.Errorf("node %d: %+v, want leader 2 and ISR 2,3", i+1, p)
		}
	}
	waitNoPartitionDir(t, c, 0, "mv")
	if err := produceN(t, cl, "mv", "c", 10); err != nil {
		t.Fatalf("acks=all after the move: %v", err)
	}
	var want []string
	for _, part := range []struct {
		prefix string
		n      int
	}{{"a", before}, {"b", during}, {"c", 10}} {
		for i := range part.n {
			want = append(want, part.prefix+"-"+strconv.Itoa(i))
		}
	}
	if got := consumeAll(t, c.Addrs(), "mv", len(want)); !slices.Equal(got, want) {
		t.Fatalf("read back %d records, not the %d produced in order", len(got), len(want))
	}
	// The new replica holds the whole log, from offset 0.
	deadline = time.Now().Add(testTimeout)
	for {
		if _, end := replicaBytes(t, c, 2, "mv"); end == int64(len(want)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 3 never held the whole log")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReassignAfterDeleteRecords: a replica added to a partition whose log starts past 0
// (DeleteRecords) starts at the leader's log start, and the partition reads back from there.
func TestReassignAfterDeleteRecords(t *testing.T) {
	c, cl := startWithTopic(t, "dr")
	if err := produceN(t, cl, "dr", "a", 100); err != nil {
		t.Fatal(err)
	}
	adm := adminFor(t, c.Addrs()[0])
	var to kadm.Offsets
	to.AddOffset("dr", 0, 60, -1)
	if res, err := adm.DeleteRecords(ctxT(t), to); err != nil || res.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, res.Error())
	}
	reassign(t, adm, "dr", []int32{1, 3})
	for i := range c.Nodes {
		waitPartition(t, c, i, "dr", 0, "moved to 1,3", func(p metadata.Partition) bool {
			return slices.Equal(p.Replicas, []int32{1, 3}) && slices.Equal(p.ISR, []int32{1, 3})
		})
	}
	waitNoPartitionDir(t, c, 1, "dr")
	var want []string
	for i := 60; i < 100; i++ {
		want = append(want, "a-"+strconv.Itoa(i))
	}
	if got := consumeAll(t, c.Addrs(), "dr", len(want)); !slices.Equal(got, want) {
		t.Fatalf("read back %v, want a-60..a-99", got)
	}
	if p := c.Server(2).Replicas().Partition("dr", 0); p == nil || p.Log().LogStartOffset() != 60 || p.Log().LogEndOffset() != 100 {
		t.Fatalf("node 3's replica: %v", p)
	}
}

// TestCancelReassignment: a reassignment onto a stopped (fenced) node cannot complete; it is
// listed with its adding and removing replicas, the replication factor cannot change through
// v1 without allow_replication_factor_change, and a cancel reverts to the original replicas.
func TestCancelReassignment(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	createAssigned(t, c, "cx", []int32{1, 2})
	waitISR(t, c, "cx", 2)
	waitQuorumLeader(t, c)
	c.StopNode(2)
	waitPartition(t, c, 0, "cx", 0, "kept its ISR", func(p metadata.Partition) bool { return len(p.ISR) == 2 })
	for deadline := time.Now().Add(testTimeout); ; {
		if b, ok := c.Server(0).Image().Brokers[3]; ok && b.Fenced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 3 was never fenced")
		}
		time.Sleep(10 * time.Millisecond)
	}
	adm := adminFor(t, c.Addrs()[1])
	reassign(t, adm, "cx", []int32{1, 3})
	// Listed through both running nodes' client and controller listeners (KIP-919), whether
	// the node is the active controller or forwards.
	for _, addr := range []string{c.Addrs()[0], c.Addrs()[1], c.ControllerAddr(0), c.ControllerAddr(1)} {
		topics := listReassignmentsAt(t, addr)
		if len(topics) != 1 || topics[0].Topic != "cx" || len(topics[0].Partitions) != 1 {
			t.Fatalf("listed through %s: %+v", addr, topics)
		}
		p := topics[0].Partitions[0]
		if !slices.Equal(p.Replicas, []int32{1, 3, 2}) || !slices.Equal(p.AddingReplicas, []int32{3}) || !slices.Equal(p.RemovingReplicas, []int32{2}) {
			t.Errorf("listed through %s: %+v", addr, p)
		}
	}
	// v1 with allow_replication_factor_change false refuses a target of another length.
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Version, req.TimeoutMillis, req.AllowReplicationFactorChange = 1, 30000, false
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = "cx"
	rt.Partitions = []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1, 2, 3}}}
	req.Topics = append(req.Topics, rt)
	resp := requestTo(t, c.Addrs()[1], req).(*kmsg.AlterPartitionAssignmentsResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Errorf("RF change with v1 forbidding it: %+v", resp)
	}

	// Cancelled through the controller listener of the running node that is not the active
	// controller: forwarded to it.
	q, err := c.Server(0).Quorum()
	if err != nil {
		t.Fatal(err)
	}
	follower := 0
	if q.LeaderID == 1 {
		follower = 1
	}
	cancel := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	cancel.TimeoutMillis = 30000
	ct := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	ct.Topic = "cx"
	ct.Partitions = []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0}}
	cancel.Topics = append(cancel.Topics, ct)
	cresp := requestTo(t, c.ControllerAddr(follower), cancel).(*kmsg.AlterPartitionAssignmentsResponse)
	if cresp.ErrorCode != 0 || len(cresp.Topics) != 1 || cresp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("cancel through node %d's controller listener: %+v", follower+1, cresp)
	}
	for i := range 2 {
		waitPartition(t, c, i, "cx", 0, "reverted to 1,2", func(p metadata.Partition) bool {
			return slices.Equal(p.Replicas, []int32{1, 2}) && !p.Reassigning()
		})
	}
	if topics := listReassignments(t, c, 1); len(topics) != 0 {
		t.Errorf("listed after the cancel: %+v", topics)
	}
	var again kadm.AlterPartitionAssignmentsReq
	again.CancelAssign("cx", 0)
	res, err := adm.AlterPartitionAssignments(ctxT(t), again)
	if err != nil || !errors.Is(res["cx"][0].Err, kerr.NoReassignmentInProgress) {
		t.Errorf("second cancel: %v %+v", err, res)
	}

	// The same with sarama's cluster admin (v0 requests): start, list, cancel.
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sa, err := sarama.NewClusterAdmin(c.Addrs()[:2], sc)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	if err := sa.AlterPartitionReassignments("cx", [][]int32{{1, 3}}); err != nil {
		t.Fatalf("sarama AlterPartitionReassignments: %v", err)
	}
	st, err := sa.ListPartitionReassignments("cx", []int32{0})
	if s := st["cx"][0]; err != nil || s == nil || !slices.Equal(s.Replicas, []int32{1, 3, 2}) ||
		!slices.Equal(s.AddingReplicas, []int32{3}) || !slices.Equal(s.RemovingReplicas, []int32{2}) {
		t.Fatalf("sarama ListPartitionReassignments: %v %+v", err, st)
	}
	if err := sa.AlterPartitionReassignments("cx", [][]int32{nil}); err != nil {
		t.Fatalf("sarama cancel: %v", err)
	}
	if st, err := sa.ListPartitionReassignments("cx", []int32{0}); err != nil || len(st["cx"]) != 0 {
		t.Errorf("sarama list after the cancel: %v %+v", err, st)
	}
}

// TestReassignThrottlesCleared: what kafka-reassign-partitions --verify sends once a
// reassignment is done, the deletion of each broker's replication throttles (to that broker,
// which forwards it to the active controller) and of the topic's throttled replicas, is
// accepted on every node (replica.alter.log.dirs.io.max.bytes.per.second too, accepted with
// no effect).
func TestReassignThrottlesCleared(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	createAssigned(t, c, "th", []int32{1, 2})
	for i := range c.Nodes {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		broker := kmsg.NewIncrementalAlterConfigsRequestResource()
		broker.ResourceType, broker.ResourceName = kmsg.ConfigResourceTypeBroker, strconv.Itoa(i+1)
		for _, name := range []string{"leader.replication.throttled.rate", "follower.replication.throttled.rate", "replica.alter.log.dirs.io.max.bytes.per.second"} {
			op := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			op.Name, op.Op = name, kmsg.IncrementalAlterConfigOpDelete
			broker.Configs = append(broker.Configs, op)
		}
		topic := kmsg.NewIncrementalAlterConfigsRequestResource()
		topic.ResourceType, topic.ResourceName = kmsg.ConfigResourceTypeTopic, "th"
		for _, name := range []string{"leader.replication.throttled.replicas", "follower.replication.throttled.replicas"} {
			op := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			op.Name, op.Op = name, kmsg.IncrementalAlterConfigOpDelete
			topic.Configs = append(topic.Configs, op)
		}
		req.Resources = append(req.Resources, broker, topic)
		resp := requestTo(t, c.Addrs()[i], req).(*kmsg.IncrementalAlterConfigsResponse)
		for _, r := range resp.Resources {
			if r.ErrorCode != 0 {
				t.Errorf("node %d, %s %q: %v %v", i+1, r.ResourceType, r.ResourceName, kerr.ErrorForCode(r.ErrorCode), msgOf(r.ErrorMessage))
			}
		}
	}
}
