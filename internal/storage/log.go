package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

// Options are the collaborators of a Log.
type Options struct {
	// Logger receives recovery warnings and I/O errors; nil discards.
	Logger *slog.Logger
	// Now is the clock (LogAppendTime, segment.ms, retention.ms, flush.ms); nil = time.Now.
	Now func() time.Time
	// FS is the filesystem; nil = the operating system's.
	FS FS
	// FileCache holds the log's open files; nil = DefaultFileCache.
	FileCache *FileCache
	// Floor refuses appends while the log directory's free space is below it; nil = none.
	Floor *SpaceFloor
	// DirState is the clean-shutdown state of the log directory holding the log (its
	// parent directory), shared by its logs; nil (or another directory's) = none: the log
	// relies on its own clean-shutdown marker alone.
	DirState *DirState
}

// AppendResult describes a successful append.
type AppendResult struct {
	// BaseOffset and LastOffset are the offsets of the first and last record appended.
	BaseOffset, LastOffset int64
	// LogAppendTime is the broker time stamped on the batches, -1 unless LogAppendTime.
	LogAppendTime int64
	// LogStartOffset is the log start offset after the append.
	LogStartOffset int64
	// Duplicate reports an idempotent retry of a batch already in the log: nothing was
	// appended and the offsets are the original ones.
	Duplicate bool
}

// Log is one partition's log. See the package doc for the layout and the locking.
type Log struct {
	dir    string
	fs     FS
	logger *slog.Logger
	now    func() time.Time
	floor  *SpaceFloor
	// dirState is the log directory's clean-shutdown state (nil: none); name is the log's
	// directory name in it.
	dirState *DirState
	name     string

	// view is the snapshot readers use; writers replace it holding mu.
	view atomic.Pointer[logView]
	// highWatermark is the highest high watermark noted (NoteHighWatermark): completed
	// transactions whose marker is below it are forgotten.
	highWatermark atomic.Int64

	mu struct {
		sync.Mutex
		cfg           LogConfig
		segments      []*segment    // ascending base offsets; the last is the active segment
		sealed        []segmentInfo // reader snapshots of segments[:len-1]
		sealedSize    int64
		logStart      int64
		recoveryPoint int64 // everything below is fsynced
		lastFlushMs   int64
		producers     *producerStates
		epochs        epochCache
		closed        bool
		failed        error  // sticky: the files no longer match the state after an I/O error
		truncations   uint64 // bumped by truncations; a background flush started before is void
		flushTarget   int64  // the background flusher syncs segments below this offset
		flushing      bool   // the background flusher goroutine runs
		diskFull      bool   // appends fail for lack of space (logged once per episode)
		// clean: a clean-shutdown marker (the log's own, or the log directory's naming it
		// with no journal entry) vouches for the files, which are as the clean close left
		// them; changingLocked withdraws it before the first change. ownMarker: the log's
		// own marker is on disk.
		clean     bool
		ownMarker bool
		// deferSync: a shutdown close (CloseLogs) is writing the state files without fsync;
		// one SyncAll of the filesystem makes them durable before any marker is written.
		deferSync bool
		// checkpoint is the log checkpoint this Log last wrote, if checkpointWritten: a
		// rewrite of the same content is skipped.
		checkpoint        logCheckpoint
		checkpointWritten bool
		// noSnapshots: no producer snapshot is on disk (listed at open, cleared by the
		// first snapshot written), so a close need not list the directory to know it.
		noSnapshots bool
		// cleaner is the log cleaner's checkpoint and tombstone horizon (cleaner.go).
		cleaner cleanerState
	}
	background sync.WaitGroup // the background flusher
	deletes    deleteQueue
	// cleaning serializes the cleaning passes of the log (Clean); taken before mu.
	cleaning sync.Mutex
}

// activeLocked returns the segment that takes appends.
func (l *Log) activeLocked() *segment { return l.mu.segments[len(l.mu.segments)-1] }

// endLocked returns the log end offset.
func (l *Log) endLocked() int64 { return l.activeLocked().end }

