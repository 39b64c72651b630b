package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
)

// partitionLog returns a node's whole log of topic-partition and its log end.
func partitionLog(t *testing.T, n *ReplicatedNode, topic string, partition int32) ([]byte, int64) {
	t.Helper()
	p := n.Replicas.Partition(topic, partition)
	if p == nil {
		t.Fatalf("node %d does not host %s-%d", n.ID, topic, partition)
	}
	end := p.Log().LogEndOffset()
	b, err := p.Log().Read(p.Log().LogStartOffset(), 1<<30, end, true)
	if err != nil {
		t.Fatal(err)
	}
	return b, end
}

// Followers fetch in incremental sessions: over produce rounds to a few of many partitions
// (acks=all, so every round needs the followers' fetches to move high watermarks), every
// partition ends with identical logs on the three nodes and a full ISR, the ISR stays full
// through a quiet spell longer than replica.lag.time.max.ms, and the leader served
// incremental fetches from both followers' sessions.
func TestFollowersFetchInSessions(t *testing.T) {
	c := StartReplicated(t, 3, "replica.lag.time.max.ms=1000", "replica.fetch.wait.max.ms=100", "replica.fetch.backoff.ms=100")
	const partitions = 12
	c.Update(func(img *metadata.Image) {
		top := &metadata.Topic{Name: "fs", ID: metadata.UUID{8}, Configs: map[string]string{"min.insync.replicas": "3"}}
		for p := range int32(partitions) {
			top.Partitions = append(top.Partitions, metadata.Partition{Partition: p, Replicas: []int32{1, 2, 3},
				ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 1})
		}
		img.Topics["fs"] = top
	})
	n1 := c.Nodes[1]
	cl, err := kgo.NewClient(kgo.SeedBrokers(n1.Addr()), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.DefaultProduceTopic("fs"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	before := n1.Broker.FetchSessionStats()
	produced := make([]int64, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 8 {
		for _, p := range []int32{int32(round % partitions), int32((round * 5) % partitions)} {
			for i := range 3 {
				r := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "r%d-%d", round, i)}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("round %d: acks=all produce to %d: %v", round, p, err)
				}
				produced[p]++
			}
		}
		for p := range int32(partitions) {
			if hw := n1.Replicas.Partition("fs", p).HighWatermark(); hw != produced[p] {
				t.Fatalf("round %d: partition %d high watermark %d, want %d", round, p, hw, produced[p])
			}
		}
	}
	// A quiet spell longer than replica.lag.time.max.ms: followers naming nothing stay in the ISR.
	time.Sleep(2500 * time.Millisecond)
	for p := range int32(partitions) {
		if isr := c.Image().Topics["fs"].Partitions[p].ISR; !slices.Equal(isr, []int32{1, 2, 3}) {
			t.Fatalf("partition %d ISR %v after the quiet spell, want [1 2 3]", p, isr)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 3, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("acks=all after the quiet spell: %v", err)
	}
	produced[3]++
	eventually(t, "identical logs on the three nodes", func() bool {
		for p := range int32(partitions) {
			l1, _ := partitionLog(t, n1, "fs", p)
			l2, _ := partitionLog(t, c.Nodes[2], "fs", p)
			l3, _ := partitionLog(t, c.Nodes[3], "fs", p)
			if !bytes.Equal(l1, l2) || !bytes.Equal(l1, l3) {
				return false
			}
		}
		return true
	})
	st := n1.Broker.FetchSessionStats()
	if inc := st.IncrementalFetches - before.IncrementalFetches; inc < 20 {
		t.Fatalf("the leader served %d incremental fetches: followers not in sessions (%+v)", inc, st)
	}
	if st.Sessions < 2 || st.Partitions < 2*partitions {
		t.Fatalf("leader's session cache %+v: want the two followers' sessions of %d partitions each", st, partitions)
	}
}

// followerFetch sends one fetch to the leader as replica 2, of partition 0 of topic id
// (named at offset when offset >= 0), in session (id, epoch).
func followerFetch(t *testing.T, cl *kgo.Client, topicID [16]byte, id, epoch int32, offset int64) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = 2
	req.ReplicaState.ID, req.ReplicaState.Epoch = 2, -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 100, 1, 1<<20
	req.SessionID, req.SessionEpoch = id, epoch
	if offset >= 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "om", topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = 0, offset, 1, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("follower fetch (session %d epoch %d): %v", id, epoch, err)
	}
	return resp
}

// A partition an incremental follower fetch leaves out is still fetched, at the offset the
// follower last named: the leader records it as the follower's fetch on every fetch of the
// session (Kafka's rule). The test is follower 2 itself: it opens a session at the leader's
// end, then names nothing for longer than replica.lag.time.max.ms; a record arrives; the
// follower stays in the ISR because its last fetches before the record found it caught up.
// Were omitted partitions not recorded, its last recorded catch-up would be the session's
// opening, and the shrink check would drop it.
func TestOmittedPartitionCountsAsFetched(t *testing.T) {
	c := StartReplicated(t, 2, "replica.lag.time.max.ms=2000")
	c.Nodes[2].Stop() // the test fetches as node 2
	topicID := metadata.UUID{9}
	c.Update(func(img *metadata.Image) {
		img.Topics["om"] = &metadata.Topic{Name: "om", ID: topicID, Configs: map[string]string{},
			Partitions: []metadata.Partition{{Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1}}}
	})
	n1 := c.Nodes[1]
	cl, err := kgo.NewClient(kgo.SeedBrokers(n1.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	isr := func() []int32 { return c.Image().Topics["om"].Partitions[0].ISR }

	resp := followerFetch(t, cl, topicID, 0, 0, 0)
	id, epoch := resp.SessionID, int32(1)
	if id == 0 {
		t.Fatal("the leader opened no session for the follower")
	}
	fetchFor := func(d time.Duration, offset int64) {
		for end := time.Now().Add(d); time.Now().Before(end); epoch++ {
			resp := followerFetch(t, cl, topicID, id, epoch, offset)
			if resp.SessionID != id {
				t.Fatalf("session %d answered as %d", id, resp.SessionID)
			}
			offset = -1 // named once, then left out
			time.Sleep(20 * time.Millisecond)
		}
	}
	fetchFor(3*time.Second, -1) // longer than the lag time, naming nothing
	if got := isr(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ISR %v while the follower fetched at the leader's end, want [1 2]", got)
	}
	cp, err := kgo.NewClient(kgo.SeedBrokers(n1.Addr()), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.DefaultProduceTopic("om"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.ProduceSync(context.Background(), kgo.StringRecord("x")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Still at offset 0 (the record is not taken) for most of the lag time: at least one
	// shrink check (every 1 s) runs meanwhile.
	fetchFor(1500*time.Millisecond, -1)
	if got := isr(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ISR %v: the follower was dropped although it was caught up until the record came", got)
	}
	if hw := n1.Replicas.Partition("om", 0).HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d while the follower is at 0, want 0", hw)
	}
	// The follower names its new offset once; the high watermark follows, and it stays put and
	// in the ISR while the follower names nothing.
	fetchFor(3*time.Second, 1)
	if hw := n1.Replicas.Partition("om", 0).HighWatermark(); hw != 1 {
		t.Fatalf("high watermark %d after the follower fetched at 1, want 1", hw)
	}
	if got := isr(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ISR %v after the follower caught up, want [1 2]", got)
	}
}
