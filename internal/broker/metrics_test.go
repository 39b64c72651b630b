package broker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/server"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestMetricsEndpoint scrapes a broker's /metrics over HTTP around a kgo producer and consumer,
// a produce to a partition that does not exist and a produce over a byte-rate quota, and
// checks that each counter moved by what the clients did.
func TestMetricsEndpoint(t *testing.T) {
	// rawRequest's client id is "test": its produce of 100 KB against 50 KB/s is throttled.
	n := startWithQuotas(t, clientQuota("test", quota.Values{quota.ProducerByteRate: 50_000}), "samsa.metrics.address=127.0.0.1:0")
	addr := n.Server().MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics address with samsa.metrics.address set")
	}
	const topic = "metered"
	createTopic(t, n, topic, 1, nil)
	before := testcluster.Scrape(t, addr)

	// Five produce requests of one record each (ProduceSync waits for each), then a consumer
	// reading them back.
	const records = 5
	cl := newClient(t, n, kgo.ClientID("metered-client"), kgo.DefaultProduceTopic(topic),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	for i := range records {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprintf("value %d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < records {
		fs := cl.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	mid := testcluster.Scrape(t, addr)

	// A produce to partition 7 of a one-partition topic, then one over the quota.
	bad := produceRequest(topic, 1, "nowhere")
	bad.Topics[0].Partitions[0].Partition = 7
	resp, err := bad.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 3 {
		t.Fatalf("produce to partition 7: error code %d, want 3 (UNKNOWN_TOPIC_OR_PARTITION)", code)
	}
	throttleMs := produceThrottle(t, n, produceRequest(topic, 1, string(randomBytes(100_000))))
	if throttleMs <= 0 {
		t.Fatalf("produce of 100 KB against 50 KB/s: throttle_time_ms %d", throttleMs)
	}
	after := testcluster.Scrape(t, addr)

	produce := []string{"request", "Produce"}
	tp := []string{"topic", topic}
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"Produce requests (kgo)", mid.Get("samsa_requests_total", produce...) - before.Get("samsa_requests_total", produce...), records},
		{"Produce requests (raw)", after.Get("samsa_requests_total", produce...) - mid.Get("samsa_requests_total", produce...), 2},
		{"Produce latencies observed", after.Get("samsa_request_total_time_seconds", produce...) - before.Get("samsa_request_total_time_seconds", produce...), records + 2},
		{"Produce NONE codes", after.Get("samsa_request_errors_total", "request", "Produce", "error", "NONE") - before.Get("samsa_request_errors_total", "request", "Produce", "error", "NONE"), records + 1},
		{"Produce UNKNOWN_TOPIC_OR_PARTITION", after.Get("samsa_request_errors_total", "request", "Produce", "error", "UNKNOWN_TOPIC_OR_PARTITION") - before.Get("samsa_request_errors_total", "request", "Produce", "error", "UNKNOWN_TOPIC_OR_PARTITION"), 1},
		{"produce partitions", after.Get("samsa_produce_partition_requests_total") - before.Get("samsa_produce_partition_requests_total"), records + 2},
		{"failed produce partitions", after.Get("samsa_produce_partition_requests_failed_total") - before.Get("samsa_produce_partition_requests_failed_total"), 1},
		{"messages in after kgo", mid.Get("samsa_topic_messages_in_total", tp...), records},
		{"messages in after raw", after.Get("samsa_topic_messages_in_total", tp...), records + 1},
		{"bytes in = log size (kgo)", mid.Get("samsa_topic_bytes_in_total", tp...), mid.Get("samsa_log_size_bytes", "topic", topic, "partition", "0")},
		{"bytes in = log size (raw)", after.Get("samsa_topic_bytes_in_total", tp...), after.Get("samsa_log_size_bytes", "topic", topic, "partition", "0")},
		{"bytes out = bytes in (all consumed)", mid.Get("samsa_topic_bytes_out_total", tp...), mid.Get("samsa_topic_bytes_in_total", tp...)},
		{"Produce throttles", after.Get("samsa_quota_throttled_requests_total", "quota", "Produce") - before.Get("samsa_quota_throttled_requests_total", "quota", "Produce"), 1},
		{"Fetch throttles", after.Get("samsa_quota_throttled_requests_total", "quota", "Fetch"), 0},
		{"partitions", after.Get("samsa_partitions"), 1},
		{"leaders", after.Get("samsa_leader_partitions"), 1},
		{"under-replicated", after.Get("samsa_under_replicated_partitions"), 0},
		{"at min ISR", after.Get("samsa_at_min_isr_partitions"), 1},
		{"active controller", after.Get("samsa_active_controller"), 1},
		{"offline", after.Get("samsa_offline_partitions"), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, c := range []struct {
		what string
		got  float64
	}{
		{"bytes in", mid.Get("samsa_topic_bytes_in_total", tp...)},
		{"Fetch requests", mid.Get("samsa_requests_total", "request", "FetchConsumer") - before.Get("samsa_requests_total", "request", "FetchConsumer")},
		{"Produce throttle time", after.Get("samsa_quota_throttle_time_ms_total", "quota", "Produce")},
		{"open PLAINTEXT connections", mid.Get("samsa_connections", "listener", "PLAINTEXT")},
		{"PLAINTEXT connections created", after.Get("samsa_connections_created_total", "listener", "PLAINTEXT")},
		{"metadata offset", after.Get("samsa_metadata_last_applied_offset")},
	} {
		if c.got <= 0 {
			t.Errorf("%s: %v, want > 0", c.what, c.got)
		}
	}
	// produceThrottle's connection is closed: the listener counts it.
	closedBefore := mid.Get("samsa_connections_closed_total", "listener", "PLAINTEXT")
	testcluster.PollUntil(t, 10*time.Second, "the raw connection counted closed", func() (bool, string) {
		closed := testcluster.Scrape(t, addr).Get("samsa_connections_closed_total", "listener", "PLAINTEXT")
		return closed > closedBefore, fmt.Sprintf("closed %v, %v before", closed, closedBefore)
	})
	if _, ok := after.Value("samsa_log_cleaner_uncleanable_partitions"); !ok {
		t.Error("no samsa_log_cleaner_uncleanable_partitions")
	}
	for name, f := range after {
		if strings.HasPrefix(name, "samsa_") && !strings.Contains(f.GetHelp(), "kafka.") && !strings.Contains(f.GetHelp(), "Kafka") {
			t.Errorf("%s: help %q names no Kafka equivalent", name, f.GetHelp())
		}
	}
}

// listeningSockets counts this process's listening TCP sockets (its descriptors whose socket
// inode is in LISTEN state in /proc/net/tcp or tcp6).
func listeningSockets(t *testing.T) int {
	t.Helper()
	listening := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 9 && fields[3] == "0A" {
				listening[fields[9]] = true
			}
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && listening[strings.Trim(link[len("socket:"):], "[]")] {
			n++
		}
	}
	return n
}

// TestMetricsAddress: with samsa.metrics.address empty (the default) a node opens no port
// besides its listeners; set, exactly one more, serving /metrics; a port in use or an
// address that is not host:port fails the start with the setting named.
func TestMetricsAddress(t *testing.T) {
	for _, tc := range []struct {
		setting string
		extra   int
	}{{"", 0}, {"127.0.0.1:0", 1}} {
		t.Run(fmt.Sprintf("%q", tc.setting), func(t *testing.T) {
			base := listeningSockets(t)
			n := testcluster.Start(t, "samsa.metrics.address="+tc.setting)
			opened := listeningSockets(t) - base
			if want := 2 + tc.extra; opened != want { // PLAINTEXT, CONTROLLER (+ metrics)
				t.Errorf("the node opened %d listening sockets, want %d", opened, want)
			}
			addr := n.Server().MetricsAddr()
			if (addr != "") != (tc.extra == 1) {
				t.Fatalf("MetricsAddr %q with samsa.metrics.address=%q", addr, tc.setting)
			}
			if addr != "" {
				if _, ok := testcluster.Scrape(t, addr).Value("samsa_requests_total", "request", "ApiVersions"); !ok {
					t.Error("no samsa_requests_total{request=ApiVersions}")
				}
			}
			n.Stop()
			if left := listeningSockets(t) - base; left != 0 {
				t.Errorf("%d listening sockets left after the node stopped", left)
			}
		})
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ setting, want string }{
		{busy.Addr().String(), "samsa.metrics.address: cannot listen on " + busy.Addr().String()},
		{"9404", "samsa.metrics.address=9404: want host:port"},
		{"localhost:http-alt", "samsa.metrics.address=localhost:http-alt: want host:port"},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			cfg, err := config.LoadServer(map[string]string{
				"listeners":             "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
				"log.dirs":              t.TempDir(),
				"samsa.metrics.address": tc.setting,
			})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var s *server.Server
				if s, err = server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
					s.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start with samsa.metrics.address=%s: %v, want an error with %q", tc.setting, err, tc.want)
			}
		})
	}
}

