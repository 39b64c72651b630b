package storage

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

// OpenLog opens the log in dir, creating it if needed, and recovers it if it was not closed
// cleanly (see the package doc).
func OpenLog(dir string, cfg LogConfig, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, fs: opts.FS, logger: opts.Logger, now: opts.Now, floor: opts.Floor,
		dirState: dirStateOf(opts.DirState, dir), name: filepath.Base(dir)}
	if l.fs == nil {
		l.fs = OSFS{}
	}
	cache := opts.FileCache
	if cache == nil {
		cache = DefaultFileCache()
	}
	l.fs = cache.wrap(l.fs)
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.mu.cfg = cfg
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.loadLocked(); err != nil {
		for _, s := range l.mu.segments {
			s.close()
		}
		return nil, fmt.Errorf("opening log %s: %w", dir, err)
	}
	return l, nil
}

// loadLocked reads the directory, opens and (if needed) recovers the segments, and loads the
// checkpoints, the leader-epoch cache and the producer state.
func (l *Log) loadLocked() error {
	if err := l.completeSwapsLocked(); err != nil {
		return err
	}
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	ownMarker := false
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == cleanShutdownFile:
			ownMarker = true
		case strings.HasSuffix(name, deletedSuffix) || strings.HasSuffix(name, tmpSuffix):
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				l.logger.Warn("removing leftover file", "file", name, "err", err)
			}
		default:
			if base, ok := parseFileName(name, logSuffix); ok {
				bases = append(bases, base)
			}
		}
	}
	haveLog := make(map[int64]bool, len(bases))
	for _, base := range bases {
		haveLog[base] = true
	}
	for _, e := range entries {
		for _, suffix := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if base, ok := parseFileName(e.Name(), suffix); ok && !haveLog[base] {
				_ = l.fs.Remove(filepath.Join(l.dir, e.Name()))
			}
		}
	}
	slices.Sort(bases)

	clean := ownMarker || l.dirState.Vouches(l.name)
	l.mu.clean, l.mu.ownMarker = clean, ownMarker
	l.loadCleanerCheckpointLocked()
	cp, haveCP := l.readCheckpoint()
	if !haveCP {
		// The marker vouches for complete state files: rewrite the missing checkpoint.
		if err := l.changingLocked(); err != nil {
			return err
		}
	}
	nowMs := l.now().UnixMilli()
	l.mu.lastFlushMs = nowMs
	l.mu.producers = newProducerStates()
	epochsValid, epochsFile := l.readEpochsLocked()

	if len(bases) == 0 {
		start := int64(0)
		if haveCP {
			start = cp.logStart
		}
		if err := l.changingLocked(); err != nil {
			return err
		}
		s, err := createSegment(l.fs, l.dir, start)
		if err != nil {
			return err
		}
		l.mu.segments = []*segment{s}
		l.mu.epochs.clear()
		return l.finishLoadLocked(start, nil, false, epochsFile)
	}

	segs := make([]*segment, 0, len(bases))
	missing := make([]bool, 0, len(bases))
	for _, base := range bases {
		s, m, err := openSegment(l.fs, l.dir, base)
		if err != nil {
			return err
		}
		segs = append(segs, s)
		missing = append(missing, m)
		l.mu.segments = segs // so that a failure closes them
	}
	recoverFrom := len(segs)
	if !clean {
		recoverFrom = 0
		if haveCP {
			for recoverFrom+1 < len(segs) && segs[recoverFrom+1].base <= cp.recoveryPoint {
				recoverFrom++
			}
		}
		recoverFrom = min(recoverFrom, len(segs)-1)
		if epochsValid {
			l.mu.epochs.truncateFromEnd(segs[recoverFrom].base)
		}
	}
	visit := func(h *records.Header) {
		if epochsValid {
			l.mu.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
		}
	}
	var recovered []*segment
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		last := i == len(segs)-1
		needRecovery := i >= recoverFrom || missing[i]
		if !needRecovery {
			var ok bool
			var err error
			if last {
				ok, err = s.loadActive(nowMs)
			} else {
				ok, err = s.loadSealed(segs[i+1].base)
			}
			var c *corruption
			if errors.As(err, &c) {
				ok, err = false, nil
			}
			if err != nil {
				return fmt.Errorf("loading segment %d: %w", s.base, err)
			}
			if !ok {
				l.logger.Warn("rebuilding missing or corrupt index", "dir", l.dir, "segment", s.base)
			}
			needRecovery = !ok
		} else if missing[i] {
			l.logger.Warn("rebuilding missing index", "dir", l.dir, "segment", s.base)
		}
		if !needRecovery {
			continue
		}
		if err := l.changingLocked(); err != nil {
			return err
		}
		bad, err := s.recoverSegment(int64(l.mu.cfg.IndexIntervalBytes), nowMs, visit)
		if err != nil {
			return err
		}
		recovered = append(recovered, s)
		if bad != nil {
			l.logger.Warn("truncating log at a torn or corrupt batch", "file", s.path(logSuffix),
				"position", bad.pos, "reason", bad.reason, "dropped_segments", len(segs)-i-1)
			for _, d := range segs[i+1:] {
				d.close()
				l.removeFiles(d)
			}
			segs = segs[:i+1]
			l.mu.segments = segs
			last = true
		}
		if !last {
			if err := s.seal(); err != nil {
				return err
			}
		}
	}
	l.mu.segments = segs
	start := segs[0].base
	if haveCP {
		start = max(start, cp.logStart)
	}
	return l.finishLoadLocked(start, recovered, !epochsValid, epochsFile)
}

