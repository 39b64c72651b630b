package clustertest

import (
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

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < 3 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed got %q, want c0 c1 c2", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"c0", "c1", "c2"}) {
		t.Fatalf("read_committed: %q, want c0 c1 c2", got)
	}
}
