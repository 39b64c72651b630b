package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/broker"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/storage"
)

// Replicated is an in-process cluster of brokers that share a hand-made metadata image, for
// testing the replication data path without the controller quorum: a fake controller serves
// the image, and a fake PartitionStateSender applies ISR changes to it and publishes the new
// image to every node, as the active controller would. Tests change leadership and configs
// with Update.
type Replicated struct {
	t        testing.TB
	settings []string
	logger   *slog.Logger

	// mu serializes image changes and their publication; img is read without it (handlers
	// and log-config lookups read the image while an update is being applied).
	mu    sync.Mutex
	img   atomic.Pointer[metadata.Image]
	Nodes map[int32]*ReplicatedNode
	// ISRChanges counts the AlterPartition calls the cluster accepted.
	ISRChanges int
}

// ReplicatedNode is one broker of a Replicated cluster.
type ReplicatedNode struct {
	ID       int32
	Dir      string
	c        *Replicated
	port     int
	Broker   *broker.Broker
	Replicas *replica.Manager
	cancel   context.CancelFunc
	done     chan struct{}
	running  bool
}

// StartReplicated starts n brokers (ids 1..n) on loopback ports with the given broker settings
// (key=value, e.g. replica.lag.time.max.ms=1000) and an image holding the brokers and no
// topic; add topics with Update.
func StartReplicated(t testing.TB, n int, settings ...string) *Replicated {
	t.Helper()
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if os.Getenv("SAMSA_TEST_LOG") == "1" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	c := &Replicated{t: t, settings: settings, logger: slog.New(h), Nodes: map[int32]*ReplicatedNode{}}
	c.img.Store(&metadata.Image{Index: 1, ClusterID: "replicated-test", Brokers: map[int32]metadata.Broker{},
		Topics: map[string]*metadata.Topic{}, TopicsByID: map[metadata.UUID]*metadata.Topic{}})
	for id := int32(1); id <= int32(n); id++ {
		node := &ReplicatedNode{ID: id, Dir: t.TempDir(), c: c}
		c.Nodes[id] = node
		node.Start()
	}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			node.Stop()
		}
	})
	return c
}

// Image returns the shared image.
func (c *Replicated) Image() *metadata.Image { return c.img.Load() }

// Update changes a copy of the shared image (topics are deep-copied first) and publishes it to
// every running node.
func (c *Replicated) Update(fn func(img *metadata.Image)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updateLocked(fn)
}

func (c *Replicated) updateLocked(fn func(img *metadata.Image)) {
	cur := c.img.Load()
	next := *cur
	next.Index++
	next.Brokers = maps.Clone(cur.Brokers)
	next.Topics = make(map[string]*metadata.Topic, len(cur.Topics))
	next.TopicsByID = make(map[metadata.UUID]*metadata.Topic, len(cur.Topics))
	for name, t := range cur.Topics {
		ct := *t
		ct.Configs = maps.Clone(t.Configs)
		ct.Partitions = slices.Clone(t.Partitions)
		for i := range ct.Partitions {
			ct.Partitions[i].Replicas = slices.Clone(ct.Partitions[i].Replicas)
			ct.Partitions[i].ISR = slices.Clone(ct.Partitions[i].ISR)
		}
		next.Topics[name] = &ct
	}
	fn(&next)
	for _, t := range next.Topics {
		next.TopicsByID[t.ID] = t
	}
	c.img.Store(&next)
	for _, id := range slices.Sorted(maps.Keys(c.Nodes)) {
		if n := c.Nodes[id]; n.running {
			if err := n.Replicas.Apply(&next); err != nil {
				c.t.Errorf("node %d applying image: %v", id, err)
			}
			n.Broker.MetadataApplied(&next)
		}
	}
}

// AlterPartition is the controller's side of an ISR change: checked against the shared image
// (leader epoch, partition epoch), applied with the partition epoch bumped, and published.
func (c *Replicated) AlterPartition(_ context.Context, req replica.AlterPartitionRequest) (replica.AlterPartitionResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.img.Load().Topics[req.Topic]
	if !ok || int(req.Partition) >= len(t.Partitions) {
		return replica.AlterPartitionResult{ErrorCode: 3}, nil // UNKNOWN_TOPIC_OR_PARTITION
	}
	mp := t.Partitions[req.Partition]
	switch {
	case req.LeaderEpoch != mp.LeaderEpoch || req.LeaderID != mp.Leader:
		return replica.AlterPartitionResult{ErrorCode: 74}, nil // FENCED_LEADER_EPOCH
	case req.PartitionEpoch != mp.PartitionEpoch:
		return replica.AlterPartitionResult{ErrorCode: 95}, nil // INVALID_UPDATE_VERSION
	}
	var res replica.AlterPartitionResult
	c.updateLocked(func(img *metadata.Image) {
		p := &img.Topics[req.Topic].Partitions[req.Partition]
		p.ISR = slices.Clone(req.NewISR)
		p.PartitionEpoch++
		res = replica.AlterPartitionResult{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: slices.Clone(p.ISR)}
	})
	c.ISRChanges++
	return res, nil
}

