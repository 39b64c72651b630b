package testcluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/records"
)

// eventually polls cond (cross-node state has no single wake-up) until it holds or 60 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawBatch builds a v2 batch of one record with the given value.
func rawBatch(value string) []byte {
	r := []byte{0}
	r = binary.AppendVarint(r, 0)
	r = binary.AppendVarint(r, 0)
	r = binary.AppendVarint(r, -1)
	r = binary.AppendVarint(r, int64(len(value)))
	r = append(r, value...)
	r = binary.AppendVarint(r, 0)
	recs := binary.AppendVarint(nil, int64(len(r)))
	recs = append(recs, r...)
	b := make([]byte, records.HeaderSize, records.HeaderSize+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-records.LengthOffset))
	b[16] = 2
	ts := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[27:], ts)
	binary.BigEndian.PutUint64(b[35:], ts)
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], 1)
	binary.BigEndian.PutUint32(b[17:], records.ComputeCRC(b))
	return b
}

// produceRaw sends one Produce (acks, one batch) straight to addr and returns the error code.
func produceRaw(t *testing.T, addr string, acks int16, value string) int16 {
	t.Helper()
	return produceResp(t, addr, acks, value).Topics[0].Partitions[0].ErrorCode
}

func produceResp(t *testing.T, addr string, acks int16, value string) *kmsg.ProduceResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "rep"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch(value)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.ProduceResponse)
}

func (c *Replicated) partitionState() metadata.Partition {
	return c.Image().Topics["rep"].Partitions[0]
}

// logBytes returns a node's whole log of rep-0 and its log end.
func logBytes(t *testing.T, n *ReplicatedNode) ([]byte, int64) {
	t.Helper()
	return partitionLog(t, n, "rep", 0)
}

func sameLogs(t *testing.T, nodes ...*ReplicatedNode) bool {
	first, _ := logBytes(t, nodes[0])
	for _, n := range nodes[1:] {
		if b, _ := logBytes(t, n); !bytes.Equal(first, b) {
			return false
		}
	}
	return true
}

func TestReplicatedPartition(t *testing.T) {
	c := StartReplicated(t, 3, "replica.lag.time.max.ms=1000", "replica.fetch.wait.max.ms=100", "replica.fetch.backoff.ms=100")
	c.Update(func(img *metadata.Image) {
		img.Topics["rep"] = &metadata.Topic{Name: "rep", ID: metadata.UUID{7}, Configs: map[string]string{"min.insync.replicas": "2"},
			Partitions: []metadata.Partition{{Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 1}}}
	})
	n1, n2, n3 := c.Nodes[1], c.Nodes[2], c.Nodes[3]

	// acks=all through a Kafka client: every record is on all three logs, byte for byte.
	cl, err := kgo.NewClient(kgo.SeedBrokers(n1.Addr()), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("rep"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 20 {
		if err := cl.ProduceSync(context.Background(), kgo.StringRecord(fmt.Sprint("v", i))).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d: %v", i, err)
		}
	}
	if hw := n1.Replicas.Partition("rep", 0).HighWatermark(); hw != 20 {
		t.Fatalf("leader high watermark %d after 20 acks=all records, want 20", hw)
	}
	eventually(t, "identical logs on the three nodes", func() bool { return sameLogs(t, n1, n2, n3) })

	// A follower asked for produce or fetch answers NOT_LEADER_OR_FOLLOWER.
	resp := produceResp(t, n2.Addr(), -1, "x")
	if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != kerr.NotLeaderForPartition.Code ||
		sp.CurrentLeader.LeaderID != 1 || sp.CurrentLeader.LeaderEpoch != 1 {
		t.Fatalf("produce to a follower: code %d, current leader %+v", sp.ErrorCode, sp.CurrentLeader)
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Port != int32(n1.port) {
		t.Fatalf("produce to a follower: node endpoints %+v, want node 1's (KIP-951)", resp.Brokers)
	}

	// A stopped follower leaves the ISR after replica.lag.time.max.ms; acks=all goes on
	// with min.insync.replicas=2.
	// (A follower at the leader's log end stays caught up, as in Kafka, so it is the
	// append that makes node 3 lag; the produce waits until the ISR shrinks.)
	n3.Stop()
	if code := produceRaw(t, n1.Addr(), -1, "with two"); code != 0 {
		t.Fatalf("acks=all with ISR {1,2} and min.insync.replicas=2: code %d", code)
	}
	if isr := c.partitionState().ISR; !slices.Equal(isr, []int32{1, 2}) {
		t.Fatalf("ISR %v after the acks=all produce, want [1 2]", isr)
	}
	c.Update(func(img *metadata.Image) { img.Topics["rep"].Configs["min.insync.replicas"] = "3" })
	if code := produceRaw(t, n1.Addr(), -1, "refused"); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with ISR {1,2} and min.insync.replicas=3: code %d, want NOT_ENOUGH_REPLICAS", code)
	}
	c.Update(func(img *metadata.Image) { img.Topics["rep"].Configs["min.insync.replicas"] = "2" })

	// The follower comes back, catches up and rejoins the ISR.
	n3.Start()
	eventually(t, "node 3 back in the ISR", func() bool { return slices.Equal(c.partitionState().ISR, []int32{1, 2, 3}) })
	eventually(t, "node 3 caught up", func() bool { return sameLogs(t, n1, n2, n3) })

	// Divergence: node 2 stops; node 3 gets records node 2 never has (acks=1); then the leader
	// goes and node 2 leads with the next epoch. Node 3 must truncate them away.
	_, end2 := logBytes(t, n2)
	n2.Stop()
	for i := range 3 {
		if code := produceRaw(t, n1.Addr(), 1, fmt.Sprint("lost", i)); code != 0 {
			t.Fatalf("acks=1 produce: code %d", code)
		}
	}
	eventually(t, "node 2 out of the ISR", func() bool { return slices.Equal(c.partitionState().ISR, []int32{1, 3}) })
	eventually(t, "node 3 has the records node 2 lacks", func() bool { return sameLogs(t, n1, n3) })
	n1.Stop()
	_, end3 := logBytes(t, n3)
	if end3 != end2+3 {
		t.Fatalf("node 3 ends at %d, node 2 at %d: want 3 more on node 3", end3, end2)
	}
	n2.Start()
	c.Update(func(img *metadata.Image) {
		p := &img.Topics["rep"].Partitions[0]
		p.Leader, p.LeaderEpoch, p.ISR = 2, p.LeaderEpoch+1, []int32{2, 3}
		p.PartitionEpoch++
	})
	if code := produceRaw(t, n2.Addr(), -1, "new leader"); code != 0 {
		t.Fatalf("acks=all to the new leader: code %d", code)
	}
	eventually(t, "node 3 truncated to the new leader's log", func() bool { return sameLogs(t, n2, n3) })
	if _, end := logBytes(t, n3); end != end2+1 {
		t.Fatalf("node 3 ends at %d, want %d (node 2's log plus one record)", end, end2+1)
	}
}
