package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

// ErrCleanAborted is returned by Log.Clean when the log changed under a pass in a way that
// voids it (truncated, segments deleted by retention or DeleteRecords, closed): the groups
// already swapped stay (they are correct), the rest is dropped, the cleaner checkpoint is left
// as it was, and a later pass starts again.
var ErrCleanAborted = errors.New("storage: cleaning abandoned: the log changed under it")

// DefaultDedupeBufferBytes is Kafka's log.cleaner.dedupe.buffer.size (128 MiB), the offset
// map's memory when CleanOptions gives neither a map nor a size.
const DefaultDedupeBufferBytes = 128 << 20

// cleanerState is the cleaner's part of a log, guarded by Log.mu.
type cleanerState struct {
	// firstDirty is the cleaner checkpoint: the offsets below were cleaned at least once; -1
	// when never (the log start is then the first dirty offset).
	firstDirty int64
	// written: firstDirty is what the cleaner-checkpoint file holds.
	written bool
	// horizonMs is the earliest delete horizon of the tombstones and transaction markers the
	// last pass kept (math.MaxInt64 when none, or not known since the open).
	horizonMs int64
}

// CleanState is what CleanableState reports of a log, for the broker to pick the log to
// clean next, as Kafka's LogCleanerManager does.
type CleanState struct {
	// Compact reports cleanup.policy includes compact; nothing else matters when it does not.
	Compact bool
	// FirstDirtyOffset is where the next pass starts: the cleaner checkpoint, or the log start
	// offset when there is none or it is below it.
	FirstDirtyOffset int64
	// FirstUncleanableOffset bounds the pass: the lowest of the active segment's base offset,
	// the caller's upper bound (the high watermark or last stable offset), and the base of the
	// first dirty segment whose newest record is younger than min.compaction.lag.ms.
	FirstUncleanableOffset int64
	// CleanBytes is the size of the segments wholly below FirstDirtyOffset, CleanableBytes that
	// of the sealed segments holding offsets in [FirstDirtyOffset, FirstUncleanableOffset),
	// and TotalBytes their sum (Kafka's LogToClean).
	CleanBytes, CleanableBytes, TotalBytes int64
	// DirtyRatio is CleanableBytes / TotalBytes (0 when both are 0).
	DirtyRatio float64
	// MaxCompactionDelayMs is how long ago the oldest dirty segment's first batch passed
	// max.compaction.lag.ms; above 0 the log is cleaned whatever its dirty ratio.
	MaxCompactionDelayMs int64
	// TombstoneHorizonMs is the earliest delete horizon of the tombstones (and transaction
	// markers without data) the last pass of this process kept, -1 when none is known: once
	// it has passed, a pass removes them.
	TombstoneHorizonMs int64
	// Cleanable: Compact, and either dirty bytes with a dirty ratio above
	// min.cleanable.dirty.ratio or a positive MaxCompactionDelayMs, or tombstones or markers
	// whose horizon has passed in cleaned segments.
	Cleanable bool
}

// CleanOptions are the collaborators of one cleaning pass.
type CleanOptions struct {
	// UpperBound: no offset at or above it is cleaned. The broker passes the partition's last
	// stable offset (at most its high watermark), as Kafka never cleans beyond it; 0 cleans
	// nothing and math.MaxInt64 bounds nothing.
	UpperBound int64
	// OffsetMap is the key → offset map, cleared and reused by each pass (one per cleaner
	// goroutine); nil makes one of DedupeBufferBytes for this pass.
	OffsetMap *OffsetMap
	// DedupeBufferBytes sizes the map made when OffsetMap is nil; 0 is
	// DefaultDedupeBufferBytes.
	DedupeBufferBytes int64
	// Throttler bounds the pass's reads and writes; nil does not throttle.
	Throttler Throttler
}

// CleanStats describes one pass, for the broker's log line.
type CleanStats struct {
	// FirstDirtyOffset is where the pass started, EndOffset where the next one starts (the new
	// cleaner checkpoint). MapFull reports that the offset map filled before the dirty section
	// ended: the next pass continues from EndOffset.
	FirstDirtyOffset, EndOffset int64
	MapFull                     bool
	// MapEntries is the number of distinct keys mapped.
	MapEntries int
	// BytesRead counts the dirty section read to build the map and the segments read to
	// rewrite them; BytesWritten the cleaned segments written.
	BytesRead, BytesWritten int64
	// RecordsRead and RecordsKept count the records of the rewritten segments.
	RecordsRead, RecordsKept int64
	// SegmentsBefore and SegmentsAfter count the log's segments (the active one included).
	SegmentsBefore, SegmentsAfter int
	// BytesBefore and BytesAfter are the log's size.
	BytesBefore, BytesAfter int64
	Duration                time.Duration
}