// Start starts (or restarts, on the same directory and port) the node's broker and replica
// manager, and publishes its endpoint in the shared image.
func (n *ReplicatedNode) Start() {
	c := n.c
	c.t.Helper()
	props := map[string]string{
		"node.id":   strconv.Itoa(int(n.ID)),
		"listeners": fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:0", n.port),
		"log.dirs":  n.Dir,
	}
	for _, s := range c.settings {
		k, v, err := config.ParseOverride(s)
		if err != nil {
			c.t.Fatal(err)
		}
		props[k] = v
	}
	cfg, err := config.LoadServer(props)
	if err != nil {
		c.t.Fatal(err)
	}
	l := cfg.ClientListeners()[0]
	ln, err := net.Listen("tcp", l.Addr())
	if err != nil {
		c.t.Fatal(err)
	}
	n.port = ln.Addr().(*net.TCPAddr).Port
	l.Port = n.port
	ms := func(key string) time.Duration { return time.Duration(cfg.Int64(key)) * time.Millisecond }
	var b *broker.Broker
	n.Replicas = replica.NewManager(replica.Config{
		Dir:                             n.Dir,
		NodeID:                          n.ID,
		Logger:                          c.logger.With("node", n.ID),
		LogConfig:                       func(m map[string]string) storage.LogConfig { return b.LogConfig(m) },
		RetentionCheckInterval:          time.Hour,
		FlushCheckInterval:              time.Hour,
		InterBrokerListener:             l.Name,
		AlterPartition:                  c,
		ReplicaLagTime:                  ms("replica.lag.time.max.ms"),
		ReplicaFetchWaitMax:             ms("replica.fetch.wait.max.ms"),
		ReplicaFetchBackoff:             ms("replica.fetch.backoff.ms"),
		HighWatermarkCheckpointInterval: ms("replica.high.watermark.checkpoint.interval.ms"),
	})
	b = broker.New(cfg, fakeController{c}, n.Replicas, c.logger.With("node", n.ID))
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		n.Replicas.Run(ctx)
	}()
	n.Broker = b
	b.Serve(ln, l)
	c.mu.Lock()
	n.running = true
	c.updateLocked(func(img *metadata.Image) {
		img.Brokers[n.ID] = metadata.Broker{ID: n.ID, Endpoints: []metadata.Endpoint{{Listener: l.Name, Host: "127.0.0.1", Port: int32(n.port), SecurityProtocol: "PLAINTEXT"}}}
	})
	c.mu.Unlock()
}

// Addr returns the node's client address.
func (n *ReplicatedNode) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// Stop closes the node's broker and replica manager (idempotent); its directory stays.
func (n *ReplicatedNode) Stop() {
	n.c.mu.Lock()
	running := n.running
	n.running = false
	n.c.mu.Unlock()
	if !running {
		return
	}
	n.Broker.Close()
	n.cancel()
	<-n.done
	if err := n.Replicas.Close(); err != nil {
		n.c.t.Errorf("node %d: closing replicas: %v", n.ID, err)
	}
}

// fakeController serves the shared image; operations that change metadata are refused.
type fakeController struct{ c *Replicated }

var errFake = errors.New("testcluster: the replicated cluster's image is changed with Update")

func (f fakeController) Image() *metadata.Image { return f.c.Image() }
func (f fakeController) CreateTopics(_ context.Context, reqs []controller.CreateTopic, _ bool) []controller.TopicResult {
	out := make([]controller.TopicResult, len(reqs))
	for i, r := range reqs {
		out[i] = controller.TopicResult{Name: r.Name, Err: errFake}
	}
	return out
}
func (f fakeController) DeleteTopics(context.Context, []string, [][16]byte) []controller.DeleteResult {
	return nil
}
func (f fakeController) CreatePartitions(context.Context, string, int32, [][]int32, bool) error {
	return errFake
}
func (f fakeController) AlterConfigs(context.Context, int8, string, map[string]string, []string, bool) error {
	return errFake
}
func (f fakeController) UpdateFeatures(context.Context, []controller.FeatureUpdate, bool) error {
	return errFake
}
func (f fakeController) AllocateProducerIDs(context.Context, int) (int64, error) {
	return 0, errFake
}

func (f fakeController) AlterUserScramCredentials(_ context.Context, dels []controller.ScramDeletion, ups []controller.ScramUpsertion) []controller.ScramResult {
	var out []controller.ScramResult
	for _, d := range dels {
		out = append(out, controller.ScramResult{User: d.Name, Err: errFake})
	}
	for _, u := range ups {
		out = append(out, controller.ScramResult{User: u.Name, Err: errFake})
	}
	return out
}

func (f fakeController) CreateAcls(_ context.Context, bindings []acl.Binding) []error {
	out := make([]error, len(bindings))
	for i := range out {
		out[i] = errFake
	}
	return out
}

func (f fakeController) CreateDelegationToken(context.Context, controller.TokenCreation) (metadata.DelegationToken, error) {
	return metadata.DelegationToken{}, errFake
}

func (f fakeController) RenewDelegationToken(context.Context, []byte, string, int64) (int64, error) {
	return 0, errFake
}

func (f fakeController) ExpireDelegationToken(context.Context, []byte, string, int64) (int64, error) {
	return 0, errFake
}

func (f fakeController) AlterClientQuotas(_ context.Context, alts []controller.QuotaAlteration, _ bool) []controller.QuotaResult {
	out := controller.QuotaResultsFor(alts)
	for i := range out {
		out[i].Err = errFake
	}
	return out
}

func (f fakeController) DeleteAcls(_ context.Context, filters []acl.Filter) []controller.ACLDeleteResult {
	out := make([]controller.ACLDeleteResult, len(filters))
	for i := range out {
		out[i].Err = errFake
	}
	return out
}
