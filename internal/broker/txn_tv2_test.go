package broker_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// tv2Producer drives transaction.version 2 requests by hand: Produce v12 (the leader adds
// the partition), EndTxn v5 (the epoch bumps).
type tv2Producer struct {
	t     *testing.T
	cl    *kgo.Client
	id    string
	pid   int64
	epoch int16
	seq   int32
}

func newTV2Producer(t *testing.T, n *testcluster.Node, id string) *tv2Producer {
	t.Helper()
	x := testcluster.NewRawTxn(t, []string{n.Addr()}, id)
	return &tv2Producer{t: t, cl: x.Client(), id: id, pid: x.PID, epoch: x.Epoch}
}

// produce sends one transactional batch of values at epoch with Produce v12 and returns the
// partition's error.
func (p *tv2Producer) produce(topic string, epoch int16, seq int32, values ...string) error {
	p.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 12
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, &p.id
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testcluster.TxnBatch(p.pid, epoch, seq, values...)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := p.cl.SeedBrokers()[0].Request(ctxT(p.t), req)
	if err != nil {
		p.t.Fatal(err)
	}
	return kerr.ErrorForCode(kresp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode)
}

// end sends EndTxn v5 at epoch and returns the answer's error, producer id and epoch.
func (p *tv2Producer) end(epoch int16, commit bool) (error, int64, int16) {
	p.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = 5
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = p.id, p.pid, epoch, commit
	kresp, err := p.cl.SeedBrokers()[0].Request(ctxT(p.t), req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp := kresp.(*kmsg.EndTxnResponse)
	return kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch
}

// transaction.version 2 (KIP-890 part 2) end to end with raw requests: Produce v12 adds the
// partition to the transaction without AddPartitionsToTxn; EndTxn v5 bumps the epoch and says
// so; a retried EndTxn of the ended transaction is answered, not applied again; a late batch
// of the ended transaction's epoch is refused, so it can never land in the next transaction;
// the next transaction starts at the bumped epoch with sequence 0; read_committed consumers
// see exactly the committed values.
func TestTransactionVersion2(t *testing.T) {
	n := startTxnNode(t)
	const topic = "tv2"
	createTopic(t, n, topic, 1, nil)
	p := newTV2Producer(t, n, "tx-tv2")
	e0 := p.epoch

	if err := p.produce(topic, e0, 0, "c1", "c2"); err != nil {
		t.Fatalf("Produce v12 without AddPartitionsToTxn: %v", err)
	}
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{p.id}
	dresp, err := req.RequestWith(ctxT(t), p.cl)
	if err != nil {
		t.Fatal(err)
	}
	if st := dresp.TransactionStates[0]; st.State != "Ongoing" || len(st.Topics) != 1 || st.Topics[0].Topic != topic {
		t.Fatalf("after Produce v12 the transaction is %s with %+v, want Ongoing with %s-0", st.State, st.Topics, topic)
	}
	err, pid, e1 := p.end(e0, true)
	if err != nil || pid != p.pid || e1 != e0+1 {
		t.Fatalf("EndTxn v5 commit: %v, producer %d epoch %d; want producer %d epoch %d", err, pid, e1, p.pid, e0+1)
	}
	// A retry of the same EndTxn (the client did not get the answer) is recognized.
	if err, pid, e := p.end(e0, true); err != nil || pid != p.pid || e != e1 {
		t.Fatalf("retried EndTxn v5: %v, producer %d epoch %d; want success at epoch %d", err, pid, e, e1)
	}
	// A late batch of the committed transaction (epoch e0) is refused: it would otherwise
	// open a transaction the coordinator never ends, or land in the next one.
	if err := p.produce(topic, e0, 2, "late"); !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("late batch at the old epoch: %v, want INVALID_PRODUCER_EPOCH or PRODUCER_FENCED", err)
	}
	// The next transaction: epoch e1, sequence 0; aborted.
	if err := p.produce(topic, e1, 0, "a1"); err != nil {
		t.Fatalf("Produce v12 at the bumped epoch: %v", err)
	}
	err, _, e2 := p.end(e1, false)
	if err != nil || e2 != e1+1 {
		t.Fatalf("EndTxn v5 abort: %v, epoch %d; want epoch %d", err, e2, e1+1)
	}
	// A late EndTxn commit of the aborted transaction cannot commit it.
	if err, _, _ := p.end(e1, true); err == nil {
		t.Fatalf("a commit of the aborted transaction at its old epoch succeeded")
	}
	// A third transaction, committed.
	if err := p.produce(topic, e2, 0, "c3"); err != nil {
		t.Fatalf("Produce v12, third transaction: %v", err)
	}
	if err, _, _ := p.end(e2, true); err != nil {
		t.Fatalf("EndTxn v5, third transaction: %v", err)
	}
	got := pollValues(t, n, topic, 3, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if want := []string{"c1", "c2", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %v, want %v", got, want)
	}
	if all := pollValues(t, n, topic, 4); !slices.Equal(all, []string{"c1", "c2", "a1", "c3"}) {
		t.Fatalf("read_uncommitted: %v, want c1 c2 a1 c3 (the late batch was never written)", all)
	}
}
