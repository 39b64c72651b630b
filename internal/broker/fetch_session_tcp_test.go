package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// franz-go consumes with fetch sessions by default: over several produce rounds to a few of
// many partitions, it gets every record once and in order, and the broker served incremental
// fetches (the test fails if sessions were silently not kept).
func TestFetchSessionsServeFranzGoConsumer(t *testing.T) {
	n := testcluster.Start(t)
	const partitions, rounds = 24, 6
	createTopic(t, n, "fsess", partitions, nil)
	producer := newClient(t, n, kgo.DefaultProduceTopic("fsess"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	consumer := newClient(t, n, kgo.ConsumeTopics("fsess"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	before := n.Server().Broker().FetchSessionStats()

	next := make(map[int32]int) // next value expected per partition
	sent := 0
	got := 0
	for round := range rounds {
		// Each round writes to a different few partitions, so most of the session is quiet.
		for p := int32(round % 3); p < partitions; p += int32(3 + round) {
			for i := range 3 {
				r := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, next[p]+i)}
				if err := producer.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
				sent++
			}
			next[p] += 3
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for got < sent {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				cancel()
				t.Fatalf("round %d: consumed %d of %d records", round, got, sent)
			}
			for _, e := range fs.Errors() {
				t.Fatalf("fetch error: %v", e.Err)
			}
			for _, r := range fs.Records() {
				if want := fmt.Sprintf("%d-%d", r.Partition, r.Offset); string(r.Value) != want {
					t.Fatalf("partition %d offset %d holds %q, want %q", r.Partition, r.Offset, r.Value, want)
				}
				got++
			}
		}
		cancel()
		if got != sent {
			t.Fatalf("round %d: consumed %d records, sent %d", round, got, sent)
		}
	}
	st := n.Server().Broker().FetchSessionStats()
	if inc := st.IncrementalFetches - before.IncrementalFetches; inc < rounds {
		t.Fatalf("the broker served %d incremental fetches for %d rounds: sessions not in use (%+v)", inc, rounds, st)
	}
	if st.Sessions < 1 || st.Partitions < partitions {
		t.Fatalf("session cache %+v: want the consumer's session of %d partitions", st, partitions)
	}
}

// rawSessionFetch sends one fetch of the session (id, epoch) naming parts of topic (by id, as
// v13+), and returns the answer.
func rawSessionFetch(t *testing.T, cl *kgo.Client, id, epoch int32, topicID [16]byte, maxWait int32, parts map[int32]int64) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, 1, 1<<20
	req.SessionID, req.SessionEpoch = id, epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = topicID
		for p, off := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, off, 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version < 13 {
		t.Fatalf("fetch answered at v%d, want topic ids", resp.Version)
	}
	return resp
}

// An incremental fetch long-polls over the whole session, woken by an append to a partition
// it does not name; a session whose topic is deleted answers UNKNOWN_TOPIC_ID for it.
func TestFetchSessionLongPollAndDeletedTopic(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "lpd", 2, nil)
	adm := newAdmin(t, n)
	td, err := adm.ListTopics(ctxT(t), "lpd")
	if err != nil {
		t.Fatal(err)
	}
	topicID := td["lpd"].ID
	cl := newClient(t, n)

	open := rawSessionFetch(t, cl, 0, 0, topicID, 0, map[int32]int64{0: 0, 1: 0})
	if open.ErrorCode != 0 || open.SessionID == 0 || len(open.Topics) != 1 || len(open.Topics[0].Partitions) != 2 {
		t.Fatalf("open: error %d, session %d, topics %+v", open.ErrorCode, open.SessionID, open.Topics)
	}
	id := open.SessionID

	producer := newClient(t, n, kgo.DefaultProduceTopic("lpd"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	go func() {
		time.Sleep(300 * time.Millisecond)
		producer.Produce(context.Background(), &kgo.Record{Partition: 1, Value: []byte("wake")}, nil)
	}()
	start := time.Now()
	resp := rawSessionFetch(t, cl, id, 1, topicID, 10_000, nil)
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("the incremental long poll took %v: not woken by the append", took)
	}
	if resp.ErrorCode != 0 || resp.SessionID != id || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("incremental: error %d, session %d, topics %+v; want partition 1 alone", resp.ErrorCode, resp.SessionID, resp.Topics)
	}
	if p := resp.Topics[0].Partitions[0]; p.Partition != 1 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
		t.Fatalf("incremental answer %+v, want partition 1's record", p)
	}

	// Nothing new: an empty answer after the wait.
	resp = rawSessionFetch(t, cl, id, 2, topicID, 100, map[int32]int64{1: 1})
	if resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("quiet incremental: error %d, topics %+v", resp.ErrorCode, resp.Topics)
	}

	if _, err := adm.DeleteTopics(ctxT(t), "lpd"); err != nil {
		t.Fatal(err)
	}
	resp = rawSessionFetch(t, cl, id, 3, topicID, 100, nil)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("after the delete: error %d, topics %+v", resp.ErrorCode, resp.Topics)
	}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != kerr.UnknownTopicID {
			t.Fatalf("partition %d of the deleted topic: %v, want UNKNOWN_TOPIC_ID", p.Partition, err)
		}
	}
	// Closing the session (epoch -1) answers in full with no session; it is gone after.
	resp = rawSessionFetch(t, cl, id, -1, topicID, 0, nil)
	if resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("close: error %d, session %d", resp.ErrorCode, resp.SessionID)
	}
	resp = rawSessionFetch(t, cl, id, 4, topicID, 0, nil)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != kerr.FetchSessionIDNotFound {
		t.Fatalf("the closed session: %v", err)
	}
}