// TestMetricsThrottleByQuotaType: a request throttled by each kind of quota (request time,
// consumer bytes, controller mutations; produce bytes in TestMetricsEndpoint) is counted under
// its quota type, with its throttle time.
func TestMetricsThrottleByQuotaType(t *testing.T) {
	tab := &quota.Table{Quotas: map[quota.Entity]quota.Values{
		{ClientID: quota.Named("busy")}:      {quota.RequestPercentage: 0.01},
		{ClientID: quota.Named("slowfetch")}: {quota.ConsumerByteRate: 1000},
		{ClientID: quota.Named("mutator")}:   {quota.ControllerMutationRate: mutationRate},
	}}
	n := startWithQuotas(t, tab, "controller.quota.window.num=2", "samsa.metrics.address=127.0.0.1:0")
	createTopic(t, n, "fetched", 1, nil)
	if err := newClient(t, n).ProduceSync(ctxT(t), &kgo.Record{Topic: "fetched", Value: randomBytes(100_000)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		quota, client string
		// request sends one request as client and returns its throttle_time_ms.
		request func(cl *kgo.Client) int32
	}{
		{"Request", "busy", func(cl *kgo.Client) int32 {
			resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctxT(t), cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.ThrottleMillis
		}},
		{"Fetch", "slowfetch", func(cl *kgo.Client) int32 {
			resp, err := newFetchRequest("fetched", 0).RequestWith(ctxT(t), cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.ThrottleMillis
		}},
		{"ControllerMutation", "mutator", func(cl *kgo.Client) int32 {
			_, throttle := mutate(t, cl, kmsg.CreateTopics, []string{"m-a", "m-b", "m-c"}, nil)
			return throttle
		}},
	} {
		t.Run(tc.quota, func(t *testing.T) {
			before := testcluster.Scrape(t, n.Server().MetricsAddr())
			cl := newClient(t, n, kgo.ClientID(tc.client), kgo.MaxVersions(kversion.V2_8_0())) // Fetch by topic name
			var throttle int32
			for i := 0; i < 20 && throttle == 0; i++ {
				throttle = tc.request(cl)
			}
			if throttle <= 0 {
				t.Fatalf("client %s was not throttled", tc.client)
			}
			after := testcluster.Scrape(t, n.Server().MetricsAddr())
			label := []string{"quota", tc.quota}
			if d := after.Get("samsa_quota_throttled_requests_total", label...) - before.Get("samsa_quota_throttled_requests_total", label...); d < 1 {
				t.Errorf("samsa_quota_throttled_requests_total{quota=%s} moved by %v, want at least 1", tc.quota, d)
			}
			if d := after.Get("samsa_quota_throttle_time_ms_total", label...) - before.Get("samsa_quota_throttle_time_ms_total", label...); d <= 0 {
				t.Errorf("samsa_quota_throttle_time_ms_total{quota=%s} moved by %v, want > 0", tc.quota, d)
			}
		})
	}
}
