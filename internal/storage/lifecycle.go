package storage

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// rollLocked seals the active segment and starts a new one at newBase (the log end, or for
// a follower the first offset of the append). It writes a producer snapshot at newBase and
// asks the background flusher to fsync the sealed segments.
func (l *Log) rollLocked(newBase int64) error {
	old := l.activeLocked()
	if newBase < old.end {
		return fmt.Errorf("storage: cannot roll to offset %d below the log end %d", newBase, old.end)
	}
	if old.size == 0 && old.base == newBase {
		return nil
	}
	if err := l.changingLocked(); err != nil {
		return err
	}
	ns, err := createSegment(l.fs, l.dir, newBase)
	if err != nil {
		return err
	}
	if err := old.seal(); err != nil {
		ns.close()
		l.removeFiles(ns)
		return err
	}
	l.mu.segments = append(l.mu.segments, ns)
	l.rebuildSealedLocked()
	l.mu.producers.txns.pruneBelow(l.highWatermark.Load())
	l.publishLocked()
	l.writeSnapshotLocked(newBase, false)
	l.requestBackgroundFlushLocked(newBase)
	return nil
}

// removeFiles removes a segment's files (used for segments that never held data).
func (l *Log) removeFiles(s *segment) {
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		_ = l.fs.Remove(s.path(suffix))
	}
}

// requestBackgroundFlushLocked asks the background flusher to fsync every segment below
// upTo and then advance the recovery point to it, starting the flusher if needed.
func (l *Log) requestBackgroundFlushLocked(upTo int64) {
	l.mu.flushTarget = max(l.mu.flushTarget, upTo)
	if l.mu.flushing || l.mu.flushTarget <= l.mu.recoveryPoint {
		return
	}
	l.mu.flushing = true
	l.background.Add(1)
	go l.backgroundFlush()
}

// backgroundFlush is the flusher goroutine: it syncs sealed segments without holding mu, so
// appends continue, and exits when it has caught up, on close, or on an error.
func (l *Log) backgroundFlush() {
	defer l.background.Done()
	for {
		l.mu.Lock()
		target, gen := l.mu.flushTarget, l.mu.truncations
		if l.mu.closed || target <= l.mu.recoveryPoint {
			l.mu.flushing = false
			l.mu.Unlock()
			return
		}
		var segs []*segment
		for _, s := range l.mu.segments {
			if s.base < target && s.end > l.mu.recoveryPoint {
				segs = append(segs, s)
			}
		}
		l.mu.Unlock()
		var err error
		for _, s := range segs {
			if err = s.sync(); err != nil {
				break
			}
		}
		l.mu.Lock()
		if err != nil {
			l.mu.flushing = false
			if !l.mu.closed && !isClosedFile(err) {
				l.logger.Error("background flush of rolled segments", "dir", l.dir, "err", err)
			}
			l.mu.Unlock()
			return
		}
		if !l.mu.closed && gen == l.mu.truncations && target > l.mu.recoveryPoint {
			l.mu.recoveryPoint = target
			l.writeCheckpointLocked()
		}
		l.mu.Unlock()
	}
}

// flushLocked fsyncs everything not yet flushed and advances the recovery point to the log
// end. The checkpoint file is rewritten by rolls, log start changes and close; the recovery
// point it holds only bounds the work of a recovery.
func (l *Log) flushLocked(nowMs int64) error {
	end := l.endLocked()
	act := l.activeLocked()
	for _, s := range l.mu.segments {
		if s.end > l.mu.recoveryPoint || s == act {
			if err := s.sync(); err != nil {
				return err
			}
		}
	}
	l.mu.recoveryPoint = end
	l.mu.lastFlushMs = nowMs
	if l.mu.epochs.dirty {
		l.writeEpochsLocked()
	}
	return nil
}

// Flush fsyncs all appended data.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	return l.flushLocked(l.now().UnixMilli())
}

// FlushIfDue flushes when flush.ms has passed since the last flush and there is unflushed
// data; the replica manager calls it periodically.
func (l *Log) FlushIfDue() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		if errors.Is(err, ErrClosed) {
			return nil
		}
		return err
	}
	nowMs := l.now().UnixMilli()
	if l.endLocked() > l.mu.recoveryPoint && nowMs-l.mu.lastFlushMs >= l.mu.cfg.FlushMs {
		return l.flushLocked(nowMs)
	}
	return nil
}

