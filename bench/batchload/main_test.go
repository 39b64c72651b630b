package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/testcluster"
)

func TestEncodeBatch(t *testing.T) {
	for _, tc := range []struct{ size, batchBytes int }{{100, 16384}, {1024, 16384}, {0, 1024}, {20000, 16384}} {
		n := recordsPerBatch(tc.size, tc.batchBytes)
		b := encodeBatch(n, tc.size, 1700000000000)
		h, err := records.Validate(b)
		if err != nil {
			t.Fatalf("size %d: %v", tc.size, err)
		}
		if int(h.RecordCount) != n || h.LastOffsetDelta != int32(n-1) {
			t.Fatalf("size %d: header %+v, want %d records", tc.size, h, n)
		}
		if n > 1 && len(b) > tc.batchBytes {
			t.Fatalf("size %d: %d records make %d bytes, over %d", tc.size, n, len(b), tc.batchBytes)
		}
		if more := encodeBatch(n+1, tc.size, 0); len(more) <= tc.batchBytes {
			t.Fatalf("size %d: %d records would still fit in %d bytes", tc.size, n+1, tc.batchBytes)
		}
	}
}

// TestRunAgainstSamsa sends batches to an in-process broker and reads every record back with
// franz-go: the batches are valid to a real client, and all that was counted was stored.
func TestRunAgainstSamsa(t *testing.T) {
	node := testcluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(node.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "load"); err != nil {
		t.Fatal(err)
	}
	res, err := run(config{addr: node.Addr(), topic: "load", partitions: 3, records: 5000, recordSize: 100,
		batchBytes: 16384, acks: -1, connections: 2, inflight: 3})
	if err != nil {
		t.Fatal(err)
	}
	perRequest := int64(3 * recordsPerBatch(100, 16384))
	if res.Records < 5000 || res.Records%perRequest != 0 || res.Latency == nil {
		t.Fatalf("result %+v: want whole requests of %d records, at least 5000, with latencies", res, perRequest)
	}
	ends, err := adm.ListEndOffsets(ctx, "load")
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	ends.Each(func(o kadm.ListedOffset) { stored += o.Offset })
	if stored != res.Records {
		t.Fatalf("broker stored %d records, batchload counted %d", stored, res.Records)
	}

	// Read partition 0 back: every value is the generator's alphabet, in offset order.
	cons, err := kgo.NewClient(kgo.SeedBrokers(node.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"load": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got int64
	for got < stored/3 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != got || len(r.Value) != 100 || r.Value[0] != 'A' || r.Value[27] != 'B' {
				t.Fatalf("record %d: offset %d, value %q", got, r.Offset, r.Value)
			}
			got++
		})
	}
}
