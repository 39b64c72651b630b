package replica

import (
	"strconv"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
)

// offlinePartition is a partition of the image this node hosts whose log failed to open.
// Clients get KAFKA_STORAGE_ERROR for it and Metadata shows it without a leader, as Kafka shows
// a replica on an offline log directory; it is retried after next.
type offlinePartition struct {
	topic       *metadata.Topic
	leaderEpoch int32
	err         error
	failures    int
	next        time.Time
}

// openFailures collects the partitions that failed to open in one pass, for one log line.
type openFailures struct {
	count int
	first TopicPartition
	err   error
}

// add merges the failures of another pass.
func (f *openFailures) add(o openFailures) {
	if o.count == 0 {
		return
	}
	if f.count == 0 {
		f.first, f.err = o.first, o.err
	}
	f.count += o.count
}

// Offline reports whether the partition is hosted here but its log could not be opened.
func (m *Manager) Offline(topic string, partition int32) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.mu.offline[TopicPartition{topic, partition}]
	return ok
}

// OfflineCount returns the number of offline partitions.
func (m *Manager) OfflineCount() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.mu.offline)
}

// offlineDue reports whether tp may be opened now: it is not offline, or its backoff passed.
// It refreshes what an offline partition will be opened with.
func (m *Manager) offlineDue(tp TopicPartition, t *metadata.Topic, leaderEpoch int32, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.mu.offline[tp]
	if !ok {
		return true
	}
	o.topic, o.leaderEpoch = t, leaderEpoch
	return !now.Before(o.next)
}

// tryOpen opens tp's log as of topic t and hosts it in h, or records it offline with a
// doubled backoff. The caller holds h.openMu.
func (m *Manager) tryOpen(tp TopicPartition, h *hosted, t *metadata.Topic, leaderEpoch int32, now time.Time, failed *openFailures) *Partition {
	p, err := m.openPartition(tp, t, leaderEpoch)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.mu.offline, tp)
		// The image may have changed during the open.
		p.leaderEpoch.Store(h.leaderEpoch)
		if !sameConfigs(t.Configs, h.topic.Configs) {
			p.log.SetConfig(m.cfg.LogConfig(h.topic.Configs))
		}
		p.env = m.env
		if len(h.part.Replicas) > 1 {
			// A replicated partition's high watermark is what was checkpointed, bounded by
			// the log (Kafka's rule); unknown means the log start.
			hw, ok := m.ckptLoaded[tp]
			if !ok {
				hw = p.log.LogStartOffset()
			}
			p.highWatermark.Store(max(min(hw, p.log.LogEndOffset()), p.log.LogStartOffset()))
		}
		p.applyImage(h.part)
		h.p = p
		return p
	}
	o, ok := m.mu.offline[tp]
	if !ok {
		o = &offlinePartition{}
		m.mu.offline[tp] = o
	}
	o.topic, o.leaderEpoch, o.err = t, leaderEpoch, err
	o.failures++
	o.next = now.Add(min(m.cfg.RetryBackoff<<min(o.failures-1, 16), maxRetryBackoff))
	if failed.count == 0 {
		failed.first, failed.err = tp, err
	}
	failed.count++
	return nil
}

// reportOpenFailures logs one line for the partitions that failed to open in one pass.
func (m *Manager) reportOpenFailures(failed *openFailures) {
	if failed.count == 0 {
		return
	}
	m.log.Error("partitions offline: their logs cannot be opened; retrying with backoff",
		"failed", failed.count, "offline", m.OfflineCount(),
		"example", failed.first.Topic+"-"+strconv.Itoa(int(failed.first.Partition)), "err", failed.err)
}

// forgetOffline drops offline partitions that the image no longer hosts here.
func (m *Manager) forgetOffline(want map[TopicPartition]*metadata.Topic) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for tp, o := range m.mu.offline {
		if t, ok := want[tp]; !ok || t.ID != o.topic.ID {
			delete(m.mu.offline, tp)
		}
	}
}

// RetryOffline tries again to open the offline partitions whose backoff has passed, logging
// one line for those still failing and one for those back online. Run calls it every
// RetryBackoff.
func (m *Manager) RetryOffline() {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	type due struct {
		tp TopicPartition
		h  *hosted
	}
	now := time.Now()
	var todo []due
	m.mu.RLock()
	for tp, o := range m.mu.offline {
		if h := m.mu.hosted[tp]; h != nil && !now.Before(o.next) {
			todo = append(todo, due{tp, h})
		}
	}
	m.mu.RUnlock()
	var failed openFailures
	opened := 0
	for _, d := range todo {
		if m.open(d.tp, d.h, now, &failed) != nil {
			opened++
		}
	}
	m.reportOpenFailures(&failed)
	if opened > 0 {
		m.log.Info("offline partitions opened", "opened", opened, "offline", m.OfflineCount())
	}
}
