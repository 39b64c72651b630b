package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/group/consumer"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/replica"
)

// Log is the part of a hosted __consumer_offsets partition the coordinator uses.
type Log interface {
	// AppendAsLeader appends record batches as the partition's leader, returning once they
	// are replicated to the ISR.
	AppendAsLeader(batches []byte) error
	// Read returns whole batches starting with the one holding offset, below ReplayEnd.
	Read(offset int64, maxBytes int) ([]byte, error)
	LogStartOffset() int64
	// ReplayEnd is the offset a load replays to: the log end offset. A broker that just
	// became the partition's leader may have a high watermark below records its predecessor
	// had acknowledged (a follower learns the high watermark one fetch late); everything in a
	// leader's log is to be committed, since followers truncate to the leader, so a load
	// reads all of it, as Kafka's coordinator loader does.
	ReplayEnd() int64
}

// replicaLog adapts a hosted partition.
type replicaLog struct{ p *replica.Partition }

// NewReplicaLog adapts a hosted partition to Log: appends wait for the ISR (acks=all), reads
// and replays go to the log end. The transaction coordinator (internal/txn) uses it too.
func NewReplicaLog(p *replica.Partition) Log { return replicaLog{p} }

func (l replicaLog) AppendAsLeader(b []byte) error {
	res, err := l.p.AppendAsLeader(b)
	if err != nil || !l.p.Replicated() {
		return err
	}
	// Acknowledge once the ISR has the records (Kafka's coordinator writes with acks=all), so
	// that a commit answered before the leader dies is on its successor. The wait holds the
	// partition's lock: groups of one __consumer_offsets partition wait for each other's
	// replication (a round trip to the followers, whose fetches are woken by the append).
	expired := make(chan struct{})
	timer := time.AfterFunc(commitReplicationTimeout, func() { close(expired) })
	defer timer.Stop()
	return l.p.WaitReplicated(context.Background(), res.LastOffset+1, 1, expired)
}

// commitReplicationTimeout bounds the wait for a coordinator write to reach the ISR, as
// Kafka's offsets.commit.timeout.ms (5 s) does.
const commitReplicationTimeout = 5 * time.Second

func (l replicaLog) Read(offset int64, maxBytes int) ([]byte, error) {
	return l.p.Log().Read(offset, maxBytes, l.p.Log().LogEndOffset(), true)
}
func (l replicaLog) LogStartOffset() int64 { return l.p.Log().LogStartOffset() }
func (l replicaLog) ReplayEnd() int64      { return l.p.Log().LogEndOffset() }

// Config configures a Coordinator.
type Config struct {
	// NodeID is this broker's id: it coordinates the partitions it leads.
	NodeID   int32
	Settings Settings
	// NumPartitions and ReplicationFactor are offsets.topic.num.partitions and
	// offsets.topic.replication.factor, used when the coordinator creates __consumer_offsets.
	NumPartitions     int32
	ReplicationFactor int16
	// SegmentBytes is offsets.topic.segment.bytes, the segment.bytes __consumer_offsets is
	// created with; 0 = Kafka's 100 MiB.
	SegmentBytes int64
	// CreateTopic creates __consumer_offsets with the given settings and returns once this
	// broker hosts it; an already existing topic is not an error.
	CreateTopic func(ctx context.Context, numPartitions int32, replicationFactor int16, configs map[string]string) error
	Logger      *slog.Logger
	// Clock defaults to the real clock.
	Clock Clock
	// NewMemberID returns the unique part of a new member id; defaults to a random UUID.
	NewMemberID func() string
}

// TopicConfigs are the configs __consumer_offsets is created with, as Kafka's: compacted
// only (retention never deletes its segments; the log cleaner keeps the latest record of
// each key, which is how committed offsets and group metadata stay bounded), with
// offsets.topic.segment.bytes (segmentBytes; 0 is Kafka's default, 100 MiB). Every record the
// coordinator writes has a key (the cleaner drops keyless records). Topics created by older
// Samsa versions also have retention.ms=-1, which compact-only ignores.
func TopicConfigs(segmentBytes int64) map[string]string {
	if segmentBytes <= 0 {
		segmentBytes = 104857600
	}
	return map[string]string{
		"cleanup.policy":   "compact",
		"compression.type": "producer",
		"segment.bytes":    strconv.FormatInt(segmentBytes, 10),
	}
}

