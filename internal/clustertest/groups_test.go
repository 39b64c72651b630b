package clustertest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestConsumerGroupSurvivesCoordinatorDeath: __consumer_offsets is replicated (RF 3 by default
// in a cluster); a group commits offsets, the broker that coordinates it dies (no controlled
// shutdown), and the group's committed offsets are served by the new coordinator, so a
// consumer of the group resumes where the group left off and reads the rest.
func TestConsumerGroupSurvivesCoordinatorDeath(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	adm := adminFor(t, c.Addrs()[0])
	if res, err := adm.CreateTopic(ctxT(t), 3, 3, nil, "g"); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	waitTopicEverywhere(t, c, "g", 3)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 300 {
		if err := prod.ProduceSync(ctxT(t), &kgo.Record{Topic: "g", Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	consume := func(n int) map[string]bool {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup("grp"), kgo.ConsumeTopics("g"),
			kgo.DisableAutoCommit(), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		seen := map[string]bool{}
		ctx := ctxT(t)
		for len(seen) < n {
			fs := cl.PollRecords(ctx, n-len(seen))
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", len(seen), n)
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		return seen
	}
	first := consume(150)

	desc, err := adm.DescribeGroups(ctxT(t), "grp")
	if err != nil {
		t.Fatal(err)
	}
	coord := int(desc["grp"].Coordinator.NodeID) - 1
	c.KillNode(coord)
	t.Logf("killed the group coordinator, node %d", coord+1)

	// The first consumer left the group before the kill (an acknowledged LeaveGroup): the new
	// coordinator must load the group Empty, not with that member (its load reads the whole
	// log, not only up to a high watermark that lags what its predecessor acknowledged).
	deadline := time.Now().Add(testTimeout)
	for {
		// A fresh client each time: one caches the coordinator it found (the dead node).
		d, err := adminFor(t, c.Nodes[(coord+1)%3].Addr()).DescribeGroups(ctxT(t), "grp")
		if err == nil && d["grp"].Err == nil {
			if d["grp"].State != "Empty" || len(d["grp"].Members) != 0 {
				t.Fatalf("after the coordinator moved the group is %s with %d members, want Empty", d["grp"].State, len(d["grp"].Members))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DescribeGroups never answered after the coordinator died: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A consumer of the group resumes from the committed offsets: it reads the other 150.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var rest map[string]bool
	done := make(chan struct{})
	go func() { defer close(done); rest = consume(150) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the group did not resume after its coordinator died")
	}
	for v := range rest {
		if first[v] {
			t.Errorf("record %s read again after the coordinator moved: its committed offset was lost", v)
		}
	}
	adm2 := adminFor(t, c.Nodes[(coord+1)%3].Addr())
	offs, err := adm2.FetchOffsets(ctxT(t), "grp")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 300 {
		t.Errorf("committed offsets sum to %d, want 300", total)
	}
}
