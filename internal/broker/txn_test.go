package broker_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// writeMarker sends WriteTxnMarkers for partition 0 of topic and returns its error code.
func writeMarker(t *testing.T, cl *kgo.Client, topic string, pid int64, epoch int16, coordEpoch int32, commit bool) int16 {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.Committed = pid, epoch, coordEpoch, commit
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	// Straight to the broker, as the coordinator sends it (kgo would route it by topic).
	kresp, err := cl.SeedBrokers()[0].Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.WriteTxnMarkersResponse)
	return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
}

func listLatest(t *testing.T, cl *kgo.Client, topic string, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID, req.IsolationLevel = -1, isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("ListOffsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// pollValues consumes topic from the start with opts until want values arrived (or, with
// want 0, for a second) and returns them.
func pollValues(t *testing.T, n *testcluster.Node, topic string, want int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := newClient(t, n, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []string
	for (want == 0 || len(out) < want) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			if e.Err != context.DeadlineExceeded {
				t.Fatalf("fetch: %v", e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

func TestReadCommitted(t *testing.T) {
	n := testcluster.Start(t)
	const topic = "txn"
	createTopic(t, n, topic, 1, nil)
	cl := newClient(t, n)
	p := n.Server().Replicas().Partition(topic, 0)
	if p == nil {
		t.Fatal("partition not open")
	}
	appendTxn := func(b []byte) {
		t.Helper()
		if _, err := p.AppendAsLeader(b); err != nil {
			t.Fatal(err)
		}
	}
	appendTxn(testcluster.TxnBatch(1, 0, 0, "a1", "a2")) // 0-1
	appendTxn(testcluster.TxnBatch(2, 0, 0, "b1"))       // 2
	if code := writeMarker(t, cl, topic, 1, 0, 0, true); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code)) // 3
	}
	committed := kgo.FetchIsolationLevel(kgo.ReadCommitted())
	if got := listLatest(t, cl, topic, 1); got != 2 {
		t.Fatalf("ListOffsets latest read_committed = %d, want 2 (the open transaction)", got)
	}
	if got := listLatest(t, cl, topic, 0); got != 4 {
		t.Fatalf("ListOffsets latest read_uncommitted = %d, want 4", got)
	}
	if got := pollValues(t, n, topic, 0, committed); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("read_committed while b is open: %q", got)
	}
	// Fencing: an older producer epoch and an older coordinator epoch are refused.
	if code := writeMarker(t, cl, topic, 2, -1, 0, false); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale producer epoch: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarker(t, cl, "no-such-topic", 2, 0, 0, false); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarker(t, cl, topic, 2, 0, 0, false); code != 0 { // 4: abort b
		t.Fatalf("abort: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarker(t, cl, topic, 2, 0, -1, false); code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("stale coordinator epoch: %v", kerr.ErrorForCode(code))
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: []byte("plain")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a1", "a2", "plain"}
	if got := pollValues(t, n, topic, 3, committed); !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
	if got := pollValues(t, n, topic, 4); !slices.Equal(got, []string{"a1", "a2", "b1", "plain"}) {
		t.Fatalf("read_uncommitted: %q", got)
	}
	if got := listLatest(t, cl, topic, 1); got != listLatest(t, cl, topic, 0) {
		t.Fatalf("LSO %d != HW once every transaction ended", got)
	}

	// sarama's read_committed consumer drops the aborted record too.
	cfg := saramaConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Version = sarama.V2_8_0_0
	consumer, err := sarama.NewConsumer([]string{n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < 3 {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
		case e := <-pc.Errors():
			t.Fatal(e)
		case <-timeout:
			t.Fatalf("sarama read_committed got %q", got)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sarama read_committed: %q, want %q", got, want)
	}
}

func TestTransactionalProduceSwitch(t *testing.T) {
	n := testcluster.Start(t)
	const topic = "txn-produce"
	createTopic(t, n, topic, 1, nil)
	cl := newClient(t, n)
	produce := func() int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = testcluster.TxnBatch(7, 0, 0, "x")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	// The coordinator's verifier: a batch of no transaction it knows of.
	if code := produce(); code != kerr.InvalidTxnState.Code {
		t.Fatalf("transactional produce outside a transaction: %v", kerr.ErrorForCode(code))
	}
	n.Server().Broker().SetTxnVerifier(nil)
	if code := produce(); code != kerr.InvalidRecord.Code {
		t.Fatalf("transactional produce without a coordinator: %v", kerr.ErrorForCode(code))
	}
	n.Server().Broker().SetTxnVerifier(testcluster.AllowTransactions{})
	if code := produce(); code != 0 {
		t.Fatalf("transactional produce with a verifier: %v", kerr.ErrorForCode(code))
	}
	if got := listLatest(t, cl, topic, 1); got != 0 {
		t.Fatalf("LSO after an open transaction's batch = %d, want 0", got)
	}
}

// countTxns allows every transactional batch and counts the verifications asked for.
type countTxns struct{ calls *atomic.Int32 }

func (c countTxns) VerifyTransaction(replica.TopicPartition, string, int64, int16, bool) error {
	c.calls.Add(1)
	return nil
}

// Only the first batch of a transaction on a partition is verified with the coordinator (as
// Kafka): the later ones belong to the transaction the log has open. After the marker, the
// next transaction's first batch is verified again.
func TestTransactionVerifiedOncePerPartition(t *testing.T) {
	n := testcluster.Start(t)
	const topic = "txn-verify-once"
	createTopic(t, n, topic, 1, nil)
	cl := newClient(t, n)
	var calls atomic.Int32
	n.Server().Broker().SetTxnVerifier(countTxns{&calls})
	seq := int32(0)
	produce := func(values ...string) {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = testcluster.TxnBatch(9, 0, seq, values...)
		seq += int32(len(values))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("transactional produce: %v", kerr.ErrorForCode(code))
		}
	}
	for i := 0; i < 5; i++ {
		produce("a", "b")
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d verifications for 5 batches of one transaction, want 1", got)
	}
	if code := writeMarker(t, cl, topic, 9, 0, 0, true); code != 0 {
		t.Fatalf("marker: %v", kerr.ErrorForCode(code))
	}
	produce("c")
	produce("d")
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d verifications after a second transaction of 2 batches, want 2", got)
	}
}