// Coordinator runs the shards of the __consumer_offsets partitions this broker leads.
type Coordinator struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	// numPartitions is the partition count of __consumer_offsets (the image's, else the
	// configured one): it decides which partition a group hashes to.
	numPartitions atomic.Int32
	// consumerTopics is the topics of the latest image, for consumer groups (consumer_groups.go).
	consumerTopics atomic.Pointer[[]consumer.Topic]
	// createMu serializes creating the topic.
	createMu sync.Mutex
	ctx      context.Context
	cancel   context.CancelFunc
	loaders  sync.WaitGroup

	mu struct {
		sync.Mutex
		partitions map[int32]*partition
		// changed is closed and replaced whenever a partition is loaded or unloaded.
		changed chan struct{}
		closed  bool
	}
}

type partitionState uint8

const (
	partitionLoading partitionState = iota
	partitionActive
	partitionFailed
	partitionUnloaded
)

// partition is one coordinator partition: its log and, once loaded, its shard. mu serializes
// the shard's requests and timer callbacks.
type partition struct {
	index  int32
	log    Log
	epoch  int32
	clock  Clock
	cancel context.CancelFunc // stops the loader
	mu     struct {
		sync.Mutex
		state  partitionState
		shard  *Shard
		timers *clockTimers
		// markers are the transaction markers written while the partition loads.
		markers []txnMarker
	}
}

// NewCoordinator returns a coordinator that coordinates nothing until partitions are loaded.
func NewCoordinator(cfg Config) *Coordinator {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.NewMemberID == nil {
		cfg.NewMemberID = uuid.NewString
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, clock: cfg.Clock}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.numPartitions.Store(max(cfg.NumPartitions, 1))
	c.mu.partitions = make(map[int32]*partition)
	c.mu.changed = make(chan struct{})
	return c
}

