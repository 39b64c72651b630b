package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// startTxnNode is a single node with a small __transaction_state.
func startTxnNode(t *testing.T) *testcluster.Node {
	return testcluster.Start(t, "transaction.state.log.num.partitions=3", "offsets.topic.num.partitions=3")
}

// txnProducer is a franz-go transactional producer of id to topic.
func txnProducer(t *testing.T, n *testcluster.Node, id, topic string) *kgo.Client {
	return newClient(t, n, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(20*time.Second), kgo.RecordRetries(5))
}

// runTxn produces values in one transaction and ends it (commit or abort).
func runTxn(ctx context.Context, cl *kgo.Client, commit bool, values ...string) error {
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			return err
		}
	}
	return cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
}

// TestTransactionsFranzGo: a franz-go transactional producer commits and aborts transactions;
// a read_committed consumer sees the committed records only, a read_uncommitted one all of
// them (so the aborted records were written, and hidden by their ABORT marker).
func TestTransactionsFranzGo(t *testing.T) {
	n := startTxnNode(t)
	const topic = "txn-e2e"
	createTopic(t, n, topic, 1, nil)
	ctx := ctxT(t)
	cl := txnProducer(t, n, "tx-e2e", topic)
	if err := runTxn(ctx, cl, true, "c1", "c2"); err != nil {
		t.Fatalf("committed transaction: %v", err)
	}
	if err := runTxn(ctx, cl, false, "a1"); err != nil {
		t.Fatalf("aborted transaction: %v", err)
	}
	if err := runTxn(ctx, cl, true, "c3"); err != nil {
		t.Fatalf("second committed transaction: %v", err)
	}
	got := pollValues(t, n, topic, 3, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if want := []string{"c1", "c2", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
	got = pollValues(t, n, topic, 4)
	if want := []string{"c1", "c2", "a1", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("read_uncommitted: %q, want %q", got, want)
	}
}

// TestTransactionsOpenTransactionHidden: records of a transaction not yet ended are not
// returned to a read_committed consumer; they are once it commits.
func TestTransactionsOpenTransactionHidden(t *testing.T) {
	n := startTxnNode(t)
	const topic = "txn-open"
	createTopic(t, n, topic, 1, nil)
	ctx := ctxT(t)
	cl := txnProducer(t, n, "tx-open", topic)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("pending")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := pollValues(t, n, topic, 0, kgo.FetchIsolationLevel(kgo.ReadCommitted())); len(got) != 0 {
		t.Fatalf("read_committed during the transaction: %q", got)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := pollValues(t, n, topic, 1, kgo.FetchIsolationLevel(kgo.ReadCommitted())); !slices.Equal(got, []string{"pending"}) {
		t.Fatalf("read_committed after commit: %q", got)
	}
}

// TestTransactionsZombieFenced: a second producer with the same transactional id fences the
// first: the first's produce or commit fails with a fencing error, its open transaction is
// aborted, and the new producer's transactions commit.
func TestTransactionsZombieFenced(t *testing.T) {
	n := startTxnNode(t)
	const topic = "txn-zombie"
	createTopic(t, n, topic, 1, nil)
	ctx := ctxT(t)
	zombie := txnProducer(t, n, "tx-zombie", topic)
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := txnProducer(t, n, "tx-zombie", topic)
	if err := runTxn(ctx, fresh, true, "fresh"); err != nil {
		t.Fatalf("new producer: %v", err)
	}
	err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie2")}).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie: %v, want a fencing error", err)
	}
	got := pollValues(t, n, topic, 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("read_committed: %q, want [fresh]", got)
	}
}

// TestTransactionsDescribeAndList: kadm's DescribeTransactions and ListTransactions show an
// ongoing transaction with its partition, then its completed state.
func TestTransactionsDescribeAndList(t *testing.T) {
	n := startTxnNode(t)
	const topic = "txn-describe"
	createTopic(t, n, topic, 1, nil)
	ctx := ctxT(t)
	cl := txnProducer(t, n, "tx-describe", topic)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, n)
	d, err := adm.DescribeTransactions(ctx, "tx-describe")
	if err != nil {
		t.Fatal(err)
	}
	got := d["tx-describe"]
	if got.Err != nil || got.State != "Ongoing" || got.ProducerID < 0 || got.TimeoutMillis != 20000 ||
		len(got.Topics[topic]) != 1 || got.Coordinator != 1 {
		t.Fatalf("described during the transaction: %+v", got)
	}
	listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil || len(listed) != 1 || listed["tx-describe"].ProducerID != got.ProducerID {
		t.Fatalf("listed Ongoing: %+v %v", listed, err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// EndTxn answers once PrepareCommit is written; the markers, then CompleteCommit, follow.
	testcluster.PollUntil(t, 10*time.Second, "CompleteCommit", func() (bool, string) {
		d, err := adm.DescribeTransactions(ctx, "tx-describe")
		if err != nil {
			return false, err.Error()
		}
		return d["tx-describe"].State == "CompleteCommit", fmt.Sprintf("%+v", d["tx-describe"])
	})
	if listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"}); err != nil || len(listed) != 0 {
		t.Fatalf("listed Ongoing after commit: %+v %v", listed, err)
	}
	if d, _ := adm.DescribeTransactions(ctx, "no-such-id"); !errors.Is(d["no-such-id"].Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("unknown id: %+v", d["no-such-id"])
	}
}

// TestTransactionsTimedOutAborted: a transaction left open past its timeout is aborted by the
// coordinator (its records hidden from read_committed, the producer fenced), and the
// partition's last stable offset moves past it.
func TestTransactionsTimedOutAborted(t *testing.T) {
	n := testcluster.Start(t, "transaction.state.log.num.partitions=1",
		"transaction.abort.timed.out.transaction.cleanup.interval.ms=100")
	const topic = "txn-timeout"
	createTopic(t, n, topic, 1, nil)
	ctx := ctxT(t)
	stale := newClient(t, n, kgo.TransactionalID("tx-timeout"), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(time.Second))
	if err := stale.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := stale.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, n)
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := adm.DescribeTransactions(ctx, "tx-timeout")
		if err == nil && d["tx-timeout"].State == "CompleteAbort" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out transaction was not aborted: %+v %v", d["tx-timeout"], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cl := newClient(t, n)
	if lso := listLatest(t, cl, topic, 1); lso != 2 {
		t.Fatalf("last stable offset %d after the abort, want 2 (the record and its marker)", lso)
	}
	if got := pollValues(t, n, topic, 0, kgo.FetchIsolationLevel(kgo.ReadCommitted())); len(got) != 0 {
		t.Fatalf("read_committed: %q", got)
	}
	err := stale.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("commit of the timed-out transaction: %v, want a fencing error", err)
	}
}