// CleanableState reports the log's cleaning state at nowMs with offsets at or above
// upperBound (the high watermark or last stable offset) left alone; see CleanState. It does
// not block appends.
func (l *Log) CleanableState(nowMs, upperBound int64) CleanState {
	l.mu.Lock()
	cfg, cs, v := l.mu.cfg, l.mu.cleaner, l.view.Load()
	l.mu.Unlock()
	return cleanableState(v, cfg, cs, nowMs, l.cleanUpperBound(v, upperBound))
}

// cleanUpperBound lowers the caller's upper bound to the log's first unstable offset (the
// oldest open transaction, or completed one whose marker is not below the last noted high
// watermark), so that no transaction is cleaned before it is decided and replicated, whatever
// bound the caller passed.
func (l *Log) cleanUpperBound(v *logView, upperBound int64) int64 {
	if first, ok := v.txns.firstUnstable(l.highWatermark.Load()); ok {
		return min(upperBound, first)
	}
	return upperBound
}

// cleanableState computes CleanState from a view of the log.
func cleanableState(v *logView, cfg LogConfig, cs cleanerState, nowMs, upperBound int64) CleanState {
	st := CleanState{Compact: cfg.Cleanup.Compacts(), TombstoneHorizonMs: -1}
	st.FirstDirtyOffset = cs.firstDirty
	if st.FirstDirtyOffset < v.start || st.FirstDirtyOffset > v.end {
		st.FirstDirtyOffset = v.start
	}
	uncleanable := min(v.active.seg.base, upperBound)
	var earliestFirstTs int64 = math.MaxInt64
	for i := range v.sealed {
		info := &v.sealed[i]
		if info.end <= st.FirstDirtyOffset || info.seg.base >= uncleanable {
			continue
		}
		if cfg.MinCompactionLagMs > 0 && largestTimestamp(info, nowMs) > nowMs-cfg.MinCompactionLagMs {
			uncleanable = info.seg.base
			break
		}
		if ts := firstBatchTimestamp(info); ts > 0 {
			earliestFirstTs = min(earliestFirstTs, ts)
		}
	}
	st.FirstUncleanableOffset = max(uncleanable, st.FirstDirtyOffset)
	for i := range v.sealed {
		info := &v.sealed[i]
		switch {
		case info.end <= st.FirstDirtyOffset:
			st.CleanBytes += info.size
		case info.seg.base < st.FirstUncleanableOffset:
			st.CleanableBytes += info.size
		}
	}
	st.TotalBytes = st.CleanBytes + st.CleanableBytes
	if st.TotalBytes > 0 {
		st.DirtyRatio = float64(st.CleanableBytes) / float64(st.TotalBytes)
	}
	if lag := cfg.maxCompactionLagMs(); lag < math.MaxInt64 && earliestFirstTs < nowMs-lag {
		st.MaxCompactionDelayMs = nowMs - lag - earliestFirstTs
	}
	if cs.horizonMs < math.MaxInt64 {
		st.TombstoneHorizonMs = cs.horizonMs
	}
	dirty := st.CleanableBytes > 0 && (st.DirtyRatio > cfg.MinCleanableDirtyRatio || st.MaxCompactionDelayMs > 0)
	tombstones := st.TombstoneHorizonMs >= 0 && st.TombstoneHorizonMs <= nowMs && st.CleanBytes > 0
	st.Cleanable = st.Compact && (dirty || tombstones)
	return st
}

// largestTimestamp is Kafka's segment.largestTimestamp for a reader: the max record timestamp,
// or the file's modification time when the segment has none.
func largestTimestamp(info *segmentInfo, nowMs int64) int64 {
	if info.maxTs >= 0 {
		return info.maxTs
	}
	if fi, err := info.seg.log.Stat(); err == nil {
		return fi.ModTime().UnixMilli()
	}
	return nowMs
}

