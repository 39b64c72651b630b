package storage

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// epochEntry says that leader epoch epoch started at offset start.
type epochEntry struct {
	epoch int32
	start int64
}

// epochCache is the leader-epoch cache: for each leader epoch, the first offset written in it,
// with strictly increasing epochs and start offsets. It is guarded by Log.mu.
type epochCache struct {
	entries []epochEntry
	dirty   bool // changed since the checkpoint was last written
}

// latest returns the newest entry.
func (c *epochCache) latest() (epochEntry, bool) {
	if len(c.entries) == 0 {
		return epochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// assign records that epoch starts at offset start, if epoch is newer than the latest one.
// Entries that are no longer monotonic (start at or after start) are dropped, as Kafka does.
func (c *epochCache) assign(epoch int32, start int64) bool {
	if epoch < 0 {
		return false
	}
	if l, ok := c.latest(); ok && epoch <= l.epoch {
		return false
	}
	n := len(c.entries)
	for n > 0 && c.entries[n-1].start >= start {
		n--
	}
	c.entries = append(c.entries[:n], epochEntry{epoch, start})
	c.dirty = true
	return true
}

// truncateFromEnd removes the entries starting at or after end (the new log end offset).
func (c *epochCache) truncateFromEnd(end int64) {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].start >= end {
		n--
	}
	if n != len(c.entries) {
		c.entries = c.entries[:n]
		c.dirty = true
	}
}

// truncateFromStart drops the entries that end below start (the new log start offset) and
// moves the start of the entry covering it up to start.
func (c *epochCache) truncateFromStart(start int64) {
	i := 0
	for i+1 < len(c.entries) && c.entries[i+1].start <= start {
		i++
	}
	if i >= len(c.entries) {
		return
	}
	changed := i > 0
	c.entries = append(c.entries[:0], c.entries[i:]...)
	if c.entries[0].start < start {
		c.entries[0].start = start
		changed = true
	}
	if changed {
		c.dirty = true
	}
}

// clear removes all entries.
func (c *epochCache) clear() {
	if len(c.entries) > 0 {
		c.entries = c.entries[:0]
		c.dirty = true
	}
}

// endOffsetFor answers OffsetForLeaderEpoch: the largest epoch <= requested and the offset
// where the next epoch starts (the log end for the latest epoch), with Kafka's rules for
// epochs below or above all known ones (-1, -1 when unknown).
func (c *epochCache) endOffsetFor(requested int32, logEnd int64) (int32, int64) {
	latest, ok := c.latest()
	switch {
	case requested < 0:
		return -1, -1
	case ok && latest.epoch == requested:
		return requested, logEnd
	}
	higher := -1
	for i, e := range c.entries {
		if e.epoch > requested {
			higher = i
			break
		}
	}
	if higher < 0 {
		return -1, -1
	}
	if higher == 0 {
		return requested, c.entries[0].start
	}
	return c.entries[higher-1].epoch, c.entries[higher].start
}

// encode renders Kafka's leader-epoch-checkpoint text format.
func (c *epochCache) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return b.Bytes()
}

// decodeEpochCheckpoint parses Kafka's leader-epoch-checkpoint format, rejecting anything
// malformed or non-monotonic.
func decodeEpochCheckpoint(b []byte) ([]epochEntry, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("%w: leader-epoch-checkpoint: bad version line", ErrCorrupt)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n < 0 || n != len(lines)-2 {
		return nil, fmt.Errorf("%w: leader-epoch-checkpoint: bad entry count", ErrCorrupt)
	}
	entries := make([]epochEntry, 0, n)
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: leader-epoch-checkpoint: bad line %q", ErrCorrupt, line)
		}
		epoch, err1 := strconv.ParseInt(f[0], 10, 32)
		start, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || epoch < 0 || start < 0 {
			return nil, fmt.Errorf("%w: leader-epoch-checkpoint: bad line %q", ErrCorrupt, line)
		}
		if k := len(entries); k > 0 && (int32(epoch) <= entries[k-1].epoch || start <= entries[k-1].start) {
			return nil, fmt.Errorf("%w: leader-epoch-checkpoint: entries not increasing", ErrCorrupt)
		}
		entries = append(entries, epochEntry{int32(epoch), start})
	}
	return entries, nil
}
