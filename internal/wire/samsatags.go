package wire

import (
	"encoding/binary"
	"errors"
	"math"
)

// Samsa's own tagged fields. Kafka's clients skip tagged fields they do not know (kmsg keeps
// them in UnknownTags), so Samsa can carry state Kafka has no API for in responses of flexible
// versions, under tag numbers far above the ones Kafka assigns (which start at 0 per struct).

// CleanerStateTag is the tag of a DescribeLogDirs (v2+) response partition carrying the log
// cleaner's state of that replica's log (EncodeCleanerState), present only for logs whose
// cleanup.policy compacts.
const CleanerStateTag = 10000

// CleanerState is the log cleaner's view of one replica's log.
type CleanerState struct {
	// FirstDirtyOffset is where the next cleaning starts: the offsets below were cleaned
	// (the log start offset when the log was never cleaned).
	FirstDirtyOffset int64
	// DirtyRatio is the share of the cleanable bytes that are dirty (not cleaned yet).
	DirtyRatio float64
	// CleanableBytes and TotalBytes: the dirty bytes the cleaner could clean now, and those
	// plus the clean bytes.
	CleanableBytes, TotalBytes int64
	// Uncleanable is why the cleaner gave up on the log (a corrupt batch, ...), "" when it
	// did not (version 1).
	Uncleanable string
}

// cleanerStateV0Size is the size of version 0: version byte, then three int64 and a float64
// (IEEE 754 bits), big-endian: first dirty offset, dirty ratio, cleanable bytes, total bytes.
const cleanerStateV0Size = 1 + 4*8

// maxUncleanableLen bounds the reason carried (uint16 length).
const maxUncleanableLen = 1024

// EncodeCleanerState encodes s as the CleanerStateTag value: version 1 is version 0 followed
// by the uncleanable reason (uint16 length, UTF-8 bytes; at most 1 KiB).
func EncodeCleanerState(s CleanerState) []byte {
	reason := s.Uncleanable
	if len(reason) > maxUncleanableLen {
		reason = reason[:maxUncleanableLen]
	}
	b := make([]byte, 1, cleanerStateV0Size+2+len(reason))
	b[0] = 1
	b = binary.BigEndian.AppendUint64(b, uint64(s.FirstDirtyOffset))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(s.DirtyRatio))
	b = binary.BigEndian.AppendUint64(b, uint64(s.CleanableBytes))
	b = binary.BigEndian.AppendUint64(b, uint64(s.TotalBytes))
	b = binary.BigEndian.AppendUint16(b, uint16(len(reason)))
	return append(b, reason...)
}

// DecodeCleanerState decodes a CleanerStateTag value; later versions may append fields.
func DecodeCleanerState(b []byte) (CleanerState, error) {
	if len(b) < cleanerStateV0Size {
		return CleanerState{}, errors.New("cleaner state: short value")
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[1+8*i:]) }
	s := CleanerState{
		FirstDirtyOffset: int64(u(0)),
		DirtyRatio:       math.Float64frombits(u(1)),
		CleanableBytes:   int64(u(2)),
		TotalBytes:       int64(u(3)),
	}
	if b[0] >= 1 {
		rest := b[cleanerStateV0Size:]
		if len(rest) < 2 || len(rest)-2 < int(binary.BigEndian.Uint16(rest)) {
			return CleanerState{}, errors.New("cleaner state: short uncleanable reason")
		}
		s.Uncleanable = string(rest[2 : 2+int(binary.BigEndian.Uint16(rest))])
	}
	return s, nil
}
