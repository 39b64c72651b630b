package clustertest

import (
	"encoding/binary"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// replicaContent decodes node i's replica of topic-0 below its high watermark: the latest
// value of each key (a tombstone as "<nil>") and the number of records. A read returns one
// segment's batches at most, so it reads on from after the last batch until the high
// watermark; a read that returns nothing below it is reported in gap (the offset), -1 if none.
func replicaContent(t *testing.T, c *testcluster.Cluster, i int, topic string) (latest map[string]string, count int, hw, gap int64) {
	t.Helper()
	p := c.Server(i).Replicas().Partition(topic, 0)
	if p == nil {
		t.Fatalf("node %d hosts no %s-0", i+1, topic)
	}
	hw, gap = p.HighWatermark(), -1
	latest = map[string]string{}
	for next := p.Log().LogStartOffset(); next < hw; {
		data, err := p.Log().Read(next, 64<<20, hw, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			return latest, count, hw, next
		}
		_, err = records.Split(data, func(batch []byte) error {
			h, err := records.ParseHeader(batch)
			if err != nil {
				return err
			}
			next = h.BaseOffset + int64(h.LastOffsetDelta) + 1
			return records.EachRecord(batch, &h, func(r *records.Record) error {
				var kr kmsg.Record
				if err := kr.ReadFrom(append(binary.AppendVarint(nil, int64(len(r.Body))), r.Body...)); err != nil {
					return err
				}
				v := "<nil>"
				if kr.Value != nil {
					v = string(kr.Value)
				}
				latest[string(kr.Key)] = v
				count++
				return nil
			})
		})
		if err != nil {
			t.Fatalf("node %d: decoding %s-0: %v", i+1, topic, err)
		}
	}
	return latest, count, hw, gap
}

// TestCompactedReplicasConverge: an RF=3 compacted topic. Every replica cleans its own log
// (the cleaner runs on followers as on the leader, bounded by the high watermark they
// learned), and all end with the same key→value content, one record per key. A follower
// stopped while the leader wrote and cleaned catches up afterwards by fetching across the
// offset gaps the leader's cleaner left.
func TestCompactedReplicasConverge(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "replica.lag.time.max.ms=3000", "log.cleaner.backoff.ms=100",
		"log.cleaner.dedupe.buffer.size=4194304", "log.retention.check.interval.ms=200")
	const topic, keys = "cmpr", 300
	adm := adminFor(t, c.Addrs()[0])
	if res, err := adm.CreateTopic(ctxT(t), 1, 3, map[string]*string{
		"cleanup.policy": kgoStr("compact"), "segment.bytes": kgoStr("16384"), "segment.ms": kgoStr("300"),
		"min.cleanable.dirty.ratio": kgoStr("0.01"), "min.insync.replicas": kgoStr("2"),
	}, topic); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, topic, 1)
	p := waitISR(t, c, topic, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]string{}
	produce := func(from, to int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < to; i++ {
			k, v := fmt.Sprintf("k%03d", i%keys), fmt.Sprintf("v%06d", i)
			want[k] = v
			rs = append(rs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
			if len(rs) == 1000 || i == to-1 {
				if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
				rs = rs[:0]
			}
		}
	}
	produce(0, 3000)
	leader := int(p.Leader) - 1
	follower := (leader + 1) % 3
	c.StopNode(follower)
	waitISR(t, c, topic, 2)
	produce(3000, 20000)
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte("~end"), Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want["~end"] = "end"

	converged := func(nodes []int) (bool, string) {
		var state string
		ok := true
		for _, i := range nodes {
			got, count, hw, gap := replicaContent(t, c, i, topic)
			pt := c.Server(i).Replicas().Partition(topic, 0)
			role, leaderID, epoch := pt.Role()
			state += fmt.Sprintf(" node %d (role %v, leader %d, epoch %d, log [%d, %d)): %d records, %d keys, hw %d",
				i+1, role, leaderID, epoch, pt.Log().LogStartOffset(), pt.Log().LogEndOffset(), count, len(got), hw)
			if gap >= 0 {
				state += fmt.Sprintf(", a read at %d below the high watermark returned nothing", gap)
			}
			state += ";"
			ok = ok && count == len(want) && maps.Equal(got, want)
		}
		return ok, state
	}
	running := []int{leader, (leader + 2) % 3}
	testcluster.PollUntil(t, 60*time.Second, "leader and running follower cleaned", func() (bool, string) { return converged(running) })
	c.StartNode(follower)
	waitISR(t, c, topic, 3)
	testcluster.PollUntil(t, 60*time.Second, "restarted follower caught up and cleaned", func() (bool, string) {
		return converged([]int{0, 1, 2})
	})
}
