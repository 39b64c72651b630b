package controller

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
)

// Automatic preferred-leader balancing (auto.leader.rebalance.enable): while a broker is the
// preferred replica (the first in replica order) of partitions that another broker leads, for
// instance after it restarted, the active controller periodically elects it back
// (leader.imbalance.check.interval.seconds). As Kafka's ZooKeeper controller, it acts per
// broker once the share of the partitions it prefers but does not lead exceeds a percentage,
// and elects only a preferred replica that is active and in the ISR. Kafka's KRaft controller
// (4.x) has no percentage (leader.imbalance.per.broker.percentage was ZooKeeper-only, removed
// in 4.0): it balances every imbalanced partition, which is Samsa's percentage 0.

// defaultLeaderImbalanceCheckInterval is leader.imbalance.check.interval.seconds' default.
const defaultLeaderImbalanceCheckInterval = 300 * time.Second

// maxElectionsPerBalance bounds the elections of one proposal (Kafka's
// maxElectionsPerImbalance); a pass with more proposes again at once.
const maxElectionsPerBalance = 1000

// LeaderImbalance is one broker's preferred-leader imbalance: the partitions whose preferred
// replica it is, and how many of them another broker (or none) leads.
type LeaderImbalance struct {
	Broker     int32
	Preferred  int
	NotLeading int
}

// leaderImbalances returns the imbalance of every broker that is the preferred replica of at
// least one partition, by broker ID.
func leaderImbalances(img *metadata.Image) []LeaderImbalance {
	byBroker := map[int32]*LeaderImbalance{}
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			pref := p.Replicas[0]
			li := byBroker[pref]
			if li == nil {
				li = &LeaderImbalance{Broker: pref}
				byBroker[pref] = li
			}
			li.Preferred++
			if p.Leader != pref {
				li.NotLeading++
			}
		}
	}
	out := make([]LeaderImbalance, 0, len(byBroker))
	for _, li := range byBroker {
		out = append(out, *li)
	}
	slices.SortFunc(out, func(a, b LeaderImbalance) int { return cmp.Compare(a.Broker, b.Broker) })
	return out
}

// overThreshold reports whether li's share of partitions not led exceeds percent %.
func (li LeaderImbalance) overThreshold(percent int) bool {
	return li.NotLeading > 0 && li.NotLeading*100 > percent*li.Preferred
}

// balanceChanges returns the preferred-leader elections of one balancing pass over img, in
// topic-name and partition order: for every broker over the percentage, each partition it
// prefers but does not lead whose ISR holds it while it is active (registered, unfenced, not
// shutting down) elects it. The records of a broker under the percentage, or whose preferred
// replica cannot lead, are left out.
func balanceChanges(img *metadata.Image, percent int) []metadata.PartitionChange {
	over := map[int32]bool{}
	for _, li := range leaderImbalances(img) {
		if li.overThreshold(percent) {
			over[li.Broker] = true
		}
	}
	if len(over) == 0 {
		return nil
	}
	active := activeIn(img)
	var out []metadata.PartitionChange
	for _, t := range sortedTopics(img) {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 || p.Leader == p.Replicas[0] || !over[p.Replicas[0]] {
				continue
			}
			if rec, ok := changePartition(t.ID, p, p.ISR, electPreferred, active); ok && rec.Leader != nil && *rec.Leader == p.Replicas[0] {
				out = append(out, rec)
			}
		}
	}
	return out
}

// BalanceLeaders runs one balancing pass on the active controller: the elections
// balanceChanges finds (at most maxElectionsPerBalance) in one proposal. It returns how many
// leaders it elected. Elsewhere it fails with NOT_CONTROLLER. The error wraps a *kerr.Error.
func (c *Controller) BalanceLeaders(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return 0, err
	}
	changes := balanceChanges(c.Image(), c.cfg.LeaderImbalancePercentage)
	if len(changes) == 0 {
		return 0, nil
	}
	changes = changes[:min(len(changes), maxElectionsPerBalance)]
	recs := make([]metadata.Record, len(changes))
	for i, rec := range changes {
		recs[i] = rec
	}
	if _, err := c.proposeLocked(ctx, recs...); err != nil {
		return 0, err
	}
	c.logger.Info("elected preferred leaders (auto.leader.rebalance.enable)", "changes", len(recs))
	return len(recs), nil
}

// RunLeaderBalance runs BalanceLeaders every Config.LeaderImbalanceCheckInterval until ctx
// ends, while this node is the active controller, when Config.AutoLeaderRebalance is set.
// The caller runs it in its own goroutine on every controller node.
func (c *Controller) RunLeaderBalance(ctx context.Context) {
	if !c.cfg.AutoLeaderRebalance {
		return
	}
	interval := c.cfg.LeaderImbalanceCheckInterval
	if interval <= 0 {
		interval = defaultLeaderImbalanceCheckInterval
	}
	c.runWhileLeader(ctx, interval, func() {
		for ctx.Err() == nil {
			n, err := c.BalanceLeaders(ctx)
			if err != nil && ctx.Err() == nil {
				c.logger.Warn("preferred leader balancing failed", "err", err)
			}
			if err != nil || n < maxElectionsPerBalance {
				return
			}
		}
	})
}
