package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// compactionSettings make the cleaner act within a test: a short backoff, frequent time
// rolls (segment.ms, checked every retention check) and a small dedupe buffer.
var compactionSettings = []string{
	"log.cleaner.backoff.ms=100",
	"log.cleaner.dedupe.buffer.size=4194304",
	"log.retention.check.interval.ms=200",
}

// compactedTopicConfigs: segments that roll by size and time, cleaned at any dirty ratio.
func compactedTopicConfigs(deleteRetentionMs string) map[string]*string {
	return map[string]*string{
		"cleanup.policy":            strPtr("compact"),
		"segment.bytes":             strPtr("65536"),
		"segment.ms":                strPtr("300"),
		"min.cleanable.dirty.ratio": strPtr("0.01"),
		"delete.retention.ms":       strPtr(deleteRetentionMs),
	}
}

// endKey is the key of the last record the tests write: the latest of its key, so the
// cleaner keeps it and a reader knows it reached the end (the cleaner may remove the records
// just below the high watermark). readPartition leaves it out.
const endKey = "~end"

// readPartition reads partition 0 of topic from the start to its high watermark with kgo
// (opts added to the consumer's).
func readPartition(t *testing.T, n *testcluster.Node, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	adm := newAdmin(t, n)
	ends, err := adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl := newClient(t, n, append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for end.Offset > 0 && (len(out) == 0 || out[len(out)-1].Offset < end.Offset-1) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading %s: %v (read %d records)", topic, err, len(out))
		}
		out = append(out, fs.Records()...)
	}
	if len(out) > 0 && string(out[len(out)-1].Key) == endKey {
		out = out[:len(out)-1]
	}
	return out
}

// latestOf is what a consumer from the start ends up with: each key's last record.
func latestOf(rs []*kgo.Record) map[string]*kgo.Record {
	m := map[string]*kgo.Record{}
	for _, r := range rs {
		m[string(r.Key)] = r
	}
	return m
}

// logSize is the partition's size as DescribeLogDirs reports it.
func logSize(t *testing.T, n *testcluster.Node, topic string) int64 {
	t.Helper()
	dirs, err := newAdmin(t, n).DescribeAllLogDirs(ctxT(t), kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var size int64 = -1
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) { size = p.Size })
	})
	return size
}

// A compacted topic written with 100,000 updates over 1,000 keys ends, once the cleaner has
// run, with 1,000 records: the latest value of each key, read by franz-go and by sarama
// (which both read across the offset gaps), and DescribeLogDirs shows the log shrunk.
func TestCompactionKeepsLatestPerKey(t *testing.T) {
	n := testcluster.Start(t, compactionSettings...)
	const topic, keys, updates = "cmp", 1000, 100_000
	createTopic(t, n, topic, 1, compactedTopicConfigs("86400000"))
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	want := map[string]string{}
	rs := make([]*kgo.Record, 0, 5000)
	for i := 0; i < updates; i++ {
		k, v := fmt.Sprintf("key-%04d", i%keys), fmt.Sprintf("value-%06d", i)
		want[k] = v
		rs = append(rs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
		if len(rs) == cap(rs) || i == updates-1 {
			if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	sizeWhileWriting := logSize(t, n, topic) // the cleaner runs while the records come in
	var got []*kgo.Record
	testcluster.PollUntil(t, 60*time.Second, "1,000 live records", func() (bool, string) {
		got = readPartition(t, n, topic)
		return len(got) == keys, fmt.Sprintf("%d records", len(got))
	})
	latest := latestOf(got)
	for k, v := range want {
		if r := latest[k]; r == nil || string(r.Value) != v {
			t.Fatalf("key %s: got %v, want %s", k, r, v)
		}
	}
	if got[len(got)-1].Offset != updates-1 {
		t.Errorf("last offset %d, want %d (offsets never change)", got[len(got)-1].Offset, updates-1)
	}
	sizeAfter := logSize(t, n, topic)
	t.Logf("log size %d bytes at the end of the writes, %d after cleaning (DescribeLogDirs)", sizeWhileWriting, sizeAfter)
	// 100,000 records of at least 20 bytes of key and value were written: 2 MB.
	if sizeAfter <= 0 || sizeAfter > 100*keys {
		t.Errorf("DescribeLogDirs size %d after cleaning: want at most 100 bytes per key", sizeAfter)
	}

	// Samsa's tagged field of DescribeLogDirs carries the cleaner's state: cleaned up to the
	// active segment, nothing dirty.
	req := kmsg.NewPtrDescribeLogDirsRequest()
	resp, err := req.RequestWith(ctxT(t), newClient(t, n))
	if err != nil {
		t.Fatal(err)
	}
	td := kadm.TopicDetail{Topic: topic, Partitions: kadm.PartitionDetails{0: {Partition: 0, Leader: 1}}}
	st, ok := cli.CleanerStates(td, map[int32]*kmsg.DescribeLogDirsResponse{1: resp})[0]
	if !ok || st.FirstDirtyOffset < updates/2 || st.DirtyRatio > 0.5 {
		t.Errorf("cleaner state in DescribeLogDirs: %+v (present %v), want cleaned past offset %d", st, ok, updates/2)
	}
	t.Logf("cleaner state: %+v", st)

	// sarama reads the same across the gaps.
	cfg := saramaConfig()
	cons, err := sarama.NewConsumer([]string{n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	seen := map[string]string{}
	for count := 0; count < keys; count++ {
		select {
		case m := <-pc.Messages():
			seen[string(m.Key)] = string(m.Value)
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			t.Fatalf("sarama: timed out after %d records", count)
		}
	}
	for k, v := range want {
		if seen[k] != v {
			t.Fatalf("sarama: key %s = %q, want %q", k, seen[k], v)
		}
	}
}

// Tombstones: a consumer from the start sees the deleted keys' tombstones while
// delete.retention.ms has not passed since the cleaning that first kept them, and neither
// the keys nor their tombstones after.
func TestCompactionTombstonesExpire(t *testing.T) {
	n := testcluster.Start(t, compactionSettings...)
	const topic, keys, deleted = "tomb", 200, 50
	createTopic(t, n, topic, 1, compactedTopicConfigs("8000"))
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic))
	var rs []*kgo.Record
	for i := 0; i < 20*keys; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("k%03d", i%keys)), Value: []byte(strings.Repeat("v", 40))})
	}
	for i := 0; i < deleted; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("k%03d", i))}) // nil value: a tombstone
	}
	rs = append(rs, &kgo.Record{Key: []byte(endKey), Value: []byte("end")})
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tombstones := func(got []*kgo.Record) int {
		c := 0
		for _, r := range got {
			if r.Value == nil {
				c++
			}
		}
		return c
	}
	testcluster.PollUntil(t, 30*time.Second, "compacted with tombstones", func() (bool, string) {
		got := readPartition(t, n, topic)
		if len(got) == keys-deleted {
			t.Fatalf("tombstones gone before this test saw them (delete.retention.ms too short for this machine?)")
		}
		return len(got) == keys && tombstones(got) == deleted, fmt.Sprintf("%d records, %d tombstones", len(got), tombstones(got))
	})
	testcluster.PollUntil(t, 40*time.Second, "tombstones removed", func() (bool, string) {
		got := readPartition(t, n, topic)
		return len(got) == keys-deleted && tombstones(got) == 0, fmt.Sprintf("%d records, %d tombstones", len(got), tombstones(got))
	})
}

