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

// markReplicationThrottled marks the parts of a follower's fetch that the leader's
// replication throttle covers (KIP-73, Kafka's shouldLeaderThrottle): each throttled replica
// is counted, and held back while the leader is over leader.replication.throttled.rate and the
// follower is out of the partition's ISR. It reports whether any part is throttled.
func (b *Broker) markReplicationThrottled(parts []fetchPart, replicaID int32) bool {
	q := b.replicas.LeaderQuota()
	if q.Limit() <= 0 {
		return false
	}
	any := false
	var now time.Time
	for i := range parts {
		fp := &parts[i]
		if throttled, _ := q.Throttled(fp.p.TP); !throttled {
			continue
		}
		fp.throttled, any = true, true
		if now.IsZero() {
			now = time.Now()
		}
		fp.held = b.replicas.LeaderThrottles(fp.p, replicaID, now)
	}
	return any
}

// recordReplicationThrottled counts the bytes sent for throttled replicas against the
// leader's replication throttle, in-sync followers' too (Kafka records them all).
func (b *Broker) recordReplicationThrottled(parts []fetchPart, regions map[*kmsgPartition]*storage.Region) {
	n := 0
	for i := range parts {
		if !parts[i].throttled {
			continue
		}
		if reg := regions[parts[i].resp]; reg != nil {
			n += int(reg.Len)
		} else {
			n += len(parts[i].resp.RecordBatches)
		}
	}
	b.replicas.LeaderQuota().Record(n, time.Now())
}
