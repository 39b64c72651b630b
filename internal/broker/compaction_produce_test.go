package broker_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// A record without a key is refused in a topic whose cleanup.policy compacts, with Kafka's
// error and message, whatever the batch's codec (the broker decompresses to see the keys);
// keyed records and keyless ones in a delete topic go in.
func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "cmp", 1, map[string]*string{"cleanup.policy": strPtr("delete,compact")})
	createTopic(t, n, "del", 1, nil)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			cl := newClient(t, n, kgo.ProducerBatchCompression(codec), kgo.DisableIdempotentWrite(),
				kgo.RecordRetries(0))
			keyed := &kgo.Record{Topic: "cmp", Key: []byte("k"), Value: []byte("v")}
			keyless := &kgo.Record{Topic: "cmp", Value: []byte("no key, padded to be worth compressing, padded")}
			if err := cl.ProduceSync(ctxT(t), keyed).FirstErr(); err != nil {
				t.Fatalf("keyed: %v", err)
			}
			if err := cl.ProduceSync(ctxT(t), keyless).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
				t.Fatalf("keyless in a compacted topic: %v, want INVALID_RECORD", err)
			}
			if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "del", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("keyless in a delete topic: %v", err)
			}
		})
	}
	cl := newClient(t, n)
	const want = "Compacted topic cannot accept message without key in topic partition cmp-0."
	for _, codec := range []int8{records.CodecNone, records.CodecGzip, records.CodecZstd} {
		sp := produceRaw(t, cl, "cmp", codecBatch(t, codec, []byte("a"), nil))
		if sp.ErrorCode != kerr.InvalidRecord.Code || sp.ErrorMessage == nil || *sp.ErrorMessage != want {
			t.Errorf("raw codec %d: error %d message %v, want INVALID_RECORD %q", codec, sp.ErrorCode, sp.ErrorMessage, want)
		}
		if sp := produceRaw(t, cl, "cmp", codecBatch(t, codec, []byte("a"), []byte("b"))); sp.ErrorCode != 0 {
			t.Errorf("raw codec %d keyed: error %d", codec, sp.ErrorCode)
		}
	}
}

// codecBatch is a batch of two records, keys k1 (nil: no key) then k2, compressed with codec.
func codecBatch(t *testing.T, codec int8, k1, k2 []byte) []byte {
	t.Helper()
	var recs []byte
	for i, k := range [][]byte{k1, k2} {
		rec := kmsg.Record{Key: k, Value: []byte("value"), OffsetDelta: int32(i)}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		recs = rec.AppendTo(recs)
	}
	body, err := records.Compress(codec, recs)
	if err != nil {
		t.Fatal(err)
	}
	b := kmsg.RecordBatch{Magic: 2, NumRecords: 2, LastOffsetDelta: 1, ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, Attributes: int16(codec), Records: body}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], records.ComputeCRC(raw))
	return raw
}