// __consumer_offsets is compacted: many commits of the same groups and partitions shrink to
// about one record per (group, partition) once the cleaner has run, a deleted group's
// tombstones hide its offsets, and after a restart the coordinator, replaying the compacted
// log (gaps, emptied batches, tombstones), reads back the same committed offsets.
func TestOffsetsTopicCompacted(t *testing.T) {
	n := testcluster.Start(t, append([]string{"offsets.topic.num.partitions=1",
		"offsets.topic.segment.bytes=16384"}, compactionSettings...)...)
	createTopic(t, n, "data", 8, nil)
	adm := newAdmin(t, n)
	ctx := ctxT(t)
	groups := []string{"g1", "g2", "g3", "gone"}
	const rounds = 400
	for r := 1; r <= rounds; r++ {
		for gi, g := range groups {
			offs := kadm.Offsets{}
			for p := int32(0); p < 8; p++ {
				offs.Add(kadm.Offset{Topic: "data", Partition: p, At: int64(r*100 + gi*10 + int(p)), LeaderEpoch: -1})
			}
			if resp, err := adm.CommitOffsets(ctx, g, offs); err != nil || resp.Error() != nil {
				t.Fatalf("commit %s round %d: %v %v", g, r, err, resp.Error())
			}
		}
	}
	if deleted, err := adm.DeleteGroups(ctx, "gone"); err != nil || deleted.Error() != nil {
		t.Fatalf("delete group: %v %v", err, deleted.Error())
	}
	fetchAll := func() map[string]kadm.OffsetResponses {
		out := map[string]kadm.OffsetResponses{}
		for _, g := range groups {
			var offs kadm.OffsetResponses
			testcluster.PollUntil(t, 30*time.Second, "offsets of "+g, func() (bool, string) {
				var err error
				offs, err = adm.FetchOffsets(ctx, g)
				if err == nil {
					err = offs.Error()
				}
				return err == nil, fmt.Sprint(err)
			})
			out[g] = offs
		}
		return out
	}
	before := fetchAll()
	if len(before["gone"]) != 0 {
		t.Fatalf("deleted group has offsets: %v", before["gone"])
	}
	for _, g := range groups[:3] {
		if o, _ := before[g].Lookup("data", 3); o.At != int64(rounds*100+int(g[1]-'1')*10+3) {
			t.Fatalf("%s data-3 at %d", g, o.At)
		}
	}
	written := int64(rounds * len(groups) * 8 * 50) // at least ~50 bytes per commit record
	testcluster.PollUntil(t, 60*time.Second, "__consumer_offsets compacted", func() (bool, string) {
		size := logSize(t, n, "__consumer_offsets")
		return size > 0 && size < written/10, fmt.Sprintf("%d bytes (at least %d written)", size, written)
	})
	t.Logf("__consumer_offsets-0: %d bytes after cleaning", logSize(t, n, "__consumer_offsets"))
	n.Restart()
	adm = newAdmin(t, n)
	after := fetchAll()
	for _, g := range groups {
		if fmt.Sprint(after[g].Sorted()) != fmt.Sprint(before[g].Sorted()) {
			t.Errorf("%s after restart: %v, before: %v", g, after[g].Sorted(), before[g].Sorted())
		}
	}
}
