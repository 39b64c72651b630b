package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/samsa-io/samsa/internal/metadata"
)

// TestBalanceChanges: the imbalance per broker and which preferred leaders one balancing pass
// elects, on hand-made images (brokers 1..3, topic x).
func TestBalanceChanges(t *testing.T) {
	r := func(ids ...int32) []int32 { return ids }
	// pref1 returns n partitions preferring broker 1 (replicas 1,2,3, ISR all), the first
	// notLed of them led by 2.
	pref1 := func(n, notLed int) []metadata.Partition {
		var out []metadata.Partition
		for i := range n {
			leader := int32(1)
			if i < notLed {
				leader = 2
			}
			out = append(out, part(leader, r(1, 2, 3), r(1, 2, 3)))
		}
		return out
	}
	tests := []struct {
		name             string
		parts            []metadata.Partition
		fenced, shutdown []int32
		percent          int
		wantImbalance    string // "broker:notLeading/preferred ..."
		want             string // "partition->leader ..."
	}{
		{"balanced", []metadata.Partition{part(1, r(1, 2, 3), r(1, 2, 3)), part(2, r(2, 3, 1), r(2, 3, 1))}, nil, nil, 10,
			"1:0/1 2:0/1", ""},
		{"restarted broker gets its leaderships back", []metadata.Partition{
			part(2, r(1, 2, 3), r(2, 3, 1)), part(3, r(1, 3, 2), r(3, 2, 1)), part(2, r(2, 3, 1), r(2, 3, 1)), part(3, r(3, 1, 2), r(3, 1, 2)),
		}, nil, nil, 10, "1:2/2 2:0/1 3:0/1", "0->1 1->1"},
		{"at the percentage: nothing", pref1(10, 1), nil, nil, 10, "1:1/10", ""},
		{"above it", pref1(10, 2), nil, nil, 10, "1:2/10", "0->1 1->1"},
		{"below it", pref1(11, 1), nil, nil, 10, "1:1/11", ""},
		{"percentage 0 (Kafka 4's controller): any imbalance", pref1(11, 1), nil, nil, 0, "1:1/11", "0->1"},
		{"preferred replica out of the ISR", []metadata.Partition{part(2, r(1, 2, 3), r(2, 3)), part(2, r(1, 2, 3), r(2, 3, 1))}, nil, nil, 10,
			"1:2/2", "1->1"},
		{"preferred replica fenced", []metadata.Partition{part(2, r(1, 2, 3), r(2, 3, 1))}, r(1), nil, 10, "1:1/1", ""},
		{"preferred replica shutting down", []metadata.Partition{part(2, r(1, 2, 3), r(2, 3, 1))}, nil, r(1), 10, "1:1/1", ""},
		{"leaderless partition", []metadata.Partition{part(-1, r(1, 2), r(1))}, nil, nil, 10, "1:1/1", "0->1"},
		{"two brokers over, one under", []metadata.Partition{
			part(3, r(1, 3), r(1, 3)), part(3, r(2, 3), r(2, 3)), part(3, r(3, 1), r(3, 1)), part(1, r(3, 1), r(1, 3)),
		}, nil, nil, 50, "1:1/1 2:1/1 3:1/2", "0->1 1->2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := clusterImage(t, 3, tt.fenced, tt.shutdown, nil, tt.parts...)
			var imb []string
			for _, li := range leaderImbalances(img) {
				imb = append(imb, fmt.Sprintf("%d:%d/%d", li.Broker, li.NotLeading, li.Preferred))
			}
			if got := fmt.Sprint(imb); got != "["+tt.wantImbalance+"]" {
				t.Errorf("imbalance %s, want [%s]", got, tt.wantImbalance)
			}
			var got []string
			for _, rec := range balanceChanges(img, tt.percent) {
				if rec.TopicID != topicX || rec.Leader == nil || rec.ISR != nil {
					t.Errorf("record %+v: want a leader change of topic x only", rec)
					continue
				}
				got = append(got, fmt.Sprintf("%d->%d", rec.Partition, *rec.Leader))
			}
			if fmt.Sprint(got) != "["+tt.want+"]" {
				t.Errorf("elections %v, want [%s]", got, tt.want)
			}
		})
	}
}

// TestBalanceLeaders: on the controller, a broker that was fenced (its leaderships moved) and
// came back into the ISR leads its preferred partitions again after one balancing pass, in one
// proposal that raises the leader epochs; a second pass has nothing to do.
func TestBalanceLeaders(t *testing.T) {
	c, _ := clusterController(t, 3, nil)
	c.cfg.LeaderImbalancePercentage = 10
	ctx := testCtx(t)
	createTopic(t, c, "b", []int32{1, 2, 3}, []int32{1, 3, 2}, []int32{2, 3, 1})
	heartbeat(t, c, 1, func(r *HeartbeatRequest) { r.WantFence = true })
	for p := int32(0); p < 2; p++ {
		if got := partitionOf(c, "b", p); got.Leader == 1 || slices.Contains(got.ISR, 1) {
			t.Fatalf("b-%d after fencing broker 1: %+v", p, got)
		}
	}
	heartbeat(t, c, 1, nil) // unfenced, caught up
	if n, err := c.BalanceLeaders(ctx); err != nil || n != 0 {
		t.Fatalf("balance with broker 1 out of the ISRs: %d, %v; want none", n, err)
	}
	// The leaders take broker 1 back into their ISRs.
	tb, _ := c.Image().Topic("b")
	for p := int32(0); p < 2; p++ {
		cur := partitionOf(c, "b", p)
		_, err := c.AlterPartition(ctx, AlterPartitionRequest{BrokerID: cur.Leader, BrokerEpoch: c.Image().Brokers[cur.Leader].Epoch,
			Topics: []AlterPartitionTopic{{TopicID: tb.ID, Partitions: []AlterPartitionData{{
				Partition: p, LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch, NewISR: append(slices.Clone(cur.ISR), 1)}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	before := [2]metadata.Partition{partitionOf(c, "b", 0), partitionOf(c, "b", 1)}
	index := c.Image().Index
	if n, err := c.BalanceLeaders(ctx); err != nil || n != 2 {
		t.Fatalf("balance: %d, %v; want 2 elections", n, err)
	}
	if c.Image().Index != index+1 {
		t.Errorf("balance took %d log entries, want 1 proposal", c.Image().Index-index)
	}
	for p := int32(0); p < 2; p++ {
		got := partitionOf(c, "b", p)
		if got.Leader != 1 || got.LeaderEpoch <= before[p].LeaderEpoch || !slices.Equal(got.ISR, before[p].ISR) {
			t.Errorf("b-%d: %+v, before %+v; want leader 1 with a higher epoch, same ISR", p, got, before[p])
		}
	}
	if got := partitionOf(c, "b", 2); got.Leader != 2 {
		t.Errorf("b-2 (preferring 2) moved: %+v", got)
	}
	if n, err := c.BalanceLeaders(ctx); err != nil || n != 0 {
		t.Errorf("second balance: %d, %v; want none", n, err)
	}
}

// TestRunLeaderBalanceDisabled: with auto.leader.rebalance.enable off the loop returns at once.
func TestRunLeaderBalanceDisabled(t *testing.T) {
	c, _ := clusterController(t, 1, nil)
	done := make(chan struct{})
	go func() { c.RunLeaderBalance(context.Background()); close(done) }()
	<-done
}
