package clustertest

import (
	"testing"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestPreferredLeadersComeBack: auto.leader.rebalance.enable (on by default) with a check every
// second. A node that leads the partitions it is the preferred replica of is stopped, its
// leaderships move to the other replicas; once it is restarted and back in the ISRs the
// active controller elects it leader of those partitions again, with no ElectLeaders request.
func TestPreferredLeadersComeBack(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "leader.imbalance.check.interval.seconds=1")
	createReplicated(t, c, "pref", 6)

	// The partitions node 2 is the preferred replica of; new partitions are led by it.
	const victim = 1
	var preferred []int32
	for p := int32(0); p < 6; p++ {
		mp := waitPartition(t, c, 0, "pref", p, "led by its preferred replica", func(mp metadata.Partition) bool {
			return mp.Leader == mp.Replicas[0]
		})
		if mp.Replicas[0] == victim+1 {
			preferred = append(preferred, p)
		}
	}
	if len(preferred) == 0 {
		t.Fatal("node 2 is the preferred replica of no partition")
	}

	c.StopNode(victim)
	other := runningNode(c, victim)
	for _, p := range preferred {
		mp := waitPartition(t, c, other, "pref", p, "led by another node", func(mp metadata.Partition) bool {
			return mp.Leader >= 0 && mp.Leader != victim+1
		})
		t.Logf("node 2 stopped: pref-%d led by %d (epoch %d), ISR %v", p, mp.Leader, mp.LeaderEpoch, mp.ISR)
	}

	c.StartNode(victim)
	c.WaitBrokers(3)
	for _, p := range preferred {
		mp := waitPartition(t, c, other, "pref", p, "led by node 2 again", func(mp metadata.Partition) bool {
			return mp.Leader == victim+1
		})
		t.Logf("node 2 back: pref-%d led by %d (epoch %d), ISR %v", p, mp.Leader, mp.LeaderEpoch, mp.ISR)
	}
}
