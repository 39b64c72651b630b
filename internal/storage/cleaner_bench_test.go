package storage

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// BenchmarkClean measures cleaning throughput in bytes of dirty log per second: 32 MiB of
// 1 KiB records (8 per batch, uncompressed) over keys 10% as many as the records, in 8 MiB
// segments, all dirty, cleaned in one pass with a 16 MiB offset map.
func BenchmarkClean(b *testing.B) {
	const (
		records  = 32 << 10
		keys     = records / 10
		perBatch = 8
	)
	cfg := testConfig()
	cfg.Cleanup = CleanupCompact
	cfg.SegmentBytes = 8 << 20
	tmpl := &testLog{t: b, dir: b.TempDir(), cfg: cfg, clock: newClock(1_700_000_000_000), logs: &logBuffer{}}
	tmpl.reopen()
	value := make([]byte, 1000)
	for i := 0; i < records; i += perBatch {
		var rs []rec
		for j := range perBatch {
			rs = append(rs, rec{key: fmt.Appendf(nil, "key-%06d", (i+j)*7919%keys), value: value, ts: int64(i + j)})
		}
		tmpl.append(makeKeyedBatch(kbatch{recs: rs}))
	}
	rollNow(b, tmpl)
	dirty := tmpl.Size()
	tmpl.Close()
	m := NewOffsetMap(16 << 20)
	b.SetBytes(dirty)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tl := &testLog{t: b, dir: b.TempDir(), cfg: cfg, clock: tmpl.clock, logs: &logBuffer{}}
		copyDir(b, tmpl.dir, tl.dir)
		tl.reopen()
		b.StartTimer()
		st, err := tl.Clean(context.Background(), CleanOptions{UpperBound: math.MaxInt64, OffsetMap: m})
		if err != nil || st.MapFull || st.RecordsKept != keys {
			b.Fatalf("Clean: %+v, %v", st, err)
		}
		b.StopTimer()
		tl.Close()
		b.StartTimer()
	}
}
