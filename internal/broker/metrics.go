package broker

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/metrics"
	"github.com/samsa-io/samsa/internal/replica"
)

// The metrics endpoint (package metrics) reads the broker in two ways: the request path adds
// to b.metrics' counters when it is set (samsa.metrics.address), and FillSnapshot reads the
// broker's state when Prometheus scrapes.

// SetMetrics gives the broker the request-path metrics to update (before Serve); without it
// the broker keeps none.
func (b *Broker) SetMetrics(m *metrics.Broker) { b.metrics = m }

// requestDone records a handled request in the metrics (if any): its API (a Fetch as a
// consumer's or a replica's), the time since it was read and its response's error codes.
func (c *conn) requestDone(req *request, resp kmsg.Response) {
	m := c.b.metrics
	if m == nil {
		return
	}
	follower := false
	if f, ok := req.kreq.(*kmsg.FetchRequest); ok {
		follower = f.ReplicaID >= 0 || f.Version >= 15 && f.ReplicaState.ID >= 0
	}
	m.RequestDone(req.hdr.Key, follower, resp, time.Since(req.arrived))
}

// throttled records a quota's throttle in the metrics (if any).
func (b *Broker) throttled(q metrics.QuotaType, d time.Duration) {
	if b.metrics != nil && d > 0 {
		b.metrics.Throttled(q, d)
	}
}

// FillSnapshot fills the broker's part of a metrics snapshot: the partitions this node hosts
// and leads by its metadata image (with under-replicated and min-ISR counts by each topic's
// min.insync.replicas), the traffic and sizes of the open partitions, the ISR changes and the
// log cleaner's state.
func (b *Broker) FillSnapshot(s *metrics.Snapshot) {
	img := b.ctrl.Image()
	s.HasBroker = true
	node := b.cfg.NodeID
	for _, t := range img.Topics {
		minISR := int64(-1)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if !slices.Contains(p.Replicas, node) {
				continue
			}
			s.Partitions++
			if p.Leader != node {
				continue
			}
			s.Leaders++
			if len(p.ISR) < len(p.Replicas) {
				s.UnderReplicated++
			}
			if minISR < 0 {
				minISR = b.minISR(img, t)
			}
			switch isr := int64(len(p.ISR)); {
			case isr < minISR:
				s.UnderMinISR++
			case isr == minISR:
				s.AtMinISR++
			}
		}
	}
	s.OfflineLogs = b.replicas.OfflineCount()
	s.ISRShrinks, s.ISRExpands = b.replicas.ISRChanges()
	s.LeaderThrottledBytes = b.replicas.LeaderQuota().Recorded()
	s.FollowerThrottledBytes = b.replicas.FollowerQuota().Recorded()
	byTopic := map[string]*metrics.TopicTraffic{}
	for _, p := range b.replicas.OpenPartitions() {
		in, msgs, out := p.Traffic()
		tt := byTopic[p.TP.Topic]
		if tt == nil {
			tt = &metrics.TopicTraffic{Topic: p.TP.Topic}
			byTopic[p.TP.Topic] = tt
		}
		tt.BytesIn += in
		tt.MessagesIn += msgs
		tt.BytesOut += out
		s.Logs = append(s.Logs, metrics.LogSize{Topic: p.TP.Topic, Partition: p.TP.Partition, Bytes: p.Log().Size()})
	}
	for _, tt := range byTopic {
		s.Topics = append(s.Topics, *tt)
	}
	cs := b.replicas.CleanerStats()
	s.Cleaner = metrics.CleanerState{Uncleanable: cs.Uncleanable, MaxDirtyRatio: cs.MaxDirtyRatio, LastCleanSeconds: cs.LastClean.Seconds()}
}

// minISR is a topic's min.insync.replicas.
func (b *Broker) minISR(img *metadata.Image, t *metadata.Topic) int64 {
	return b.topicInt64(img, t.Configs, "min.insync.replicas")
}

// countProduced adds an append's bytes (as received) and records to the partition's traffic.
func countProduced(p *replica.Partition, received int, base, last int64) {
	p.CountProduced(int64(received), last-base+1)
}
