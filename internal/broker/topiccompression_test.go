package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// storedCodecs fetches partition 0 of topic with a raw Fetch request and returns the codec
// of every stored batch.
func storedCodecs(t *testing.T, n *testcluster.Node, topic string) []int8 {
	t.Helper()
	sp := rawFetch(t, n, topic)
	if sp.ErrorCode != 0 {
		t.Fatalf("fetch error %d", sp.ErrorCode)
	}
	var codecs []int8
	records.Split(sp.RecordBatches, func(b []byte) error {
		h, err := records.Validate(b)
		if err != nil {
			t.Fatalf("stored batch invalid: %v", err)
		}
		codecs = append(codecs, h.Codec())
		return nil
	})
	return codecs
}

func TestTopicCompressionTypeRecompresses(t *testing.T) {
	n := testcluster.Start(t)
	for _, tc := range []struct {
		topicCodec string
		producer   kgo.CompressionCodec
		want       int8
	}{
		{"producer", kgo.Lz4Compression(), records.CodecLZ4},
		{"gzip", kgo.NoCompression(), records.CodecGzip},
		{"zstd", kgo.SnappyCompression(), records.CodecZstd},
		{"uncompressed", kgo.GzipCompression(), records.CodecNone},
	} {
		t.Run(tc.topicCodec, func(t *testing.T) {
			topic := "tc-" + tc.topicCodec
			createTopic(t, n, topic, 1, map[string]*string{"compression.type": strPtr(tc.topicCodec)})
			cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(tc.producer))
			var rs []*kgo.Record
			for i := 0; i < 100; i++ {
				rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("%d|compressible compressible compressible", i))})
			}
			if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			codecs := storedCodecs(t, n, topic)
			if len(codecs) == 0 {
				t.Fatal("nothing stored")
			}
			for _, c := range codecs {
				if c != tc.want {
					t.Fatalf("stored codec %d, want %d", c, tc.want)
				}
			}
			checkPerKeyOrder(t, consumeAll(t, n, topic, 100), 100)
		})
	}
}

func TestTimestampLimits(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "tslimit", 1, map[string]*string{
		"message.timestamp.before.max.ms": strPtr("3600000"),
		"message.timestamp.after.max.ms":  strPtr("3600000"),
	})
	cl := newClient(t, n, kgo.DefaultProduceTopic("tslimit"), kgo.RecordRetries(1))
	ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		ts   time.Time
		want error
	}{
		{"now", time.Now(), nil},
		{"two hours old", time.Now().Add(-2 * time.Hour), kerr.InvalidTimestamp},
		{"two hours ahead", time.Now().Add(2 * time.Hour), kerr.InvalidTimestamp},
	} {
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Timestamp: tc.ts}).FirstErr()
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}
