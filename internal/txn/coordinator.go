package txn

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/replica"
)

// TopicName is the internal topic holding the coordinator's state.
const TopicName = "__transaction_state"

// MarkerSender sends a WriteTxnMarkers entry for partitions to their leaders and returns
// each partition's answer (nil: the marker is written). A partition missing from the answer
// counts as failed and is retried.
type MarkerSender func(ctx context.Context, req MarkerRequest, partitions []TopicPartition) map[TopicPartition]error

// CoordinatorConfig configures a Coordinator (the runtime of the shards).
type CoordinatorConfig struct {
	// NodeID is this broker's id: it coordinates the partitions of TopicName it leads.
	NodeID   int32
	Settings Settings
	// ReplicationFactor is the replication factor the topic is created with.
	ReplicationFactor int16
	ProducerIDs       ProducerIDs
	// CreateTopic creates TopicName and returns once this broker hosts it; an existing
	// topic is not an error.
	CreateTopic func(ctx context.Context, numPartitions int32, replicationFactor int16, configs map[string]string) error
	SendMarkers MarkerSender
	Logger      *slog.Logger
	// Now is the clock (tests inject one); defaults to time.Now.
	Now func() time.Time
	// RetryBackoff is the wait between retries of markers and completion records; default
	// 100 ms.
	RetryBackoff time.Duration
}

// Coordinator runs the shards of the TopicName partitions this broker leads: loading them
// on leadership, one lock per shard, the appends of their writes (acks=all), the markers and
// the periodic tasks (AbortTimedOut, ExpireTransactionalIDs).
type Coordinator struct {
	cfg           CoordinatorConfig
	log           *slog.Logger
	numPartitions atomic.Int32
	createMu      sync.Mutex
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup

	mu struct {
		sync.Mutex
		parts   map[int32]*coordPartition
		changed chan struct{}
		closed  bool
	}
}

// coordPartition is one loaded (or loading) partition; mu serializes its shard.
type coordPartition struct {
	index  int32
	epoch  int32
	log    group.Log
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	// shard is nil while loading and after a failed load.
	shard  *Shard
	failed bool
}

// NewCoordinator returns a coordinator that coordinates nothing until partitions are loaded.
func NewCoordinator(cfg CoordinatorConfig) *Coordinator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.numPartitions.Store(max(cfg.Settings.StateLogNumPartitions, 1))
	c.mu.parts = make(map[int32]*coordPartition)
	c.mu.changed = make(chan struct{})
	return c
}

// SetSettings replaces the settings of shards loaded from now on (the transaction version
// and the __consumer_offsets partition count follow the metadata image).
func (c *Coordinator) SetSettings(s Settings) {
	c.mu.Lock()
	c.cfg.Settings = s
	c.mu.Unlock()
}

// PartitionFor returns the partition of a transactional id.
func (c *Coordinator) PartitionFor(transactionalID string) int32 {
	return PartitionFor(transactionalID, c.numPartitions.Load())
}

// ApplyImage loads the partitions of TopicName this broker leads and hosts, and unloads the
// others.
func (c *Coordinator) ApplyImage(img *metadata.Image, hosted func(topic string, partition int32) *replica.Partition) {
	want := map[int32]*replica.Partition{}
	epochs := map[int32]int32{}
	if t, ok := img.Topic(TopicName); ok {
		c.numPartitions.Store(int32(max(len(t.Partitions), 1)))
		for _, p := range t.Partitions {
			if p.Leader != c.cfg.NodeID {
				continue
			}
			if rp := hosted(TopicName, p.Partition); rp != nil {
				want[p.Partition], epochs[p.Partition] = rp, p.LeaderEpoch
			}
		}
	}
	c.mu.Lock()
	loaded := slices.Collect(maps.Keys(c.mu.parts))
	c.mu.Unlock()
	for _, p := range loaded {
		if _, ok := want[p]; !ok {
			c.Unload(p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		c.Load(p, group.NewReplicaLog(want[p]), epochs[p])
	}
}

// Load makes this broker the coordinator of partition p at epoch (the leader epoch, the
// markers' coordinator epoch): a goroutine replays the log into a new shard. Loading the same
// log at the same epoch again does nothing.
func (c *Coordinator) Load(p int32, log group.Log, epoch int32) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	if cur := c.mu.parts[p]; cur != nil {
		if cur.log == log && cur.epoch == epoch {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.Unload(p)
		c.mu.Lock()
	}
	part := &coordPartition{index: p, epoch: epoch, log: log}
	part.ctx, part.cancel = context.WithCancel(c.ctx)
	c.mu.parts[p] = part
	c.notifyLocked()
	set := c.cfg.Settings
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		c.load(part, set)
	}()
}

func (c *Coordinator) notifyLocked() {
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

// load replays the partition, finishes the load (resuming the markers of prepared
// transactions) and starts the partition's timers.
func (c *Coordinator) load(part *coordPartition, set Settings) {
	logger := c.log.With("partition", part.index)
	shard := NewShard(part.index, part.epoch, set, c.cfg.ProducerIDs)
	n, err := group.ReplayLog(part.ctx, part.log, TopicName, shard.Replay, logger)
	part.mu.Lock()
	if part.ctx.Err() != nil {
		part.mu.Unlock()
		return
	}
	if err != nil {
		part.failed = true
		part.mu.Unlock()
		logger.Error("loading transaction coordinator partition", "err", err)
	} else {
		part.shard = shard
		c.follow(part, shard, shard.FinishLoad(c.cfg.Now()))
		part.mu.Unlock()
		logger.Info("loaded transaction coordinator partition", "records", n, "epoch", part.epoch)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.runTimers(part, set)
		}()
	}
	c.mu.Lock()
	c.notifyLocked()
	c.mu.Unlock()
}

// Unload gives up partition p: its shard is dropped, its markers and timers stop.
func (c *Coordinator) Unload(p int32) {
	c.mu.Lock()
	part := c.mu.parts[p]
	if part == nil {
		c.mu.Unlock()
		return
	}
	delete(c.mu.parts, p)
	c.notifyLocked()
	c.mu.Unlock()
	part.cancel()
	part.mu.Lock()
	part.shard = nil
	part.mu.Unlock()
	c.log.Info("unloaded transaction coordinator partition", "partition", p)
}

// Close unloads every partition and waits for the coordinator's goroutines.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.mu.closed = true
	parts := slices.Collect(maps.Keys(c.mu.parts))
	c.mu.Unlock()
	for _, p := range parts {
		c.Unload(p)
	}
	c.cancel()
	c.wg.Wait()
}

