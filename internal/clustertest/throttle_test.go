package clustertest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// Replication throttles (KIP-73) end to end: the broker rates and the topic replica lists set
// with AlterConfigs as kafka-reassign-partitions --throttle sets them.

// produceBytes produces n records of size bytes each to topic-0 (acks=all, uncompressed).
func produceBytes(t *testing.T, addrs []string, topic string, n, size int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, size)
	for i := range value {
		value[i] = byte(i * 7)
	}
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Partition: 0, Value: value}
	}
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatalf("producing %d x %d bytes to %s: %v", n, size, topic, err)
	}
}

// setBrokerConfigs sets (value non-nil) or deletes (nil) configs on every broker of c.
func setBrokerConfigs(t *testing.T, adm *kadm.Client, configs map[string]*string, brokers ...int32) {
	t.Helper()
	var alter []kadm.AlterConfig
	for name, v := range configs {
		op := kadm.SetConfig
		if v == nil {
			op = kadm.DeleteConfig
		}
		alter = append(alter, kadm.AlterConfig{Op: op, Name: name, Value: v})
	}
	res, err := adm.AlterBrokerConfigs(ctxT(t), alter, brokers...)
	if err == nil {
		for _, r := range res {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		t.Fatalf("AlterConfigs brokers %v %v: %v", brokers, configs, err)
	}
}

// setTopicConfigs sets configs of topic.
func setTopicConfigs(t *testing.T, adm *kadm.Client, topic string, configs map[string]string) {
	t.Helper()
	var alter []kadm.AlterConfig
	for name, v := range configs {
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kgoStr(v)})
	}
	res, err := adm.AlterTopicConfigs(ctxT(t), alter, topic)
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("AlterConfigs topic %s %v: %v", topic, configs, err)
	}
}

// waitReassigned waits until no reassignment is listed and every node's image shows topic-0
// on replicas.
func waitReassigned(t *testing.T, c *testcluster.Cluster, adm *kadm.Client, topic string, replicas []int32) {
	t.Helper()
	deadline := time.Now().Add(2 * testTimeout)
	for {
		listed, err := adm.ListPartitionReassignments(ctxT(t), kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed.Sorted()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reassignment of %s never completed", topic)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range c.Nodes {
		waitPartition(t, c, i, topic, 0, "moved", func(p metadata.Partition) bool {
			return slices.Equal(p.Replicas, replicas) && !p.Reassigning()
		})
	}
}

// TestReplicationThrottleReassign moves a partition holding 8 MB from nodes 1,2 to 2,3 with
// a throttle of 1 MB/s on the leader side, the follower side, or none, with the configs
// kafka-reassign-partitions --throttle sets (the rates on every broker, the existing replicas
// in leader.replication.throttled.replicas, the moving one in
// follower.replication.throttled.replicas). Throttled, the move takes at least half of
// data/rate; unthrottled, less than that. The rates are measured over 2 windows of 1 s so
// that the first burst is small.
func TestReplicationThrottleReassign(t *testing.T) {
	const (
		records, size = 80, 100 << 10 // 8 MB
		rate          = 1 << 20
		data          = records * size
	)
	minThrottled := time.Duration(float64(data) / rate * 0.5 * float64(time.Second))
	c := testcluster.StartCluster(t, 3, "replication.quota.window.num=2", "replica.fetch.backoff.ms=100")
	adm := adminFor(t, c.Addrs()[0])
	all := []int32{1, 2, 3}
	rateStr := kgoStr(strconv.Itoa(rate))
	for _, tc := range []struct {
		name      string
		rates     map[string]*string
		throttled bool
	}{
		{"leader", map[string]*string{"leader.replication.throttled.rate": rateStr}, true},
		{"follower", map[string]*string{"follower.replication.throttled.rate": rateStr}, true},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "throttle-" + tc.name
			createAssigned(t, c, topic, []int32{1, 2})
			waitISR(t, c, topic, 2)
			produceBytes(t, c.Addrs(), topic, records, size)
			if tc.rates != nil {
				setBrokerConfigs(t, adm, tc.rates, all...)
				t.Cleanup(func() {
					unset := map[string]*string{}
					for k := range tc.rates {
						unset[k] = nil
					}
					setBrokerConfigs(t, adm, unset, all...)
				})
			}
			setTopicConfigs(t, adm, topic, map[string]string{
				"leader.replication.throttled.replicas":   "0:1,0:2",
				"follower.replication.throttled.replicas": "0:3",
			})
			start := time.Now()
			reassign(t, adm, topic, []int32{2, 3})
			waitReassigned(t, c, adm, topic, []int32{2, 3})
			took := time.Since(start)
			t.Logf("moved %d bytes in %v", data, took)
			if tc.throttled && took < minThrottled {
				t.Errorf("throttled at %d B/s, the move of %d bytes took %v, want at least %v", rate, data, took, minThrottled)
			}
			if !tc.throttled && took >= minThrottled {
				t.Errorf("unthrottled, the move of %d bytes took %v, want less than %v", data, took, minThrottled)
			}
			got, end := replicaBytes(t, c, 2, topic)
			if end != records || len(got) < data {
				t.Errorf("node 3 holds %d records (%d bytes), want %d (at least %d bytes)", end, len(got), records, data)
			}
		})
	}
}

