package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

// testTimeout bounds every blocking call in these tests; it is a deadline, not an assertion.
const testTimeout = 30 * time.Second

func testConfig(t *testing.T, dir string) Config {
	return Config{
		NodeID:    1,
		Dir:       dir,
		BindAddr:  "127.0.0.1:0",
		Bootstrap: true,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		// The brokers these tests register are fictitious: their listeners refuse.
		BrokerGone: func(metadata.Broker) bool { return false },
	}
}

// startController starts a controller in dir and closes it when the test ends.
func startController(t *testing.T, cfg Config) *Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func registerBrokers(t *testing.T, c *Controller, ids ...int32) {
	t.Helper()
	for _, id := range ids {
		b := metadata.Broker{ID: id, Rack: fmt.Sprintf("rack%d", id), Endpoints: []metadata.Endpoint{
			{Listener: "PLAINTEXT", Host: "localhost", Port: 9000 + id, SecurityProtocol: "PLAINTEXT"},
		}}
		if _, err := c.RegisterAndUnfence(testCtx(t), b); err != nil {
			t.Fatalf("RegisterAndUnfence(%d): %v", id, err)
		}
	}
}

func TestStartBootstrapsCluster(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	img := c.Image()
	if len(img.ClusterID) != 22 {
		t.Errorf("cluster ID %q: want 22 characters", img.ClusterID)
	}
	if _, err := metadata.ParseUUID(img.ClusterID); err != nil {
		t.Errorf("cluster ID is not a UUID: %v", err)
	}
	if img.Index == 0 {
		t.Errorf("image index is 0 after bootstrap")
	}
	if !c.IsLeader() || c.NodeID() != 1 {
		t.Errorf("IsLeader %v, NodeID %d", c.IsLeader(), c.NodeID())
	}
	if _, port, err := net.SplitHostPort(c.Addr()); err != nil || port == "0" {
		t.Errorf("Addr %q: want the real port", c.Addr())
	}
}

func TestStartConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no dir", func(c *Config) { c.Dir = "" }},
		{"no bind address", func(c *Config) { c.BindAddr = "" }},
		{"negative node", func(c *Config) { c.NodeID = -1 }},
		{"bad bind address", func(c *Config) { c.BindAddr = "256.0.0.1:x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			tt.edit(&cfg)
			if c, err := Start(testCtx(t), cfg); err == nil {
				c.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestStartWithoutBootstrapWaitsForContext(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap = false
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := Start(ctx, cfg)
	if err == nil {
		c.Close()
		t.Fatal("Start without state or bootstrap succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// populate makes a controller's image non-trivial.
func populate(t *testing.T, c *Controller) {
	t.Helper()
	ctx := testCtx(t)
	registerBrokers(t, c, 1, 2, 3)
	res := c.CreateTopics(ctx, []CreateTopic{
		{Name: "orders", NumPartitions: 6, ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "1000"}},
		{Name: "events", NumPartitions: -1, ReplicationFactor: -1},
		{Name: "manual", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {3, 1}, 1: {2, 3}}},
		{Name: "doomed", NumPartitions: 1, ReplicationFactor: 1},
	}, false)
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Name, r.Err)
		}
	}
	if err := c.CreatePartitions(ctx, "events", 4, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterConfigs(ctx, metadata.ResourceTopic, "events", map[string]string{"cleanup.policy": "compact"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterConfigs(ctx, metadata.ResourceBroker, "", map[string]string{"log.retention.hours": "1"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterConfigs(ctx, metadata.ResourceBroker, "2", map[string]string{"x": "y"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if del := c.DeleteTopics(ctx, []string{"doomed"}, nil); del[0].Err != nil {
		t.Fatal(del[0].Err)
	}
	if _, err := c.AllocateProducerIDs(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	alice := "alice"
	for _, r := range c.AlterClientQuotas(ctx, []QuotaAlteration{
		{Entity: []metadata.QuotaEntityData{{EntityType: metadata.QuotaEntityUser, EntityName: &alice}},
			Ops: []QuotaOp{{Key: quota.ProducerByteRate, Value: 1024}}},
		{Entity: []metadata.QuotaEntityData{{EntityType: metadata.QuotaEntityClientID}},
			Ops: []QuotaOp{{Key: quota.RequestPercentage, Value: 50}}},
	}, false) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func TestRestartRestoresState(t *testing.T) {
	tests := []struct {
		name     string
		snapshot bool
	}{
		{"log replay", false},
		{"snapshot", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			c, err := Start(testCtx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			populate(t, c)
			if tt.snapshot {
				if err := c.raft.Snapshot().Error(); err != nil {
					t.Fatalf("snapshot: %v", err)
				}
				// Entries after the snapshot must be replayed on top of it.
				registerBrokers(t, c, 4)
			}
			before := c.Image()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}

			c2 := startController(t, cfg)
			after := c2.Image()
			if !metadata.Equal(before, after) {
				b, _ := metadata.EncodeImage(before)
				a, _ := metadata.EncodeImage(after)
				t.Fatalf("restart changed the image:\nbefore %s\nafter  %s", b, a)
			}
			if after.Index < before.Index {
				t.Errorf("index went back from %d to %d", before.Index, after.Index)
			}
			orders, _ := after.Topic("orders")
			if orig, _ := before.Topic("orders"); orders.ID != orig.ID {
				t.Errorf("topic ID changed across restart")
			}
			// The restarted controller keeps serving, and producer IDs stay monotonic.
			first, err := c2.AllocateProducerIDs(testCtx(t), 10)
			if err != nil || first != before.NextProducerID {
				t.Errorf("AllocateProducerIDs after restart = %d, %v; want %d", first, err, before.NextProducerID)
			}
			if res := c2.CreateTopics(testCtx(t), []CreateTopic{{Name: "orders", NumPartitions: 1, ReplicationFactor: 1}}, false); !errors.Is(res[0].Err, kerr.TopicAlreadyExists) {
				t.Errorf("re-create after restart: %v", res[0].Err)
			}
		})
	}
}

func TestAllocateProducerIDs(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	ctx := testCtx(t)
	var next int64
	for _, n := range []int{1000, 1, 50} {
		first, err := c.AllocateProducerIDs(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if first != next {
			t.Fatalf("block starts at %d, want %d", first, next)
		}
		next += int64(n)
	}
	if got := c.Image().NextProducerID; got != next {
		t.Errorf("NextProducerID %d, want %d", got, next)
	}
	for _, n := range []int{0, -1} {
		if _, err := c.AllocateProducerIDs(ctx, n); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("AllocateProducerIDs(%d) err = %v", n, err)
		}
	}
}

func TestRegisterBroker(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	registerBrokers(t, c, 2, 1)
	if _, err := c.BrokerHeartbeat(testCtx(t), HeartbeatRequest{BrokerID: 1, BrokerEpoch: c.Image().Brokers[1].Epoch, WantFence: true}); err != nil {
		t.Fatal(err)
	}
	b := metadata.Broker{ID: 1, IncarnationID: metadata.UUID{7}}
	if _, err := c.RegisterBroker(testCtx(t), b); err != nil {
		t.Fatal(err)
	}
	img := c.Image()
	if got := img.BrokerIDs(); len(got) != 2 || img.Brokers[1].IncarnationID != b.IncarnationID {
		t.Errorf("brokers %+v", img.Brokers)
	}
	if _, err := c.RegisterBroker(testCtx(t), metadata.Broker{ID: -5}); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("negative ID err = %v", err)
	}
}

func TestConcurrentCreateSameName(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	registerBrokers(t, c, 1)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			res := c.CreateTopics(testCtx(t), []CreateTopic{{Name: "contended", NumPartitions: 2, ReplicationFactor: 1}}, false)
			errs[i] = res[0].Err
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, kerr.TopicAlreadyExists):
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d creates succeeded, want exactly 1", ok)
	}
}

func TestOnPublish(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	type change struct{ old, new *metadata.Image }
	ch := make(chan change, 16)
	unregister := c.OnPublish(func(old, new *metadata.Image) { ch <- change{old, new} })
	next := func() change {
		t.Helper()
		select {
		case ch := <-ch:
			return ch
		case <-time.After(testTimeout):
			t.Fatal("no publish")
			return change{}
		}
	}
	first := next()
	if first.old != nil || first.new != c.Image() {
		t.Fatalf("first call = (%p, %p), want (nil, current %p)", first.old, first.new, c.Image())
	}
	registerBrokers(t, c, 1) // two proposals: the registration (fenced), then the unfencing heartbeat
	registered := next()
	if registered.old != first.new || registered.new.Brokers[1].ID != 1 || !registered.new.Brokers[1].Fenced {
		t.Fatalf("publish after register: old %p (want %p), brokers %v", registered.old, first.new, registered.new.Brokers)
	}
	got := next()
	if got.old != registered.new || got.new.Brokers[1].Fenced {
		t.Fatalf("publish after heartbeat: brokers %v", got.new.Brokers)
	}
	res := c.CreateTopics(testCtx(t), []CreateTopic{{Name: "t", NumPartitions: 1, ReplicationFactor: 1}}, false)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	got2 := next()
	if got2.old != got.new {
		t.Errorf("publishes are not chained")
	}
	if _, ok := got2.new.Topic("t"); !ok || got2.new != c.Image() {
		t.Errorf("published image lacks the topic or is not current")
	}
	unregister()
	// A second callback registered after unregister sees later changes; the first sees none.
	ch2 := make(chan *metadata.Image, 4)
	c.OnPublish(func(_, new *metadata.Image) { ch2 <- new })
	<-ch2
	registerBrokers(t, c, 2)
	select {
	case img := <-ch2:
		if _, ok := img.Brokers[2]; !ok {
			t.Errorf("second callback saw %v", img.Brokers)
		}
	case <-time.After(testTimeout):
		t.Fatal("no publish to second callback")
	}
	select {
	case got := <-ch:
		t.Errorf("unregistered callback called with %+v", got)
	default:
	}
}

func TestOperationsAfterClose(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	registerBrokers(t, c, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	errs := map[string]error{
		"CreateTopics":        c.CreateTopics(ctx, []CreateTopic{{Name: "x", NumPartitions: 1, ReplicationFactor: 1}}, false)[0].Err,
		"DeleteTopics":        c.DeleteTopics(ctx, []string{"x"}, nil)[0].Err,
		"CreatePartitions":    c.CreatePartitions(ctx, "x", 2, nil, false),
		"AlterConfigs":        c.AlterConfigs(ctx, metadata.ResourceBroker, "", map[string]string{"a": "b"}, nil, false),
		"RegisterBroker":      func() error { _, err := c.RegisterBroker(ctx, metadata.Broker{ID: 1}); return err }(),
		"AllocateProducerIDs": func() error { _, err := c.AllocateProducerIDs(ctx, 1); return err }(),
	}
	for op, err := range errs {
		if !errors.Is(err, kerr.NotController) || ErrorCode(err) != kerr.NotController.Code {
			t.Errorf("%s after Close: %v", op, err)
		}
	}
	if c.Image() == nil {
		t.Error("Image is nil after Close")
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want int16
	}{
		{nil, 0},
		{kerr.InvalidPartitions, kerr.InvalidPartitions.Code},
		{fmt.Errorf("wrapped: %w", kerr.TopicAlreadyExists), kerr.TopicAlreadyExists.Code},
		{errors.New("plain"), -1},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestHCLogAdapter(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
	a := newHCLogAdapter(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft")
	a.Info("chatty")
	a.Debug("chattier")
	a.Named("snap").With("k", "v").Warn("careful", "n", 1)
	a.Error("broken")
	a.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
	a.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "h:1", "last-leader-id", "7")
	a.StandardLogger(nil).Print("[WARN] from std")
	a.StandardLogger(nil).Print("[INFO] dropped")
	out := buf.String()
	for _, want := range []string{"careful", "component=raft.snap", "k=v", "n=1", "broken", "from std", "last-leader-id=7"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"chatty", "chattier", "dropped", `last-leader-id=""`} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