// rebuildSealedLocked refreshes the reader snapshots of the sealed segments after the segment
// list changed.
func (l *Log) rebuildSealedLocked() {
	n := len(l.mu.segments) - 1
	sealed := make([]segmentInfo, n)
	var size int64
	for i, s := range l.mu.segments[:n] {
		sealed[i] = s.info()
		size += s.size
	}
	l.mu.sealed, l.mu.sealedSize = sealed, size
}

// publishLocked makes the current state visible to readers.
func (l *Log) publishLocked() {
	act := l.activeLocked()
	l.view.Store(&logView{
		sealed: l.mu.sealed,
		active: act.info(),
		start:  l.mu.logStart,
		end:    act.end,
		size:   l.mu.sealedSize + act.size,
		closed: l.mu.closed,
		txns:   l.mu.producers.txns.view(),
	})
}

// writableLocked returns why the log cannot be mutated, if it cannot.
func (l *Log) writableLocked() error {
	if l.mu.closed {
		return ErrClosed
	}
	if l.mu.failed != nil {
		return fmt.Errorf("storage: log %s failed earlier: %w", l.dir, l.mu.failed)
	}
	return nil
}

// splitHeader returns the header and size of the batch at the start of b, checking that it is
// complete. The caller has validated the batches; this guards the stamping below.
func splitHeader(b []byte) (records.Header, int, error) {
	n, ok := records.PeekSize(b)
	if !ok || n < records.HeaderSize || n > len(b) {
		return records.Header{}, 0, fmt.Errorf("%w: incomplete batch of %d bytes", ErrCorrupt, len(b))
	}
	h, err := records.ParseHeader(b[:n])
	if err != nil {
		return h, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if h.LastOffsetDelta < 0 {
		return h, 0, fmt.Errorf("%w: negative last offset delta", ErrCorrupt)
	}
	return h, n, nil
}

// AppendAsLeader appends batches from a producer: one or more complete v2 batches, each
// already checked with records.Validate. It assigns consecutive offsets, stamps the base
// offset, leaderEpoch and (if configured) LogAppendTime in place in batches, enforces
// idempotent-producer sequencing, writes them with one write call and updates the indexes. It
// appends all the batches or none (batches may have been stamped even when it fails). If any
// batch is an idempotent retry of a recent one, nothing is appended and the original batch's
// offsets are returned with Duplicate set, as Kafka does.
//
// A write refused for lack of space, or because the log directory's free space is below
// Options.Floor, is a *DiskFullError; the log stays consistent and readable, and appends
// succeed again once space is freed.
func (l *Log) AppendAsLeader(batches []byte, leaderEpoch int32) (AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res, err := l.appendAsLeaderLocked(batches, leaderEpoch)
	return res, l.noteAppendLocked(err, !res.Duplicate)
}

func (l *Log) appendAsLeaderLocked(batches []byte, leaderEpoch int32) (AppendResult, error) {
	res := AppendResult{LogAppendTime: -1}
	if err := l.writableLocked(); err != nil {
		return res, err
	}
	if len(batches) == 0 {
		return res, fmt.Errorf("%w: no batches", ErrCorrupt)
	}
	if int64(len(batches)) > l.mu.cfg.SegmentBytes {
		return res, fmt.Errorf("%w: %d bytes, segment.bytes is %d", ErrRecordBatchTooLarge, len(batches), l.mu.cfg.SegmentBytes)
	}
	nowMs := l.now().UnixMilli()
	logAppendTime := l.mu.cfg.LogAppendTime
	base := l.endLocked()
	next := base
	var updates producerUpdates
	for pos := 0; pos < len(batches); {
		h, n, err := splitHeader(batches[pos:])
		if err != nil {
			return res, err
		}
		if h.ProducerID >= 0 {
			if logAppendTime {
				h.MaxTimestamp = nowMs
			}
			ctl, err := parseControl(batches[pos:pos+n], &h)
			if err != nil {
				return res, err
			}
			orig, dup, err := l.mu.producers.check(&updates, &h, next, ctl)
			if err != nil {
				return res, err
			}
			if dup {
				return AppendResult{BaseOffset: orig.baseOffset, LastOffset: orig.lastOffset, LogAppendTime: -1,
					LogStartOffset: l.mu.logStart, Duplicate: true}, nil
			}
		}
		next += int64(h.LastOffsetDelta) + 1
		pos += n
	}
	if err := l.floor.admit(int64(len(batches))); err != nil {
		return res, err
	}
	if err := l.maybeRollLocked(len(batches), base, next-1, nowMs); err != nil {
		return res, err
	}
	off := base
	for pos := 0; pos < len(batches); {
		b := batches[pos:]
		n := int(binary.BigEndian.Uint32(b[8:])) + records.LengthOffset
		records.SetBaseOffset(b, off)
		records.SetPartitionLeaderEpoch(b, leaderEpoch)
		if logAppendTime {
			records.SetLogAppendTime(b[:n], nowMs)
		}
		off += int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		pos += n
	}
	if err := l.writeLocked(batches, nowMs); err != nil {
		return res, err
	}
	if err := l.commitProducersLocked(&updates); err != nil {
		return res, err
	}
	if l.mu.epochs.assign(leaderEpoch, base) {
		l.writeEpochsLocked()
	}
	l.publishLocked()
	l.maybeFlushLocked(nowMs)
	res.BaseOffset, res.LastOffset, res.LogStartOffset = base, next-1, l.mu.logStart
	if logAppendTime {
		res.LogAppendTime = nowMs
	}
	return res, nil
}

// AppendAsFollower appends batches replicated from the leader, keeping their offsets and
// leader epochs. The first batch must start at or after the log end offset and offsets must
// increase. Producer state and the leader-epoch cache are updated from the batch headers
// without idempotence checks.
func (l *Log) AppendAsFollower(batches []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.noteAppendLocked(l.appendAsFollowerLocked(batches), len(batches) > 0)
}

func (l *Log) appendAsFollowerLocked(batches []byte) error {
	if err := l.writableLocked(); err != nil {
		return err
	}
	if len(batches) == 0 {
		return nil
	}
	if int64(len(batches)) > l.mu.cfg.SegmentBytes {
		return fmt.Errorf("%w: %d bytes, segment.bytes is %d", ErrRecordBatchTooLarge, len(batches), l.mu.cfg.SegmentBytes)
	}
	nowMs := l.now().UnixMilli()
	end := l.endLocked()
	first, last := int64(-1), end-1
	var updates producerUpdates
	for pos := 0; pos < len(batches); {
		h, n, err := splitHeader(batches[pos:])
		if err != nil {
			return err
		}
		if h.BaseOffset < 0 || h.LastOffset() < h.BaseOffset {
			return fmt.Errorf("%w: batch offsets %d..%d", ErrCorrupt, h.BaseOffset, h.LastOffset())
		}
		if h.BaseOffset <= last {
			return fmt.Errorf("%w: batch at offset %d, expected at least %d", ErrUnexpectedAppendOffset, h.BaseOffset, last+1)
		}
		if first < 0 {
			first = h.BaseOffset
		}
		if h.ProducerID >= 0 {
			ctl, err := parseControl(batches[pos:pos+n], &h)
			if err != nil {
				return err
			}
			applyTo(&updates, h.ProducerID, updates.get(l.mu.producers, h.ProducerID), &h, h.BaseOffset, ctl)
		}
		last = h.LastOffset()
		pos += n
	}
	if err := l.floor.admit(int64(len(batches))); err != nil {
		return err
	}
	if err := l.maybeRollLocked(len(batches), first, last, nowMs); err != nil {
		return err
	}
	if err := l.writeLocked(batches, nowMs); err != nil {
		return err
	}
	if err := l.commitProducersLocked(&updates); err != nil {
		return err
	}
	changed := false
	for pos := 0; pos < len(batches); {
		b := batches[pos:]
		epoch := int32(binary.BigEndian.Uint32(b[12:]))
		if l.mu.epochs.assign(epoch, int64(binary.BigEndian.Uint64(b))) {
			changed = true
		}
		pos += int(binary.BigEndian.Uint32(b[8:])) + records.LengthOffset
	}
	if changed {
		l.writeEpochsLocked()
	}
	l.publishLocked()
	l.maybeFlushLocked(nowMs)
	return nil
}

// commitProducersLocked makes an append's producer states current once its batches are
// written, recording the transactions it aborted in the active segment's transaction index
// (a failure to write it leaves the files apart from the state: the log fails).
func (l *Log) commitProducersLocked(u *producerUpdates) error {
	aborted := l.mu.producers.commit(u)
	if len(u.txnEvents) > 0 {
		l.mu.producers.txns.pruneBelow(l.highWatermark.Load())
	}
	if len(aborted) == 0 {
		return nil
	}
	if err := l.activeLocked().appendAborted(l.fs, aborted); err != nil {
		return l.failLocked(err)
	}
	return nil
}

// noteAppendLocked follows disk-full episodes across appends: the first append refused for
// lack of space logs one error with the directory and the free space, later refusals log
// nothing, and the first append that writes again (wrote) logs the end of the episode. It
// returns err, a disk-full error wrapped as a *DiskFullError.
func (l *Log) noteAppendLocked(err error, wrote bool) error {
	if err != nil {
		err = diskFull(l.dir, err)
		var dfe *DiskFullError
		if errors.As(err, &dfe) && !l.mu.diskFull {
			l.mu.diskFull = true
			if dfe.Floor > 0 {
				l.logger.Error("log dir free space below its floor: refusing appends until space is freed; reads, deletes and retention go on",
					"dir", l.dir, "free", FormatBytes(dfe.Free), "floor", FormatBytes(dfe.Floor))
			} else {
				l.logger.Error("disk full: refusing appends until space is freed; reads, deletes and retention go on",
					"dir", l.dir, "free", FormatBytes(dfe.Free), "err", dfe.Err)
			}
		}
		return err
	}
	if wrote && l.mu.diskFull {
		l.mu.diskFull = false
		_, free, _ := DiskUsage(l.dir)
		l.logger.Info("disk space available again: appends succeed", "dir", l.dir, "free", FormatBytes(free))
	}
	return nil
}

// writeLocked appends stamped batches to the active segment. If the files cannot be restored
// after a failed write the log is marked failed.
func (l *Log) writeLocked(batches []byte, nowMs int64) error {
	if err := l.changingLocked(); err != nil {
		return err
	}
	act := l.activeLocked()
	consistent, err := act.appendBatches(batches, int64(l.mu.cfg.IndexIntervalBytes), nowMs)
	if err != nil && !consistent {
		l.mu.failed = err
		l.logger.Error("log files inconsistent after a failed append; refusing further writes",
			"dir", l.dir, "segment", act.base, "err", err)
	}
	return err
}

// maybeRollLocked rolls to a new segment starting at firstOffset when an append of size
// bytes with offsets up to lastOffset does not fit the active segment, the segment is older
// than segment.ms, or its index is full.
func (l *Log) maybeRollLocked(size int, firstOffset, lastOffset int64, nowMs int64) error {
	act := l.activeLocked()
	cfg := &l.mu.cfg
	if act.size == 0 && act.canHold(firstOffset) && act.canHold(lastOffset) {
		return nil
	}
	if act.size > cfg.SegmentBytes-int64(size) ||
		(act.rollBaseMs >= 0 && nowMs-act.rollBaseMs > cfg.SegmentMs) ||
		act.indexFull(cfg) || !act.canHold(lastOffset) {
		return l.rollLocked(firstOffset)
	}
	return nil
}

// maybeFlushLocked applies flush.messages and flush.ms after an append.
func (l *Log) maybeFlushLocked(nowMs int64) {
	if l.endLocked()-l.mu.recoveryPoint >= l.mu.cfg.FlushMessages || nowMs-l.mu.lastFlushMs >= l.mu.cfg.FlushMs {
		if err := l.flushLocked(nowMs); err != nil {
			l.logger.Error("flushing log", "dir", l.dir, "err", err)
		}
	}
}

// LogStartOffset returns the first offset that may be read.
func (l *Log) LogStartOffset() int64 { return l.view.Load().start }

// LogEndOffset returns the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.view.Load().end }

// Size returns the bytes of all segments.
func (l *Log) Size() int64 { return l.view.Load().size }

// Read returns whole batches starting with the one containing offset: at most maxBytes in
// total (but the whole first batch if minOneBatch, as in KIP-74), only batches whose base
// offset is below maxOffset (the high watermark), and from one segment. An offset below the
// log start or above the log end is ErrOffsetOutOfRange; the log end gives no bytes. It does
// not block appends: it preads the files below the sizes of the view it loaded.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64, minOneBatch bool) ([]byte, error) {
	return l.ReadWith(nil, offset, maxBytes, maxOffset, minOneBatch)
}