// finishLoadLocked completes opening once the segments are loaded: it settles the log start
// offset, makes recovered segments durable, trims the leader-epoch cache and loads producer
// state. A log opened after a clean close whose files needed no change keeps its
// clean-shutdown marker and writes nothing (the first change removes the marker, see
// changingLocked); any other log has its checkpoint written and no marker. rebuildEpochs says
// the leader-epoch checkpoint was missing or corrupt, so the cache is rebuilt from every batch
// header.
func (l *Log) finishLoadLocked(start int64, recovered []*segment, rebuildEpochs, epochsFile bool) error {
	l.rebuildSealedLocked()
	l.mu.logStart = start
	l.publishLocked()
	if rebuildEpochs {
		if err := l.rebuildEpochsLocked(epochsFile); err != nil {
			return err
		}
	}
	end := l.endLocked()
	if start > end {
		l.logger.Warn("log start offset beyond the recovered log end; restarting the log empty",
			"dir", l.dir, "log_start_offset", start, "log_end_offset", end)
		if err := l.truncateFullyLocked(start); err != nil {
			return err
		}
		end = start
	}
	for _, s := range recovered {
		if err := s.sync(); err != nil {
			return err
		}
	}
	l.mu.recoveryPoint = end
	l.mu.flushTarget = end
	l.mu.epochs.truncateFromEnd(end)
	l.mu.epochs.truncateFromStart(start)
	if l.mu.epochs.dirty {
		l.writeEpochsLocked()
	}
	rebuildFrom := int64(math.MaxInt64)
	for _, s := range recovered {
		rebuildFrom = min(rebuildFrom, s.base)
	}
	if err := l.loadProducerStateLocked(rebuildFrom); err != nil {
		return err
	}
	if !l.mu.clean {
		// On a full disk the old checkpoint may stay: its recovery point is lower and its log
		// start no higher than the log's, so it only makes the next recovery read more.
		if err := l.writeCheckpointLocked(); err != nil && !IsDiskFull(err) {
			return err
		}
		if err := syncDir(l.fs, l.dir); err != nil {
			return fmt.Errorf("syncing log directory: %w", err)
		}
	}
	l.publishLocked()
	return nil
}

// readCheckpoint reads the log checkpoint; ok is false when it is missing or corrupt.
func (l *Log) readCheckpoint() (logCheckpoint, bool) {
	b, err := readSmallFile(l.fs, filepath.Join(l.dir, logCheckpointFile), 1<<10)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("reading log checkpoint", "dir", l.dir, "err", err)
		}
		return logCheckpoint{}, false
	}
	cp, err := decodeLogCheckpoint(b)
	if err != nil {
		l.logger.Warn("ignoring corrupt log checkpoint", "dir", l.dir, "err", err)
		return logCheckpoint{}, false
	}
	return cp, true
}

