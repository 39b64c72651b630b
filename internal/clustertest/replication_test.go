package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// produceN produces n records with values prefix-0..n-1 to partition 0 of topic, acks=all and
// idempotent (kgo's defaults), and returns the first error.
func produceN(t *testing.T, cl *kgo.Client, topic, prefix string, n int) error {
	t.Helper()
	var firstErr error
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(prefix + "-" + strconv.Itoa(i))}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// consumeAll reads partition 0 of topic from the start until it has want records.
func consumeAll(t *testing.T, addrs []string, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	ctx := ctxT(t)
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records, want %d", len(out), want)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// replicaBytes reads node i's replica of topic-0 from the start to its log end.
func replicaBytes(t *testing.T, c *testcluster.Cluster, i int, topic string) (data []byte, end int64) {
	t.Helper()
	p := c.Server(i).Replicas().Partition(topic, 0)
	if p == nil {
		t.Fatalf("node %d hosts no %s-0", i+1, topic)
	}
	end = p.Log().LogEndOffset()
	data, err := p.Log().Read(0, 64<<20, end, true)
	if err != nil {
		t.Fatal(err)
	}
	return data, end
}

// waitISR waits until every running node's image shows topic-0 with the ISR size want.
func waitISR(t *testing.T, c *testcluster.Cluster, topic string, want int) metadata.Partition {
	t.Helper()
	var last metadata.Partition
	for i := range c.Nodes {
		if c.Running(i) {
			last = waitPartition(t, c, i, topic, 0, fmt.Sprintf("had an ISR of %d", want), func(p metadata.Partition) bool { return len(p.ISR) == want })
		}
	}
	return last
}

// TestReplicatedProduceAndConsume: an RF=3 topic with min.insync.replicas=2 on three nodes.
// acks=all records reach the three replicas byte for byte; a stopped follower leaves the ISR
// and acks=all still succeeds with two; with one replica left acks=all is refused with
// NOT_ENOUGH_REPLICAS; the stopped followers come back, catch up and rejoin the ISR; every
// acknowledged record is read back in order, through franz-go and sarama.
func TestReplicatedProduceAndConsume(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "replica.lag.time.max.ms=3000")
	adm := adminFor(t, c.Addrs()[0])
	if res, err := adm.CreateTopic(ctxT(t), 1, 3, map[string]*string{"min.insync.replicas": kgoStr("2")}, "r"); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, "r", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RecordDeliveryTimeout(5*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := produceN(t, cl, "r", "a", 500); err != nil {
		t.Fatalf("acks=all to 3 replicas: %v", err)
	}
	// The three replicas hold the same bytes once the followers fetched the high watermark.
	deadline := time.Now().Add(testTimeout)
	for {
		d0, e0 := replicaBytes(t, c, 0, "r")
		d1, e1 := replicaBytes(t, c, 1, "r")
		d2, e2 := replicaBytes(t, c, 2, "r")
		if e0 == 500 && e1 == 500 && e2 == 500 {
			if !bytes.Equal(d0, d1) || !bytes.Equal(d0, d2) {
				t.Fatal("the three replicas differ")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica log ends %d %d %d, want 500", e0, e1, e2)
		}
		time.Sleep(10 * time.Millisecond)
	}

	p := waitISR(t, c, "r", 3)
	f1 := (int(p.Leader) % 3) // a follower: node index of leader+1
	c.StopNode(f1)
	waitISR(t, c, "r", 2)
	if err := produceN(t, cl, "r", "b", 100); err != nil {
		t.Fatalf("acks=all with 2 of 3 in the ISR and min.insync.replicas=2: %v", err)
	}
	f2 := (f1 + 1) % 3
	if f2 == int(p.Leader)-1 {
		f2 = (f2 + 1) % 3
	}
	// Stopping a second of three voters leaves the quorum without a majority: the controlled
	// shutdown of f2 is what takes it out of the ISR, so it needs a leader to talk to.
	waitQuorumLeader(t, c)
	c.StopNode(f2)
	waitISR(t, c, "r", 1)
	// kgo retries NOT_ENOUGH_REPLICAS until its delivery timeout: see the code in a single
	// raw Produce to the leader.
	if code := rawProduceAcksAll(t, c.Nodes[int(p.Leader)-1].Addr(), int(p.Leader), "r"); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with 1 in the ISR and min.insync.replicas=2: error %d, want NOT_ENOUGH_REPLICAS", code)
	}
	c.StartNode(f1)
	c.StartNode(f2)
	waitISR(t, c, "r", 3)
	if err := produceN(t, cl, "r", "c", 100); err != nil {
		t.Fatalf("acks=all after the followers rejoined: %v", err)
	}

	var want []string
	for _, pre := range []struct {
		p string
		n int
	}{{"a", 500}, {"b", 100}, {"c", 100}} {
		for i := range pre.n {
			want = append(want, pre.p+"-"+strconv.Itoa(i))
		}
	}
	if got := consumeAll(t, c.Addrs(), "r", len(want)); !slices.Equal(got, want) {
		t.Fatalf("franz-go read %d records, not the %d acknowledged in order", len(got), len(want))
	}

	// sarama: a sync producer with acks=all, then a partition consumer from the start.
	sc := sarama.NewConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Version = sarama.V3_6_0_0
	sp, err := sarama.NewSyncProducer(c.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "r", Partition: 0, Value: sarama.StringEncoder("s-" + strconv.Itoa(i))}); err != nil {
			t.Fatalf("sarama acks=all: %v", err)
		}
		want = append(want, "s-"+strconv.Itoa(i))
	}
	sp.Close()
	consumer, err := sarama.NewConsumer(c.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition("r", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for len(got) < len(want) {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
		case <-ctx.Done():
			t.Fatalf("sarama read %d of %d records", len(got), len(want))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatal("sarama read other records than were acknowledged")
	}
}

func kgoStr(s string) *string { return &s }

// rawProduceAcksAll sends one acks=all Produce of one record to topic-0 on broker id at addr
// and returns the partition's error code.
func rawProduceAcksAll(t *testing.T, addr string, id int, topic string) int16 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := kgo.Record{Value: []byte("refused")}
	batch := encodeBatch(&rec)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.Broker(id).Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// encodeBatch encodes one record as a v2 record batch (no compression, no producer id).
func encodeBatch(r *kgo.Record) []byte {
	rec := kmsg.Record{Value: r.Value, TimestampDelta64: 0, OffsetDelta: 0}
	var recBytes []byte
	recBytes = rec.AppendTo(recBytes)
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      0,
		FirstTimestamp:       time.Now().UnixMilli(),
		MaxTimestamp:         time.Now().UnixMilli(),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              recBytes,
	}
	raw := b.AppendTo(nil)
	// Length and CRC: kmsg's AppendTo writes the given Length and CRC; compute them.
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}
