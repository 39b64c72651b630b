package replica

import (
	"sync/atomic"
	"time"
)

// Numbers the metrics endpoint reads at scrape time (package metrics). They are plain atomics
// updated where the events happen; nothing here knows about Prometheus.

// traffic counts what clients produced to and fetched from a partition while it was open
// here (replication is not counted, as Kafka's BytesIn/BytesOut leave it out).
type traffic struct {
	bytesIn, messagesIn, bytesOut atomic.Int64
}

// CountProduced adds a client's appended batches: their size and record count.
func (p *Partition) CountProduced(bytes, records int64) {
	p.traffic.bytesIn.Add(bytes)
	p.traffic.messagesIn.Add(records)
}

// CountFetched adds the bytes of records sent to a consumer.
func (p *Partition) CountFetched(bytes int64) { p.traffic.bytesOut.Add(bytes) }

// Traffic returns the partition's counters since it was opened.
func (p *Partition) Traffic() (bytesIn, messagesIn, bytesOut int64) {
	return p.traffic.bytesIn.Load(), p.traffic.messagesIn.Load(), p.traffic.bytesOut.Load()
}

// isrChanges counts the ISR changes the controller committed for this node's leaders.
type isrChanges struct {
	shrinks, expands atomic.Int64
}

// count records a committed change from an ISR of from replicas to one of to.
func (c *isrChanges) count(from, to int) {
	switch {
	case to < from:
		c.shrinks.Add(1)
	case to > from:
		c.expands.Add(1)
	}
}

// ISRChanges returns how many ISR shrinks and expansions of partitions led here the controller
// committed since start.
func (m *Manager) ISRChanges() (shrinks, expands int64) {
	return m.env.isrChanges.shrinks.Load(), m.env.isrChanges.expands.Load()
}

// OpenPartitions returns the hosted partitions whose log is open, opening none.
func (m *Manager) OpenPartitions() []*Partition { return m.openPartitions() }

// CleanerStats is the log cleaner's state for the metrics endpoint.
type CleanerStats struct {
	// Uncleanable counts the logs the cleaner gave up on until restart.
	Uncleanable int
	// MaxDirtyRatio is the highest dirty ratio of the open compacted logs.
	MaxDirtyRatio float64
	// LastClean is how long the last cleaning pass that did work took (0: none yet).
	LastClean time.Duration
}

// CleanerStats reads the cleaner's state: the dirty ratios of the open compacted logs (each
// log's lock is taken briefly, as the cleaner's own choice of a log does).
func (m *Manager) CleanerStats() CleanerStats {
	st := CleanerStats{LastClean: time.Duration(m.lastClean.Load())}
	c := m.currentCleaner()
	c.mu.Lock()
	st.Uncleanable = len(c.mu.uncleanable)
	c.mu.Unlock()
	nowMs := time.Now().UnixMilli()
	for _, p := range m.openPartitions() {
		if !p.log.Config().Cleanup.Compacts() {
			continue
		}
		st.MaxDirtyRatio = max(st.MaxDirtyRatio, p.log.CleanableState(nowMs, p.CleanUpperBound()).DirtyRatio)
	}
	return st
}