func (c *Coordinator) notifyLocked() {
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

// PartitionFor returns the __consumer_offsets partition of a group.
func (c *Coordinator) PartitionFor(group string) int32 {
	return PartitionFor(group, c.numPartitions.Load())
}

// ApplyImage follows the metadata image: it loads the partitions of __consumer_offsets this
// broker leads (and hosts) and unloads the others. It is called after the replica manager has
// applied img.
func (c *Coordinator) ApplyImage(img *metadata.Image, hosted func(topic string, partition int32) *replica.Partition) {
	c.setConsumerTopics(img)
	want := map[int32]*replica.Partition{}
	epochs := map[int32]int32{}
	if t, ok := img.Topic(OffsetsTopic); ok {
		c.numPartitions.Store(int32(max(len(t.Partitions), 1)))
		for _, p := range t.Partitions {
			if p.Leader != c.cfg.NodeID {
				continue
			}
			if rp := hosted(OffsetsTopic, p.Partition); rp != nil {
				want[p.Partition] = rp
				epochs[p.Partition] = p.LeaderEpoch
			}
		}
	}
	c.mu.Lock()
	loaded := slices.Collect(maps.Keys(c.mu.partitions))
	c.mu.Unlock()
	for _, p := range loaded {
		if _, ok := want[p]; !ok {
			c.Unload(p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		c.Load(p, replicaLog{want[p]}, epochs[p])
	}
}

// Load makes this broker the coordinator of partition p: a loader replays the log into a new
// shard, during which the partition's groups get COORDINATOR_LOAD_IN_PROGRESS. Loading the
// same log at the same epoch again does nothing; another log or epoch reloads.
func (c *Coordinator) Load(p int32, log Log, epoch int32) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	if cur := c.mu.partitions[p]; cur != nil {
		if cur.log == log && cur.epoch == epoch {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.Unload(p)
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return
		}
	}
	ctx, cancel := context.WithCancel(c.ctx)
	part := &partition{index: p, log: log, epoch: epoch, clock: c.clock, cancel: cancel}
	part.mu.state = partitionLoading
	c.mu.partitions[p] = part
	c.notifyLocked()
	c.loaders.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.loaders.Done()
		c.load(ctx, part)
	}()
}

// load replays a partition into a new shard and makes it active.
func (c *Coordinator) load(ctx context.Context, part *partition) {
	logger := c.log.With("partition", part.index)
	timers := newClockTimers(c.clock, &part.mu.Mutex)
	shard := newShard(part.index, c.cfg.Settings, logger, timers, part.append, c.cfg.NewMemberID)
	shard.storeTxn = part.appendTxn
	replayEnd := part.log.ReplayEnd()
	n, err := replayLog(ctx, part.log, OffsetsTopic, replayEnd, shard.replayBatch, shard.replay, logger)
	part.mu.Lock()
	if part.mu.state != partitionLoading {
		part.mu.Unlock()
		return // unloaded meanwhile
	}
	if err != nil {
		part.mu.state = partitionFailed
		part.mu.Unlock()
		logger.Error("loading group coordinator partition", "err", err)
	} else {
		part.mu.shard = shard
		part.mu.timers = timers
		c.initConsumerTopics(shard)
		shard.finishLoad()
		part.mu.state = partitionActive
		part.applyMarkersLocked(replayEnd)
		groups := len(shard.groups)
		part.mu.Unlock()
		logger.Info("loaded group coordinator partition", "records", n, "groups", groups)
	}
	c.mu.Lock()
	c.notifyLocked()
	c.mu.Unlock()
}

// Unload gives up partition p (leadership moved, or shutdown): waiting requests get
// NOT_COORDINATOR, timers stop and the state is dropped.
func (c *Coordinator) Unload(p int32) {
	c.mu.Lock()
	part := c.mu.partitions[p]
	if part == nil {
		c.mu.Unlock()
		return
	}
	delete(c.mu.partitions, p)
	c.notifyLocked()
	c.mu.Unlock()

	part.cancel()
	part.mu.Lock()
	if part.mu.shard != nil {
		part.mu.shard.unload()
		part.mu.timers.stopAll()
		part.mu.shard = nil
	}
	part.mu.state = partitionUnloaded
	part.mu.Unlock()
	c.log.Info("unloaded group coordinator partition", "partition", p)
}

// Close unloads every partition and waits for the loaders.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.mu.closed = true
	parts := slices.Collect(maps.Keys(c.mu.partitions))
	c.mu.Unlock()
	for _, p := range parts {
		c.Unload(p)
	}
	c.cancel()
	c.loaders.Wait()
}

// append is the shard's store: one batch appended to the partition. It runs with part.mu held.
func (part *partition) append(recs []Record) error {
	return part.log.AppendAsLeader(BuildBatch(recs, part.clock.Now().UnixMilli()))
}

// replayReadBytes is how much of the log a loader reads at a time.
const replayReadBytes = 1 << 20

// ReplayLog feeds every record (key, value) from the log start to the log end to replay. A
// record that does not decode (replay's error) is logged and skipped, so one bad record does
// not make every group (or transactional id) of the partition unavailable. topic names the
// log in errors.
func ReplayLog(ctx context.Context, log Log, topic string, replay func(key, value []byte) error, logger *slog.Logger) (int, error) {
	return replayLog(ctx, log, topic, log.ReplayEnd(), nil, replay, logger)
}

