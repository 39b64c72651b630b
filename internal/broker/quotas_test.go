package broker_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// quotaRate is the byte-rate quota of the rate tests: 512 KiB/s.
const quotaRate = 512 << 10

// startWithQuotas starts a node whose client quotas are tab. The quota is measured over 2
// samples of 1 s: with Kafka's default 11 samples a greedy client's first burst is 10 s of
// quota and its flow comes in 11 s periods (see quota.TestGreedyClientHeldToQuota), too long
// to measure here; the algorithm is the same.
//
// The quotas are set as a user sets them, with AlterClientQuotas over TCP (kadm), and the test
// waits until the broker's metadata image has them.
func startWithQuotas(t *testing.T, tab *quota.Table, settings ...string) *testcluster.Node {
	t.Helper()
	n := testcluster.Start(t, append([]string{"quota.window.num=2"}, settings...)...)
	var entries []kadm.AlterClientQuotaEntry
	for e, vals := range tab.Quotas {
		var ent kadm.ClientQuotaEntity
		for _, c := range []struct {
			typ  string
			name quota.Name
		}{{"user", e.User}, {"client-id", e.ClientID}, {"ip", e.IP}} {
			if !c.name.Set {
				continue
			}
			comp := kadm.ClientQuotaEntityComponent{Type: c.typ}
			if !c.name.Default {
				comp.Name = kadm.StringPtr(c.name.Name)
			}
			ent = append(ent, comp)
		}
		entry := kadm.AlterClientQuotaEntry{Entity: ent}
		for k, v := range vals {
			entry.Ops = append(entry.Ops, kadm.AlterClientQuotaOp{Key: k, Value: v})
		}
		entries = append(entries, entry)
	}
	res, err := newAdmin(t, n).AlterClientQuotas(ctxT(t), entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("AlterClientQuotas %v: %v", r.Entity, r.Err)
		}
	}
	testcluster.PollUntil(t, 10*time.Second, "the quotas in the metadata image", func() (bool, string) {
		got := n.Server().Image().ClientQuotas().Quotas
		return len(got) == len(tab.Quotas), fmt.Sprintf("%d of %d entities", len(got), len(tab.Quotas))
	})
	return n
}

func clientQuota(client string, vals quota.Values) *quota.Table {
	return &quota.Table{Quotas: map[quota.Entity]quota.Values{{ClientID: quota.Named(client)}: vals}}
}

// throttleHook counts the throttles a kgo client is told of.
type throttleHook struct {
	count atomic.Int64
	first atomic.Pointer[time.Time]
	maxMs atomic.Int64
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if h.count.Add(1) == 1 {
		now := time.Now()
		h.first.Store(&now)
	}
	if ms := d.Milliseconds(); ms > h.maxMs.Load() {
		h.maxMs.Store(ms)
	}
}

// measureFromFirstThrottle waits for the first throttle, then returns the rate of bytes()
// over the span that follows it (the steady part: before it the client had its first burst).
func measureFromFirstThrottle(t *testing.T, h *throttleHook, bytes func() int64, span time.Duration) float64 {
	t.Helper()
	testcluster.PollUntil(t, 30*time.Second, "a throttle", func() (bool, string) {
		return h.count.Load() > 0, "no throttle seen"
	})
	from := bytes()
	start := time.Now()
	time.Sleep(span) // the measurement itself: the issue allows this rate assertion
	return float64(bytes()-from) / time.Since(start).Seconds()
}

func checkRate(t *testing.T, what string, rate float64) {
	t.Helper()
	t.Logf("%s: %.0f B/s against a quota of %d B/s (%.2f)", what, rate, quotaRate, rate/quotaRate)
	if rate < 0.8*quotaRate || rate > 1.2*quotaRate {
		t.Fatalf("%s: %.0f B/s, not within 20%% of the quota %d B/s", what, rate, quotaRate)
	}
}

