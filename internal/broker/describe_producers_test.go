package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeProducers: the partition leader lists its producers (KIP-664): a transactional
// producer with a transaction open shows its first offset, which goes back to -1 once the
// transaction commits (with the marker's coordinator epoch); an idempotent producer shows its
// last sequence; an unknown partition gets UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribeProducers(t *testing.T) {
	n := startTxnNode(t)
	const topic = "describe-producers"
	createTopic(t, n, topic, 1, nil)
	ctx := ctxT(t)
	idem := newClient(t, n, kgo.DefaultProduceTopic(topic))
	for range 3 {
		if err := idem.ProduceSync(ctx, &kgo.Record{Value: []byte("i")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod := txnProducer(t, n, "tx-describe", topic)
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("t")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, n)
	describe := func() map[int64]kadm.DescribedProducer {
		t.Helper()
		ds, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		p := ds[topic].Partitions[0]
		if p.Err != nil {
			t.Fatalf("describe producers: %v", p.Err)
		}
		return p.ActiveProducers
	}
	txnID := func(ps map[int64]kadm.DescribedProducer) kadm.DescribedProducer {
		t.Helper()
		var out []kadm.DescribedProducer
		for _, p := range ps {
			if p.LastSequence == 0 {
				out = append(out, p)
			}
		}
		if len(out) != 1 {
			t.Fatalf("producers %+v: want one with a single batch", ps)
		}
		return out[0]
	}
	ps := describe()
	if len(ps) != 2 {
		t.Fatalf("producers %+v, want 2", ps)
	}
	open := txnID(ps)
	if open.CurrentTxnStartOffset != 3 || open.LastTimestamp <= 0 {
		t.Fatalf("transactional producer %+v, want its transaction starting at offset 3", open)
	}
	for _, p := range ps {
		if p.ProducerID != open.ProducerID && (p.LastSequence != 2 || p.CurrentTxnStartOffset != -1) {
			t.Fatalf("idempotent producer %+v, want last sequence 2 and no transaction", p)
		}
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the marker ends the transaction on the partition", func() bool {
		p := describe()[open.ProducerID]
		return p.CurrentTxnStartOffset == -1 && p.CoordinatorEpoch >= 0
	})

	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{5}
	req.Topics = append(req.Topics, rt)
	kresp, err := newClient(t, n).SeedBrokers()[0].Request(ctx, req) // to the broker: the client would refuse the unknown partition itself
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DescribeProducersResponse)
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown partition: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}
