package clustertest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// ack is one acknowledged record.
type ack struct {
	partition int32
	offset    int64
	seq       int
	at        time.Time
}

// TestLeaderKillsUnderLoad: an idempotent acks=all producer (franz-go) writes to an RF=3,
// min.insync.replicas=2 topic while the leader of partition 0 is killed (no controlled
// shutdown) and restarted, three times. Every acknowledged record is then read back exactly
// once, at the offset it was acknowledged at, in the order it was produced per partition; the
// time from each kill to the first acknowledgement of partition 0 by its new leader is logged.
func TestLeaderKillsUnderLoad(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	adm := adminFor(t, c.Addrs()[0])
	if res, err := adm.CreateTopic(ctxT(t), 3, 3, map[string]*string{"min.insync.replicas": kgoStr("2")}, "load"); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, "load", 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		// franz-go refreshes metadata at most every 5 s by default; a Java client asks at
		// once when a connection fails. The failover measured is the broker's, not that pause.
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var mu sync.Mutex
	var acks []ack
	var failed []error
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var inflight sync.WaitGroup
		for seq := 0; ctx.Err() == nil; seq++ {
			inflight.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Topic: "load", Value: []byte(strconv.Itoa(seq))}, func(r *kgo.Record, err error) {
				defer inflight.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err)
					return
				}
				acks = append(acks, ack{r.Partition, r.Offset, seq, time.Now()})
			})
			if seq%64 == 63 {
				inflight.Wait() // keep the load modest on a 2-core machine
			}
		}
		inflight.Wait()
	}()

	waitAcks := func(n int) {
		deadline := time.Now().Add(testTimeout)
		for {
			mu.Lock()
			got := len(acks)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d records acknowledged, want %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var failovers, elected []time.Duration
	for round := range 3 {
		mu.Lock()
		base := len(acks)
		mu.Unlock()
		waitAcks(base + 500)
		mp, _ := partitionState(c, runningNode(c, -1), "load", 0)
		victim := int(mp.Leader) - 1
		killedAt := time.Now()
		c.KillNode(victim)
		other := runningNode(c, victim)
		moved := waitPartition(t, c, other, "load", 0, "moved off the killed leader", func(p metadata.Partition) bool {
			return p.Leader >= 0 && p.Leader != mp.Leader
		})
		elected = append(elected, time.Since(killedAt))
		_ = moved
		// The first acknowledgement of partition 0 after the kill came from its new leader.
		deadline := time.Now().Add(testTimeout)
		for {
			mu.Lock()
			i := slices.IndexFunc(acks, func(a ack) bool { return a.partition == 0 && a.at.After(killedAt) })
			var at time.Time
			if i >= 0 {
				at = acks[i].at
			}
			mu.Unlock()
			if i >= 0 {
				failovers = append(failovers, at.Sub(killedAt))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: partition 0 never acknowledged after its leader %d was killed", round, victim+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		c.StartNode(victim)
		c.WaitBrokers(3)
	}
	stop()
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d records failed, first: %v", len(failed), failed[0])
	}
	t.Logf("acknowledged %d records; kill -> new leader in the metadata %v; kill -> first ack by the new leader %v", len(acks), elected, failovers)

	// Read everything back and check it against the acknowledgements.
	byPart := map[int32][]ack{}
	for _, a := range acks {
		byPart[a.partition] = append(byPart[a.partition], a)
	}
	for p, as := range byPart {
		sort.Slice(as, func(i, j int) bool { return as[i].offset < as[j].offset })
		for i := 1; i < len(as); i++ {
			if as[i].seq < as[i-1].seq {
				t.Errorf("partition %d: seq %d at offset %d after seq %d at offset %d (reordered)", p, as[i].seq, as[i].offset, as[i-1].seq, as[i-1].offset)
				break
			}
		}
		got := readPartition(t, c.Addrs(), "load", p, as[len(as)-1].offset+1)
		seen := map[string]int{}
		for _, v := range got {
			seen[v.value]++
		}
		for _, a := range as {
			v, ok := got[a.offset]
			switch {
			case !ok:
				t.Errorf("partition %d: acknowledged offset %d (seq %d) is missing (lost)", p, a.offset, a.seq)
			case v.value != strconv.Itoa(a.seq):
				t.Errorf("partition %d: offset %d holds %q, acknowledged as seq %d", p, a.offset, v.value, a.seq)
			case seen[v.value] > 1:
				t.Errorf("partition %d: seq %d stored %d times (duplicated)", p, a.seq, seen[v.value])
			}
		}
	}
}

type readRecord struct {
	value string
}

// readPartition reads topic-p from the start up to offset end (exclusive) and returns the
// records by offset.
func readPartition(t *testing.T, addrs []string, topic string, p int32, end int64) map[int64]readRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int64]readRecord{}
	ctx := ctxT(t)
	var last int64 = -1
	for last+1 < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s-%d: read up to offset %d, want %d", topic, p, last, end)
		}
		if errs := fs.Errors(); len(errs) > 0 && !strings.Contains(fmt.Sprint(errs), "context") {
			t.Logf("%s-%d: fetch errors %v", topic, p, errs)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Offset] = readRecord{value: string(r.Value)}
			last = r.Offset
		})
	}
	return out
}