// MaybeRoll rolls the active segment when it is non-empty and older than segment.ms; the
// replica manager calls it periodically.
func (l *Log) MaybeRoll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		if errors.Is(err, ErrClosed) {
			return nil
		}
		return err
	}
	act := l.activeLocked()
	if act.size > 0 && act.rollBaseMs >= 0 && l.now().UnixMilli()-act.rollBaseMs > l.mu.cfg.SegmentMs {
		return l.rollLocked(act.end)
	}
	return nil
}

// writeCheckpointLocked persists the log start offset and recovery point. On a full disk,
// where the temporary file cannot be written, it overwrites the existing checkpoint in place
// (same size, no new blocks; the CRC catches a torn write), so that DeleteRecords and
// retention keep working while the disk is full.
func (l *Log) writeCheckpointLocked() error {
	cp := logCheckpoint{logStart: l.mu.logStart, recoveryPoint: l.mu.recoveryPoint}
	if l.mu.checkpointWritten && l.mu.checkpoint == cp {
		return nil
	}
	if err := l.changingLocked(); err != nil {
		return err
	}
	b := cp.encode()
	l.mu.checkpointWritten = false
	err := writeFileAtomic(l.fs, l.dir, logCheckpointFile, b, !l.mu.deferSync)
	if err != nil && IsDiskFull(err) && overwriteInPlace(l.fs, l.dir, logCheckpointFile, b) == nil {
		err = nil
	}
	if err == nil {
		l.mu.checkpoint, l.mu.checkpointWritten = cp, true
		return nil
	}
	if err != nil {
		err = diskFull(l.dir, err)
		l.stateWriteFailed("writing log checkpoint", err)
		return fmt.Errorf("writing log checkpoint: %w", err)
	}
	return nil
}

// stateWriteFailed logs a failed write of a state file: a warning when the disk is full (the
// data is intact; the file is rewritten later or the next start recovers), an error otherwise.
func (l *Log) stateWriteFailed(what string, err error) {
	if IsDiskFull(err) {
		l.logger.Warn(what+": disk full", "dir", l.dir, "err", err)
		return
	}
	l.logger.Error(what, "dir", l.dir, "err", err)
}

// writeEpochsLocked persists the leader-epoch cache; on failure it stays dirty and is retried
// at the next flush or close, and the error is returned.
func (l *Log) writeEpochsLocked() error {
	if err := l.changingLocked(); err != nil {
		return err
	}
	if err := writeFileAtomic(l.fs, l.dir, epochCheckpointFile, l.mu.epochs.encode(), !l.mu.deferSync); err != nil {
		err = diskFull(l.dir, err)
		l.stateWriteFailed("writing leader-epoch checkpoint", err)
		return fmt.Errorf("writing leader-epoch checkpoint: %w", err)
	}
	l.mu.epochs.dirty = false
	return nil
}

// snapshotsToKeep is how many producer snapshots are kept.
const snapshotsToKeep = 3

// writeSnapshotLocked writes the producer state as of offset and prunes old snapshots. A
// snapshot is an optimization (state can be rebuilt from the log), so errors are only logged.
func (l *Log) writeSnapshotLocked(offset int64, sync bool) error {
	if err := l.changingLocked(); err != nil {
		return err
	}
	l.mu.noSnapshots = false
	if err := writeFileAtomic(l.fs, l.dir, fileName(offset, snapshotSuffix), l.mu.producers.encodeSnapshot(), sync); err != nil {
		err = diskFull(l.dir, err)
		l.logger.Warn("writing producer snapshot", "dir", l.dir, "offset", offset, "err", err)
		return err
	}
	offs, _ := l.listSnapshots()
	for len(offs) > snapshotsToKeep {
		_ = l.fs.Remove(filepath.Join(l.dir, fileName(offs[0], snapshotSuffix)))
		offs = offs[1:]
	}
	return nil
}

