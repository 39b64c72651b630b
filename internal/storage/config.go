package storage

import (
	"fmt"
	"math"
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
	}
	return nil
}

// maxOffsetEntries and maxTimeEntries bound the index files of one segment.
func (c LogConfig) maxOffsetEntries() int { return int(c.SegmentIndexBytes) / offsetEntrySize }
func (c LogConfig) maxTimeEntries() int   { return int(c.SegmentIndexBytes) / timeEntrySize }
