package storage

import (
	"fmt"
	"math"
	"strings"
)

// LogConfig holds the per-log settings, with Kafka's topic-config semantics.
type LogConfig struct {
	// SegmentBytes is segment.bytes: roll when the active segment would exceed it.
	SegmentBytes int64
	// SegmentMs is segment.ms: roll a non-empty active segment this long after its first batch.
	SegmentMs int64
	// RetentionMs is retention.ms: delete segments whose newest timestamp is older; -1 = forever.
	RetentionMs int64
	// RetentionBytes is retention.bytes: delete oldest segments beyond this size; -1 = unlimited.
	RetentionBytes int64
	// FlushMessages is flush.messages: fsync after this many unflushed offsets.
	FlushMessages int64
	// FlushMs is flush.ms: fsync when the last flush is this old (checked by FlushIfDue and appends).
	FlushMs int64
	// IndexIntervalBytes is index.interval.bytes: bytes of batches between offset-index entries.
	IndexIntervalBytes int32
	// SegmentIndexBytes is segment.index.bytes: maximum index file size; roll when full.
	SegmentIndexBytes int32
	// LogAppendTime is message.timestamp.type=LogAppendTime: stamp batches with the broker time.
	LogAppendTime bool
	// FileDeleteDelayMs is file.delete.delay.ms: how long deleted segment files stay readable.
	FileDeleteDelayMs int64

	// Cleanup is cleanup.policy: delete (the zero value), compact, or both. Under compact
	// alone EnforceRetention does not apply retention.ms and retention.bytes (it still drops
	// the segments below the log start offset), as in Kafka.
	Cleanup CleanupPolicy
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: CleanableState reports a log
	// cleanable once its dirty bytes exceed this share of its cleanable range.
	MinCleanableDirtyRatio float64
	// MinCompactionLagMs is min.compaction.lag.ms: a segment whose newest record is younger is
	// not cleaned yet (nor any segment after it).
	MinCompactionLagMs int64
	// MaxCompactionLagMs is max.compaction.lag.ms: a log whose oldest dirty segment started
	// longer ago is cleanable whatever its dirty ratio. 0 (the zero value, below Kafka's
	// minimum of 1) means no bound, like math.MaxInt64.
	MaxCompactionLagMs int64
	// DeleteRetentionMs is delete.retention.ms: how long a tombstone stays after the cleaning
	// that first kept it (Kafka's KIP-534 delete horizon, stored in its batch).
	DeleteRetentionMs int64
}

// CleanupPolicy is cleanup.policy. The zero value is delete, Kafka's default.
type CleanupPolicy uint8

// Cleanup policies.
const (
	CleanupDelete        CleanupPolicy = iota // delete: retention only
	CleanupCompact                            // compact: the cleaner only
	CleanupCompactDelete                      // compact,delete: both
)

// ParseCleanupPolicy parses cleanup.policy: "delete", "compact", or both separated by a comma
// in either order.
func ParseCleanupPolicy(s string) (CleanupPolicy, error) {
	var compact, del bool
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "compact":
			compact = true
		case "delete":
			del = true
		default:
			return CleanupDelete, fmt.Errorf("%w: cleanup.policy %q", ErrInvalidConfig, s)
		}
	}
	switch {
	case compact && del:
		return CleanupCompactDelete, nil
	case compact:
		return CleanupCompact, nil
	}
	return CleanupDelete, nil
}

// Compacts reports whether the policy includes compact.
func (p CleanupPolicy) Compacts() bool { return p == CleanupCompact || p == CleanupCompactDelete }

// Deletes reports whether the policy includes delete (retention.ms and retention.bytes).
func (p CleanupPolicy) Deletes() bool { return p != CleanupCompact }

func (p CleanupPolicy) String() string {
	switch p {
	case CleanupCompact:
		return "compact"
	case CleanupCompactDelete:
		return "compact,delete"
	}
	return "delete"
}

