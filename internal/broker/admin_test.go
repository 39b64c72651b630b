package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

func TestTopicAdmin(t *testing.T) {
	n := testcluster.Start(t)
	adm := newAdmin(t, n)
	ctx := ctxT(t)

	resp, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": strPtr("3600000")}, "orders")
	if err != nil || resp["orders"].Err != nil {
		t.Fatalf("create: %v %v", err, resp["orders"].Err)
	}
	if resp["orders"].ID == [16]byte{} {
		t.Fatal("created topic has no topic id")
	}
	for _, tc := range []struct {
		name       string
		topic      string
		partitions int32
		want       error
	}{
		{"exists", "orders", 1, kerr.TopicAlreadyExists},
		{"bad name", "bad/name", 1, kerr.InvalidTopicException},
		{"dot name", "..", 1, kerr.InvalidTopicException},
		{"zero partitions", "zero", 0, kerr.InvalidPartitions},
		{"over 10,000 partitions in one request", "huge", 10_001, kerr.PolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := adm.CreateTopics(ctx, tc.partitions, 1, nil, tc.topic)
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(r[tc.topic].Err, tc.want) {
				t.Fatalf("got %v, want %v", r[tc.topic].Err, tc.want)
			}
		})
	}
	// Replication factor beyond the live brokers.
	r, err := adm.CreateTopics(ctx, 1, 3, nil, "rf3")
	if err != nil || !errors.Is(r["rf3"].Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf3: %v %v", err, r["rf3"].Err)
	}
	// Validate-only creates nothing.
	v, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "dryrun")
	if err != nil || v["dryrun"].Err != nil {
		t.Fatalf("validate: %v %v", err, v["dryrun"].Err)
	}

	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !td.Has("orders") || td.Has("dryrun") {
		t.Fatalf("topics listed: %v", td.Names())
	}
	if got := len(td["orders"].Partitions); got != 3 {
		t.Fatalf("orders has %d partitions", got)
	}
	for _, p := range td["orders"].Partitions {
		if p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Fatalf("partition %d: leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}

	// CreatePartitions grows the topic; shrinking is refused.
	cp, err := adm.UpdatePartitions(ctx, 5, "orders")
	if err != nil || cp["orders"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, cp["orders"].Err)
	}
	cp, _ = adm.UpdatePartitions(ctx, 2, "orders")
	if !errors.Is(cp["orders"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: got %v", cp["orders"].Err)
	}
	// Over 10,000 new partitions in one request, the whole request is refused, as in Kafka.
	cp, _ = adm.UpdatePartitions(ctx, 10_006, "orders")
	if !errors.Is(cp["orders"].Err, kerr.PolicyViolation) {
		t.Fatalf("10,001 new partitions: got %v", cp["orders"].Err)
	}
	// __consumer_offsets keeps its partition count: groups are mapped to partitions by it.
	waitUntil(t, 30*time.Second, "__consumer_offsets exists", func() bool {
		return adm.FindGroupCoordinators(ctx, "any").Error() == nil
	})
	cp, _ = adm.UpdatePartitions(ctx, 60, "__consumer_offsets")
	if !errors.Is(cp["__consumer_offsets"].Err, kerr.InvalidRequest) {
		t.Fatalf("growing __consumer_offsets: got %v", cp["__consumer_offsets"].Err)
	}
	// The new partitions take writes.
	cl := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 4, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to new partition: %v", err)
	}

	dr, err := adm.DeleteTopics(ctx, "orders")
	if err != nil || dr["orders"].Err != nil {
		t.Fatalf("delete: %v %v", err, dr["orders"].Err)
	}
	dr, _ = adm.DeleteTopics(ctx, "orders")
	if !errors.Is(dr["orders"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete again: %v", dr["orders"].Err)
	}
	// Recreate with the same name: it starts empty.
	createTopic(t, n, "orders", 1, nil)
	offs, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("orders", 0); o.Offset != 0 {
		t.Fatalf("recreated topic's end offset %d", o.Offset)
	}
}

func TestConfigsRoundTrip(t *testing.T) {
	n := testcluster.Start(t, "log.retention.hours=48")
	adm := newAdmin(t, n)
	ctx := ctxT(t)
	createTopic(t, n, "cfg", 1, map[string]*string{"cleanup.policy": strPtr("delete"), "segment.bytes": strPtr("1048576")})

	find := func(name string) kadm.Config {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("cfg", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe: %v %v", err, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == name {
				return c
			}
		}
		t.Fatalf("config %s not described", name)
		return kadm.Config{}
	}
	for _, tc := range []struct {
		name, value string
		source      kmsgSource
	}{
		{"segment.bytes", "1048576", srcTopic},
		{"retention.ms", "172800000", srcStatic},
		{"max.message.bytes", "1048588", srcDefault},
	} {
		c := find(tc.name)
		if c.MaybeValue() != tc.value || kmsgSource(c.Source) != tc.source {
			t.Errorf("%s = %q (source %v), want %q (source %v)", tc.name, c.MaybeValue(), c.Source, tc.value, tc.source)
		}
	}

	_, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strPtr("1000")}}, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if c := find("retention.ms"); c.MaybeValue() != "1000" || kmsgSource(c.Source) != srcTopic {
		t.Fatalf("after set: %q %v", c.MaybeValue(), c.Source)
	}
	ac, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strPtr("soon")}}, "cfg")
	if err == nil {
		err = ac[0].Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("invalid value: got %v", err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "cfg"); err != nil {
		t.Fatal(err)
	}
	if c := find("retention.ms"); c.MaybeValue() != "172800000" {
		t.Fatalf("after delete: %q", c.MaybeValue())
	}
	// Configs survive a restart.
	n.Restart()
	adm = newAdmin(t, n)
	if c := find("segment.bytes"); c.MaybeValue() != "1048576" {
		t.Fatalf("after restart: %q", c.MaybeValue())
	}
}

type kmsgSource int8

const (
	srcTopic   kmsgSource = 1
	srcStatic  kmsgSource = 4
	srcDefault kmsgSource = 5
)

func TestDescribeClusterAndLogDirs(t *testing.T) {
	n := testcluster.Start(t)
	adm := newAdmin(t, n)
	ctx := ctxT(t)
	createTopic(t, n, "dirs", 2, nil)
	cl := newClient(t, n, kgo.DefaultProduceTopic("dirs"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: randomBytes(1000)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster == "" || len(meta.Brokers) != 1 || meta.Controller != 1 {
		t.Fatalf("cluster %q brokers %v controller %d", meta.Cluster, meta.Brokers, meta.Controller)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "dirs" {
				size += p.Size
			}
		})
	})
	if size < 1000 {
		t.Fatalf("log dirs report %d bytes for topic dirs", size)
	}
	_ = time.Second
}
