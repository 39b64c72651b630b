package replica

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/samsa-io/samsa/internal/storage"
)

// CleanerConfig configures the log cleaner (Kafka's log.cleaner.* settings). The topic-level
// settings (min.cleanable.dirty.ratio, min/max.compaction.lag.ms, delete.retention.ms) come
// with each log's storage.LogConfig.
type CleanerConfig struct {
	// Enable is log.cleaner.enable; false runs no cleaner (compacted topics grow).
	Enable bool
	// Threads is log.cleaner.threads (1): goroutines cleaning logs concurrently, never two
	// on one log.
	Threads int
	// DedupeBufferBytes is log.cleaner.dedupe.buffer.size (128 MiB), shared by the threads:
	// each has an offset map of DedupeBufferBytes / Threads, allocated when it first has a
	// log to clean and dropped when a round finds nothing to clean.
	DedupeBufferBytes int64
	// Backoff is log.cleaner.backoff.ms (15 s): the wait when no log is cleanable.
	Backoff time.Duration
	// IOMaxBytesPerSecond is log.cleaner.io.max.bytes.per.second, one budget for all threads'
	// reads and writes; <= 0 or Kafka's default (Double.MAX_VALUE) does not throttle.
	IOMaxBytesPerSecond float64
}

// logCleaner runs the cleaner goroutines of a Manager: each round picks the dirtiest
// cleanable log among the open partitions (leaders and followers alike: every replica cleans
// its own log, as in Kafka) and runs one storage.Log.Clean pass on it, bounded by the
// partition's high watermark.
type logCleaner struct {
	m        *Manager
	cfg      CleanerConfig
	log      *slog.Logger
	throttle storage.Throttler // nil: unthrottled

	// mu guards the partitions being cleaned and the goroutines' lifecycle; it is a leaf,
	// held only for map work (never while a log's lock is taken or a pass runs).
	mu struct {
		sync.Mutex
		cleaning map[*Partition]bool
		// skipUntil holds logs whose last pass failed for a passing reason (a full disk) or
		// made no progress: they are left alone for a backoff, so that a log the cleaner
		// cannot help is not picked in a loop.
		skipUntil map[*Partition]time.Time
		// uncleanable holds logs whose pass failed for any other reason (a corrupt batch, a
		// bug), with that reason: as Kafka's LogCleanerManager.uncleanablePartitions they are
		// never picked again until the log is deleted or the broker restarts, with one ERROR
		// line, so that one bad log does not stop the cleaning of the others.
		uncleanable map[*Partition]string
		started     bool
		stopped     bool
	}
	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
}

// withDefaults fills the unset fields with Kafka's defaults.
func (cfg CleanerConfig) withDefaults() CleanerConfig {
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	if cfg.DedupeBufferBytes <= 0 {
		cfg.DedupeBufferBytes = storage.DefaultDedupeBufferBytes
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 15 * time.Second
	}
	return cfg
}

func newLogCleaner(m *Manager, cfg CleanerConfig) *logCleaner {
	cfg = cfg.withDefaults()
	c := &logCleaner{m: m, cfg: cfg, log: m.log.With("component", "log-cleaner")}
	if r := cfg.IOMaxBytesPerSecond; r > 0 && r < math.MaxFloat64/2 {
		c.throttle = storage.NewTokenBucket(r)
	}
	c.mu.cleaning = make(map[*Partition]bool)
	c.mu.skipUntil = make(map[*Partition]time.Time)
	c.mu.uncleanable = make(map[*Partition]string)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// start starts the cleaner goroutines once (none when disabled or already stopped).
func (c *logCleaner) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cfg.Enable || c.mu.started || c.mu.stopped {
		return
	}
	c.mu.started = true
	for i := 0; i < c.cfg.Threads; i++ {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.run(i)
		}()
	}
}

