package storage

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors returned by the log. They are distinct so the broker can map them to Kafka error codes.
var (
	// ErrOffsetOutOfRange: the offset is below the log start or beyond the log end.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrOutOfOrderSequence: an idempotent batch's sequence does not follow the producer's last.
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch: the batch's producer epoch is older than the current one (fenced).
	ErrInvalidProducerEpoch = errors.New("storage: invalid (fenced) producer epoch")
	// ErrInvalidTxnState: a producer with an open transaction sent a non-transactional batch.
	ErrInvalidTxnState = errors.New("storage: invalid transaction state")
	// ErrTransactionCoordinatorFenced: a transaction marker carries a coordinator epoch older
	// than the producer's last marker (a stale coordinator).
	ErrTransactionCoordinatorFenced = errors.New("storage: transaction coordinator fenced")
	// ErrUnknownProducerID is reserved: like Kafka 2.5 and later the log accepts an unknown
	// producer with any sequence and starts tracking it, so this version never returns it.
	ErrUnknownProducerID = errors.New("storage: unknown producer id")
	// ErrCorrupt: batches handed to an append, or bytes read back from disk, are malformed.
	ErrCorrupt = errors.New("storage: corrupt record batch")
	// ErrRecordBatchTooLarge: the batches of one append do not fit in a segment.
	ErrRecordBatchTooLarge = errors.New("storage: record batch larger than the segment size")
	// ErrUnexpectedAppendOffset: a follower append's offsets are below the log end offset.
	ErrUnexpectedAppendOffset = errors.New("storage: follower append below the log end offset")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("storage: log closed")
	// ErrInvalidConfig: a LogConfig field is out of range.
	ErrInvalidConfig = errors.New("storage: invalid log config")
)

// DiskFullError is a write that failed because the filesystem holding Dir is full (ENOSPC, or
// EDQUOT for a quota), or that was refused because the free space of the log directory Dir is
// below its floor (Floor > 0, Err is ErrBelowFloor; see SpaceFloor). The log's data stays
// intact and readable; writes succeed again once space is freed. Its message names the
// directory, the free space and the floor, for the client.
type DiskFullError struct {
	Dir   string
	Free  int64 // bytes available to the broker when the write failed; -1 unknown
	Floor int64 // the floor that refused the write; 0 for a write the filesystem refused
	Err   error // the failed write, or ErrBelowFloor
}

func (e *DiskFullError) Error() string {
	if e.Floor > 0 {
		return fmt.Sprintf("not enough free space in log directory %s (free %s, below the floor of %s kept free for metadata and checkpoints: samsa.log.dir.min.free.bytes=%d)",
			e.Dir, FormatBytes(e.Free), FormatBytes(e.Floor), e.Floor)
	}
	return fmt.Sprintf("no space left on device in %s (free %s)", e.Dir, FormatBytes(e.Free))
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// IsDiskFull reports whether err is a write refused for lack of space (by the filesystem or
// by a SpaceFloor).
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, ErrBelowFloor)
}

// diskFull wraps a disk-full error of a write in dir as a *DiskFullError with the free space
// now; other errors (and nil) are returned as they are.
func diskFull(dir string, err error) error {
	var dfe *DiskFullError
	if !IsDiskFull(err) || errors.As(err, &dfe) {
		return err
	}
	_, free, serr := DiskUsage(dir)
	if serr != nil {
		free = -1
	}
	return &DiskFullError{Dir: dir, Free: free, Err: err}
}

// DiskUsage returns the size of the filesystem holding dir and the bytes available to an
// unprivileged writer (statfs(2): blocks and available blocks times the block size).
func DiskUsage(dir string) (total, usable int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize), nil
}

// FormatBytes renders a byte count for people: "0 B", "512 B", "3.5 KiB", "16.0 MiB";
// a negative count is "unknown".
func FormatBytes(n int64) string {
	if n < 0 {
		return "unknown"
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, 0
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	for v >= 1024 && unit < len(units)-1 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %s", v, units[unit])
}