// firstBatchTimestamp returns the max timestamp of a segment's first batch (Kafka's
// getFirstBatchTimestamp, what max.compaction.lag.ms is judged by), or -1.
func firstBatchTimestamp(info *segmentInfo) int64 {
	var hb [records.HeaderSize]byte
	if info.size < records.HeaderSize {
		return -1
	}
	if _, err := info.seg.log.ReadAt(hb[:], 0); err != nil {
		return -1
	}
	h, err := records.ParseHeader(hb[:])
	if err != nil {
		return -1
	}
	return h.MaxTimestamp
}

// cleanPass is one run of Clean.
type cleanPass struct {
	l      *Log
	ctx    context.Context
	opts   CleanOptions
	cfg    LogConfig
	view   *logView
	gen    uint64 // l.mu.truncations when the pass started
	stats  CleanStats
	filter batchFilter
}

// Clean runs one cleaning pass over the log, as Kafka's Cleaner.clean: it maps each key of
// the dirty section [FirstDirtyOffset, FirstUncleanableOffset) to its last offset (up to what
// the offset map holds), then rewrites every sealed segment from the first to the end of the
// mapped section, in groups merged up to segment.bytes, keeping the records that are the
// latest of their key (or beyond the map), and swaps each group's cleaned segment in (see
// "Log cleaning" in the package doc). It does nothing unless cleanup.policy includes compact;
// it does not look at the dirty ratio (CleanableState is the broker's guide).
//
// Appends, reads and the other operations go on during the pass: the heavy work reads the
// sealed segments and writes the cleaned ones without Log.mu, which is held only to swap a
// group in and to write the cleaner checkpoint. A pass that finds the log truncated, its
// segments deleted or the log closed abandons with ErrCleanAborted.
func (l *Log) Clean(ctx context.Context, opts CleanOptions) (CleanStats, error) {
	l.cleaning.Lock()
	defer l.cleaning.Unlock()
	started := time.Now()
	p := &cleanPass{l: l, ctx: ctx, opts: opts}
	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return p.stats, err
	}
	p.cfg, p.view, p.gen = l.mu.cfg, l.view.Load(), l.mu.truncations
	nowMs := l.now().UnixMilli()
	st := cleanableState(p.view, p.cfg, l.mu.cleaner, nowMs, l.cleanUpperBound(p.view, opts.UpperBound))
	p.filter = batchFilter{nowMs: nowMs, deleteRetentionMs: p.cfg.DeleteRetentionMs, nextHorizonMs: math.MaxInt64,
		lastBatchOf: make(map[int64]int64, len(l.mu.producers.producers)), markerEpochOf: make(map[int64]int16),
		droppedMarkers: make(map[int64]bool)}
	if len(p.view.sealed) > 0 {
		p.filter.txns = newTxnTracker(p.view, p.view.sealed[0].seg.base)
	}
	for id, e := range l.mu.producers.producers {
		if last, ok := e.last(); ok {
			p.filter.lastBatchOf[id] = last.lastOffset
		} else if e.coordEpoch >= 0 {
			p.filter.markerEpochOf[id] = e.epoch
		}
	}
	l.mu.Unlock()
	p.stats.FirstDirtyOffset, p.stats.EndOffset = st.FirstDirtyOffset, st.FirstDirtyOffset
	p.stats.SegmentsBefore, p.stats.BytesBefore = p.view.count(), p.view.size
	if !st.Compact || st.CleanBytes+st.CleanableBytes == 0 {
		p.stats.SegmentsAfter, p.stats.BytesAfter = p.stats.SegmentsBefore, p.stats.BytesBefore
		return p.stats, nil
	}
	err := p.run(st)
	v := l.view.Load()
	p.stats.SegmentsAfter, p.stats.BytesAfter = v.count(), v.size
	p.stats.RecordsRead, p.stats.RecordsKept = p.filter.recordsRead, p.filter.recordsKept
	p.stats.Duration = time.Since(started)
	return p.stats, err
}

// run maps the dirty section, cleans the groups and records the new checkpoint.
func (p *cleanPass) run(st CleanState) error {
	m := p.opts.OffsetMap
	if m == nil {
		m = NewOffsetMap(cmpOr(p.opts.DedupeBufferBytes, DefaultDedupeBufferBytes))
	}
	m.clear()
	p.filter.offsets = m
	mappedEnd, err := p.buildOffsetMap(m, st.FirstDirtyOffset, st.FirstUncleanableOffset)
	if err != nil {
		return p.voided(err)
	}
	p.stats.EndOffset, p.stats.MapEntries = mappedEnd, m.Len()
	p.filter.mappedEnd = mappedEnd
	for _, group := range groupSegments(p.view, mappedEnd, p.cfg) {
		if err := p.cleanGroup(group); err != nil {
			return p.voided(err)
		}
	}
	return p.finish(mappedEnd)
}