// DefaultLogConfig returns Kafka's defaults.
func DefaultLogConfig() LogConfig {
	return LogConfig{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * 60 * 60 * 1000,
		RetentionMs:        7 * 24 * 60 * 60 * 1000,
		RetentionBytes:     -1,
		FlushMessages:      math.MaxInt64,
		FlushMs:            math.MaxInt64,
		IndexIntervalBytes: 4096,
		SegmentIndexBytes:  10 << 20,
		LogAppendTime:      false,
		FileDeleteDelayMs:  60000,

		Cleanup:                CleanupDelete,
		MinCleanableDirtyRatio: 0.5,
		MinCompactionLagMs:     0,
		MaxCompactionLagMs:     math.MaxInt64,
		DeleteRetentionMs:      24 * 60 * 60 * 1000,
	}
}

// Validate reports the first out-of-range field, wrapping ErrInvalidConfig.
func (c LogConfig) Validate() error {
	switch {
	case c.SegmentBytes < 14 || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("%w: segment.bytes %d not in [14, %d]", ErrInvalidConfig, c.SegmentBytes, math.MaxInt32)
	case c.SegmentMs < 1:
		return fmt.Errorf("%w: segment.ms %d below 1", ErrInvalidConfig, c.SegmentMs)
	case c.RetentionMs < -1:
		return fmt.Errorf("%w: retention.ms %d below -1", ErrInvalidConfig, c.RetentionMs)
	case c.RetentionBytes < -1:
		return fmt.Errorf("%w: retention.bytes %d below -1", ErrInvalidConfig, c.RetentionBytes)
	case c.FlushMessages < 1:
		return fmt.Errorf("%w: flush.messages %d below 1", ErrInvalidConfig, c.FlushMessages)
	case c.FlushMs < 0:
		return fmt.Errorf("%w: flush.ms %d below 0", ErrInvalidConfig, c.FlushMs)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("%w: index.interval.bytes %d below 0", ErrInvalidConfig, c.IndexIntervalBytes)
	case c.SegmentIndexBytes < 4*timeEntrySize:
		return fmt.Errorf("%w: segment.index.bytes %d below %d", ErrInvalidConfig, c.SegmentIndexBytes, 4*timeEntrySize)
	case c.FileDeleteDelayMs < 0:
		return fmt.Errorf("%w: file.delete.delay.ms %d below 0", ErrInvalidConfig, c.FileDeleteDelayMs)
	case c.Cleanup > CleanupCompactDelete:
		return fmt.Errorf("%w: cleanup.policy %d unknown", ErrInvalidConfig, c.Cleanup)
	case !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1):
		return fmt.Errorf("%w: min.cleanable.dirty.ratio %v not in [0, 1]", ErrInvalidConfig, c.MinCleanableDirtyRatio)
	case c.MinCompactionLagMs < 0:
		return fmt.Errorf("%w: min.compaction.lag.ms %d below 0", ErrInvalidConfig, c.MinCompactionLagMs)
	case c.MaxCompactionLagMs < 0:
		return fmt.Errorf("%w: max.compaction.lag.ms %d below 1", ErrInvalidConfig, c.MaxCompactionLagMs)
	case c.MaxCompactionLagMs > 0 && c.MaxCompactionLagMs < c.MinCompactionLagMs:
		return fmt.Errorf("%w: max.compaction.lag.ms %d below min.compaction.lag.ms %d", ErrInvalidConfig, c.MaxCompactionLagMs, c.MinCompactionLagMs)
	case c.DeleteRetentionMs < 0:
		return fmt.Errorf("%w: delete.retention.ms %d below 0", ErrInvalidConfig, c.DeleteRetentionMs)
	}
	return nil
}

// maxCompactionLagMs is MaxCompactionLagMs with 0 read as no bound.
func (c LogConfig) maxCompactionLagMs() int64 {
	if c.MaxCompactionLagMs <= 0 {
		return math.MaxInt64
	}
	return c.MaxCompactionLagMs
}

// maxOffsetEntries and maxTimeEntries bound the index files of one segment.
func (c LogConfig) maxOffsetEntries() int { return int(c.SegmentIndexBytes) / offsetEntrySize }
func (c LogConfig) maxTimeEntries() int   { return int(c.SegmentIndexBytes) / timeEntrySize }
