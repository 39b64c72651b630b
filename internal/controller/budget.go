package controller

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// budget counts the partition replicas each broker hosts against
// Config.MaxPartitionsPerBroker, so that the controller refuses what a broker could not serve
// instead of committing partitions that would fail to open there.
type budget struct {
	max    int
	hosted map[int32]int // broker -> replicas, including those taken by this request
}

// newBudget counts the replicas the brokers of img host.
func (c *Controller) newBudget(img *metadata.Image) *budget {
	b := &budget{max: c.cfg.MaxPartitionsPerBroker}
	if b.max <= 0 {
		return b
	}
	b.hosted = map[int32]int{}
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				b.hosted[r]++
			}
		}
	}
	return b
}

// take adds partitions to the brokers' counts, or leaves them unchanged and returns a
// POLICY_VIOLATION error naming the first broker that would go over the limit.
func (b *budget) take(partitions []metadata.Partition) error {
	if b.max <= 0 {
		return nil
	}
	add := map[int32]int{}
	for _, p := range partitions {
		for _, r := range p.Replicas {
			add[r]++
		}
	}
	for r, n := range add {
		if b.hosted[r]+n > b.max {
			return fmt.Errorf("%w: Cannot create %d partition replicas on broker %d: it hosts %d and may host at most %d (samsa.max.partitions.per.broker, by default derived from its open-file limit: raise ulimit -n)",
				kerr.PolicyViolation, n, r, b.hosted[r], b.max)
		}
	}
	for r, n := range add {
		b.hosted[r] += n
	}
	return nil
}
