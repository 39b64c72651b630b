package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// The aborted-transaction index of a segment, <base>.txnindex (Kafka's TransactionIndex):
// one entry per ABORT marker in the segment, in marker order. The file exists only once the
// segment has an entry. Its entries are also kept in memory (segment.aborted) for readers.

const (
	txnIndexSuffix   = ".txnindex"
	abortedTxnSize   = 2 + 8 + 8 + 8 + 8
	abortedTxnFormat = 0 // the version field of each entry
)

// AbortedTxn is an aborted transaction (Kafka's AbortedTxn): the producer, the first offset
// of its transaction and the offset of its ABORT marker, and the last stable offset when the
// marker was appended (the first offset of the oldest other open transaction, or the offset
// after the marker).
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

func appendAbortedTxn(b []byte, a AbortedTxn) []byte {
	b = binary.BigEndian.AppendUint16(b, abortedTxnFormat)
	b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
	b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	return binary.BigEndian.AppendUint64(b, uint64(a.LastStableOffset))
}

// decodeTxnIndex parses a whole .txnindex file of the segment [base, end); ok is false when
// it is not sane (a torn entry, an unknown version, an entry outside the segment or out of
// order), in which case the log rebuilds it.
func decodeTxnIndex(b []byte, base int64) (entries []AbortedTxn, ok bool) {
	if len(b)%abortedTxnSize != 0 {
		return nil, false
	}
	prev := base - 1
	for ; len(b) > 0; b = b[abortedTxnSize:] {
		if binary.BigEndian.Uint16(b) != abortedTxnFormat {
			return nil, false
		}
		a := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[26:])),
		}
		if a.LastOffset <= prev || a.FirstOffset > a.LastOffset {
			return nil, false
		}
		prev = a.LastOffset
		entries = append(entries, a)
	}
	return entries, true
}

// openTxnIndex opens and reads the segment's .txnindex if it exists. ok is false when the
// file is not sane (the open rebuilds the segment's index then).
func (s *segment) openTxnIndex(fsys FS) (ok bool, err error) {
	f, err := fsys.OpenFile(s.path(txnIndexSuffix), os.O_RDWR, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("opening transaction index: %w", err)
	}
	s.txnIdx = f
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("opening transaction index: %w", err)
	}
	if fi.Size() > 1<<30 {
		return false, nil
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		return false, fmt.Errorf("reading transaction index of segment %d: %w", s.base, err)
	}
	s.aborted, ok = decodeTxnIndex(b, s.base)
	return ok, nil
}

// appendAborted adds entries to the segment's transaction index, creating the file on the
// first one.
func (s *segment) appendAborted(fsys FS, entries []AbortedTxn) error {
	b, err := s.txnIndexFile(fsys, entries)
	if err != nil {
		return err
	}
	if _, err := s.txnIdx.WriteAt(b, int64(len(s.aborted))*abortedTxnSize); err != nil {
		return fmt.Errorf("writing transaction index of segment %d: %w", s.base, err)
	}
	// A new backing array when full; readers holding the old slice header keep their view.
	s.aborted = append(s.aborted, entries...)
	return nil
}

// setAborted replaces the segment's transaction index (recovery's rebuild, truncation).
func (s *segment) setAborted(fsys FS, entries []AbortedTxn) error {
	if s.txnIdx == nil && len(entries) == 0 {
		s.aborted = nil
		return nil
	}
	b, err := s.txnIndexFile(fsys, entries)
	if err != nil {
		return err
	}
	if err := rewriteFile(s.txnIdx, b); err != nil {
		return fmt.Errorf("rewriting transaction index of segment %d: %w", s.base, err)
	}
	s.aborted = entries
	return nil
}

// txnIndexFile creates the segment's .txnindex if it has none and encodes entries.
func (s *segment) txnIndexFile(fsys FS, entries []AbortedTxn) ([]byte, error) {
	if s.txnIdx == nil {
		f, err := fsys.OpenFile(s.path(txnIndexSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("creating transaction index of segment %d: %w", s.base, err)
		}
		s.txnIdx = f
	}
	var b []byte
	for _, a := range entries {
		b = appendAbortedTxn(b, a)
	}
	return b, nil
}

// truncateAborted drops the entries whose marker is at or after end.
func (s *segment) truncateAborted(fsys FS, end int64) error {
	n := len(s.aborted)
	for n > 0 && s.aborted[n-1].LastOffset >= end {
		n--
	}
	if n == len(s.aborted) {
		return nil
	}
	if err := s.txnIdx.Truncate(int64(n) * abortedTxnSize); err != nil {
		return fmt.Errorf("truncating transaction index of segment %d: %w", s.base, err)
	}
	s.aborted = s.aborted[:n:n]
	return nil
}