// stop ends the cleaner goroutines, aborting the passes in flight (their cleaned files are
// dropped; the logs keep their old segments), and waits for them. Idempotent.
func (c *logCleaner) stop() {
	c.mu.Lock()
	c.mu.stopped = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// run is one cleaner goroutine.
func (c *logCleaner) run(thread int) {
	var offsets *storage.OffsetMap
	defer func() {
		if offsets != nil {
			offsets.Release()
		}
	}()
	for c.ctx.Err() == nil {
		p := c.grab()
		if p == nil {
			// Idle: give the offset map's memory back to the OS, so a broker without
			// compaction work does not keep log.cleaner.dedupe.buffer.size of memory.
			if offsets != nil {
				offsets.Release()
				offsets = nil
			}
			select {
			case <-c.ctx.Done():
			case <-time.After(c.cfg.Backoff):
			}
			continue
		}
		if offsets == nil {
			offsets = storage.NewOffsetMap(c.cfg.DedupeBufferBytes / int64(c.cfg.Threads))
		}
		progressed := c.clean(p, offsets, thread)
		c.release(p, progressed)
	}
}

// grab picks the log to clean next and marks it being cleaned, as Kafka's
// LogCleanerManager.grabFilthiestCompactedLog: among the open compacted logs not being
// cleaned whose CleanableState is cleanable, those past max.compaction.lag.ms first (the
// longest overdue), then the highest dirty ratio. nil when none.
func (c *logCleaner) grab() *Partition {
	nowMs := time.Now().UnixMilli()
	var best *Partition
	var bestState storage.CleanState
	for _, p := range c.m.compactedPartitions() {
		if !p.log.Config().Cleanup.Compacts() || c.skip(p) {
			continue
		}
		st := p.log.CleanableState(nowMs, p.CleanUpperBound())
		if !st.Cleanable {
			continue
		}
		if best == nil || dirtier(st, bestState) {
			best, bestState = p, st
		}
	}
	if best == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.cleaning[best] {
		return nil // another thread took it meanwhile; the next round looks again
	}
	c.mu.cleaning[best] = true
	return best
}

// dirtier orders candidates: overdue (max.compaction.lag.ms) before not, the longer overdue
// first, then the higher dirty ratio.
func dirtier(a, b storage.CleanState) bool {
	if (a.MaxCompactionDelayMs > 0) != (b.MaxCompactionDelayMs > 0) {
		return a.MaxCompactionDelayMs > 0
	}
	if a.MaxCompactionDelayMs != b.MaxCompactionDelayMs {
		return a.MaxCompactionDelayMs > b.MaxCompactionDelayMs
	}
	return a.DirtyRatio > b.DirtyRatio
}

// skip reports a log being cleaned, backing off or uncleanable.
func (c *logCleaner) skip(p *Partition) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.cleaning[p] {
		return true
	}
	if _, ok := c.mu.uncleanable[p]; ok {
		return true
	}
	if until, ok := c.mu.skipUntil[p]; ok {
		if time.Now().Before(until) {
			return true
		}
		delete(c.mu.skipUntil, p)
	}
	return false
}

// release ends p's pass; a pass that failed or made no progress backs p off.
func (c *logCleaner) release(p *Partition, progressed bool) {
	c.mu.Lock()
	delete(c.mu.cleaning, p)
	if _, bad := c.mu.uncleanable[p]; !progressed && !bad {
		c.mu.skipUntil[p] = time.Now().Add(c.cfg.Backoff)
	}
	c.mu.Unlock()
}

// markUncleanable leaves p alone for good (see logCleaner.mu.uncleanable).
func (c *logCleaner) markUncleanable(p *Partition, reason string) {
	c.mu.Lock()
	c.mu.uncleanable[p] = reason
	c.mu.Unlock()
}

// uncleanableReason is why p's log is uncleanable, "" when it is not.
func (c *logCleaner) uncleanableReason(p *Partition) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.uncleanable[p]
}

// uncleanableCopy returns the uncleanable logs, for a reconfigured cleaner to keep them.
func (c *logCleaner) uncleanableCopy() map[*Partition]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.mu.uncleanable)
}

