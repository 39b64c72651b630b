package storage

import (
	"testing"
)

// BenchmarkAppend appends 1 KiB batches of 100-byte records.
func BenchmarkAppend(b *testing.B) { benchAppend(b, 0) }

// BenchmarkAppendFloor is BenchmarkAppend with a free-space floor (1 byte, so every append is
// admitted after the floor's real statfs checks): the floor's cost on the append path.
func BenchmarkAppendFloor(b *testing.B) { benchAppend(b, 1) }

// benchAppend appends 1 KiB batches of 100-byte records to a log whose directory has a
// free-space floor of floor bytes (0: none).
func benchAppend(b *testing.B, floor int64) {
	cfg := testConfig()
	cfg.SegmentBytes = 64 << 20
	dir := b.TempDir()
	l, err := OpenLog(dir, cfg, Options{Floor: NewSpaceFloor(dir, floor)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	proto := makeBatch(batchSpec{records: 8, valueSize: 100})
	batch := make([]byte, len(proto))
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(batch, proto)
		if _, err := l.AppendAsLeader(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendIdempotent is BenchmarkAppend with an idempotent producer.
func BenchmarkAppendIdempotent(b *testing.B) {
	cfg := testConfig()
	cfg.SegmentBytes = 64 << 20
	l, err := OpenLog(b.TempDir(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	batches := make([][]byte, 64)
	for i := range batches {
		batches[i] = makeBatch(batchSpec{records: 8, valueSize: 100, producerID: 1})
	}
	b.SetBytes(int64(len(batches[0])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := batches[i%len(batches)]
		binary32(batch[53:], uint32(i*8))
		if _, err := l.AppendAsLeader(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func binary32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// BenchmarkRead reads 1 MiB at random offsets of a log of 1 KiB batches.
func BenchmarkRead(b *testing.B) {
	cfg := testConfig()
	cfg.SegmentBytes = 16 << 20
	l, err := OpenLog(b.TempDir(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 40000; i++ {
		if _, err := l.AppendAsLeader(makeBatch(batchSpec{records: 8, valueSize: 100}), 0); err != nil {
			b.Fatal(err)
		}
	}
	end := l.LogEndOffset()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := int64(i*7919) % end
		if _, err := l.Read(off, 1<<20, end, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpaceFloorAdmit is the floor's check of one 1 KiB append on a real directory.
func BenchmarkSpaceFloorAdmit(b *testing.B) {
	f := NewSpaceFloor(b.TempDir(), 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := f.admit(1024); err != nil {
			b.Fatal(err)
		}
	}
}
