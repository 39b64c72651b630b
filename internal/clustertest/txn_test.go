package clustertest

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/samsa-io/samsa/internal/txn"
)

// TestTransactionsAcrossBrokers: a franz-go transactional producer writes to partitions led
// by brokers other than its transaction coordinator, so the partition leaders verify its
// batches with the coordinator over the network (AddPartitionsToTxn verifyOnly) and the
// coordinator sends them their markers (WriteTxnMarkers); a read_committed consumer sees the
// committed transaction only.
func TestTransactionsAcrossBrokers(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "transaction.state.log.num.partitions=1", "transaction.state.log.replication.factor=3")
	const topic = "txn-x"
	createReplicated(t, c, topic, 3)
	ctx := ctxT(t)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.TransactionalID("tx-x"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	run := func(commit bool, prefix string) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(3) {
			r := &kgo.Record{Partition: p, Value: []byte(prefix + strconv.Itoa(int(p)))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s to partition %d: %v", prefix, p, err)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end %s: %v", prefix, err)
		}
	}
	run(false, "a")
	run(true, "c")

	img := c.Server(0).Image()
	st, ok := img.Topic(txn.TopicName)
	if !ok {
		t.Fatal("no " + txn.TopicName)
	}
	coord := st.Partitions[0].Leader
	tp, _ := img.Topic(topic)
	remote := 0
	for _, p := range tp.Partitions {
		if p.Leader != coord {
			remote++
		}
	}
	if remote == 0 {
		t.Fatalf("every partition is led by the coordinator (node %d): nothing crossed brokers", coord)
	}

	got := readCommitted(t, c, topic, 3)
	slices.Sort(got)
	if !slices.Equal(got, []string{"c0", "c1", "c2"}) {
		t.Fatalf("read_committed: %q, want c0 c1 c2", got)
	}
}

// TestTransactionCoordinatorFailover: the broker leading __transaction_state dies between
// two transactions of a producer; another broker loads the partition (replaying the first
// transaction's records) and the producer, after finding the new coordinator, commits the
// second. A read_committed consumer sees both transactions.
func TestTransactionCoordinatorFailover(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "transaction.state.log.num.partitions=1", "transaction.state.log.replication.factor=3")
	const topic = "txn-failover"
	createReplicated(t, c, topic, 1)
	ctx := ctxT(t)
	newProducer := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.TransactionalID("tx-failover"),
			kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(30*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	commit := func(cl *kgo.Client, value string) error {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
			return err
		}
		return cl.EndTransaction(ctx, kgo.TryCommit)
	}
	if err := commit(newProducer(), "first"); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Server(0).Image().Topic(txn.TopicName)
	coord := int(st.Partitions[0].Leader) - 1
	waitISR(t, c, txn.TopicName, 3)
	c.KillNode(coord)
	t.Logf("killed the transaction coordinator, node %d", coord+1)

	// A new producer of the same id: InitProducerId on the new coordinator bumps the epoch
	// of the replayed id (so the state was loaded: a fresh id would start at epoch 0).
	deadline := time.Now().Add(testTimeout)
	for {
		err := commit(newProducer(), "second")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second transaction after the failover: %v", err)
		}
		t.Logf("retrying: %v", err)
		time.Sleep(500 * time.Millisecond)
	}
	if got := readCommitted(t, c, topic, 2); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("read_committed: %q, want [first second]", got)
	}
	adm := adminFor(t, c.Addrs()[0])
	// EndTxn answers once PrepareCommit is written; CompleteCommit follows the markers.
	testcluster.PollUntil(t, 15*time.Second, "CompleteCommit at epoch 1 or later (the first epoch replayed)", func() (bool, string) {
		d, err := adm.DescribeTransactions(ctx, "tx-failover")
		if err != nil {
			return false, err.Error()
		}
		return d["tx-failover"].ProducerEpoch >= 1 && d["tx-failover"].State == "CompleteCommit", fmt.Sprintf("%+v", d["tx-failover"])
	})
}

// readCommitted consumes topic from the start with read_committed until want records came.
func readCommitted(t *testing.T, c *testcluster.Cluster, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t)
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed got %q, want %d records", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}