// clean runs one pass on p's log and logs its outcome: one INFO line "log cleaned" per pass
// that did work (its fields are relied on by tools: keep them), a debug line for a pass the
// log's truncation, deletion or close abandoned, an error otherwise. It reports whether the
// pass moved the cleaner checkpoint or rewrote segments.
func (c *logCleaner) clean(p *Partition, offsets *storage.OffsetMap, thread int) (progressed bool) {
	stats, err := p.log.Clean(c.ctx, storage.CleanOptions{
		UpperBound: p.CleanUpperBound(),
		OffsetMap:  offsets,
		Throttler:  c.throttle,
	})
	tp := p.TP
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrCleanAborted), errors.Is(err, storage.ErrClosed),
		errors.Is(err, context.Canceled):
		c.log.Debug("log cleaning abandoned", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		return false
	case storage.IsDiskFull(err):
		c.log.Warn("log cleaning failed for lack of space; retried after log.cleaner.backoff.ms", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		return false
	default:
		c.log.Error("log cleaning failed: the partition is marked uncleanable and not cleaned again until it is deleted or the broker restarts",
			"topic", tp.Topic, "partition", tp.Partition, "err", err)
		c.markUncleanable(p, err.Error())
		return false
	}
	progressed = stats.EndOffset > stats.FirstDirtyOffset || stats.BytesWritten > 0 ||
		stats.SegmentsAfter != stats.SegmentsBefore
	if stats.BytesRead == 0 {
		return progressed
	}
	c.m.lastClean.Store(int64(stats.Duration))
	secs := stats.Duration.Seconds()
	mbPerSec := 0.0
	if secs > 0 {
		mbPerSec = float64(stats.BytesRead) / (1 << 20) / secs
	}
	c.log.Info("log cleaned", "topic", tp.Topic, "partition", tp.Partition,
		"bytes_before", stats.BytesBefore, "bytes_after", stats.BytesAfter,
		"records_read", stats.RecordsRead, "records_kept", stats.RecordsKept,
		"segments_before", stats.SegmentsBefore, "segments_after", stats.SegmentsAfter,
		"first_dirty_offset", stats.FirstDirtyOffset, "end_offset", stats.EndOffset,
		"map_full", stats.MapFull, "bytes_read", stats.BytesRead, "bytes_written", stats.BytesWritten,
		"duration", stats.Duration.Round(time.Microsecond).String(),
		"mb_per_s", math.Round(mbPerSec*10)/10, "thread", thread)
	return progressed
}

// forget drops what the cleaner keeps of a partition whose log is gone.
func (c *logCleaner) forget(p *Partition) {
	c.mu.Lock()
	delete(c.mu.skipUntil, p)
	delete(c.mu.uncleanable, p)
	c.mu.Unlock()
}

// currentCleaner is the Manager's cleaner (SetCleanerConfig replaces it).
func (m *Manager) currentCleaner() *logCleaner {
	m.cleanerMu.Lock()
	defer m.cleanerMu.Unlock()
	return m.cleaner
}

// startCleaner starts the cleaner's goroutines (Run).
func (m *Manager) startCleaner() {
	m.cleanerMu.Lock()
	defer m.cleanerMu.Unlock()
	m.cleanerRunning = true
	m.cleaner.start()
}

// stopCleaner stops the cleaner's goroutines for good (Run's end, Close).
func (m *Manager) stopCleaner() {
	m.cleanerMu.Lock()
	defer m.cleanerMu.Unlock()
	m.cleanerRunning = false
	m.cleaner.stop()
}

// CleanerConfig returns the log cleaner's settings in force.
func (m *Manager) CleanerConfig() CleanerConfig { return m.currentCleaner().cfg }

// SetCleanerConfig applies changed log.cleaner.* settings at run time, as Kafka's
// LogCleaner.reconfigure: the cleaner goroutines are stopped (a pass in flight is abandoned,
// its cleaned files dropped, and is redone) and started again with cfg. The uncleanable
// partitions stay so. Settings equal to those in force change nothing.
func (m *Manager) SetCleanerConfig(cfg CleanerConfig) {
	m.cleanerMu.Lock()
	defer m.cleanerMu.Unlock()
	old := m.cleaner
	if cfg.withDefaults() == old.cfg {
		return
	}
	next := newLogCleaner(m, cfg)
	old.stop()
	next.mu.uncleanable = old.uncleanableCopy()
	m.cleaner = next
	if m.cleanerRunning {
		next.start()
	}
	m.log.Info("log cleaner reconfigured", "enable", next.cfg.Enable, "threads", next.cfg.Threads,
		"dedupe_buffer_size", next.cfg.DedupeBufferBytes, "backoff", next.cfg.Backoff.String(),
		"io_max_bytes_per_second", next.cfg.IOMaxBytesPerSecond)
}

// UncleanableReason is why the cleaner gave up on p's log ("" when it did not).
func (m *Manager) UncleanableReason(p *Partition) string {
	return m.currentCleaner().uncleanableReason(p)
}

// CleanUpperBound is where cleaning stops, as Kafka's: the last stable offset, so that
// neither an open transaction nor one whose marker is not replicated yet is cleaned (at most
// the high watermark).
func (p *Partition) CleanUpperBound() int64 { return p.LastStableOffset(p.HighWatermark()) }
