package broker_test

import (
	"bytes"
	"fmt"

	"context"
	"github.com/IBM/sarama"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// A consumer waiting in a long poll (max wait 20s) gets a record produced while it waits
// without waiting out the poll.
func TestFetchLongPollReturnsWhenDataArrives(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "lp", 1, nil)
	consumer := newClient(t, n, kgo.ConsumeTopics("lp"), kgo.FetchMaxWait(20*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	producer := newClient(t, n, kgo.DefaultProduceTopic("lp"))

	got := make(chan time.Time, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			if len(fs.Records()) > 0 {
				got <- time.Now()
				return
			}
		}
	}()
	// Let the consumer reach its long poll, then produce.
	time.Sleep(time.Second)
	sent := time.Now()
	if err := producer.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		// The poll's own deadline is 20s after it started; arriving well before it shows the
		// append woke the fetch.
		if at.Sub(sent) > 15*time.Second {
			t.Fatalf("record arrived %v after produce; the fetch was not woken", at.Sub(sent))
		}
	case <-time.After(40 * time.Second):
		t.Fatal("consumer never received the record")
	}
}

func TestFetchRespectsMaxBytesButReturnsOneBatch(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "mb", 1, nil)
	producer := newClient(t, n, kgo.DefaultProduceTopic("mb"), kgo.ProducerLinger(0))
	big := make([]byte, 50_000)
	for i := 0; i < 3; i++ {
		if err := producer.ProduceSync(ctxT(t), &kgo.Record{Value: big}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Partition max bytes below one batch: the consumer still progresses (KIP-74).
	got := consumeAll(t, n, "mb", 3, kgo.FetchMaxPartitionBytes(1000), kgo.FetchMaxBytes(1000))
	if len(got) != 3 {
		t.Fatalf("got %d records", len(got))
	}
}

// A partition with nothing new answers with an empty record set, not a null one: librdkafka
// treats a null set as a protocol error.
func TestFetchEmptyPartitionHasEmptyNotNullRecords(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "empty", 1, nil)
	for _, topic := range []string{"empty", "no-such-topic"} {
		if rb := rawFetch(t, n, topic).RecordBatches; rb == nil {
			t.Fatalf("%s: null record set", topic)
		}
	}
}

// With sendfile a partition's bytes end at max.partition.fetch.bytes even inside a batch, as
// Kafka's do; clients drop the partial trailing batch and fetch it again. franz-go and sarama
// must read every record once, in order.
func TestFetchPartialTrailingBatches(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "partial", 1, nil)
	producer := newClient(t, n, kgo.DefaultProduceTopic("partial"), kgo.ProducerLinger(0))
	const total = 40
	for i := 0; i < total; i++ {
		v := append([]byte(fmt.Sprintf("%d|", i)), randomBytes(5000)...)
		if err := producer.ProduceSync(ctxT(t), &kgo.Record{Key: []byte("k"), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := consumeAll(t, n, "partial", total, kgo.FetchMaxPartitionBytes(12000), kgo.FetchMaxBytes(12000))
	checkPerKeyOrder(t, got, total)

	cfg := saramaConfig()
	cfg.Consumer.Fetch.Default = 12000
	cfg.Consumer.Fetch.Max = 12000
	cons, err := sarama.NewConsumer([]string{n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition("partial", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for i := 0; i < total; i++ {
		select {
		case m := <-pc.Messages():
			if m.Offset != int64(i) || !bytes.HasPrefix(m.Value, []byte(fmt.Sprintf("%d|", i))) {
				t.Fatalf("sarama: record %d at offset %d", i, m.Offset)
			}
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-time.After(20 * time.Second):
			t.Fatalf("sarama: timed out at record %d", i)
		}
	}
}