func cmpOr(a, b int64) int64 {
	if a > 0 {
		return a
	}
	return b
}

// voided returns ErrCleanAborted when the log changed under the pass (a read of a deleted
// segment fails, a truncation rewrote one), else err.
func (p *cleanPass) voided(err error) error {
	if errors.Is(err, ErrCleanAborted) {
		return err
	}
	l := p.l
	l.mu.Lock()
	changed := l.mu.closed || l.mu.truncations != p.gen
	l.mu.Unlock()
	if changed || isClosedFile(err) {
		return fmt.Errorf("%w: %w", ErrCleanAborted, err)
	}
	return fmt.Errorf("cleaning log %s: %w", l.dir, err)
}

// charge counts n bytes of I/O (one batch read or one segment written) against the
// throttler and checks the context.
func (p *cleanPass) charge(n int64) error {
	if p.opts.Throttler != nil {
		return p.opts.Throttler.Wait(p.ctx, n)
	}
	return p.ctx.Err()
}

// buildOffsetMap maps the keys of the whole batches in [from, upper) of the sealed segments,
// stopping when the map is full. It returns the end of the mapped section: records below it
// were mapped (or have no key), records at or above it were not.
func (p *cleanPass) buildOffsetMap(m *OffsetMap, from, upper int64) (mappedEnd int64, err error) {
	mappedEnd = upper
	done := false
	txns := newTxnTracker(p.view, from)
	for i := range p.view.sealed {
		info := &p.view.sealed[i]
		if info.end <= from {
			continue
		}
		if done || info.seg.base >= upper {
			break
		}
		var stepErr error
		_, err := scanFrom(info, from, true, func(h *records.Header, _ int64, batch []byte) bool {
			if h.LastOffset() >= upper {
				mappedEnd, done = max(h.BaseOffset, from), true
				return true
			}
			p.stats.BytesRead += int64(len(batch))
			txn, err := txns.next(batch, h)
			full, stoppedAt := false, int64(0)
			if err == nil && !h.IsControl() && !txn.aborted {
				full, stoppedAt, err = mapBatch(m, batch, h, from)
			}
			if err == nil && full {
				mappedEnd, done, p.stats.MapFull = stoppedAt, true, true
				return true
			}
			if err == nil {
				err = p.charge(int64(len(batch)))
			}
			stepErr = err
			return err != nil
		})
		if err = cmpErr(err, stepErr); err != nil {
			return 0, err
		}
	}
	return mappedEnd, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// groupSegments splits the sealed segments holding offsets below end into the groups that are
// cleaned into one segment each, as Kafka's groupSegmentsBySize: adjacent segments while the
// group's bytes stay within segment.bytes, its index files within segment.index.bytes, and its
// offsets within a segment's relative range.
func groupSegments(v *logView, end int64, cfg LogConfig) [][]*segmentInfo {
	var groups [][]*segmentInfo
	var cur []*segmentInfo
	var size, offIdx, timeIdx int64
	maxIndex := int64(cfg.SegmentIndexBytes)
	for i := range v.sealed {
		info := &v.sealed[i]
		if info.seg.base >= end {
			break
		}
		io, it := int64(info.index.offsetCount)*offsetEntrySize, int64(info.index.timeCount)*timeEntrySize
		if len(cur) > 0 && size+info.size <= cfg.SegmentBytes && offIdx+io <= maxIndex && timeIdx+it <= maxIndex &&
			(info.size == 0 || info.end-1-cur[0].seg.base <= math.MaxInt32) {
			cur = append(cur, info)
			size, offIdx, timeIdx = size+info.size, offIdx+io, timeIdx+it
			continue
		}
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		cur = []*segmentInfo{info}
		size, offIdx, timeIdx = info.size, io, it
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// cleanGroup writes the cleaned segment of one group and swaps it in. A single segment in
// which nothing changes is left as it is.
func (p *cleanPass) cleanGroup(group []*segmentInfo) error {
	lastFull := -1 // the last segment of the group holding batches
	for i, info := range group {
		if info.size > 0 {
			lastFull = i
		}
	}
	if lastFull < 0 {
		return nil
	}
	l := p.l
	cs, err := createCleaned(l.fs, l.dir, group[0].seg.base, int64(p.cfg.IndexIntervalBytes))
	if err != nil {
		return err
	}
	changed := len(group) > 1
	for i, info := range group {
		keptFromSegment := false
		var lastBatch []byte
		_, stepErr := scanFrom(info, info.seg.base, true, func(h *records.Header, _ int64, batch []byte) bool {
			p.stats.BytesRead += int64(len(batch))
			n := len(cs.pending)
			var ch bool
			cs.pending, ch, err = p.filter.filter(cs.pending, batch, h)
			changed = changed || ch
			keptFromSegment = keptFromSegment || len(cs.pending) > n
			if i == lastFull {
				lastBatch = append(lastBatch[:0], batch[:records.HeaderSize]...)
			}
			if err == nil {
				err = cs.added(n)
			}
			if err == nil {
				err = p.charge(int64(len(batch)))
			}
			return err != nil
		})
		if err = cmpErr(stepErr, err); err != nil {
			cs.abandon()
			return err
		}
		if i == lastFull && !keptFromSegment && lastBatch != nil {
			// Keep the group's last batch, emptied (of no producer when it was a marker), so
			// that the cleaned segment reaches into the last old segment: recovery replaces
			// the old segments whose base is below the end of a .swap segment (see
			// completeSwapsLocked).
			n := len(cs.pending)
			cs.pending = appendPlaceholder(cs.pending, lastBatch)
			if err := cs.added(n); err != nil {
				cs.abandon()
				return err
			}
		}
	}
	if !changed {
		cs.abandon()
		return nil
	}
	for _, info := range group {
		for _, a := range info.aborted {
			if !p.filter.droppedMarkers[a.LastOffset] {
				cs.aborted = append(cs.aborted, a)
			}
		}
	}
	written, err := cs.finish()
	p.stats.BytesWritten += written
	if err == nil {
		err = p.charge(written)
	}
	if err != nil {
		cs.abandon()
		return err
	}
	return l.swapIn(p, group, cs)
}

// finish records the new first dirty offset and the tombstone horizon once every group is
// swapped in.
func (p *cleanPass) finish(mappedEnd int64) error {
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed || l.mu.truncations != p.gen {
		return ErrCleanAborted
	}
	l.mu.cleaner.horizonMs = p.filter.nextHorizonMs
	return l.setCleanerCheckpointLocked(max(mappedEnd, l.mu.logStart))
}

// setCleanerCheckpointLocked sets and persists the first dirty offset.
func (l *Log) setCleanerCheckpointLocked(firstDirty int64) error {
	if l.mu.cleaner.written && l.mu.cleaner.firstDirty == firstDirty {
		return nil
	}
	l.mu.cleaner.firstDirty, l.mu.cleaner.written = firstDirty, false
	if err := l.changingLocked(); err != nil {
		return err
	}
	if err := writeFileAtomic(l.fs, l.dir, cleanerCheckpointFile, encodeCleanerCheckpoint(firstDirty), !l.mu.deferSync); err != nil {
		err = diskFull(l.dir, err)
		l.stateWriteFailed("writing cleaner checkpoint", err)
		return fmt.Errorf("writing cleaner checkpoint: %w", err)
	}
	l.mu.cleaner.written = true
	return nil
}

// lowerCleanerCheckpointLocked keeps the cleaner checkpoint at or below the log end after a
// truncation, as Kafka's maybeTruncateCheckpoint: offsets written again after the truncation
// point are dirty.
func (l *Log) lowerCleanerCheckpointLocked(end int64) {
	if l.mu.cleaner.firstDirty > end {
		l.setCleanerCheckpointLocked(end)
	}
}

// loadCleanerCheckpoint reads the cleaner checkpoint at open; a missing or corrupt one means
// never cleaned (a corrupt one only makes the next pass map more).
func (l *Log) loadCleanerCheckpointLocked() {
	l.mu.cleaner = cleanerState{firstDirty: -1, horizonMs: math.MaxInt64}
	b, err := readSmallFile(l.fs, filepath.Join(l.dir, cleanerCheckpointFile), 1<<10)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("reading cleaner checkpoint", "dir", l.dir, "err", err)
		}
		return
	}
	off, err := decodeCleanerCheckpoint(b)
	if err != nil {
		l.logger.Warn("ignoring corrupt cleaner checkpoint", "dir", l.dir, "err", err)
		return
	}
	l.mu.cleaner.firstDirty, l.mu.cleaner.written = off, true
}
