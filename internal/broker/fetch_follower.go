package broker

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/storage"
)

// Fetching from the closest replica (KIP-392). With replica.selector.class set to Kafka's
// RackAwareReplicaSelector, the leader answers a consumer's fetch (v11+) that names a rack
// (client.rack) with no records and the id of an in-sync replica in that rack, unless the
// leader is in it; the consumer then fetches from that follower, which serves consumers up to
// its own high watermark. A follower serves any consumer fetch of v11+ (Kafka's followers do
// too, whatever the selector), so a client that chose one itself is served as well.

// partitionForConsumer returns the partition a consumer may fetch from here: the leader's, or
// from v11 a follower's.
func (b *Broker) partitionForConsumer(topic string, partition int32, version int16) (*replica.Partition, *kerr.Error) {
	p, perr := b.partitionFor(topic, partition)
	if perr != kerr.NotLeaderForPartition || version < 11 {
		return p, perr
	}
	f := b.replicas.Partition(topic, partition)
	if f == nil {
		return nil, perr
	}
	if role, _, _ := f.Role(); role != replica.RoleFollower {
		return nil, perr
	}
	return f, nil
}

// preferredReadReplica is the in-sync replica in rack that a consumer there should fetch
// from, or -1 for the leader (the selector is not rack-aware, the leader is in that rack, or
// no in-sync replica is).
func (b *Broker) preferredReadReplica(img *metadata.Image, t *metadata.Topic, partition int32, rack string) int32 {
	if b.cfg.Explicit["replica.selector.class"] != config.RackAwareReplicaSelector {
		return -1
	}
	if br, ok := img.Brokers[b.cfg.NodeID]; ok && br.Rack == rack {
		return -1
	}
	mp := t.Partitions[partition]
	for _, id := range mp.Replicas {
		if id == b.cfg.NodeID || !slices.Contains(mp.ISR, id) {
			continue
		}
		if br, ok := img.Brokers[id]; ok && !br.Fenced && br.Rack == rack {
			return id
		}
	}
	return -1
}

// holdReplicationThrottled marks the parts of a follower's fetch that the leader holds back
// (KIP-73, Kafka's shouldLeaderThrottle): throttled replicas while the leader is over
// leader.replication.throttled.rate and the follower is out of the partition's ISR.
func (b *Broker) holdReplicationThrottled(parts []fetchPart, replicaID int32) {
	q := b.replicas.LeaderQuota()
	if q.Limit() <= 0 {
		return
	}
	now := time.Now()
	for i := range parts {
		parts[i].held = b.replicas.LeaderThrottles(parts[i].p, replicaID, now)
	}
}

// recordReplicationThrottled counts the bytes a follower's fetch returns for throttled
// replicas against the leader's replication throttle, in-sync followers' too (Kafka records
// them all, throttled as the fetch ends: a long poll that began before a throttle was set
// counts).
func (b *Broker) recordReplicationThrottled(parts []fetchPart, regions map[*kmsgPartition]*storage.Region) {
	q := b.replicas.LeaderQuota()
	if q.Limit() <= 0 {
		return
	}
	n := 0
	for i := range parts {
		if throttled, _ := q.Throttled(parts[i].p.TP); throttled {
			n += partBytes(&parts[i], regions)
		}
	}
	q.Record(n, time.Now())
}
