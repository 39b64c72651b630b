package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

func TestListOffsetsByTimestamp(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "ts", 1, nil)
	cl := newClient(t, n, kgo.DefaultProduceTopic("ts"), kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := newAdmin(t, n)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{base.Add(-time.Minute), 0},
		{base, 0},
		{base.Add(3*time.Minute + time.Second), 4},
		{base.Add(9 * time.Minute), 9},
		{base.Add(time.Hour), -1},
	} {
		offs, err := adm.ListOffsetsAfterMilli(ctxT(t), tc.at.UnixMilli(), "ts")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup("ts", 0)
		if o.Err != nil || o.Offset != tc.want {
			// kadm reports "no offset" as the end offset for timestamps past the last record.
			if !(tc.want == -1 && o.Offset == 10) {
				t.Errorf("at %v: offset %d err %v, want %d", tc.at.Sub(base), o.Offset, o.Err, tc.want)
			}
		}
	}
	start, _ := adm.ListStartOffsets(ctxT(t), "ts")
	end, _ := adm.ListEndOffsets(ctxT(t), "ts")
	if s, _ := start.Lookup("ts", 0); s.Offset != 0 {
		t.Errorf("start offset %d", s.Offset)
	}
	if e, _ := end.Lookup("ts", 0); e.Offset != 10 {
		t.Errorf("end offset %d", e.Offset)
	}
}

func TestDeleteRecords(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "dr", 1, nil)
	cl := newClient(t, n, kgo.DefaultProduceTopic("dr"), kgo.ProducerLinger(0))
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprintf("%d|v", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := newAdmin(t, n)
	offsets := kadmOffsets("dr", 0, 12)
	resp, err := adm.DeleteRecords(ctxT(t), offsets)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.Lookup("dr", 0); r.Err != nil || r.LowWatermark != 12 {
		t.Fatalf("delete records: low watermark %d err %v", r.LowWatermark, r.Err)
	}
	start, _ := adm.ListStartOffsets(ctxT(t), "dr")
	if s, _ := start.Lookup("dr", 0); s.Offset != 12 {
		t.Fatalf("start offset %d after DeleteRecords", s.Offset)
	}
	got := consumeAll(t, n, "dr", 8)
	if string(got[0].Value) != "12|v" || got[0].Offset != 12 {
		t.Fatalf("first record after deletion: offset %d %q", got[0].Offset, got[0].Value)
	}
	// The groups' offsets are not for clients to delete, as in Kafka.
	waitUntil(t, 30*time.Second, "__consumer_offsets exists", func() bool {
		return adm.FindGroupCoordinators(ctxT(t), "any").Error() == nil
	})
	resp, err = adm.DeleteRecords(ctxT(t), kadmOffsets("__consumer_offsets", 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.Lookup("__consumer_offsets", 0); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("delete records of __consumer_offsets: %v", r.Err)
	}
	// The new start offset survives a restart.
	n.Restart()
	start, _ = newAdmin(t, n).ListStartOffsets(ctxT(t), "dr")
	if s, _ := start.Lookup("dr", 0); s.Offset != 12 {
		t.Fatalf("start offset %d after restart", s.Offset)
	}
}

// Retention deletes old segments under cleanup.policy=delete, and none under compact alone
// (as Kafka: a compacted topic's records go only by compaction; its records here have
// distinct keys, so the cleaner keeps them all).
func TestRetentionDeletesOldSegments(t *testing.T) {
	n := testcluster.Start(t, "log.retention.check.interval.ms=100")
	// Records stamped two minutes ago are past retention.ms as soon as their segment rolls.
	old := time.Now().Add(-2 * time.Minute)
	// The compacted topic is written first, so the retention pass that deletes from the other
	// one has seen all of its records too.
	for _, topic := range []string{"keep", "ret"} {
		policy := map[string]string{"keep": "compact", "ret": "delete"}[topic]
		createTopic(t, n, topic, 1, map[string]*string{
			"segment.bytes":  strPtr("2048"),
			"retention.ms":   strPtr("60000"),
			"cleanup.policy": strPtr(policy),
		})
		cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
		for i := 0; i < 40; i++ {
			r := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: make([]byte, 200), Timestamp: old}
			if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := newAdmin(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Once retention has deleted from the delete topic, watch the compacted one for 20 more
	// retention intervals (a pass may be under way when the first deletion shows).
	var watchUntil time.Time
	for {
		start, err := adm.ListStartOffsets(ctx, "ret", "keep")
		if err != nil {
			t.Fatal(err)
		}
		if k, _ := start.Lookup("keep", 0); k.Offset != 0 {
			t.Fatalf("retention deleted from a compact-only topic: start offset %d", k.Offset)
		}
		if s, _ := start.Lookup("ret", 0); s.Offset > 0 && watchUntil.IsZero() {
			watchUntil = time.Now().Add(2 * time.Second)
		}
		if !watchUntil.IsZero() && time.Now().After(watchUntil) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("retention never advanced the log start offset")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