// saramaTxnProducer is a sarama transactional sync producer of the given transactional id.
func saramaTxnProducer(t *testing.T, n *testcluster.Node, id string) sarama.SyncProducer {
	t.Helper()
	cfg := saramaConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Transaction.ID = id
	cfg.Net.MaxOpenRequests = 1
	prod, err := sarama.NewSyncProducer([]string{n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	return prod
}

// TestTransactionsSarama: sarama's transactional producer commits one transaction and aborts
// another; a read_committed consumer sees the committed record only.
func TestTransactionsSarama(t *testing.T) {
	n := startTxnNode(t)
	const topic = "txn-sarama"
	createTopic(t, n, topic, 1, nil)
	prod := saramaTxnProducer(t, n, "tx-sarama")
	run := func(value string, commit bool) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)}); err != nil {
			t.Fatalf("send %s: %v", value, err)
		}
		end := prod.CommitTxn
		if !commit {
			end = prod.AbortTxn
		}
		if err := end(); err != nil {
			t.Fatalf("end %s: %v", value, err)
		}
	}
	run("aborted", false)
	run("committed", true)
	got := pollValues(t, n, topic, 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if !slices.Equal(got, []string{"committed"}) {
		t.Fatalf("read_committed: %q, want [committed]", got)
	}
	if got := pollValues(t, n, topic, 2); !slices.Equal(got, []string{"aborted", "committed"}) {
		t.Fatalf("read_uncommitted: %q", got)
	}
}

// TestTransactionsSaramaOffsets: sarama's transactional producer copies consumed messages
// with their offsets in the transaction: AddOffsetsToTxn in an aborted transaction leaves the
// group without offsets; AddMessageToTxn of each consumed message in a committed one commits
// the offset after the last (sarama sends AddOffsetsToTxn and TxnOffsetCommit at
// CommitTxn), and the copies are visible read_committed.
func TestTransactionsSaramaOffsets(t *testing.T) {
	n := startTxnNode(t)
	const in, out, group = "sarama-eos-in", "sarama-eos-out", "g-sarama-eos"
	createTopic(t, n, in, 1, nil)
	createTopic(t, n, out, 1, nil)
	ctx := ctxT(t)
	feed := newClient(t, n, kgo.DefaultProduceTopic(in))
	for i := range 4 {
		if err := feed.ProduceSync(ctx, &kgo.Record{Value: []byte("m" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod := saramaTxnProducer(t, n, "tx-sarama-eos")
	consumer, err := sarama.NewConsumer([]string{n.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(in, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var msgs []*sarama.ConsumerMessage
	for len(msgs) < 4 {
		select {
		case m := <-pc.Messages():
			msgs = append(msgs, m)
		case <-ctx.Done():
			t.Fatalf("consumed %d of 4 messages", len(msgs))
		}
	}

	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: out, Value: sarama.StringEncoder("aborted")}); err != nil {
		t.Fatal(err)
	}
	if err := prod.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{in: {{Partition: 0, Offset: 2, LeaderEpoch: -1}}}, group); err != nil {
		t.Fatal(err)
	}
	if err := prod.AbortTxn(); err != nil {
		t.Fatal(err)
	}
	if got := committedOffset(t, n, group, in); got != -1 {
		t.Fatalf("committed offset %d after the aborted transaction, want none", got)
	}

	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: out, Value: sarama.ByteEncoder(m.Value)}); err != nil {
			t.Fatal(err)
		}
		if err := prod.AddMessageToTxn(m, group, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	waitCommittedOffset(t, n, group, in, 4)
	got := pollValues(t, n, out, 4, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if !slices.Equal(got, []string{"m0", "m1", "m2", "m3"}) {
		t.Fatalf("read_committed: %q, want m0..m3", got)
	}
}
