package clustertest

import (
	"slices"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// partitionState returns partition p of topic as node i sees it.
func partitionState(c *testcluster.Cluster, i int, topic string, p int32) (metadata.Partition, bool) {
	t, ok := c.Server(i).Image().Topic(topic)
	if !ok || int(p) >= len(t.Partitions) {
		return metadata.Partition{}, false
	}
	return t.Partitions[p], true
}

// waitPartition waits until node i's image shows partition p of topic satisfying cond.
func waitPartition(t *testing.T, c *testcluster.Cluster, i int, topic string, p int32, what string, cond func(metadata.Partition) bool) metadata.Partition {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		if mp, ok := partitionState(c, i, topic, p); ok && cond(mp) {
			return mp
		}
		if time.Now().After(deadline) {
			mp, _ := partitionState(c, i, topic, p)
			t.Fatalf("node %d: %s-%d never %s (last %+v)", i+1, topic, p, what, mp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitQuorumLeader waits until every running node knows a running quorum leader: a controlled
// shutdown needs one to move the stopping node out of the ISRs.
func waitQuorumLeader(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ok := true
		for i := range c.Nodes {
			if !c.Running(i) {
				continue
			}
			q, err := c.Server(i).Quorum()
			if err != nil || q.LeaderID < 1 || int(q.LeaderID) > len(c.Nodes) || !c.Running(int(q.LeaderID)-1) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the running nodes never agreed on a running quorum leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runningNode(c *testcluster.Cluster, not int) int {
	for i := range c.Nodes {
		if i != not && c.Running(i) {
			return i
		}
	}
	return -1
}

// TestLeadershipMovesOffAStoppedBroker: an RF=3 topic has its replicas on the three brokers,
// ISR = all; a controlled shutdown (Stop) of the leader of partition 0 moves its leadership to
// another ISR member, with a higher leader epoch, before the node exits, and removes it from
// the ISR; a broker that dies without one (Kill) is fenced after broker.session.timeout.ms and
// its leaderships move the same way.
func TestLeadershipMovesOffAStoppedBroker(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "broker.session.timeout.ms=1500", "broker.heartbeat.interval.ms=300")
	adm := adminFor(t, c.Addrs()[0])
	res, err := adm.CreateTopic(ctxT(t), 3, 3, nil, "rf3")
	if err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, "rf3", 3)
	before, _ := partitionState(c, 0, "rf3", 0)
	if len(before.Replicas) != 3 || len(before.ISR) != 3 || !slices.Contains(before.Replicas, before.Leader) {
		t.Fatalf("new RF=3 partition: %+v", before)
	}

	for _, kill := range []bool{false, true} {
		// A node restarted by the previous round first catches up and rejoins the ISR.
		before := waitISR(t, c, "rf3", 3)
		leaderNode := int(before.Leader) - 1
		if kill {
			c.KillNode(leaderNode)
		} else {
			c.StopNode(leaderNode)
		}
		other := runningNode(c, leaderNode)
		after := waitPartition(t, c, other, "rf3", 0, "got a new leader", func(p metadata.Partition) bool {
			return p.Leader != before.Leader && p.Leader >= 0
		})
		if after.LeaderEpoch <= before.LeaderEpoch {
			t.Errorf("kill=%v: leader epoch %d after %d", kill, after.LeaderEpoch, before.LeaderEpoch)
		}
		if slices.Contains(after.ISR, before.Leader) {
			t.Errorf("kill=%v: the stopped leader %d is still in the ISR %v", kill, before.Leader, after.ISR)
		}
		if !slices.Contains(before.ISR, after.Leader) {
			t.Errorf("kill=%v: new leader %d was not in the ISR %v", kill, after.Leader, before.ISR)
		}
		t.Logf("kill=%v: leader %d (epoch %d) -> %d (epoch %d), ISR %v", kill, before.Leader, before.LeaderEpoch, after.Leader, after.LeaderEpoch, after.ISR)
		c.StartNode(leaderNode)
		c.WaitBrokers(3)
	}
}

// TestDeadBrokerFencedAtOnce: with a session timeout far longer than the test may run, a
// broker that dies (its listener then refuses connections) is still fenced and its leaderships
// moved: the active controller probes a broker whose heartbeat connection closed. Both the
// case where the dead broker was a follower of the metadata quorum and where it was the active
// controller (the new one probes every broker when it takes over) are covered.
func TestDeadBrokerFencedAtOnce(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "broker.session.timeout.ms=600000")
	adm := adminFor(t, c.Addrs()[0])
	res, err := adm.CreateTopic(ctxT(t), 6, 3, nil, "rf3")
	if err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, "rf3", 6)
	for _, killController := range []bool{false, true} {
		ctrlNode := activeController(t, c)
		victim := ctrlNode
		if !killController {
			victim = (ctrlNode + 1) % 3
		}
		// A partition the victim leads.
		var p int32 = -1
		for i := int32(0); i < 6; i++ {
			if mp, _ := partitionState(c, ctrlNode, "rf3", i); mp.Leader == int32(victim+1) {
				p = i
				break
			}
		}
		if p < 0 {
			t.Fatalf("node %d leads no partition of rf3", victim+1)
		}
		c.KillNode(victim)
		other := runningNode(c, victim)
		after := waitPartition(t, c, other, "rf3", p, "moved off the dead broker", func(mp metadata.Partition) bool {
			return mp.Leader >= 0 && mp.Leader != int32(victim+1)
		})
		t.Logf("controller killed: %v; rf3-%d: leader %d -> %d", killController, p, victim+1, after.Leader)
		// Metadata, as Kafka's: only live brokers, the dead one's replicas offline.
		m, err := adminFor(t, c.Nodes[other].Addr()).Metadata(ctxT(t), "rf3")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range m.Brokers {
			if b.NodeID == int32(victim+1) {
				t.Errorf("Metadata lists the dead broker %d", victim+1)
			}
		}
		if off := m.Topics["rf3"].Partitions[p].OfflineReplicas; !slices.Contains(off, int32(victim+1)) {
			t.Errorf("rf3-%d offline replicas %v, want the dead broker %d among them", p, off, victim+1)
		}
		c.StartNode(victim)
		c.WaitBrokers(3)
	}
}
