package storage

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
)

// DeleteRecordsBefore raises the log start offset to offset (DeleteRecords), persists it, and
// deletes the segments wholly below it. An offset beyond the log end is ErrOffsetOutOfRange;
// an offset at or below the log start changes nothing. It returns the log start offset.
func (l *Log) DeleteRecordsBefore(offset int64) (logStartOffset int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	if end := l.endLocked(); offset > end {
		return l.mu.logStart, fmt.Errorf("%w: offset %d beyond the log end %d", ErrOffsetOutOfRange, offset, end)
	}
	if offset <= l.mu.logStart {
		return l.mu.logStart, nil
	}
	old := l.mu.logStart
	l.mu.logStart = offset
	l.mu.recoveryPoint = max(l.mu.recoveryPoint, offset)
	if err := l.writeCheckpointLocked(); err != nil {
		l.mu.logStart = old
		return old, err
	}
	l.mu.epochs.truncateFromStart(offset)
	if l.mu.epochs.dirty {
		l.writeEpochsLocked()
	}
	if _, err := l.deleteSegmentsLocked(l.countBelowStartLocked()); err != nil {
		return l.mu.logStart, err
	}
	l.publishLocked()
	return l.mu.logStart, nil
}

// countBelowStartLocked counts the oldest segments that hold only offsets below the log start
// (their next segment starts at or below it).
func (l *Log) countBelowStartLocked() int {
	n := 0
	for n+1 < len(l.mu.segments) && l.mu.segments[n+1].base <= l.mu.logStart {
		n++
	}
	return n
}

// EnforceRetention deletes the oldest segments that break retention.ms (judged by each
// segment's largest timestamp, or its file time when it has none) or retention.bytes, and those
// below the log start offset, like Kafka's retention pass. The active segment is deleted too
// when it breaks the policy and is not empty: a new empty segment is rolled first. The log
// start offset rises to the new first segment. Under cleanup.policy=compact alone only the
// segments below the log start offset go, as in Kafka. It returns how many segments were
// deleted; a closed log has nothing to do.
func (l *Log) EnforceRetention() (deletedSegments int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		if errors.Is(err, ErrClosed) {
			return 0, nil
		}
		return 0, err
	}
	nowMs := l.now().UnixMilli()
	cfg := l.mu.cfg
	total := 0
	if cfg.RetentionMs >= 0 && cfg.Cleanup.Deletes() {
		n := l.countDeletableLocked(func(s *segment) bool {
			return nowMs-l.largestTimestampLocked(s) > cfg.RetentionMs
		})
		d, err := l.deleteSegmentsLocked(n)
		total += d
		if err != nil {
			return total, err
		}
	}
	if cfg.RetentionBytes >= 0 && cfg.Cleanup.Deletes() {
		diff := l.mu.sealedSize + l.activeLocked().size - cfg.RetentionBytes
		n := l.countDeletableLocked(func(s *segment) bool {
			if diff-s.size >= 0 {
				diff -= s.size
				return true
			}
			return false
		})
		d, err := l.deleteSegmentsLocked(n)
		total += d
		if err != nil {
			return total, err
		}
	}
	d, err := l.deleteSegmentsLocked(l.countBelowStartLocked())
	total += d
	l.publishLocked()
	return total, err
}

// countDeletableLocked counts the oldest consecutive segments for which shouldDelete holds,
// stopping at an empty active segment.
func (l *Log) countDeletableLocked(shouldDelete func(s *segment) bool) int {
	n := 0
	for i, s := range l.mu.segments {
		if i == len(l.mu.segments)-1 && s.size == 0 {
			break
		}
		if !shouldDelete(s) {
			break
		}
		n++
	}
	return n
}

// largestTimestampLocked is Kafka's segment.largestTimestamp: the max record timestamp, or the
// file's modification time when the segment has none.
func (l *Log) largestTimestampLocked(s *segment) int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	if fi, err := s.log.Stat(); err == nil {
		return fi.ModTime().UnixMilli()
	}
	return l.now().UnixMilli()
}

// deleteSegmentsLocked removes the n oldest segments (rolling a new empty one first if that is
// all of them), raises the log start offset to the new first segment and persists it.
func (l *Log) deleteSegmentsLocked(n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	if err := l.changingLocked(); err != nil {
		return 0, err
	}
	if n >= len(l.mu.segments) {
		n = len(l.mu.segments)
		if err := l.rollLocked(l.endLocked()); err != nil {
			return 0, err
		}
	}
	removed := l.mu.segments[:n]
	l.mu.segments = append([]*segment(nil), l.mu.segments[n:]...)
	l.rebuildSealedLocked()
	for _, s := range removed {
		l.scheduleDeleteLocked(s)
	}
	if first := l.mu.segments[0].base; first > l.mu.logStart {
		l.mu.logStart = first
		l.mu.recoveryPoint = max(l.mu.recoveryPoint, first)
		l.mu.epochs.truncateFromStart(first)
		if l.mu.epochs.dirty {
			l.writeEpochsLocked()
		}
	}
	l.publishLocked()
	if err := l.writeCheckpointLocked(); err != nil {
		return n, err
	}
	return n, nil
}