// ReadWith is Read with the caller providing the memory: alloc(n) must return at least n
// bytes, which the result then aliases (nil alloc: a new slice). It lets the broker read into
// pooled buffers on the consume path.
func (l *Log) ReadWith(alloc func(n int) []byte, offset int64, maxBytes int, maxOffset int64, minOneBatch bool) ([]byte, error) {
	v := l.view.Load()
	b, err := v.read(alloc, offset, maxBytes, maxOffset, minOneBatch)
	if err != nil && isClosedFile(err) {
		if nv := l.view.Load(); nv != v {
			// The segment was deleted under us; the new view does not have it.
			return nv.read(alloc, offset, maxBytes, maxOffset, minOneBatch)
		}
	}
	return b, err
}

// Region is a byte range of a segment file holding record batches, for sending with
// sendfile. Its end may cut the last batch short (as Kafka's fetch responses may); clients
// drop a partial trailing batch.
type Region struct {
	File *os.File
	Pos  int64
	Len  int64
	// release unpins File in the FileCache.
	release func()
}

// Release lets the file cache close the region's file again; call it once the region is
// written (or dropped). File must not be used after.
func (r *Region) Release() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// ReadRegion locates what Read would return without reading it: the range of one segment
// file, below maxOffset, at most maxBytes long (or the whole first batch if minOneBatch),
// not cut to whole batches. ok is false when there is nothing to send, or when the segment is
// not an *os.File (a test filesystem); callers then use Read. The file stays open at least
// FileDeleteDelayMs after a deletion, so a prompt sendfile of the range is safe, and the file
// cache keeps it open until Release.
func (l *Log) ReadRegion(offset int64, maxBytes int, maxOffset int64, minOneBatch bool) (r Region, ok bool, err error) {
	sp, ok, err := l.view.Load().locate(offset, maxBytes, maxOffset, minOneBatch)
	if isClosedFile(err) {
		return r, false, nil // a segment of the view was deleted under us; Read retries with the new view
	}
	if !ok || err != nil {
		return r, false, err
	}
	f, release, isOS, err := pinOS(sp.f)
	if isClosedFile(err) {
		return r, false, nil // the segment was deleted under us; Read retries with the new view
	}
	if err != nil || !isOS {
		return r, false, err
	}
	return Region{File: f, Pos: sp.pos, Len: sp.n, release: release}, true, nil
}

