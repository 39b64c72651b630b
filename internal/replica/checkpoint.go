package replica

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The high watermarks of replicated partitions survive restarts in the log directory's
// replication-offset-checkpoint file, in Kafka's text format:
//
//	0                 (version)
//	2                 (entry count)
//	orders 0 1234     (topic partition offset, one entry a line)
//	orders 1 987
//
// It is written every replica.high.watermark.checkpoint.interval.ms and at shutdown (to a
// temporary file, fsynced, renamed over the old one, then the directory fsynced). On open, a
// replicated partition's high watermark is min(checkpoint, log end); one with a single replica
// keeps high watermark = log end.

const hwCheckpointFile = "replication-offset-checkpoint"

// readHWCheckpoint parses a checkpoint; a missing file is empty.
func readHWCheckpoint(path string) (map[TopicPartition]int64, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseHWCheckpoint(b)
}

func parseHWCheckpoint(b []byte) (map[TopicPartition]int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := line()
	if !ok || v != "0" {
		return nil, fmt.Errorf("%s: unsupported version %q", hwCheckpointFile, v)
	}
	c, _ := line()
	n, err := strconv.Atoi(c)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%s: bad entry count %q", hwCheckpointFile, c)
	}
	out := make(map[TopicPartition]int64, min(n, 1<<16))
	for i := 0; i < n; i++ {
		l, ok := line()
		f := strings.Fields(l)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("%s: bad entry %q", hwCheckpointFile, l)
		}
		part, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || off < 0 {
			return nil, fmt.Errorf("%s: bad entry %q", hwCheckpointFile, l)
		}
		out[TopicPartition{f[0], int32(part)}] = off
	}
	return out, nil
}

func encodeHWCheckpoint(hws map[TopicPartition]int64) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(hws))
	keys := slices.SortedFunc(maps.Keys(hws), func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	for _, tp := range keys {
		fmt.Fprintf(&b, "%s %d %d\n", tp.Topic, tp.Partition, hws[tp])
	}
	return b.Bytes()
}

// writeHWCheckpoint replaces the checkpoint atomically and durably.
func writeHWCheckpoint(path string, hws map[TopicPartition]int64) error {
	if err := writeFileSync(path, encodeHWCheckpoint(hws)); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// checkpointHighWatermarks writes the high watermarks of the hosted replicated partitions
// when they changed since the last write: those of open logs, and the loaded values of
// partitions not opened since the start (so they are not forgotten).
func (m *Manager) checkpointHighWatermarks() {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	hws := make(map[TopicPartition]int64)
	m.mu.RLock()
	for tp, h := range m.mu.hosted {
		if len(h.part.Replicas) <= 1 {
			continue
		}
		if h.p != nil {
			hws[tp] = h.p.HighWatermark()
		} else if v, ok := m.ckptLoaded[tp]; ok {
			hws[tp] = v
		}
	}
	m.mu.RUnlock()
	if maps.Equal(hws, m.ckptWritten) {
		return
	}
	if err := writeHWCheckpoint(filepath.Join(m.cfg.Dir, hwCheckpointFile), hws); err != nil {
		m.log.Error("writing high-watermark checkpoint", "err", err)
		return
	}
	m.ckptWritten = hws
}