// listSnapshots returns the offsets of the producer snapshots, ascending.
func (l *Log) listSnapshots() ([]int64, error) {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range entries {
		if off, ok := parseFileName(e.Name(), snapshotSuffix); ok {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// removeSnapshotsAbove removes the snapshots taken after offset.
func (l *Log) removeSnapshotsAbove(offset int64) {
	offs, _ := l.listSnapshots()
	for _, off := range offs {
		if off > offset {
			_ = l.fs.Remove(filepath.Join(l.dir, fileName(off, snapshotSuffix)))
		}
	}
}

// changingLocked must precede every change to the log's files: while a clean-shutdown
// marker vouches for them a crash would make the next open trust the files, so the first
// change after a clean open withdraws it durably first: it journals the log's name when the
// log directory's marker names it (DirState.Unvouch), and removes the log's own marker and
// fsyncs the directory when there is one.
func (l *Log) changingLocked() error {
	if !l.mu.clean {
		return nil
	}
	if err := l.withdrawMarkersLocked(); err != nil {
		return err
	}
	l.mu.clean = false
	return nil
}

// withdrawMarkersLocked makes sure no clean-shutdown marker vouches for the log any more.
func (l *Log) withdrawMarkersLocked() error {
	if err := l.dirState.Unvouch(l.name); err != nil {
		return err
	}
	if !l.mu.ownMarker {
		return nil
	}
	if err := l.fs.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing clean-shutdown marker: %w", err)
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return fmt.Errorf("syncing log directory: %w", err)
	}
	l.mu.ownMarker = false
	return nil
}

// Close flushes everything, writes the producer snapshot, the checkpoints and the
// clean-shutdown marker, each fsynced, and closes the files. A log whose files did not change
// since a clean open (its marker is still on disk) only closes its files: what the marker
// vouches for is still true. Later calls return nil. A shutdown closes many logs at once with
// CloseLogs, which syncs whole filesystems instead of each file.
func (l *Log) Close() error {
	if !l.markClosed() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.clean {
		return l.closeResultLocked(l.closeFilesLocked(), nil)
	}
	full, err := l.writeStateLocked(true)
	err = cmp.Or(err, l.closeFilesLocked())
	l.deletes.flush()
	if err == nil && full == nil {
		full, err = splitDiskFull(writeFileAtomic(l.fs, l.dir, cleanShutdownFile, nil, true))
	}
	return l.closeResultLocked(err, full)
}

// markClosed refuses further mutations and waits for the background flusher; false means the
// log was closed already.
func (l *Log) markClosed() bool {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return false
	}
	l.mu.closed = true
	l.mu.Unlock()
	l.background.Wait()
	return true
}

// splitDiskFull sorts an error into a disk-full one, which a close tolerates (see the package
// doc), and any other.
func splitDiskFull(err error) (full, other error) {
	if err != nil && IsDiskFull(err) {
		return err, nil
	}
	return nil, err
}

// writeStateLocked seals the active segment and writes the producer snapshot, the
// leader-epoch checkpoint when dirty and the log checkpoint. With sync it first fsyncs the
// segments and advances the recovery point, and fsyncs each file it writes; without, the
// caller makes everything durable later, and the log checkpoint keeps the recovery point
// below which the segments already are. A state file that cannot be written for lack of space
// does not fail the close: full is the first such error, and the log must get no marker.
func (l *Log) writeStateLocked(sync bool) (full, err error) {
	tolerate := func(err error) error {
		f, other := splitDiskFull(err)
		full = cmp.Or(full, f)
		return other
	}
	err = l.mu.failed
	if err == nil {
		err = tolerate(l.activeLocked().seal())
	}
	if err == nil && sync {
		err = l.flushLocked(l.now().UnixMilli())
	}
	if err == nil && !l.noProducerStateLocked() {
		err = tolerate(l.writeSnapshotLocked(l.endLocked(), sync))
	}
	if err == nil && l.mu.epochs.dirty {
		err = tolerate(l.writeEpochsLocked())
	}
	if err == nil {
		err = tolerate(l.writeCheckpointLocked())
	}
	return full, err
}

// noProducerStateLocked reports that the log needs no producer snapshot: it holds no batch
// and no producer, and no snapshot is on disk, so an open rebuilds the same (empty) state
// from nothing. A log that never had a snapshot knows it without listing its directory
// (which, for 100,000 new logs at shutdown, was most of the cost of closing them).
func (l *Log) noProducerStateLocked() bool {
	if l.endLocked() != l.mu.logStart || len(l.mu.producers.producers) > 0 {
		return false
	}
	if l.mu.noSnapshots {
		return true
	}
	offs, err := l.listSnapshots()
	return err == nil && len(offs) == 0
}

// closeFilesLocked closes the segments' files and publishes the closed view.
func (l *Log) closeFilesLocked() error {
	var err error
	for _, s := range l.mu.segments {
		err = cmp.Or(err, s.close())
	}
	l.publishLocked()
	return err
}

// closeResultLocked is the result of a close: err wrapped with the log, or a warning when the
// disk was full (no clean-shutdown marker was written).
func (l *Log) closeResultLocked(err, full error) error {
	if err != nil {
		return fmt.Errorf("closing log %s: %w", l.dir, err)
	}
	if full != nil {
		l.logger.Warn("disk full at close: state files not all written, so no clean-shutdown marker; the next start recovers this log from its segments",
			"dir", l.dir, "err", diskFull(l.dir, full))
	}
	return nil
}

// Delete closes the log and removes its directory. The log directory's marker stops
// vouching for it first, so that a directory a crash left half removed is recovered, not
// trusted, if a log of that name is opened again.
func (l *Log) Delete() error {
	cerr := l.Close()
	if err := l.dirState.Unvouch(l.name); err != nil {
		l.logger.Warn("journaling the deletion of a cleanly closed log", "dir", l.dir, "err", err)
	}
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("deleting log %s: %w", l.dir, err)
	}
	if cerr != nil && !errors.Is(cerr, ErrClosed) {
		l.logger.Warn("closing log before deleting it", "dir", l.dir, "err", cerr)
	}
	return nil
}

