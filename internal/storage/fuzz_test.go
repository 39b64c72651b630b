package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// FuzzClean drives a compacted log with operations read from the input (appends of keyed
// records and tombstones with any codec, rolls, cleaning passes with a tiny offset map, clock
// steps past delete.retention.ms, restarts, crashes) and checks after each step that readers
// see the latest record of every key exactly as written (a tombstone may be gone), and only
// records that were written, at their offsets.
func FuzzClean(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{0x10, 0x31, 0x52, 0x13, 0x04, 0x25, 0x46, 0x67, 0x08, 0x19, 0x2a, 0x3b, 0x0c, 0x1d, 0x0e, 0x1f, 0x04, 0x04})
	f.Add([]byte("compacted topics keep the last value of every key, gaps and all"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		cfg := compactConfig()
		cfg.SegmentBytes = 1 << 10
		cfg.DeleteRetentionMs = 100
		tl := openTest(t, cfg)
		var written []readRec
		m := NewOffsetMap(16 * offsetMapSlotSize)
		for i, op := range ops {
			switch op % 8 {
			case 0, 1, 2, 3: // append 1-4 records over 8 keys, some tombstones, some keyless
				var rs []rec
				for j := range 1 + int(op>>6) {
					k := fmt.Sprintf("k%d", (int(op>>3)+j)%8)
					switch {
					case (i+j)%11 == 5:
						rs = append(rs, rec{value: []byte("nokey"), ts: int64(i)})
					case (i+j)%5 == 3:
						rs = append(rs, keyed(k, "", int64(i)))
					default:
						rs = append(rs, keyed(k, fmt.Sprintf("v%d.%d", i, j), int64(i)))
					}
				}
				b := makeKeyedBatch(kbatch{recs: rs, codec: int8(op>>4) % 5})
				tl.append(b)
				_, recs := decodeRecords(t, b)
				written = append(written, recs...)
			case 4:
				rollNow(t, tl)
			case 5:
				if _, err := tl.Clean(context.Background(), CleanOptions{UpperBound: math.MaxInt64, OffsetMap: m}); err != nil {
					t.Fatalf("op %d: Clean: %v", i, err)
				}
			case 6:
				tl.clock.advance(time.Duration(op>>3) * 10 * time.Millisecond)
			case 7:
				if op&8 != 0 {
					tl.crash()
				} else {
					tl.restart()
				}
			}
			_, got := tl.allRecords()
			checkSameLatest(t, written, got)
			if t.Failed() {
				t.Fatalf("after op %d (%d)", i, op%8)
			}
		}
	})
}
