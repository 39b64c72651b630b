package storage

import "errors"

// Errors returned by the log. They are distinct so the broker can map them to Kafka error codes.
var (
	// ErrOffsetOutOfRange: the offset is below the log start or beyond the log end.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrOutOfOrderSequence: an idempotent batch's sequence does not follow the producer's last.
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch: the batch's producer epoch is older than the current one (fenced).
	ErrInvalidProducerEpoch = errors.New("storage: invalid (fenced) producer epoch")
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
