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

// readPartition reads partition 0 of topic from the start to its high watermark with kgo.
func readPartition(t *testing.T, n *testcluster.Node, topic string) []*kgo.Record {
	t.Helper()
	adm := newAdmin(t, n)
	ends, err := adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl := newClient(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100*time.Millisecond))
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

// pollUntil calls cond until it holds or the deadline passes.
func pollUntil(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v; last: %s", what, d, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
	sizeBefore := logSize(t, n, topic)
	var got []*kgo.Record
	pollUntil(t, 60*time.Second, "1,000 live records", func() (bool, string) {
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
	t.Logf("log size %d -> %d bytes (DescribeLogDirs)", sizeBefore, sizeAfter)
	if sizeAfter <= 0 || sizeAfter*10 > sizeBefore {
		t.Errorf("DescribeLogDirs size %d after cleaning, %d before: want it shrunk tenfold", sizeAfter, sizeBefore)
	}

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
	pollUntil(t, 30*time.Second, "compacted with tombstones", func() (bool, string) {
		got := readPartition(t, n, topic)
		if len(got) == keys-deleted {
			t.Fatalf("tombstones gone before this test saw them (delete.retention.ms too short for this machine?)")
		}
		return len(got) == keys && tombstones(got) == deleted, fmt.Sprintf("%d records, %d tombstones", len(got), tombstones(got))
	})
	pollUntil(t, 40*time.Second, "tombstones removed", func() (bool, string) {
		got := readPartition(t, n, topic)
		return len(got) == keys-deleted && tombstones(got) == 0, fmt.Sprintf("%d records, %d tombstones", len(got), tombstones(got))
	})
}