// replayLog is ReplayLog to the offset end (batches from end on are left), calling onBatch, when not nil, with each batch's
// header before its records (control batches included, whose records replay does not see).
func replayLog(ctx context.Context, log Log, topic string, end int64, onBatch func(batch []byte, h *records.Header), replay func(key, value []byte) error, logger *slog.Logger) (int, error) {
	off, hw := log.LogStartOffset(), end
	n := 0
	for off < hw {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		data, err := log.Read(off, replayReadBytes)
		if err != nil {
			return n, fmt.Errorf("reading %s offset %d: %w", topic, off, err)
		}
		if len(data) == 0 {
			return n, fmt.Errorf("reading %s: no data at offset %d below the high watermark %d", topic, off, hw)
		}
		next := off
		var batchErr error
		done := false
		splitBatches(data, func(batch []byte) {
			if batchErr != nil || done {
				return
			}
			h, err := records.ParseHeader(batch)
			if err != nil {
				batchErr = fmt.Errorf("%w: %w", ErrCorruptRecord, err)
				return
			}
			if h.BaseOffset >= hw {
				// Appended after the replay took its end: not replayed (a caller such as
				// a marker's CompleteTransaction deals with it).
				done = true
				return
			}
			last := h.LastOffset()
			if onBatch != nil {
				onBatch(batch, &h)
			}
			if err := forEachRecord(batch, func(o int64, k, v []byte) error {
				if o < off {
					return nil
				}
				n++
				if err := replay(k, v); err != nil {
					logger.Error("skipping undecodable record", "offset", o, "err", err)
				}
				return nil
			}); err != nil {
				logger.Error("skipping undecodable batch", "offset", last, "err", err)
			}
			next = last + 1
		})
		if batchErr != nil {
			return n, batchErr
		}
		if done {
			return n, nil
		}
		if next <= off {
			return n, fmt.Errorf("reading %s: no progress at offset %d", topic, off)
		}
		off = next
	}
	return n, nil
}

// errClosedCoordinator answers requests that wait while the broker shuts down.
var errClosedCoordinator error = kerr.CoordinatorNotAvailable

