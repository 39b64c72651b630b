// Package storage owns the partition log: segments of Kafka v2 record batches stored exactly as
// producers sent them, the sparse offset and time indexes, idempotent-producer state, the
// leader-epoch cache, transactions on the partition side (open transactions, the last stable
// offset, the aborted-transaction index), recovery after a crash, retention, DeleteRecords
// and truncation.
//
// # On-disk layout (format version 1)
//
// One directory per partition log. All integers are big-endian.
//
//	<base>.log        record batches back to back, exactly as in records (magic v2) with the
//	                  base offset and partition leader epoch stamped; <base> is the 20-digit,
//	                  zero-padded offset of the segment's first batch.
//	<base>.index      sparse offset index: 8-byte entries (relative offset uint32 = batch last
//	                  offset - base, file position uint32 of the batch start), ascending; one entry
//	                  after each IndexIntervalBytes of appended batches.
//	<base>.timeindex  time index: 12-byte entries (timestamp int64, relative offset uint32 of
//	                  the last offset of the batch that raised the segment's max timestamp),
//	                  strictly increasing timestamps. The last entry of a sealed segment is its
//	                  (max timestamp, offset of max timestamp).
//	<base>.txnindex   aborted-transaction index (Kafka's TransactionIndex), present once the
//	                  segment holds an ABORT marker: 34-byte entries in marker order (version
//	                  int16 = 0, producer id int64, first offset int64 of the transaction, last
//	                  offset int64 = the marker's, last stable offset int64 when the marker was
//	                  appended = the first offset of the oldest other open transaction, or the
//	                  marker's offset + 1). Written by the append of the marker (leader and
//	                  follower), rebuilt by recovery from the producer-state replay, cut by
//	                  truncation, deleted with its segment, carried into a cleaned one
//	                  without the entries whose marker the cleaner removed.
//	<off>.snapshot    producer state as of offset <off> (written at roll and at clean
//	                  close, except for a log with no batch, no producer and no snapshot, whose
//	                  open rebuilds the same empty state from nothing): "SPS2" magic, uint32 CRC-32C of the rest, uint32 producer count,
//	                  then per producer: id int64, epoch int16, first offset int64 of its open
//	                  transaction (-1: none), coordinator epoch int32 of its last marker (-1:
//	                  none), batch count uint8, and per cached batch (oldest first): first seq
//	                  int32, last seq int32, base offset int64, last offset int64, max timestamp
//	                  int64. "SPS1" (version 1: no transaction fields) is still read.
//	leader-epoch-checkpoint  Kafka's text format: "0\n<count>\n" then "<epoch> <start offset>\n".
//	log-checkpoint    "SLC1" magic, log start offset int64, recovery point int64, CRC-32C of
//	                  the preceding 20 bytes (uint32). A Log does not rewrite the checkpoint
//	                  it last wrote when the content would be the same (so closing a new
//	                  empty log writes only its marker).
//	clean-shutdown    empty marker, the log's own: the files are complete and as a clean
//	                  close left them. Written last by Log.Close, and by CloseLogs for a log
//	                  without a DirState (the broker's logs have one: their directory's marker,
//	                  below, vouches for them instead); an open that needs no change keeps it
//	                  (and writes nothing), and the first change after such an open removes
//	                  it and fsyncs the directory before touching any file (changingLocked),
//	                  so a close of a log unchanged since a clean open writes nothing. Still
//	                  read, so data directories written before the directory marker open clean.
//	cleaner-checkpoint  "SCC1" magic, first dirty offset int64 (the offsets below were
//	                  cleaned at least once), CRC-32C of the preceding 12 bytes (uint32).
//	                  Absent until the first cleaning; lowered by a truncation below it.
//	<base>.log.cleaned, .index.cleaned, .timeindex.cleaned  a cleaned segment being written
//	                  (see "Log cleaning"); removed on open.
//	<base>.log.swap, .index.swap, .timeindex.swap  a cleaned segment committed to replace the
//	                  old segments whose base is in [base, end of the .swap segment); the open
//	                  completes the replacement.
//	*.deleted         files of deleted segments waiting FileDeleteDelayMs so that concurrent
//	                  readers finish; removed on open.
//	*.tmp             partially written checkpoints; removed on open.
//
// In the log directory (the parent of the logs' directories, one DirState per log directory,
// Options.DirState):
//
//	clean-shutdown    the directory's clean-shutdown marker: "SDCS" magic, version uint32 = 1,
//	                  name count uint32, then per log (sorted) its directory name (uint16
//	                  length, bytes; no "/" or NUL, not "." or ".."), then CRC-32C of all the
//	                  preceding bytes (uint32). It vouches, as a log's own marker does, for
//	                  each log it names, unless dirty-logs names it too. Any flaw (CRC,
//	                  length, version, a bad name) makes it vouch for no log.
//	dirty-logs        journal of the vouched logs changed since the marker was written:
//	                  "SDL1" magic, then records of a name (uint16 length, bytes) and the
//	                  CRC-32C (uint32) of both. Read up to the first incomplete or corrupt
//	                  record (the tail an interrupted append left; the next append cuts it).
//
// Checkpoints and snapshots are written to a .tmp file, synced and renamed into place (the
// directory is fsynced after the rename; directory fsyncs bypass the FileCache). A shutdown
// close (below) writes them the same way but without those fsyncs.
//
// # Clean shutdown
//
// A log is clean at open, and then not recovered, when its own clean-shutdown marker is on
// disk, or when its log directory's marker names it and the directory's journal does not
// (DirState.Vouches). The DirState is loaded once per log directory before any of its logs
// opens and is shared by them; logs open lazily on first use, so the marker stays on disk for
// the whole run and its meaning is kept by the journal instead. Before the first change to a
// clean log (changingLocked; also before completing a cleaner's swap at open, before
// Log.Delete and the broker's removal of a log directory that is not open, and so before a
// log of a vouched name is created again after a deletion) the log withdraws what vouches for
// it: DirState.Unvouch appends its name to the journal and fsyncs it (and the directory when
// it creates the file), concurrent calls sharing one append and one fsync (group commit);
// its own marker, if any, is removed and the log's directory fsynced. Only then does the
// change touch a file. An append a crash interrupts never preceded its change, so its torn
// record is ignored. When the journal cannot be written (a full disk, an I/O error), the
// directory's marker is removed and the directory fsynced instead (every log of the
// directory is then recovered after a crash), and changes are recorded in memory only until
// the next marker is written.
//
// Log.Close fsyncs each file it writes and writes the log's own marker. A broker shutdown
// closes its logs with CloseLogs, which costs one filesystem-wide sync (FS.SyncAll,
// syncfs(2)) per filesystem and one marker per log directory: phase 1, every log changed
// since it was opened seals its active segment and writes its producer snapshot,
// leader-epoch checkpoint and log checkpoint without fsync (the log checkpoint keeps the
// recovery point below which the segments were already fsynced, since the segments are not
// fsynced yet when it is written); then one SyncAll of each filesystem holding the logs'
// parent directories; phase 2, each log closes its files; then each log directory's DirState
// writes its next marker (temporary file, write, fsync, rename, directory fsync), naming:
// the logs phase 1 closed with all their state files written and synced, the logs closed
// unchanged since a clean open, and the logs its current marker vouches for that were not
// changed in this run (not journaled) and still exist (a readdir of the log directory),
// minus any log whose close failed. Only once the new marker is durable is the journal
// removed (and the directory fsynced): a journal removal reaching the disk first would let
// the old marker vouch for the logs it named. A marker equal to the one on disk is not
// rewritten, so a clean restart that changes nothing writes nothing. A log that could not
// write a state file (a full disk, below) is left out. When the first SyncAll fails, no log
// on that filesystem is named and CloseLogs fails, so the next start recovers them; when the
// FS cannot sync a filesystem whole (errors.ErrUnsupported, as without syncfs), those logs
// fsync their files and directory one by one before phase 2. Logs without a DirState write
// their own marker in phase 2, without fsync, made durable by a second SyncAll.
//
// Crash ordering. A crash before the new marker's rename leaves the old marker and journal:
// a log changed in this run is journaled (its entry preceded its change), so it is
// recovered. A crash after the rename and before the journal's removal leaves the new
// marker and the old journal: the logs the journal names are recovered though the marker
// names them, which is only wasted work. A crash at any other point leaves each log either
// vouched for with durable state files, or recovered as after any crash.
//
// # Recovery
//
// Without the clean-shutdown marker, every segment from the one holding the recovery point
// (the offset below which everything was fsynced; at least the active segment) is read back:
// each batch is checked with records.Validate and for monotonic offsets, and at the first torn or
// corrupt batch the segment is truncated and later segments are dropped, with one slog.Warn
// line. The indexes of recovered segments are rebuilt; a missing or insane index of any segment
// is rebuilt too. Producer state is loaded from the newest snapshot at or below the log end and
// rebuilt from the batch headers after it; the leader-epoch cache is truncated to the recovered
// range and re-filled from the recovered batches' headers.
//
// # A full disk
//
// An append refused for lack of space (ENOSPC, EDQUOT) is a *DiskFullError naming the
// directory and the free space (statfs); the segment is truncated back, so the log stays
// consistent and readable and appends succeed once space returns. Each log logs one error
// when a disk-full episode starts and one line when an append succeeds again. While full, the
// log checkpoint is rewritten in place when its temporary file cannot be written (same size,
// so no new blocks; the CRC catches a torn write), so DeleteRecords and retention keep
// working. State files that cannot be written at open or close for lack of space (log and
// leader-epoch checkpoints, producer snapshots, the time index's sealing entry, the
// clean-shutdown marker) are logged and do not fail the open or the close: a close that
// could not write them all leaves no clean-shutdown marker, so the next open recovers the log
// from its segments, and an old checkpoint left in place only makes that recovery read more.
//
// The free-space floor (Options.Floor, one SpaceFloor per log directory shared by its logs)
// refuses appends (as leader and as follower) before the disk is full: while the directory's
// free space is below the floor an append is a *DiskFullError with Floor set and cause
// ErrBelowFloor, naming the directory, the free space and the floor, logged once per episode
// like a full disk, so partition data never takes the last space that the metadata store,
// checkpoints and snapshots need. The check is cheap: statfs(2) at most every 500 ms per
// directory, or sooner once 16 MiB were admitted since the last one; in between the floor
// counts the bytes it admits against the free space it last saw (an atomic add per append),
// so its own appends cannot cross the floor; below the floor it refuses without a statfs
// until the 500 ms have passed. SpaceFloor.Check calls statfs at once, for operations about
// to create partitions.
//
// # Log cleaning
//
// Under cleanup.policy=compact (LogConfig.Cleanup) the broker runs Log.Clean, Kafka's cleaner:
// it maps each key of the dirty section [first dirty offset, first uncleanable offset) to its
// last offset (the first uncleanable offset is at most the caller's bound, the last stable
// offset, and the log's own first unstable offset) in an OffsetMap of fixed memory (128-bit hashes of the keys; a full map ends
// the section early and the next pass goes on from there), then rewrites every sealed segment
// from the first to the end of the mapped section, in groups of adjacent segments that fit
// in segment.bytes and segment.index.bytes together. A record below the end of the map is
// kept when it has a key and is the latest of that key, except a tombstone whose batch's
// delete horizon has passed; a record at or past it is kept. Offsets never change: a cleaned
// batch keeps its base offset, last offset delta, producer id, epoch and base sequence,
// leader epoch, attributes, base and max timestamps and codec (recompressed); only its
// record count, length and CRC change. (The max timestamp stays the original batch's even
// when the record that had it is gone, so segment max timestamps and time indexes do not
// move; Kafka recomputes it for CreateTime batches. An emptied batch has first timestamp -1
// and no compression, as in Kafka.) A tombstone is removed delete.retention.ms after
// the pass that first kept it: that pass writes the delete horizon (now +
// delete.retention.ms) into the base timestamp of its batch and sets attribute bit 6
// (KIP-534), re-encoding the records' timestamp deltas so they keep their timestamps. A
// batch that loses all its records is dropped, except the newest batch of an idempotent
// producer (kept empty, so its sequence survives a reload) and the last batch of a group
// whose last segment lost all its records (kept empty, so that the cleaned segment reaches
// into every old segment it replaces, which is how recovery finds them; a removed marker
// leaves an empty batch of no producer, neither control nor transactional, as an empty
// control batch would not parse).
//
// Transactions, as Kafka's cleaner (CleanedTransactionMetadata): both the map's scan and the
// rewrite follow the transactions of the batches they read in offset order (txnTracker),
// from the aborted-transaction index entries whose marker is at or after the scan's start: a
// transactional batch of a producer that reached the first offset of one of its aborted
// transactions, before that producer's next marker, is aborted. The records of committed
// transactional batches are mapped and compacted like any others (the batch keeps its
// transactional bit, producer id, epoch and base sequence; CRC recomputed); those of aborted
// batches are not mapped, so an aborted newer value never removes a committed older one,
// and are all removed (the batch goes, or stays empty when it is its producer's newest).
// Control batches are never mapped. A transaction marker stays while the pass read a batch of
// its transaction (the rewrite reads every sealed segment from the first, all groups in
// order, so a marker's batches are read before it); a marker none of whose batches was read
// gets a delete horizon (now + delete.retention.ms, attribute bit 6, as a tombstone's batch)
// and goes in the first pass after it, with its .txnindex entry, unless it is its
// producer's last entry (the producer has no batch at the marker's epoch, which the marker
// bumped), which stays so that a replay keeps the epoch (Kafka's rule). So an aborted transaction's
// entry stays while any of its data does, replaying the log never finds a transactional
// batch without its marker (no transaction left open by cleaning), and a marker without data
// lingers one pass after its data went (Kafka's behaviour). Markers and batches at or past
// the end of the mapped section are kept whole. A single segment in which nothing changes is
// not rewritten.
//
// Swapping a group in (crash safe, Kafka's protocol): the cleaned segment is written as
// <base>.{log,index,timeindex}.cleaned and fsynced; holding Log.mu, the clean-shutdown markers
// are withdrawn (changingLocked), the indexes then the log file are renamed to .swap (the
// commit) and the directory fsynced; the old segments' files are renamed to .deleted (removed
// after FileDeleteDelayMs, so readers of older views finish), the .swap files renamed to
// their final names, the directory fsynced, and the new segment list published. An open
// removes .cleaned files and index .swap files without a .log.swap, and completes each
// <base>.log.swap: it removes the files of the segments whose base is in [base, end of the
// .swap segment) and renames the .swap files into place (missing indexes are rebuilt). So
// after a crash at any point the log holds the old group or the cleaned one, never a mix.
// A failure after the commit marks the log failed (the next open completes the swap).
//
// The pass reads the sealed segments (immutable) and writes the cleaned ones without Log.mu;
// Log.mu is held only to take the pass's view, to swap each group in and to write the cleaner
// checkpoint. A pass finding the log truncated, its group's segments gone (retention,
// DeleteRecords) or the log closed drops its cleaned files and returns ErrCleanAborted.
// Log.cleaning serializes the passes of one log. The cleaner's reads and writes go through
// CleanOptions.Throttler (log.cleaner.io.max.bytes.per.second).
//
// # Transactions
//
// Transactional batches (attribute bit 4) open a transaction of their producer at their base
// offset unless one is open; a control batch (bit 5) whose record key is version int16 + type
// int16 (0 ABORT, 1 COMMIT) and value version int16 + coordinator epoch int32 ends it
// (records.EndTxnMarker; Log.AppendMarker builds one). As Kafka's ProducerAppendInfo, a
// leader append refuses a marker of an older producer epoch (ErrInvalidProducerEpoch) or an
// older coordinator epoch than the producer's last marker (ErrTransactionCoordinatorFenced),
// and a non-transactional batch of a producer with an open transaction (ErrInvalidTxnState);
// followers and replay apply the same state changes without the checks. The last stable
// offset for a high watermark hw (Log.LastStableOffset) is the first offset of the oldest
// transaction that is open, or that was ended by a marker not yet below hw (Kafka's
// unreplicated transactions; forgotten once NoteHighWatermark passes them), when below hw;
// else hw. Readers get it from the published view without Log.mu. Log.AbortedTransactions
// answers a read_committed fetch as Kafka's collectAbortedTransactions. After a truncation
// the producer state is replayed from a snapshot at or below the new end, so a transaction
// whose marker was cut is open again. Recovery replays from a snapshot at or below the first
// recovered segment and rewrites the .txnindex of every segment from there.
//
// # Concurrency
//
// Log.mu serializes every mutation (append, roll, flush, truncate, retention, config, close) and
// is held during the disk writes they make. Readers never take it: after each mutation the writer
// publishes an immutable view (segment list, sizes, end offsets, the active segment's in-memory
// index) through an atomic pointer, and readers pread the segment files below the sizes in the
// view they loaded. Segment files that a mutation removes are renamed to *.deleted and closed
// only after FileDeleteDelayMs, so a reader holding an old view can finish. Lock order:
// Log.cleaning, then Log.mu, then Log.deletes.mu.
//
// Open files: every file a log opens goes through a FileCache (Options.FileCache, one per
// process in the broker), which bounds the descriptors held: a handle opens its descriptor on
// first use and the cache closes the least recently used descriptors that no operation is
// using once more than its capacity are open; the next use reopens the file (without
// O_CREATE/O_TRUNC, under its current name: a rename through the log's FS moves the handle,
// so a segment renamed to *.deleted reopens as such). Each ReadAt/WriteAt/Sync/Truncate/Stat
// pins the descriptor while it runs, and ReadRegion pins it until Region.Release, so neither a
// pread nor a sendfile ever sees a descriptor closed or reused under it; a closed handle
// answers os.ErrClosed, which readers take as "segment deleted, load the new view". Sync of a
// file not written since its last Sync does nothing. The busy partitions' active segments
// stay open because they are the most recently used. FileCache.mu is a leaf lock, taken under
// Log.mu by writers and without it by readers.
//
// Goroutines: after a roll, a short-lived flusher fsyncs the sealed segments without holding
// Log.mu and then advances the recovery point; it exits when caught up, and Close waits for it.
// Deleted segment files are closed and removed by time.AfterFunc timers; Close runs the
// pending ones at once. CloseLogs runs each phase on up to its parallelism goroutines, each
// holding one Log.mu at a time; the SyncAll calls between the phases hold no lock.
// DirState.mu (the vouched and journaled names) is a leaf, taken under Log.mu by
// changingLocked and never held across I/O except to remove the marker after a failed
// journal append; DirState.io (the journal's file, the commit) is taken without DirState.mu,
// or before it by the commit.
// State files (checkpoints, snapshots, the marker) written whole and directories opened to
// fsync bypass the FileCache: no cached handle of them is open while they are written.
package storage