// runTimers runs the periodic tasks of a loaded partition until it unloads.
func (c *Coordinator) runTimers(part *coordPartition, set Settings) {
	abort := time.NewTicker(max(set.AbortTimedOutInterval, time.Millisecond))
	defer abort.Stop()
	expire := time.NewTicker(max(set.RemoveExpiredInterval, time.Millisecond))
	defer expire.Stop()
	for {
		select {
		case <-part.ctx.Done():
			return
		case <-abort.C:
			c.abortTimedOut(part)
		case <-expire.C:
			c.expire(part)
		}
	}
}

func (c *Coordinator) abortTimedOut(part *coordPartition) {
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.shard != nil {
		var out Outcome
		out.Writes = part.shard.AbortTimedOut(c.cfg.Now())
		c.follow(part, part.shard, out)
	}
}

func (c *Coordinator) expire(part *coordPartition) {
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.shard != nil {
		if w := part.shard.ExpireTransactionalIDs(c.cfg.Now()); w != nil {
			c.follow(part, part.shard, Outcome{Writes: []*Write{w}})
		}
	}
}

// RunTasks runs AbortTimedOut and ExpireTransactionalIDs on every loaded partition now, at
// the configured clock's time (tests; the timers call the same).
func (c *Coordinator) RunTasks() {
	for _, part := range c.partitions() {
		c.abortTimedOut(part)
		c.expire(part)
	}
}

func (c *Coordinator) partitions() []*coordPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*coordPartition, 0, len(c.mu.parts))
	for _, p := range slices.Sorted(maps.Keys(c.mu.parts)) {
		out = append(out, c.mu.parts[p])
	}
	return out
}

// appendWrite appends w's records as one batch (acks=all) and applies the result. It runs
// with part.mu held.
func (c *Coordinator) appendWrite(part *coordPartition, shard *Shard, w *Write) Outcome {
	recs := make([]group.Record, len(w.Records))
	for i, r := range w.Records {
		recs[i] = group.Record{Key: r.Key, Value: r.Value}
	}
	now := c.cfg.Now()
	err := part.log.AppendAsLeader(group.BuildBatch(recs, now.UnixMilli()))
	return shard.Appended(now, w, err)
}

// follow carries out an Outcome's actions: further writes are appended (a failed completion
// record is retried after a backoff, from a goroutine), markers are sent by a goroutine per
// MarkerRequest. It runs with part.mu held.
func (c *Coordinator) follow(part *coordPartition, shard *Shard, out Outcome) {
	writes := out.Writes
	markers := out.Markers
	for len(writes) > 0 {
		w := writes[0]
		writes = writes[1:]
		o := c.appendWrite(part, shard, w)
		markers = append(markers, o.Markers...)
		for _, next := range o.Writes {
			if next == w { // a retry of the same record: later
				c.retryWrite(part, shard, w)
				continue
			}
			writes = append(writes, next)
		}
	}
	for _, m := range markers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.sendMarkers(part, shard, m)
		}()
	}
}

// retryWrite appends w again after a backoff, unless the partition unloads meanwhile.
func (c *Coordinator) retryWrite(part *coordPartition, shard *Shard, w *Write) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-part.ctx.Done():
			return
		case <-time.After(c.cfg.RetryBackoff):
		}
		part.mu.Lock()
		defer part.mu.Unlock()
		if part.shard == shard {
			c.follow(part, shard, Outcome{Writes: []*Write{w}})
		}
	}()
}