// TruncateTo removes every batch at or after offset, as a follower does after a leader
// change. The batch containing offset is removed whole, so the log end may end up below
// offset. An offset at or beyond the log end changes nothing; an offset below the first
// segment empties the log and restarts it at offset.
func (l *Log) TruncateTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: truncate to negative offset %d", ErrOffsetOutOfRange, offset)
	}
	if offset >= l.endLocked() {
		return nil
	}
	if err := l.changingLocked(); err != nil {
		return err
	}
	if offset < l.mu.segments[0].base {
		return l.truncateFullyLocked(offset)
	}
	nowMs := l.now().UnixMilli()
	i := len(l.mu.segments) - 1
	for i > 0 && l.mu.segments[i].base > offset {
		i--
	}
	s := l.mu.segments[i]
	if err := l.activateLocked(s, nowMs); err != nil {
		return l.failLocked(fmt.Errorf("truncating segment %d: %w", s.base, err))
	}
	info := s.info()
	pos, h, found, err := findBatch(&info, offset)
	if err != nil {
		return l.failLocked(fmt.Errorf("truncating segment %d: %w", s.base, err))
	}
	if found {
		if err := s.truncateAt(pos, h.BaseOffset, nowMs); err != nil {
			return l.failLocked(err)
		}
		if err := s.truncateAborted(l.fs, s.end); err != nil {
			return l.failLocked(err)
		}
	}
	for _, d := range l.mu.segments[i+1:] {
		l.scheduleDeleteLocked(d)
	}
	l.mu.segments = append([]*segment(nil), l.mu.segments[:i+1]...)
	l.rebuildSealedLocked()
	end := s.end
	l.mu.truncations++
	l.mu.logStart = min(l.mu.logStart, end)
	l.mu.recoveryPoint = min(l.mu.recoveryPoint, end)
	l.mu.flushTarget = min(l.mu.flushTarget, end)
	l.mu.epochs.truncateFromEnd(end)
	if l.mu.epochs.dirty {
		l.writeEpochsLocked()
	}
	l.removeSnapshotsAbove(end)
	l.lowerCleanerCheckpointLocked(end)
	l.publishLocked()
	if err := l.loadProducerStateLocked(math.MaxInt64); err != nil {
		return l.failLocked(err)
	}
	l.publishLocked() // the transactions the truncation re-opened or removed
	return l.writeCheckpointLocked()
}

// truncateFullyLocked deletes every segment and restarts the log empty at offset.
func (l *Log) truncateFullyLocked(offset int64) error {
	if err := l.changingLocked(); err != nil {
		return err
	}
	ns, err := createSegment(l.fs, l.dir, offset)
	if err != nil {
		return err
	}
	for _, s := range l.mu.segments {
		l.scheduleDeleteLocked(s)
	}
	l.mu.segments = []*segment{ns}
	l.rebuildSealedLocked()
	l.mu.truncations++
	l.mu.logStart, l.mu.recoveryPoint, l.mu.flushTarget = offset, offset, offset
	l.mu.epochs.clear()
	l.writeEpochsLocked()
	l.mu.producers = newProducerStates()
	l.removeSnapshotsAbove(-1)
	l.lowerCleanerCheckpointLocked(offset)
	l.publishLocked()
	return l.writeCheckpointLocked()
}

// failLocked marks the log failed after an I/O error left its files and state apart.
func (l *Log) failLocked(err error) error {
	l.mu.failed = err
	l.logger.Error("log failed; refusing further writes", "dir", l.dir, "err", err)
	return err
}

// snapshotPath returns the path of the producer snapshot at offset.
func (l *Log) snapshotPath(offset int64) string {
	return filepath.Join(l.dir, fileName(offset, snapshotSuffix))
}

// activateLocked makes a sealed segment able to take appends again (truncation is making it
// the last segment): it loads its indexes into memory, rebuilding them if they are not sane.
func (l *Log) activateLocked(s *segment, nowMs int64) error {
	if s.active {
		return nil
	}
	ok, err := s.loadActive(nowMs)
	var c *corruption
	if err != nil && !errors.As(err, &c) {
		return err
	}
	if ok && err == nil {
		return nil
	}
	l.logger.Warn("rebuilding segment index before truncation", "dir", l.dir, "segment", s.base)
	bad, err := s.recoverSegment(int64(l.mu.cfg.IndexIntervalBytes), nowMs, nil)
	if err != nil {
		return err
	}
	if bad != nil {
		l.logger.Warn("truncating log at a torn or corrupt batch", "file", s.path(logSuffix),
			"position", bad.pos, "reason", bad.reason)
	}
	return nil
}
