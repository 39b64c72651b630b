package broker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

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
