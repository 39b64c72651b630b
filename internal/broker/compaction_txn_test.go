package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// A compacted topic written in transactions by a franz-go transactional producer, half of
// them aborted, and once by a plain producer on the same keys: once the cleaner has run, a
// read_committed consumer from the start sees exactly the latest committed value of each
// key, a read_uncommitted one no aborted value either (the aborted records are gone, not
// only hidden), and DescribeLogDirs shows the log shrunk.
func TestCompactionTransactional(t *testing.T) {
	n := testcluster.Start(t, append(compactionSettings,
		"transaction.state.log.num.partitions=3", "offsets.topic.num.partitions=3")...)
	const topic, keys, rounds = "cmp-txn", 200, 20
	createTopic(t, n, topic, 1, compactedTopicConfigs("86400000"))
	ctx := ctxT(t)
	// Uncompressed, so that the bytes written are what the log stores before cleaning.
	txn := newClient(t, n, kgo.TransactionalID("tx-cmp"), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(20*time.Second), kgo.ProducerBatchCompression(kgo.NoCompression()))
	plain := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	want := map[string]string{}
	written := 0
	for round := range rounds {
		commit := round%2 == 0 // the last round aborts
		var rs []*kgo.Record
		for k := range keys {
			v := fmt.Sprintf("committed-%02d-%s", round, strings.Repeat("v", 80))
			if !commit {
				v = fmt.Sprintf("aborted-%02d-%s", round, strings.Repeat("v", 80))
			}
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("key-%03d", k)), Value: []byte(v)})
			written += len(v) + 7
		}
		if round == rounds/2 { // a plain producer's values in between
			for _, r := range rs[:keys/2] {
				r.Value = []byte("plain-" + string(r.Value))
			}
			if err := plain.ProduceSync(ctx, rs[:keys/2]...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs[:keys/2] {
				want[string(r.Key)] = string(r.Value)
			}
			continue
		}
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			for _, r := range rs {
				want[string(r.Key)] = string(r.Value)
			}
		}
	}
	// The coordinator writes the last ABORT marker after EndTransaction returns: the end
	// record goes after it, so that it is the last offset readPartition waits for.
	adm := newAdmin(t, n)
	testcluster.PollUntil(t, 30*time.Second, "the last transaction's marker", func() (bool, string) {
		hw, err1 := adm.ListEndOffsets(ctx, topic)
		lso, err2 := adm.ListCommittedOffsets(ctx, topic)
		h, _ := hw.Lookup(topic, 0)
		l, _ := lso.Lookup(topic, 0)
		return err1 == nil && err2 == nil && h.Offset == l.Offset, fmt.Sprintf("high watermark %d, last stable offset %d", h.Offset, l.Offset)
	})
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte(endKey), Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sizeWritten := logSize(t, n, topic)
	waitAllSealed(t, n, topic)

	var committed []*kgo.Record
	testcluster.PollUntil(t, 60*time.Second, "one record per key, none aborted", func() (bool, string) {
		all := readPartition(t, n, topic)
		for _, r := range all {
			if strings.HasPrefix(string(r.Value), "aborted-") {
				return false, fmt.Sprintf("%d records, aborted %s=%.12s still there", len(all), r.Key, r.Value)
			}
		}
		committed = readPartition(t, n, topic, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		return len(all) == keys && len(committed) == keys, fmt.Sprintf("%d records, %d read_committed", len(all), len(committed))
	})
	latest := latestOf(committed)
	for k, v := range want {
		if r := latest[k]; r == nil || string(r.Value) != v {
			t.Fatalf("key %s: read_committed got %v, want %.20s", k, r, v)
		}
	}
	sizeAfter := logSize(t, n, topic)
	t.Logf("%d bytes of keys and values written; log size %d bytes after the writes, %d after cleaning (DescribeLogDirs)",
		written, sizeWritten, sizeAfter)
	if sizeAfter <= 0 || sizeAfter >= sizeWritten || sizeAfter*4 > int64(written) {
		t.Errorf("DescribeLogDirs size %d after cleaning: want at most a quarter of the %d bytes written", sizeAfter, written)
	}
}