// withShard runs fn on the shard of group's partition with its lock held, or returns why it
// cannot: NOT_COORDINATOR if this broker does not coordinate the group,
// COORDINATOR_LOAD_IN_PROGRESS while its partition loads.
func (c *Coordinator) withShard(group string, fn func(*Shard)) error {
	p := c.PartitionFor(group)
	c.mu.Lock()
	part := c.mu.partitions[p]
	c.mu.Unlock()
	if part == nil {
		return errNotCoordinator
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	switch part.mu.state {
	case partitionLoading:
		return errLoadInProgress
	case partitionActive:
		fn(part.mu.shard)
		return nil
	case partitionFailed:
		return errCoordinatorNotAvl
	default:
		return errNotCoordinator
	}
}

// JoinGroup joins a member and waits for the rebalance to complete (or ctx to end).
func (c *Coordinator) JoinGroup(ctx context.Context, req JoinRequest) JoinResult {
	if req.Group == "" {
		return joinError(req.MemberID, errInvalidGroupID)
	}
	ch := make(chan JoinResult, 1)
	if err := c.withShard(req.Group, func(s *Shard) { s.JoinGroup(req, func(r JoinResult) { trySend(ch, r) }) }); err != nil {
		return joinError(req.MemberID, err)
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return joinError(req.MemberID, errClosedCoordinator)
	}
}

// SyncGroup syncs a member and waits for the leader's assignment (or ctx to end).
func (c *Coordinator) SyncGroup(ctx context.Context, req SyncRequest) SyncResult {
	if req.Group == "" {
		return SyncResult{Err: errInvalidGroupID}
	}
	ch := make(chan SyncResult, 1)
	if err := c.withShard(req.Group, func(s *Shard) { s.SyncGroup(req, func(r SyncResult) { trySend(ch, r) }) }); err != nil {
		if errors.Is(err, errLoadInProgress) {
			// The rebalance's state is lost with the old coordinator: rejoin (as Kafka answers).
			err = errRebalance
		}
		return SyncResult{Err: err}
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return SyncResult{Err: errClosedCoordinator}
	}
}

func trySend[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// Heartbeat handles a Heartbeat.
func (c *Coordinator) Heartbeat(req HeartbeatRequest) error {
	if req.Group == "" {
		return errInvalidGroupID
	}
	var res error
	err := c.withShard(req.Group, func(s *Shard) { res = s.Heartbeat(req) })
	if errors.Is(err, errLoadInProgress) {
		return nil // as Kafka: the member carries on while the coordinator loads
	}
	if err != nil {
		return err
	}
	return res
}

// LeaveGroup removes members; see Shard.LeaveGroup.
func (c *Coordinator) LeaveGroup(group string, members []LeaveMember) (error, []error) {
	if group == "" {
		return errInvalidGroupID, nil
	}
	var gerr error
	var errs []error
	if err := c.withShard(group, func(s *Shard) { gerr, errs = s.LeaveGroup(group, members) }); err != nil {
		return err, nil
	}
	return gerr, errs
}

// CommitOffsets commits offsets; see Shard.CommitOffsets.
func (c *Coordinator) CommitOffsets(req CommitRequest) []error {
	return c.commitWith(req.Group, len(req.Offsets), func(s *Shard) []error { return s.CommitOffsets(req) })
}

// commitWith runs a commit of n offsets on the group's shard; when the shard cannot take it,
// every offset gets the reason.
func (c *Coordinator) commitWith(group string, n int, commit func(*Shard) []error) []error {
	var errs []error
	if err := c.withShard(group, func(s *Shard) { errs = commit(s) }); err != nil {
		errs = make([]error, n)
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// FetchOffsets returns committed offsets (all of the group's if tps is nil).
func (c *Coordinator) FetchOffsets(group string, tps []TopicPartition) ([]FetchedOffset, error) {
	var out []FetchedOffset
	if err := c.withShard(group, func(s *Shard) { out = s.FetchOffsets(group, tps) }); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOffsets handles OffsetDelete; see Shard.DeleteOffsets.
func (c *Coordinator) DeleteOffsets(group string, tps []TopicPartition) (error, []error) {
	if group == "" {
		return errInvalidGroupID, nil
	}
	var gerr error
	var errs []error
	if err := c.withShard(group, func(s *Shard) { gerr, errs = s.DeleteOffsets(group, tps) }); err != nil {
		return err, nil
	}
	return gerr, errs
}

// DescribeGroup describes a group (Err set if this broker cannot answer for it).
func (c *Coordinator) DescribeGroup(group string) GroupDescription {
	var d GroupDescription
	if err := c.withShard(group, func(s *Shard) { d = s.DescribeGroup(group) }); err != nil {
		return GroupDescription{Group: group, Err: err}
	}
	return d
}

// DeleteGroup deletes an empty group with its offsets.
func (c *Coordinator) DeleteGroup(group string) error {
	var res error
	if err := c.withShard(group, func(s *Shard) { res = s.DeleteGroup(group) }); err != nil {
		return err
	}
	return res
}

// ListGroups lists the groups of every loaded partition. The error is
// COORDINATOR_LOAD_IN_PROGRESS if some partition is still loading (the list has the others).
func (c *Coordinator) ListGroups(states, types []string) ([]GroupListing, error) {
	c.mu.Lock()
	parts := make([]*partition, 0, len(c.mu.partitions))
	for _, p := range slices.Sorted(maps.Keys(c.mu.partitions)) {
		parts = append(parts, c.mu.partitions[p])
	}
	c.mu.Unlock()
	var out []GroupListing
	var err error
	for _, part := range parts {
		part.mu.Lock()
		switch part.mu.state {
		case partitionActive:
			out = append(out, part.mu.shard.ListGroups(states, types)...)
		case partitionLoading:
			err = errLoadInProgress
		}
		part.mu.Unlock()
	}
	return out, err
}

// EnsureTopic creates __consumer_offsets (it is created lazily, on the first FindCoordinator).
func (c *Coordinator) EnsureTopic(ctx context.Context) error {
	c.createMu.Lock()
	defer c.createMu.Unlock()
	if c.cfg.CreateTopic == nil {
		return errCoordinatorNotAvl
	}
	if err := c.cfg.CreateTopic(ctx, c.cfg.NumPartitions, c.cfg.ReplicationFactor, TopicConfigs(c.cfg.SegmentBytes)); err != nil {
		return fmt.Errorf("creating %s: %w", OffsetsTopic, err)
	}
	return nil
}

// WaitLoaded waits until partition p is loaded on this broker, or ctx ends. It is used after
// FindCoordinator named this broker, so that the client's next request finds the state.
func (c *Coordinator) WaitLoaded(ctx context.Context, p int32) error {
	for {
		c.mu.Lock()
		part := c.mu.partitions[p]
		changed := c.mu.changed
		closed := c.mu.closed
		c.mu.Unlock()
		if closed {
			return errNotCoordinator
		}
		if part != nil {
			part.mu.Lock()
			loading := part.mu.state == partitionLoading
			part.mu.Unlock()
			if !loading {
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