// readEpochsLocked loads the leader-epoch checkpoint; valid is false when it is missing or
// corrupt, in which case the cache is rebuilt from the batches. exists reports that the file
// was there (a corrupt one must be rewritten even when the rebuilt cache is empty).
func (l *Log) readEpochsLocked() (valid, exists bool) {
	b, err := readSmallFile(l.fs, filepath.Join(l.dir, epochCheckpointFile), 16<<20)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("reading leader-epoch checkpoint", "dir", l.dir, "err", err)
			return false, true
		}
		return false, false
	}
	entries, err := decodeEpochCheckpoint(b)
	if err != nil {
		l.logger.Warn("ignoring corrupt leader-epoch checkpoint", "dir", l.dir, "err", err)
		return false, true
	}
	l.mu.epochs.entries = entries
	return true, true
}

// rebuildEpochsLocked refills the leader-epoch cache from the header of every batch. The
// cache is to be written unless it is empty and no checkpoint file exists (a log with no
// batch, closed cleanly, has none: it must open clean again, writing nothing).
func (l *Log) rebuildEpochsLocked(fileExists bool) error {
	l.mu.epochs.clear()
	v := l.view.Load()
	for i := 0; i < v.count(); i++ {
		if _, err := scanFrom(v.at(i), 0, false, func(h *records.Header, _ int64, _ []byte) bool {
			l.mu.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
			return false
		}); err != nil {
			return fmt.Errorf("rebuilding leader-epoch cache: %w", err)
		}
	}
	l.mu.epochs.dirty = fileExists || len(l.mu.epochs.entries) > 0
	return nil
}

// loadProducerStateLocked loads the newest usable producer snapshot at or below the log end
// and replays the batch headers after it (all of them when there is none), reading the
// record of each control batch (transaction markers). Snapshots beyond the log end, or
// corrupt, are removed. The aborted-transaction indexes of the segments whose base is at or
// after rebuildFrom are rebuilt from the replay (so the snapshot used is at or below
// rebuildFrom; math.MaxInt64 rebuilds none). The published view must be current.
func (l *Log) loadProducerStateLocked(rebuildFrom int64) error {
	end := l.endLocked()
	offs, err := l.listSnapshots()
	if err != nil {
		return err
	}
	l.mu.noSnapshots = len(offs) == 0
	ps := newProducerStates()
	from := int64(0)
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		path := l.snapshotPath(off)
		if off > end {
			_ = l.fs.Remove(path)
			continue
		}
		if off > rebuildFrom {
			continue
		}
		b, err := readSmallFile(l.fs, path, 1<<30)
		if err == nil {
			var snap *producerStates
			if snap, err = decodeSnapshot(b); err == nil {
				ps, from = snap, off
				break
			}
		}
		l.logger.Warn("ignoring unreadable producer snapshot", "file", path, "err", err)
		_ = l.fs.Remove(path)
	}
	v := l.view.Load()
	rebuilt := make(map[*segment][]AbortedTxn)
	for i := v.segmentFor(from); i < v.count(); i++ {
		info := v.at(i)
		var ctlBuf []byte
		var replayErr error
		if _, err := scanFrom(info, from, false, func(h *records.Header, pos int64, _ []byte) bool {
			if h.BaseOffset < from {
				return false
			}
			var ctl control
			if h.IsControl() && h.ProducerID >= 0 {
				if cap(ctlBuf) < h.Size() {
					ctlBuf = make([]byte, h.Size())
				}
				batch := ctlBuf[:h.Size()]
				if _, replayErr = info.seg.log.ReadAt(batch, pos); replayErr != nil {
					return true
				}
				if ctl, replayErr = parseControl(batch, h); replayErr != nil {
					return true
				}
			}
			if a, ok := ps.replay(h, ctl); ok && info.seg.base >= rebuildFrom {
				rebuilt[info.seg] = append(rebuilt[info.seg], a)
			}
			return false
		}); err != nil || replayErr != nil {
			return fmt.Errorf("rebuilding producer state: %w", cmp.Or(err, replayErr))
		}
	}
	l.mu.producers = ps
	if rebuildFrom == math.MaxInt64 {
		return nil
	}
	changed := false
	for _, s := range l.mu.segments {
		if s.base < rebuildFrom || (len(s.aborted) == 0 && len(rebuilt[s]) == 0 && s.txnIdx == nil) {
			continue
		}
		if err := s.setAborted(l.fs, rebuilt[s]); err != nil {
			return err
		}
		if err := s.sync(); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		l.rebuildSealedLocked()
		l.publishLocked()
	}
	return nil
}
