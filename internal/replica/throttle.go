package replica

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

// Replication quotas (KIP-73, Kafka's ReplicationQuotaManager). Each broker has two: the
// leader side, the bytes it sends to followers of throttled replicas, bounded by
// leader.replication.throttled.rate; and the follower side, the bytes its fetchers receive for
// throttled replicas, bounded by follower.replication.throttled.rate. The topic configs
// leader.replication.throttled.replicas and follower.replication.throttled.replicas name the
// throttled replicas (partition:broker pairs, or * for all); a broker throttles the partitions
// whose list names it. Every byte of a throttled partition counts against the rate, but only
// replicas out of the ISR are held back once it is exceeded, so a throttle never takes the ISR
// down: the leader leaves such partitions out of the follower's fetch response, the follower
// out of its fetch requests (unless its last fetch reached the leader's high watermark, as
// Kafka's follower decides). With no rate set (Long.MAX_VALUE) or no replica listed nothing is
// measured and nothing is held back.

// Kafka's names of the replication throttle configs.
const (
	LeaderThrottledRate       = "leader.replication.throttled.rate"
	FollowerThrottledRate     = "follower.replication.throttled.rate"
	LeaderThrottledReplicas   = "leader.replication.throttled.replicas"
	FollowerThrottledReplicas = "follower.replication.throttled.replicas"
)

// ReplicationQuota is one side's replication throttle. Safe for concurrent use.
type ReplicationQuota struct {
	// limit is the rate in bytes per second; 0 or less: unlimited.
	limit atomic.Int64
	// throttled is the set of partitions this side throttles, replaced whole on each image
	// (nil: none).
	throttled atomic.Pointer[map[TopicPartition]bool]

	// recorded counts the bytes recorded since start (the metrics' total).
	recorded atomic.Int64

	mu   sync.Mutex
	rate *quota.Rate
}

// NewReplicationQuota returns an unlimited quota measured with cfg.
func NewReplicationQuota(cfg quota.Config) *ReplicationQuota {
	return &ReplicationQuota{rate: quota.NewRate(cfg)}
}

// SetLimit sets the rate in bytes per second; Long.MAX_VALUE (Kafka's default) or less than
// one is unlimited.
func (q *ReplicationQuota) SetLimit(bytesPerSec int64) {
	if bytesPerSec <= 0 || bytesPerSec == math.MaxInt64 {
		bytesPerSec = 0
	}
	q.limit.Store(bytesPerSec)
}

// Limit is the rate in bytes per second, 0 when unlimited.
func (q *ReplicationQuota) Limit() int64 { return q.limit.Load() }

// Throttled reports whether tp is one of this side's throttled replicas, and the flag stored
// with it (the follower side stores whether this broker is in the partition's ISR).
func (q *ReplicationQuota) Throttled(tp TopicPartition) (throttled, flag bool) {
	set := q.throttled.Load()
	if set == nil {
		return false, false
	}
	flag, throttled = (*set)[tp]
	return throttled, flag
}

// any reports whether any partition is throttled.
func (q *ReplicationQuota) any() bool {
	set := q.throttled.Load()
	return set != nil && len(*set) > 0
}

// setThrottled replaces the throttled set (empty: none).
func (q *ReplicationQuota) setThrottled(set map[TopicPartition]bool) {
	if len(set) == 0 {
		q.throttled.Store(nil)
		return
	}
	q.throttled.Store(&set)
}

// Record counts n bytes of throttled partitions at now. Nothing is measured while unlimited.
func (q *ReplicationQuota) Record(n int, now time.Time) {
	if n <= 0 || q.limit.Load() <= 0 {
		return
	}
	q.recorded.Add(int64(n))
	q.mu.Lock()
	q.rate.Record(float64(n), now)
	q.mu.Unlock()
}

// Recorded is the total of the bytes recorded since start.
func (q *ReplicationQuota) Recorded() int64 { return q.recorded.Load() }

// Exceeded reports whether the measured rate is above the limit at now (Kafka's
// isQuotaExceeded: a quota bound checked after the bytes are recorded).
func (q *ReplicationQuota) Exceeded(now time.Time) bool {
	limit := q.limit.Load()
	if limit <= 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rate.Measure(now) > float64(limit)
}