// OffsetForTimestamp returns the offset and timestamp of the first record whose timestamp is
// at least ts (Kafka's ListOffsets by timestamp; special negative timestamps are the caller's).
// For compressed batches, whose records are not decompressed here, it returns the batch's base
// offset and max timestamp. ok is false when there is no such record.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, ok bool) {
	offset, timestamp, ok, err := l.view.Load().offsetForTimestamp(ts)
	if err != nil {
		l.logger.Warn("searching the log by timestamp", "dir", l.dir, "err", err)
		return 0, 0, false
	}
	return offset, timestamp, ok
}

// MaxTimestamp returns the offset and timestamp of the record with the largest timestamp
// (ListOffsets MAX_TIMESTAMP), or -1, -1 for an empty log. For a compressed batch the offset
// is the batch's base offset.
func (l *Log) MaxTimestamp() (offset int64, timestamp int64) {
	offset, timestamp, err := l.view.Load().maxTimestamp()
	if err != nil {
		l.logger.Warn("reading the max timestamp", "dir", l.dir, "err", err)
	}
	return offset, timestamp
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest known epoch not above epoch and
// the offset where the epoch after it starts (the log end offset for the latest epoch), or
// -1, -1 when epoch is unknown.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.endOffsetFor(epoch, l.endLocked())
}

// SetConfig replaces the configuration; it applies to the next append, roll and retention.
func (l *Log) SetConfig(cfg LogConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.cfg = cfg
	return nil
}

// Config returns the current configuration.
func (l *Log) Config() LogConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.cfg
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }
