package storage

import (
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/samsa-io/samsa/internal/records"
)

// FuzzRecover writes arbitrary bytes as a segment (and its offset index, and optionally a
// clean-shutdown marker so the index is trusted) and opens the log: it must never panic. After
// an unclean open every remaining byte must be valid batches.
func FuzzRecover(f *testing.F) {
	var seg []byte
	for i := 0; i < 4; i++ {
		b := makeBatch(batchSpec{records: 1 + i, valueSize: 10 * i, baseTs: int64(i)})
		records.SetBaseOffset(b, int64(len(seg)/10))
		seg = append(seg, b...)
	}
	idx := binary.BigEndian.AppendUint32(nil, 1)
	idx = binary.BigEndian.AppendUint32(idx, 80)
	f.Add(seg, idx, false)
	f.Add(seg, idx, true)
	f.Add(seg[:len(seg)-7], []byte{}, false)
	f.Add(seg[:100], idx[:5], true)
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff\xff\xff"), idx, true)
	f.Fuzz(func(t *testing.T, segment, index []byte, clean bool) {
		dir := t.TempDir()
		base := fileName(0, "")
		if err := os.WriteFile(filepath.Join(dir, base+logSuffix), segment, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, base+indexSuffix), index, 0o644); err != nil {
			t.Fatal(err)
		}
		if clean {
			if err := os.WriteFile(filepath.Join(dir, cleanShutdownFile), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg := testConfig()
		cfg.IndexIntervalBytes = 64
		l, err := OpenLog(dir, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return
		}
		defer l.Close()
		end := l.LogEndOffset()
		for off := l.LogStartOffset(); off < end; {
			b, err := l.Read(off, 1<<16, end, true)
			if err != nil {
				if clean {
					return // trusted data may be unreadable, but must not crash
				}
				t.Fatalf("Read(%d) after recovery: %v", off, err)
			}
			var last int64 = -1
			rest, err := records.Split(b, func(batch []byte) error {
				h, err := records.Validate(batch)
				last = h.LastOffset()
				return err
			})
			if !clean && (err != nil || rest != 0) {
				t.Fatalf("recovered log has invalid bytes at %d: %v", off, err)
			}
			if last < off {
				if clean {
					return
				}
				t.Fatalf("no progress at offset %d", off)
			}
			off = last + 1
		}
		l.OffsetForTimestamp(0)
		l.MaxTimestamp()
		if _, err := l.AppendAsLeader(makeBatch(batchSpec{}), 0); err != nil && !clean {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}

// FuzzStateFiles feeds arbitrary bytes to the decoders of the checkpoint and snapshot files.
func FuzzStateFiles(f *testing.F) {
	ps := newProducerStates()
	ps.producers[3] = &producerEntry{epoch: 1, n: 1, batches: [batchesToRetain]batchMeta{{firstSeq: 0, lastSeq: 4}}}
	f.Add(ps.encodeSnapshot())
	f.Add(logCheckpoint{logStart: 5, recoveryPoint: 9}.encode())
	f.Add([]byte("0\n2\n0 0\n3 100\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := decodeSnapshot(b); err == nil {
			if again, err := decodeSnapshot(got.encodeSnapshot()); err != nil || len(again.producers) != len(got.producers) {
				t.Fatalf("snapshot does not round-trip: %v", err)
			}
		}
		_, _ = decodeLogCheckpoint(b)
		if entries, err := decodeEpochCheckpoint(b); err == nil {
			c := epochCache{entries: entries}
			if again, err := decodeEpochCheckpoint(c.encode()); err != nil || len(again) != len(entries) {
				t.Fatalf("epoch checkpoint does not round-trip: %v", err)
			}
		}
	})
}