// TestReplicationThrottleSparesISR: with every replica of an RF=3 topic throttled at 64 KB/s
// on both sides, in-sync followers are not held back: 4 MB produced with acks=all go through
// in far less than the 64 s the throttle would take, and the ISR stays whole; the bytes are
// counted (the replication byte metrics of the leader and followers). Fetches of at
// most 64 KB (replica.fetch.max.bytes) keep a throttled follower close to the rate.
func TestReplicationThrottleSparesISR(t *testing.T) {
	const (
		records, size = 40, 100 << 10 // 4 MB
		rate          = 64 << 10
		data          = records * size
	)
	c := testcluster.StartCluster(t, 3, "replication.quota.window.num=2", "replica.fetch.backoff.ms=100",
		"replica.fetch.max.bytes=65536", "samsa.metrics.address=127.0.0.1:0")
	adm := adminFor(t, c.Addrs()[0])
	createAssigned(t, c, "isr", []int32{1, 2, 3})
	waitISR(t, c, "isr", 3)
	r := kgoStr(strconv.Itoa(rate))
	setBrokerConfigs(t, adm, map[string]*string{"leader.replication.throttled.rate": r, "follower.replication.throttled.rate": r}, 1, 2, 3)
	setTopicConfigs(t, adm, "isr", map[string]string{
		"leader.replication.throttled.replicas":   "*",
		"follower.replication.throttled.replicas": "*",
	})
	for i := range c.Nodes { // every node applied the throttle before the produce
		waitFor(t, "throttle applied", func() bool {
			tp := replica.TopicPartition{Topic: "isr", Partition: 0}
			lq, fq := c.Server(i).Replicas().LeaderQuota(), c.Server(i).Replicas().FollowerQuota()
			lt, _ := lq.Throttled(tp)
			ft, _ := fq.Throttled(tp)
			return lq.Limit() == rate && fq.Limit() == rate && lt && ft
		})
	}
	start := time.Now()
	produceBytes(t, c.Addrs(), "isr", records, size)
	took := time.Since(start)
	limit := time.Duration(float64(data) / rate * 0.5 * float64(time.Second))
	t.Logf("produced %d bytes acks=all in %v", data, took)
	if took >= limit {
		t.Errorf("acks=all of %d bytes took %v under a %d B/s throttle: in-sync replicas were throttled", data, took, rate)
	}
	if !c.Server(0).Replicas().LeaderQuota().Exceeded(time.Now()) {
		t.Errorf("the leader's replication rate is not over its quota: the test did not exercise the throttle")
	}
	if p := waitISR(t, c, "isr", 3); len(p.ISR) != 3 {
		t.Errorf("ISR %v", p.ISR)
	}
	// The leader (node 1) counted what it sent both followers, each follower what it got.
	m := testcluster.Scrape(t, c.Server(0).MetricsAddr())
	if got := m.Get("samsa_leader_replication_throttled_bytes_total"); got < 2*data {
		t.Errorf("samsa_leader_replication_throttled_bytes_total of the leader: %v, want at least %d", got, 2*data)
	}
	for i := 1; i < 3; i++ {
		m := testcluster.Scrape(t, c.Server(i).MetricsAddr())
		if got := m.Get("samsa_follower_replication_throttled_bytes_total"); got < data {
			t.Errorf("samsa_follower_replication_throttled_bytes_total of node %d: %v, want at least %d", i+1, got, data)
		}
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
