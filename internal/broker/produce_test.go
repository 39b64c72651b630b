package broker_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

func TestProduceConsumeEveryCompression(t *testing.T) {
	n := testcluster.Start(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "compress-" + name
			createTopic(t, n, topic, 3, nil)
			cl := newClient(t, n, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			const total = 500
			var rs []*kgo.Record
			for i := 0; i < total; i++ {
				rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("%d|%s", i, "payload-payload-payload"))})
			}
			if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got := consumeAll(t, n, topic, total)
			checkPerKeyOrder(t, got, total)
		})
	}
}

// checkPerKeyOrder checks that every value "i|..." arrives exactly once and that each key's
// values arrive in increasing order.
func checkPerKeyOrder(t *testing.T, got []*kgo.Record, total int) {
	t.Helper()
	if len(got) != total {
		t.Fatalf("got %d records, want %d", len(got), total)
	}
	seen := map[int]bool{}
	last := map[string]int{}
	partitionOf := map[string]int32{}
	for _, r := range got {
		var i int
		if _, err := fmt.Sscanf(string(r.Value), "%d|", &i); err != nil {
			t.Fatalf("bad value %q", r.Value)
		}
		if seen[i] {
			t.Fatalf("duplicate record %d", i)
		}
		seen[i] = true
		k := string(r.Key)
		if p, ok := partitionOf[k]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
		}
		partitionOf[k] = r.Partition
		if prev, ok := last[k]; ok && i <= prev {
			t.Fatalf("key %s: record %d after %d", k, i, prev)
		}
		last[k] = i
	}
}

func TestProduceAcks(t *testing.T) {
	n := testcluster.Start(t)
	for _, tc := range []struct {
		name string
		acks kgo.Acks
	}{{"acks0", kgo.NoAck()}, {"acks1", kgo.LeaderAck()}, {"acksall", kgo.AllISRAcks()}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "acks-" + tc.name
			createTopic(t, n, topic, 2, nil)
			opts := []kgo.Opt{kgo.RequiredAcks(tc.acks), kgo.DefaultProduceTopic(topic)}
			if tc.name != "acksall" {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			cl := newClient(t, n, opts...)
			const total = 200
			for i := 0; i < total; i++ {
				r := &kgo.Record{Key: []byte(strconv.Itoa(i % 5)), Value: []byte(fmt.Sprintf("%d|x", i))}
				if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			checkPerKeyOrder(t, consumeAll(t, n, topic, total), total)
		})
	}
}

func TestMessageTooLarge(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "small", 1, map[string]*string{"max.message.bytes": strPtr("1000")})
	cl := newClient(t, n, kgo.DefaultProduceTopic("small"), kgo.ProducerBatchMaxBytes(1<<20))
	err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: randomBytes(4000)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("got %v, want MESSAGE_TOO_LARGE", err)
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
		t.Fatalf("small record after a large one: %v", err)
	}
}

func TestMinInsyncReplicasAboveReplicationFactor(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "misr", 1, map[string]*string{"min.insync.replicas": strPtr("2")})
	cl := newClient(t, n)
	// acks=all needs two in-sync replicas and there is one: NOT_ENOUGH_REPLICAS.
	if r := produceRaw(t, cl, "misr", rawBatch(-1, -1, -1, "x")); r.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all: error %d, want NOT_ENOUGH_REPLICAS", r.ErrorCode)
	}
	// acks=1 does not need the ISR.
	nc := newClient(t, n, kgo.DefaultProduceTopic("misr"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := nc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
}

func TestUnknownTopicNoAutoCreate(t *testing.T) {
	n := testcluster.Start(t, "auto.create.topics.enable=false")
	cl := newClient(t, n, kgo.DefaultProduceTopic("nope"), kgo.RecordRetries(1), kgo.UnknownTopicRetries(1))
	err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("got %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

func TestAutoCreateTopic(t *testing.T) {
	n := testcluster.Start(t, "num.partitions=4")
	cl := newClient(t, n, kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("0|x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	td, err := newAdmin(t, n).ListTopics(ctxT(t), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td["auto"].Partitions); got != 4 {
		t.Fatalf("auto-created topic has %d partitions, want num.partitions=4", got)
	}
}
