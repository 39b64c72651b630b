package group

import "unicode/utf16"

// OffsetsTopic is the internal topic holding committed offsets and group metadata.
const OffsetsTopic = "__consumer_offsets"

// javaStringHashCode is Java's String.hashCode: h = 31*h + c over the UTF-16 code units.
func javaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	return h
}

// PartitionFor returns the __consumer_offsets partition of a group, as Kafka computes it
// (Utils.abs(groupId.hashCode) % n), so that Samsa and Kafka's tools agree on coordinators.
func PartitionFor(groupID string, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return 0
	}
	h := javaStringHashCode(groupID)
	if h == -1<<31 { // Utils.abs maps Integer.MIN_VALUE to 0
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % numPartitions
}
