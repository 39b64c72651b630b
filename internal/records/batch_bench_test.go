package records_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
)

// benchBatch builds a valid uncompressed v2 batch of n records of valueSize-byte values.
func benchBatch(n, valueSize int) []byte {
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = byte('A' + i%26)
	}
	var recs []byte
	for i := 0; i < n; i++ {
		var body []byte
		body = append(body, 0)                              // attributes
		body = binary.AppendVarint(body, 0)                 // timestamp delta
		body = binary.AppendVarint(body, int64(i))          // offset delta
		body = binary.AppendVarint(body, -1)                // null key
		body = binary.AppendVarint(body, int64(len(value))) // value length
		body = append(body, value...)
		body = binary.AppendVarint(body, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), NumRecords: int32(n),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: recs}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-records.LengthOffset))
	binary.BigEndian.PutUint32(raw[17:], records.ComputeCRC(raw))
	return raw
}

// BenchmarkValidate checks a 16 KiB batch (length, magic, CRC-32C), as the broker does for
// every produced batch: 16 KiB is the Java producer's default batch.size.
func BenchmarkValidate(b *testing.B) {
	for _, c := range []struct{ n, size int }{{150, 100}, {15, 1024}} {
		batch := benchBatch(c.n, c.size)
		b.Run(fmt.Sprintf("16KiB-%dx%dB", c.n, c.size), func(b *testing.B) {
			if _, err := records.Validate(batch); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := records.Validate(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSplit walks a 1 MiB run of 16 KiB batches, as a produce request's records are split
// into batches.
func BenchmarkSplit(b *testing.B) {
	one := benchBatch(150, 100)
	var all []byte
	for len(all) < 1<<20 {
		all = append(all, one...)
	}
	b.SetBytes(int64(len(all)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := records.Split(all, func([]byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