// sendMarkers sends req's markers until every partition answered or the partition unloads,
// reporting each answer to the shard (MarkerWritten), whose completion record it appends.
func (c *Coordinator) sendMarkers(part *coordPartition, shard *Shard, req MarkerRequest) {
	pending := slices.Clone(req.Partitions)
	backoff := c.cfg.RetryBackoff
	for len(pending) > 0 {
		if part.ctx.Err() != nil {
			return
		}
		var answers map[TopicPartition]error
		if c.cfg.SendMarkers != nil {
			answers = c.cfg.SendMarkers(part.ctx, req, pending)
		}
		var retry []TopicPartition
		part.mu.Lock()
		if part.shard != shard {
			part.mu.Unlock()
			return
		}
		for _, tp := range pending {
			err, ok := answers[tp]
			if !ok {
				err = kerr.RequestTimedOut
			}
			o := shard.MarkerWritten(req, tp, err)
			if o.Retry {
				retry = append(retry, tp)
			}
			c.follow(part, shard, Outcome{Writes: o.Writes})
		}
		part.mu.Unlock()
		pending = retry
		if len(pending) > 0 {
			select {
			case <-part.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// Errors of a request that the shards cannot take.
var (
	errNotCoordinator = kerr.NotCoordinator
	errLoading        = kerr.CoordinatorLoadInProgress
	errNotAvailable   = kerr.CoordinatorNotAvailable
)

// Do runs op on the shard of transactionalID under its lock and, when op returns a Write,
// appends it and returns the Outcome; otherwise the Result as an Outcome. NOT_COORDINATOR
// when this broker does not lead the id's partition, COORDINATOR_LOAD_IN_PROGRESS while it
// loads.
func (c *Coordinator) Do(transactionalID string, op func(s *Shard, now time.Time) Result) Outcome {
	part, err := c.lookup(c.PartitionFor(transactionalID))
	if err != nil {
		return Outcome{Err: err, ProducerID: noProducerID, ProducerEpoch: noProducerEpoch}
	}
	defer part.mu.Unlock()
	shard := part.shard
	res := op(shard, c.cfg.Now())
	if res.Write == nil {
		return Outcome{Err: res.Err, ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch}
	}
	out := c.appendWrite(part, shard, res.Write)
	c.follow(part, shard, Outcome{Markers: out.Markers, Writes: out.Writes})
	return Outcome{Err: out.Err, ProducerID: out.ProducerID, ProducerEpoch: out.ProducerEpoch}
}

// Read runs fn on the shard of transactionalID under its lock (no write).
func (c *Coordinator) Read(transactionalID string, fn func(s *Shard)) error {
	part, err := c.lookup(c.PartitionFor(transactionalID))
	if err != nil {
		return err
	}
	defer part.mu.Unlock()
	fn(part.shard)
	return nil
}

// lookup returns partition p with its lock held and its shard loaded, or why not.
func (c *Coordinator) lookup(p int32) (*coordPartition, error) {
	c.mu.Lock()
	part := c.mu.parts[p]
	c.mu.Unlock()
	if part == nil {
		return nil, errNotCoordinator
	}
	part.mu.Lock()
	switch {
	case part.shard != nil:
		return part, nil
	case part.failed:
		part.mu.Unlock()
		return nil, errNotAvailable
	case part.ctx.Err() != nil:
		part.mu.Unlock()
		return nil, errNotCoordinator
	}
	part.mu.Unlock()
	return nil, errLoading
}

// Each runs fn on every loaded shard under its lock (ListTransactions); loading is true when
// some partition is still loading.
func (c *Coordinator) Each(fn func(s *Shard)) (loading bool) {
	for _, part := range c.partitions() {
		part.mu.Lock()
		if part.shard != nil {
			fn(part.shard)
		} else if !part.failed {
			loading = true
		}
		part.mu.Unlock()
	}
	return loading
}

// EnsureTopic creates TopicName (lazily, on the first FindCoordinator of a transaction).
func (c *Coordinator) EnsureTopic(ctx context.Context) error {
	c.createMu.Lock()
	defer c.createMu.Unlock()
	if c.cfg.CreateTopic == nil {
		return errNotAvailable
	}
	c.mu.Lock()
	set := c.cfg.Settings
	c.mu.Unlock()
	if err := c.cfg.CreateTopic(ctx, set.StateLogNumPartitions, c.cfg.ReplicationFactor, set.TopicConfigs()); err != nil {
		return fmt.Errorf("creating %s: %w", TopicName, err)
	}
	return nil
}

// WaitLoaded waits until partition p is loaded here (or failed, or ctx ends).
func (c *Coordinator) WaitLoaded(ctx context.Context, p int32) error {
	for {
		c.mu.Lock()
		part := c.mu.parts[p]
		changed := c.mu.changed
		closed := c.mu.closed
		c.mu.Unlock()
		if closed {
			return errNotCoordinator
		}
		if part != nil {
			part.mu.Lock()
			done := part.shard != nil || part.failed
			part.mu.Unlock()
			if done {
				return nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