// produceGreedily produces 1 KiB records to topic until ctx ends, counting acknowledged value
// bytes.
func produceGreedily(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, acked *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		val := randomBytes(1024)
		for ctx.Err() == nil {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: val}, func(r *kgo.Record, err error) {
				if err == nil {
					acked.Add(int64(len(r.Value)))
				}
			})
		}
	}()
	return &wg
}

func TestProduceByteRateQuota(t *testing.T) {
	tab := clientQuota("throttled", quota.Values{quota.ProducerByteRate: quotaRate})
	n := startWithQuotas(t, tab)
	createTopic(t, n, "pquota", 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var slow, free throttleHook
	var slowBytes atomic.Int64
	slowCl := newClient(t, n, kgo.ClientID("throttled"), kgo.WithHooks(&slow), kgo.ProducerBatchMaxBytes(16<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	freeCl := newClient(t, n, kgo.ClientID("free"), kgo.WithHooks(&free), kgo.ProducerBatchMaxBytes(16<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	wg := produceGreedily(ctx, t, slowCl, "pquota", &slowBytes)
	rate := measureFromFirstThrottle(t, &slow, slowBytes.Load, 6*time.Second)
	cancel()
	wg.Wait()
	checkRate(t, "throttled producer", rate)
	if slow.maxMs.Load() <= 0 {
		t.Fatal("no throttle_time_ms seen")
	}

	// Another client id has no quota: never throttled; 4 MiB, 8 s at the quota, go through
	// in well under that.
	var recs []*kgo.Record
	val := randomBytes(1024)
	for i := 0; i < 4<<10; i++ {
		recs = append(recs, &kgo.Record{Topic: "pquota", Value: val})
	}
	start := time.Now()
	if err := freeCl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("unthrottled producer: 4 MiB in %v", took)
	if free.count.Load() != 0 {
		t.Fatalf("the unthrottled client was throttled %d times", free.count.Load())
	}
	if took > 4*time.Second {
		t.Fatalf("the unthrottled client took %v for 4 MiB", took)
	}
}

func TestConsumerByteRateQuota(t *testing.T) {
	tab := clientQuota("slow-consumer", quota.Values{quota.ConsumerByteRate: quotaRate})
	n := startWithQuotas(t, tab)
	createTopic(t, n, "cquota", 1, nil)
	// 8 MiB to read: more than the burst plus the measured span at the quota.
	prod := newClient(t, n, kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	val := randomBytes(1024)
	var recs []*kgo.Record
	for i := 0; i < 8<<10; i++ {
		recs = append(recs, &kgo.Record{Topic: "cquota", Value: val})
	}
	if err := prod.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var h throttleHook
	var got atomic.Int64
	cons := newClient(t, n, kgo.ClientID("slow-consumer"), kgo.WithHooks(&h), kgo.ConsumeTopics("cquota"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(16<<10))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { got.Add(int64(len(r.Value))) })
		}
	}()
	rate := measureFromFirstThrottle(t, &h, got.Load, 6*time.Second)
	cancel()
	<-done
	checkRate(t, "throttled consumer", rate)
}

// TestRequestPercentageQuota: a client allowed 0.01% of a thread is throttled at once (the
// throttle of a request quota is capped at one window, 1 s), another is not.
func TestRequestPercentageQuota(t *testing.T) {
	tab := clientQuota("busy", quota.Values{quota.RequestPercentage: 0.01})
	n := startWithQuotas(t, tab)
	for _, tc := range []struct {
		client    string
		throttled bool
	}{{"busy", true}, {"idle", false}} {
		t.Run(tc.client, func(t *testing.T) {
			var h throttleHook
			cl := newClient(t, n, kgo.ClientID(tc.client), kgo.WithHooks(&h))
			var maxThrottle int32
			for i := 0; i < 20 && maxThrottle == 0; i++ {
				resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctxT(t), cl)
				if err != nil {
					t.Fatal(err)
				}
				maxThrottle = max(maxThrottle, resp.ThrottleMillis)
			}
			if tc.throttled != (maxThrottle > 0) {
				t.Fatalf("throttle_time_ms %d; throttled: want %v", maxThrottle, tc.throttled)
			}
			if maxThrottle > 1000 {
				t.Fatalf("request quota throttle %d ms, above one window", maxThrottle)
			}
		})
	}
}

// TestSaramaProducerThrottled: sarama sees the throttle of producer_byte_rate (its
// throttle-time-in-ms histogram).
func TestSaramaProducerThrottled(t *testing.T) {
	tab := clientQuota("sarama-slow", quota.Values{quota.ProducerByteRate: 64 << 10})
	n := startWithQuotas(t, tab)
	createTopic(t, n, "squota", 1, nil)
	cfg := saramaConfig()
	cfg.ClientID = "sarama-slow"
	prod, err := sarama.NewSyncProducer([]string{n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	throttles := func() int64 {
		var c int64
		cfg.MetricRegistry.Each(func(name string, m any) {
			if h, ok := m.(interface{ Count() int64 }); ok && strings.HasPrefix(name, "throttle-time-in-ms") {
				c += h.Count()
			}
		})
		return c
	}
	val := sarama.ByteEncoder(randomBytes(100 << 10))
	for i := 0; i < 10 && throttles() == 0; i++ {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "squota", Value: val}); err != nil {
			t.Fatal(err)
		}
	}
	if throttles() == 0 {
		t.Fatal("sarama saw no throttle after producing 1 MB against a 64 KiB/s quota")
	}
}

// TestThrottledConnectionMuted (KIP-219): a produce over producer_byte_rate is answered with
// its throttle time, and a request sent right behind it on the same connection is answered
// only once that time has passed. A Produce v5 client does not throttle itself: its response
// is held back for the throttle instead. (Lower bounds only: a slow machine cannot make them
// fail.)
func TestThrottledConnectionMuted(t *testing.T) {
	// rawRequest's client id is "test". 100 KB against 50 KB/s over 1-2 s: about 1 s.
	tab := clientQuota("test", quota.Values{quota.ProducerByteRate: 50_000})
	n := startWithQuotas(t, tab)
	createTopic(t, n, "mute", 1, nil)
	value := string(randomBytes(100_000))
	for _, tc := range []struct {
		version          int16
		responseHeldBack bool
	}{{7, false}, {5, true}} {
		t.Run(fmt.Sprintf("v%d", tc.version), func(t *testing.T) {
			// A fresh window for each case: wait until this client id is no longer throttled.
			testcluster.PollUntil(t, 30*time.Second, "the previous case's throttle to pass", func() (bool, string) {
				th := produceThrottle(t, n, produceRequest("mute", 1, "x"))
				return th == 0, fmt.Sprintf("throttle %d ms", th)
			})
			c, err := net.Dial("tcp", n.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := produceRequest("mute", 1, value)
			p.SetVersion(tc.version)
			out := append(rawRequest(p, 1), rawRequest(kmsg.NewPtrApiVersionsRequest(), 2)...)
			sent := time.Now()
			if _, err := c.Write(out); err != nil {
				t.Fatal(err)
			}
			body := readResponse(t, c)
			answered := time.Now()
			resp := p.ResponseKind().(*kmsg.ProduceResponse)
			if err := resp.ReadFrom(body[4:]); err != nil {
				t.Fatal(err)
			}
			throttle := time.Duration(resp.ThrottleMillis) * time.Millisecond
			if throttle <= 0 {
				t.Fatalf("produce of 100 KB against 50 KB/s: throttle_time_ms %d", resp.ThrottleMillis)
			}
			readResponse(t, c) // ApiVersions
			next := time.Now()
			t.Logf("throttle %v; produce answered after %v, the next request %v after it", throttle, answered.Sub(sent), next.Sub(answered))
			slack := 20 * time.Millisecond // the throttle is rounded to the millisecond
			if tc.responseHeldBack && answered.Sub(sent) < throttle-slack {
				t.Fatalf("v%d produce answered after %v, before its throttle %v passed", tc.version, answered.Sub(sent), throttle)
			}
			if !tc.responseHeldBack && next.Sub(sent) < throttle-slack {
				t.Fatalf("the request behind the throttled produce was answered after %v, before the throttle %v passed", next.Sub(sent), throttle)
			}
		})
	}
}

// produceThrottle sends one produce on a new connection and returns its throttle_time_ms.
func produceThrottle(t *testing.T, n *testcluster.Node, p *kmsg.ProduceRequest) int32 {
	t.Helper()
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(rawRequest(p, 1)); err != nil {
		t.Fatal(err)
	}
	body := readResponse(t, c)
	resp := p.ResponseKind().(*kmsg.ProduceResponse)
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	return resp.ThrottleMillis
}

// TestRequestQuotaExcludesWaits: a fetch's long poll is not handler time (Kafka's purgatory
// holds no thread): two 500 ms long polls of an empty topic by a client allowed 10% of a
// thread (100 ms a second) are not throttled.
func TestRequestQuotaExcludesWaits(t *testing.T) {
	tab := clientQuota("poller", quota.Values{quota.RequestPercentage: 10})
	n := startWithQuotas(t, tab)
	createTopic(t, n, "empty", 1, nil)
	cl := newClient(t, n, kgo.ClientID("poller"), kgo.MaxVersions(kversion.V2_8_0()))
	for i := 0; i < 2; i++ {
		req := newFetchRequest("empty", 0)
		req.MaxWaitMillis, req.MinBytes = 500, 1
		start := time.Now()
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < 400*time.Millisecond {
			t.Fatalf("the fetch did not wait (%v): the test needs a long poll", time.Since(start))
		}
		if resp.ThrottleMillis != 0 {
			t.Fatalf("fetch %d: throttled %d ms for its long poll", i, resp.ThrottleMillis)
		}
	}
}

// TestReplicationExemptFromQuotas: with a consumer_byte_rate of 1 KB/s for every client id
// (/clients/<default>) on three brokers, followers still replicate 1 MB at once (acks=all,
// min.insync.replicas=3), while a consumer is throttled.
func TestReplicationExemptFromQuotas(t *testing.T) {
	tab := &quota.Table{Quotas: map[quota.Entity]quota.Values{{ClientID: quota.DefaultName()}: {quota.ConsumerByteRate: 1000}}}
	c := testcluster.StartCluster(t, 3, "quota.window.num=2")
	for i := range c.Nodes {
		c.Server(i).Broker().SetQuotaSource(quota.SourceFunc(func() *quota.Table { return tab }))
	}
	seed := kgo.SeedBrokers(c.Addrs()...)
	adm, err := kgo.NewClient(seed)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "replicated", 1, 3
	minISR := kmsg.NewCreateTopicsRequestTopicConfig()
	minISR.Name, minISR.Value = "min.insync.replicas", strPtr("3")
	rt.Configs = append(rt.Configs, minISR)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), adm)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	prod, err := kgo.NewClient(seed, kgo.RecordDeliveryTimeout(20*time.Second), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	val := randomBytes(1024)
	var recs []*kgo.Record
	for i := 0; i < 1000; i++ {
		recs = append(recs, &kgo.Record{Topic: "replicated", Value: val})
	}
	testcluster.PollUntil(t, 30*time.Second, "1 MB acknowledged by 3 replicas", func() (bool, string) {
		err := prod.ProduceSync(ctxT(t), recs...).FirstErr()
		return err == nil, fmt.Sprint(err)
	})
	var h throttleHook
	cons, err := kgo.NewClient(seed, kgo.WithHooks(&h), kgo.ConsumeTopics("replicated"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	testcluster.PollUntil(t, 30*time.Second, "the consumer throttled", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		cons.PollFetches(ctx)
		return h.count.Load() > 0, "not throttled"
	})
}