// deleteQueue holds the files of removed segments until FileDeleteDelayMs has passed, so
// readers that loaded an older view can finish.
type deleteQueue struct {
	mu      sync.Mutex
	pending []*pendingDelete
}

type pendingDelete struct {
	once     sync.Once
	timer    *time.Timer
	run      func()
	finished atomic.Bool
}

// do runs the deletion once.
func (d *pendingDelete) do() {
	d.once.Do(func() {
		d.run()
		d.finished.Store(true)
	})
}

// scheduleDeleteLocked renames a removed segment's files to *.deleted, then closes and removes
// them after the configured delay.
func (l *Log) scheduleDeleteLocked(s *segment) {
	paths, _ := l.renameDeleted(s, func(p string, err error) {
		l.logger.Warn("renaming deleted segment file", "file", p, "err", err)
	})
	l.scheduleRemovalLocked(s, paths)
}

// renameDeleted renames a segment's files to *.deleted and returns their paths (the old path
// of a file that could not be renamed) and the first error; a missing file is not one. failed
// is called with each error.
func (l *Log) renameDeleted(s *segment, failed func(path string, err error)) (paths []string, first error) {
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		p := s.path(suffix)
		if err := l.fs.Rename(p, p+deletedSuffix); err == nil {
			p += deletedSuffix
		} else if !errors.Is(err, os.ErrNotExist) {
			failed(p, err)
			first = cmp.Or(first, err)
		}
		paths = append(paths, p)
	}
	return paths, first
}

// scheduleRemovalLocked closes a removed segment's files and removes them (paths) after
// FileDeleteDelayMs, or at once without a delay.
func (l *Log) scheduleRemovalLocked(s *segment, paths []string) {
	fsys, logger := l.fs, l.logger
	d := &pendingDelete{run: func() {
		_ = s.close()
		for _, p := range paths {
			if err := fsys.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				logger.Warn("removing deleted segment file", "file", p, "err", err)
			}
		}
	}}
	delay := time.Duration(l.mu.cfg.FileDeleteDelayMs) * time.Millisecond
	if delay <= 0 {
		d.do()
		return
	}
	l.deletes.mu.Lock()
	defer l.deletes.mu.Unlock()
	l.deletes.pending = slices.DeleteFunc(l.deletes.pending, func(p *pendingDelete) bool { return p.finished.Load() })
	l.deletes.pending = append(l.deletes.pending, d)
	d.timer = time.AfterFunc(delay, d.do)
}

// flush runs every pending deletion now.
func (q *deleteQueue) flush() {
	q.mu.Lock()
	pending := q.pending
	q.pending = nil
	q.mu.Unlock()
	for _, d := range pending {
		if d.timer != nil {
			d.timer.Stop()
		}
		d.do()
	}
}