// ThrottledPartitions parses a throttled replicas list (Kafka's parseThrottledPartitions):
// all partitions for "*", else the partitions of the partition:broker entries naming broker.
// Entries that do not parse are ignored (the config's validation refuses them).
func ThrottledPartitions(value string, broker int32) (all bool, partitions []int32) {
	value = strings.TrimSpace(value)
	if value == "*" {
		return true, nil
	}
	for _, e := range strings.Split(value, ",") {
		ps, bs, ok := strings.Cut(strings.TrimSpace(e), ":")
		if !ok {
			continue
		}
		p, err1 := strconv.ParseInt(strings.TrimSpace(ps), 10, 32)
		b, err2 := strconv.ParseInt(strings.TrimSpace(bs), 10, 32)
		if err1 == nil && err2 == nil && int32(b) == broker && p >= 0 {
			partitions = append(partitions, int32(p))
		}
	}
	return false, partitions
}

// throttledSets computes, from img, the partitions hosted by node that each side throttles:
// the leader side's set, and the follower side's with whether node is in the ISR.
func throttledSets(img *metadata.Image, node int32) (leader, follower map[TopicPartition]bool) {
	for _, t := range img.Topics {
		lv, fv := t.Configs[LeaderThrottledReplicas], t.Configs[FollowerThrottledReplicas]
		if lv == "" && fv == "" {
			continue
		}
		add := func(set *map[TopicPartition]bool, value string, flag func(metadata.Partition) bool) {
			if value == "" {
				return
			}
			all, ps := ThrottledPartitions(value, node)
			put := func(mp metadata.Partition) {
				if !containsID(mp.Replicas, node) {
					return
				}
				if *set == nil {
					*set = make(map[TopicPartition]bool)
				}
				(*set)[TopicPartition{t.Name, mp.Partition}] = flag(mp)
			}
			if all {
				for _, mp := range t.Partitions {
					put(mp)
				}
				return
			}
			for _, p := range ps {
				if int(p) < len(t.Partitions) {
					put(t.Partitions[p])
				}
			}
		}
		add(&leader, lv, func(metadata.Partition) bool { return false })
		add(&follower, fv, func(mp metadata.Partition) bool { return containsID(mp.ISR, node) })
	}
	return leader, follower
}

// brokerRate is a throttle rate of node from img: its own dynamic config, else the
// cluster-wide one, else static (server.properties).
func brokerRate(img *metadata.Image, node int32, name string, static int64) int64 {
	if v, ok := img.DynamicBrokerValue(node, name); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return static
}

// applyThrottles follows img's replication throttle configs.
func (m *Manager) applyThrottles(img *metadata.Image) {
	m.leaderQuota.SetLimit(brokerRate(img, m.cfg.NodeID, LeaderThrottledRate, m.cfg.LeaderThrottledRate))
	m.followerQuota.SetLimit(brokerRate(img, m.cfg.NodeID, FollowerThrottledRate, m.cfg.FollowerThrottledRate))
	leader, follower := throttledSets(img, m.cfg.NodeID)
	m.leaderQuota.setThrottled(leader)
	m.followerQuota.setThrottled(follower)
}

// LeaderQuota is the leader side's replication throttle, which the fetch handler applies to
// follower fetches.
func (m *Manager) LeaderQuota() *ReplicationQuota { return m.leaderQuota }

// FollowerQuota is the follower side's replication throttle, applied by the fetchers.
func (m *Manager) FollowerQuota() *ReplicationQuota { return m.followerQuota }

// LeaderThrottles reports whether the leader should leave tp out of replicaID's fetch
// response now (Kafka's shouldLeaderThrottle): a throttled partition, the follower out of the
// ISR, the leader's rate exceeded.
func (m *Manager) LeaderThrottles(p *Partition, replicaID int32, now time.Time) bool {
	q := m.leaderQuota
	if q.Limit() <= 0 || !q.any() {
		return false
	}
	if t, _ := q.Throttled(p.TP); !t || p.inISR(replicaID) {
		return false
	}
	return q.Exceeded(now)
}
