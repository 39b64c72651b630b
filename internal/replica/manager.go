package replica

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/storage"
)

// Config configures a Manager.
type Config struct {
	// Dir is the log directory holding one sub-directory per partition, named topic-partition.
	Dir    string
	NodeID int32
	Logger *slog.Logger
	// LogConfig derives a partition log's settings from its topic's configs.
	LogConfig func(topicConfigs map[string]string) storage.LogConfig
	// RetentionCheckInterval is log.retention.check.interval.ms.
	RetentionCheckInterval time.Duration
	// FlushCheckInterval is log.flush.scheduler.interval.ms (how often flush.ms is checked).
	FlushCheckInterval time.Duration
	// FileCache holds the logs' open files; nil = storage.DefaultFileCache.
	FileCache *storage.FileCache
	// MinFreeBytes is Dir's free-space floor (storage.SpaceFloor): appends are refused below
	// it. 0 = none.
	MinFreeBytes int64
	// RetryBackoff is the first wait before opening an offline partition again; it doubles
	// on each failure up to maxRetryBackoff. 0 = one second.
	RetryBackoff time.Duration

	// Replication (partitions with more than one replica). Zero values take Kafka's defaults.

	// InterBrokerListener (inter.broker.listener.name) names the listener of the leaders'
	// endpoints that followers fetch from; "" = each broker's first endpoint.
	InterBrokerListener string
	// FetcherClientOpts are added to the fetchers' kgo clients: the inter-broker listener's
	// TLS and SASL (set by package server).
	FetcherClientOpts []kgo.Opt
	// AlterPartition sends ISR changes to the controller; nil (a single node) never changes
	// the ISR.
	AlterPartition PartitionStateSender
	// ReplicaLagTime is replica.lag.time.max.ms (30 s): an ISR follower not caught up for this
	// long is removed; the check runs every half of it.
	ReplicaLagTime time.Duration
	// NumReplicaFetchers is num.replica.fetchers (1): fetcher goroutines per source broker.
	NumReplicaFetchers int
	// ReplicaFetchWaitMax is replica.fetch.wait.max.ms (500 ms).
	ReplicaFetchWaitMax time.Duration
	// ReplicaFetchMinBytes is replica.fetch.min.bytes (1).
	ReplicaFetchMinBytes int32
	// ReplicaFetchMaxBytes is replica.fetch.max.bytes (1 MiB), per partition.
	ReplicaFetchMaxBytes int32
	// ReplicaFetchResponseMaxBytes is replica.fetch.response.max.bytes (10 MiB).
	ReplicaFetchResponseMaxBytes int32
	// ReplicaFetchBackoff is replica.fetch.backoff.ms (1 s).
	ReplicaFetchBackoff time.Duration
	// HighWatermarkCheckpointInterval is replica.high.watermark.checkpoint.interval.ms (5 s).
	HighWatermarkCheckpointInterval time.Duration
	// Now is the clock of ISR decisions; nil = time.Now.
	Now func() time.Time

	// Cleaner configures the log cleaner of compacted topics (log.cleaner.*); its zero value
	// (Enable false) runs none. Run starts it; Close stops it before closing the logs.
	Cleaner CleanerConfig

	// LeaderThrottledRate and FollowerThrottledRate are leader.replication.throttled.rate and
	// follower.replication.throttled.rate of server.properties (0 or Long.MAX_VALUE:
	// unlimited), overridden by the brokers' dynamic configs of the image (throttle.go).
	LeaderThrottledRate, FollowerThrottledRate int64
	// ReplicationQuotaWindow is replication.quota.window.num and
	// replication.quota.window.size.seconds; zero: Kafka's 11 samples of 1 s.
	ReplicationQuotaWindow quota.Config
}

// withDefaults fills the replication settings left zero with Kafka's defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReplicaLagTime, 30*time.Second)
	def(&c.ReplicaFetchWaitMax, 500*time.Millisecond)
	def(&c.ReplicaFetchBackoff, time.Second)
	def(&c.HighWatermarkCheckpointInterval, 5*time.Second)
	if c.NumReplicaFetchers <= 0 {
		c.NumReplicaFetchers = 1
	}
	if c.ReplicaFetchMinBytes <= 0 {
		c.ReplicaFetchMinBytes = 1
	}
	if c.ReplicaFetchMaxBytes <= 0 {
		c.ReplicaFetchMaxBytes = 1 << 20
	}
	if c.ReplicaFetchResponseMaxBytes <= 0 {
		c.ReplicaFetchResponseMaxBytes = 10 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Second
	}
	if c.ReplicationQuotaWindow.Samples <= 0 {
		c.ReplicationQuotaWindow = quota.DefaultConfig
	}
	return c
}

// maxRetryBackoff caps the wait between attempts to open an offline partition.
const maxRetryBackoff = time.Minute

// Manager owns the partitions hosted by this broker.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	floor *storage.SpaceFloor // Dir's free-space floor, shared by its logs
	// dirState is Dir's clean-shutdown state (the marker naming the logs a clean shutdown
	// left, the journal of those changed since), loaded once before any log opens and
	// shared by its logs.
	dirState *storage.DirState

	// mu guards hosted and the fields of its entries. Handlers take the read lock to look
	// partitions up; Apply and opens take the write lock only to swap entries, never while
	// doing log I/O.
	mu struct {
		sync.RWMutex
		// hosted holds every partition of the image this node hosts; a partition's log is
		// opened on first use (Partition), not when the image or the server starts.
		hosted map[TopicPartition]*hosted
		// offline holds the partitions of the image this node hosts whose logs failed to
		// open; they are retried with backoff (RetryOffline), not on every image.
		offline map[TopicPartition]*offlinePartition
		closed  bool
	}
	// applyMu serializes Apply calls.
	applyMu sync.Mutex
	// applied is the metadata index of the last image applied; appliedCond (on appliedMu)
	// wakes WaitApplied callers.
	appliedMu   sync.Mutex
	appliedCond *sync.Cond
	applied     uint64

	// env is shared by the partitions (replication settings, in-flight AlterPartition calls);
	// stopEnv ends those calls at Close.
	env     *env
	stopEnv context.CancelFunc
	// fetchers are the follower fetchers, by source broker.
	fetchers *fetcherManager
	// leaderQuota and followerQuota are the replication throttles (throttle.go).
	leaderQuota, followerQuota *ReplicationQuota
	// ckptMu serializes high-watermark checkpoints; ckptLoaded is the checkpoint read at
	// start, ckptWritten the last one written.
	ckptMu      sync.Mutex
	ckptLoaded  map[TopicPartition]int64
	ckptWritten map[TopicPartition]int64
	// cleanerMu guards cleaner and cleanerRunning (a leaf: held only to swap the cleaner
	// and start or stop its goroutines).
	cleanerMu sync.Mutex
	// cleaner runs the log cleaner goroutines (cleaner.go); SetCleanerConfig replaces it.
	cleaner *logCleaner
	// cleanerRunning: Run started the cleaner and has not returned.
	cleanerRunning bool
	// lastClean is the duration (ns) of the last cleaning pass that did work (stats.go).
	lastClean atomic.Int64
}

// hosted is a partition of the image this node hosts. Its log is opened on first use; openMu
// serializes that open with the deletion and the close of the log, so a log is opened once
// and never left open by a deletion or a close that raced with its open.
type hosted struct {
	openMu      sync.Mutex
	topic       *metadata.Topic // guarded by Manager.mu, as are the fields below
	leaderEpoch int32
	part        metadata.Partition // the partition in the last image applied
	p           *Partition         // nil until opened
}

// NewManager returns a Manager with no partitions; call Apply with the first metadata image.
func NewManager(cfg Config) *Manager {
	cfg = cfg.withDefaults()
	m := &Manager{cfg: cfg, log: cfg.Logger, floor: storage.NewSpaceFloor(cfg.Dir, cfg.MinFreeBytes),
		dirState: storage.LoadDirState(cfg.Dir, nil, cfg.Logger)}
	m.mu.hosted = make(map[TopicPartition]*hosted)
	m.mu.offline = make(map[TopicPartition]*offlinePartition)
	m.appliedCond = sync.NewCond(&m.appliedMu)
	ctx, cancel := context.WithCancel(context.Background())
	m.env = &env{nodeID: cfg.NodeID, lagTime: cfg.ReplicaLagTime, now: cfg.Now, sender: cfg.AlterPartition, log: m.log, ctx: ctx}
	m.stopEnv = cancel
	m.leaderQuota = NewReplicationQuota(cfg.ReplicationQuotaWindow)
	m.followerQuota = NewReplicationQuota(cfg.ReplicationQuotaWindow)
	m.leaderQuota.SetLimit(cfg.LeaderThrottledRate)
	m.followerQuota.SetLimit(cfg.FollowerThrottledRate)
	m.fetchers = newFetcherManager(m)
	m.cleaner = newLogCleaner(m, cfg.Cleaner)
	ckpt, err := readHWCheckpoint(filepath.Join(cfg.Dir, hwCheckpointFile))
	if err != nil {
		// The high watermarks start at the log starts and catch up with the leaders.
		m.log.Warn("reading high-watermark checkpoint", "err", err)
		ckpt = map[TopicPartition]int64{}
	}
	m.ckptLoaded = ckpt
	return m
}

// SpaceFloor is the log directory's free-space floor.
func (m *Manager) SpaceFloor() *storage.SpaceFloor { return m.floor }

// WaitApplied blocks until an image with at least the given metadata index has been applied
// (so partitions created by a just-committed change are open), or ctx ends.
func (m *Manager) WaitApplied(ctx context.Context, index uint64) error {
	stop := context.AfterFunc(ctx, func() {
		m.appliedMu.Lock()
		m.appliedCond.Broadcast()
		m.appliedMu.Unlock()
	})
	defer stop()
	m.appliedMu.Lock()
	defer m.appliedMu.Unlock()
	for m.applied < index {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.appliedCond.Wait()
	}
	return nil
}

func (m *Manager) markApplied(index uint64) {
	m.appliedMu.Lock()
	if index > m.applied {
		m.applied = index
	}
	m.appliedCond.Broadcast()
	m.appliedMu.Unlock()
}

// Partition returns the hosted partition, opening its log on first use (a concurrent caller
// waits for that open), or nil when it is not hosted or its log cannot be opened (then it is
// offline, see Offline, and opened again only after its backoff).
func (m *Manager) Partition(topic string, partition int32) *Partition {
	tp := TopicPartition{topic, partition}
	m.mu.RLock()
	h := m.mu.hosted[tp]
	var p *Partition
	if h != nil {
		p = h.p
	}
	m.mu.RUnlock()
	if h == nil || p != nil {
		return p
	}
	var failed openFailures
	p = m.open(tp, h, time.Now(), &failed)
	m.reportOpenFailures(&failed)
	return p
}

// open opens h's log unless it is open, deleted, closed or offline within its backoff.
func (m *Manager) open(tp TopicPartition, h *hosted, now time.Time, failed *openFailures) *Partition {
	h.openMu.Lock()
	defer h.openMu.Unlock()
	m.mu.RLock()
	p, t, epoch, live := h.p, h.topic, h.leaderEpoch, !m.mu.closed && m.mu.hosted[tp] == h
	m.mu.RUnlock()
	if p != nil || !live || !m.offlineDue(tp, t, epoch, now) {
		return p
	}
	p = m.tryOpen(tp, h, t, epoch, now, failed)
	if p != nil {
		p.recordLeaderEpochStart()
	}
	return p
}

// BrokerAddr returns the host:port of a broker's inter-broker listener in img, or "" when
// the broker is not registered.
func (m *Manager) BrokerAddr(img *metadata.Image, id int32) string { return m.brokerAddr(img, id) }

func (m *Manager) brokerAddr(img *metadata.Image, id int32) string {
	b, ok := img.Brokers[id]
	if !ok || len(b.Endpoints) == 0 {
		return ""
	}
	ep := b.Endpoints[0]
	for _, e := range b.Endpoints {
		if e.Listener == m.cfg.InterBrokerListener {
			ep = e
			break
		}
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port)))
}

// Partitions returns all hosted partitions, opening (ioParallelism at once) those not open
// yet; those that cannot be opened are offline and left out, with one log line for them all.
func (m *Manager) Partitions() []*Partition {
	m.mu.RLock()
	tps := make([]TopicPartition, 0, len(m.mu.hosted))
	hs := make([]*hosted, 0, len(m.mu.hosted))
	for tp, h := range m.mu.hosted {
		tps, hs = append(tps, tp), append(hs, h)
	}
	m.mu.RUnlock()
	out := make([]*Partition, len(tps))
	var failed openFailures
	var failedMu sync.Mutex
	now := time.Now()
	parallel(context.Background(), len(tps), func(i int) {
		var f openFailures
		out[i] = m.open(tps[i], hs[i], now, &f)
		failedMu.Lock()
		failed.add(f)
		failedMu.Unlock()
	})
	m.reportOpenFailures(&failed)
	return slices.DeleteFunc(out, func(p *Partition) bool { return p == nil })
}

// compactedPartitions returns the open partitions, and opens and adds the hosted ones not
// open yet whose topic's cleanup.policy compacts: the cleaner must see those after a restart
// (logs open on first use) without waiting for their first produce, fetch or retention pass.
func (m *Manager) compactedPartitions() []*Partition {
	type closed struct {
		tp TopicPartition
		h  *hosted
	}
	var out []*Partition
	var toOpen []closed
	m.mu.RLock()
	for tp, h := range m.mu.hosted {
		switch {
		case h.p != nil:
			out = append(out, h.p)
		case m.cfg.LogConfig(h.topic.Configs).Cleanup.Compacts():
			toOpen = append(toOpen, closed{tp, h})
		}
	}
	m.mu.RUnlock()
	if len(toOpen) == 0 {
		return out
	}
	var failed openFailures
	now := time.Now()
	for _, c := range toOpen {
		if p := m.open(c.tp, c.h, now, &failed); p != nil {
			out = append(out, p)
		}
	}
	m.reportOpenFailures(&failed)
	return out
}

// openPartitions returns the partitions whose logs are open.
func (m *Manager) openPartitions() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Partition
	for _, h := range m.mu.hosted {
		if h.p != nil {
			out = append(out, h.p)
		}
	}
	return out
}

func partitionDir(root string, tp TopicPartition) string {
	return filepath.Join(root, tp.Topic+"-"+strconv.Itoa(int(tp.Partition)))
}

// Apply brings the hosted partitions in line with img: it records the partitions this node
// replicates (their logs open on first use, see Partition), deletes the logs of topics that
// are gone (or were recreated with a new id; ioParallelism at once), updates leader epochs and
// pushes changed topic configs to the open logs. It also removes stray partition directories
// left by a topic deleted while the broker was down.
func (m *Manager) Apply(img *metadata.Image) error {
	return m.ApplyContext(context.Background(), img)
}

// ApplyContext is Apply that returns ctx's cause, changing nothing and not marking img
// applied, when ctx has ended (start-up must end on SIGTERM).
func (m *Manager) ApplyContext(ctx context.Context, img *metadata.Image) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if err := os.MkdirAll(m.cfg.Dir, 0o755); err != nil {
		return err
	}
	want := make(map[TopicPartition]*metadata.Topic)
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if !containsID(p.Replicas, m.cfg.NodeID) {
				continue
			}
			want[TopicPartition{t.Name, p.Partition}] = t
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped applying partitions: %w", context.Cause(ctx))
	}
	// Remove partitions that are gone or belong to an older incarnation of the topic.
	type gone struct {
		tp TopicPartition
		h  *hosted
	}
	var remove []gone
	m.mu.Lock()
	for tp, h := range m.mu.hosted {
		if t, ok := want[tp]; !ok || t.ID != h.topic.ID {
			delete(m.mu.hosted, tp)
			remove = append(remove, gone{tp, h})
		}
	}
	m.mu.Unlock()
	// Deleting a log is mostly waiting for the disk: delete many at once. A deletion waits
	// for an open of the same log in progress, then deletes what it opened.
	parallel(context.Background(), len(remove), func(i int) { m.deleteHosted(remove[i].tp, remove[i].h) })
	m.forgetOffline(want)
	targets := make(map[TopicPartition]followTarget)
	var newLeaders []*Partition
	m.mu.Lock()
	for tp, t := range want {
		mp := t.Partitions[tp.Partition]
		if mp.Leader >= 0 && mp.Leader != m.cfg.NodeID && len(mp.Replicas) > 1 {
			targets[tp] = followTarget{leader: mp.Leader, addr: m.brokerAddr(img, mp.Leader), epoch: mp.LeaderEpoch, topicID: t.ID}
		}
		h := m.mu.hosted[tp]
		if h == nil {
			m.mu.hosted[tp] = &hosted{topic: t, leaderEpoch: mp.LeaderEpoch, part: mp}
			continue
		}
		h.leaderEpoch = mp.LeaderEpoch
		h.part = mp
		old := h.topic
		h.topic = t
		if h.p != nil {
			if h.p.applyImage(mp) {
				newLeaders = append(newLeaders, h.p)
			}
			if !sameConfigs(old.Configs, t.Configs) {
				h.p.log.SetConfig(m.cfg.LogConfig(t.Configs))
			}
		}
	}
	m.mu.Unlock()
	for _, p := range newLeaders {
		p.recordLeaderEpochStart()
	}
	m.applyThrottles(img)
	m.fetchers.update(targets)
	m.removeStrayDirs(want)
	m.markApplied(img.Index)
	return nil
}

// deleteHosted deletes the log of a partition removed from the hosted map: its open log, or
// its directory when it was never opened.
func (m *Manager) deleteHosted(tp TopicPartition, h *hosted) {
	h.openMu.Lock()
	defer h.openMu.Unlock()
	m.mu.RLock()
	p := h.p
	m.mu.RUnlock()
	var err error
	if p != nil {
		err = p.log.Delete()
		p.wake()
		m.currentCleaner().forget(p)
	} else {
		err = m.removeLogDir(filepath.Base(partitionDir(m.cfg.Dir, tp)))
	}
	if err != nil {
		m.log.Warn("deleting partition log", "topic", tp.Topic, "partition", tp.Partition, "err", err)
	} else {
		m.log.Info("deleted partition", "topic", tp.Topic, "partition", tp.Partition)
	}
}

func sameConfigs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// ioParallelism is how many logs open or close at once: their work is mostly waiting on fsync.
const ioParallelism = 32

// parallel runs fn(0..n-1) on up to ioParallelism goroutines, stopping to start new calls once
// ctx ends (then returning its cause).
func parallel(ctx context.Context, n int, fn func(i int)) error {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, ioParallelism) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	var err error
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return err
}

// partitionMetadataFile records which topic id a partition directory belongs to, in Kafka's
// format ("version: 0" and "topic_id: <base64 uuid>"), so a directory left from a deleted
// topic is never mistaken for a new topic of the same name.
const partitionMetadataFile = "partition.metadata"

func encodeTopicID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func (m *Manager) openPartition(tp TopicPartition, t *metadata.Topic, leaderEpoch int32) (*Partition, error) {
	dir := partitionDir(m.cfg.Dir, tp)
	metaPath := filepath.Join(dir, partitionMetadataFile)
	if b, err := os.ReadFile(metaPath); err == nil {
		if !strings.Contains(string(b), "topic_id: "+encodeTopicID(t.ID)) {
			m.log.Warn("removing partition directory of an older topic with the same name", "dir", dir)
			if err := m.removeLogDir(filepath.Base(dir)); err != nil {
				return nil, err
			}
		}
	}
	l, err := storage.OpenLog(dir, m.cfg.LogConfig(t.Configs), storage.Options{Logger: m.log.With("topic", tp.Topic, "partition", tp.Partition), FileCache: m.cfg.FileCache, Floor: m.floor, DirState: m.dirState})
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(metaPath); err != nil {
		content := fmt.Sprintf("version: 0\ntopic_id: %s\n", encodeTopicID(t.ID))
		if err := writeFileSync(metaPath, []byte(content)); err != nil {
			l.Close()
			return nil, err
		}
	}
	return newPartition(tp, t.ID, l, leaderEpoch), nil
}

// removeLogDir removes the directory of a log that is not open. The log directory's
// clean-shutdown marker stops vouching for it first (storage.DirState.Unvouch), so that a
// directory a crash left half removed is recovered, not trusted, if opened again.
func (m *Manager) removeLogDir(name string) error {
	if err := m.dirState.Unvouch(name); err != nil {
		m.log.Warn("journaling the removal of a cleanly closed log", "dir", name, "err", err)
	}
	return os.RemoveAll(filepath.Join(m.cfg.Dir, name))
}

func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeStrayDirs deletes partition directories that no topic in the image owns. Only
// directories holding a partition.metadata file are touched, so other files are left alone.
func (m *Manager) removeStrayDirs(want map[TopicPartition]*metadata.Topic) {
	entries, err := os.ReadDir(m.cfg.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if i <= 0 {
			continue
		}
		n, err := strconv.Atoi(name[i+1:])
		if err != nil {
			continue
		}
		if _, ok := want[TopicPartition{name[:i], int32(n)}]; ok {
			continue
		}
		dir := filepath.Join(m.cfg.Dir, name)
		if _, err := os.Stat(filepath.Join(dir, partitionMetadataFile)); err != nil {
			continue
		}
		m.log.Info("removing stray partition directory", "dir", dir)
		m.removeLogDir(name)
	}
}

// Run does the periodic log work until ctx ends: retention and time-based rolls every
// RetentionCheckInterval, scheduled flushes every FlushCheckInterval; it starts the log
// cleaner's goroutines (Config.Cleaner) and stops them when it returns.
func (m *Manager) Run(ctx context.Context) {
	m.startCleaner()
	defer m.stopCleaner()
	retention := time.NewTicker(m.cfg.RetentionCheckInterval)
	defer retention.Stop()
	retry := time.NewTicker(m.cfg.RetryBackoff)
	defer retry.Stop()
	// Kafka checks for ISR shrinks every half of replica.lag.time.max.ms.
	isrCheck := time.NewTicker(max(m.cfg.ReplicaLagTime/2, time.Millisecond))
	defer isrCheck.Stop()
	hwCheckpoint := time.NewTicker(m.cfg.HighWatermarkCheckpointInterval)
	defer hwCheckpoint.Stop()
	var flushC <-chan time.Time
	if m.cfg.FlushCheckInterval > 0 && m.cfg.FlushCheckInterval < 365*24*time.Hour {
		t := time.NewTicker(m.cfg.FlushCheckInterval)
		defer t.Stop()
		flushC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-retention.C:
			m.enforceRetention()
		case <-retry.C:
			m.RetryOffline()
		case <-isrCheck.C:
			m.ShrinkISRs()
		case <-hwCheckpoint.C:
			m.checkpointHighWatermarks()
		case <-flushC:
			for _, p := range m.openPartitions() {
				if err := p.log.FlushIfDue(); err != nil {
					m.log.Error("scheduled flush", "topic", p.TP.Topic, "partition", p.TP.Partition, "err", err)
				}
			}
		}
	}
}

// enforceRetention runs retention and time-based rolls on every partition now, opening the
// logs not opened since the start (Partitions).
func (m *Manager) enforceRetention() {
	for _, p := range m.Partitions() {
		if err := p.log.MaybeRoll(); err != nil {
			m.log.Error("rolling segment", "topic", p.TP.Topic, "partition", p.TP.Partition, "err", err)
		}
		n, err := p.log.EnforceRetention()
		if err != nil {
			m.log.Error("enforcing retention", "topic", p.TP.Topic, "partition", p.TP.Partition, "err", err)
		} else if n > 0 {
			m.log.Info("retention deleted segments", "topic", p.TP.Topic, "partition", p.TP.Partition, "segments", n, "log_start_offset", p.log.LogStartOffset())
		}
	}
}

// Close closes every open log (flushing it and recording a clean shutdown with
// storage.CloseLogs; a log unchanged since a clean open writes nothing). Logs never opened are left as they are on disk.
func (m *Manager) Close() error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	// Stop cleaning (a pass in flight is abandoned, its cleaned files dropped), then
	// replicating: the fetchers and the AlterPartition calls in flight, then record the
	// high watermarks the logs are closed with.
	m.stopCleaner()
	m.fetchers.close()
	m.stopEnv()
	m.env.wg.Wait()
	m.checkpointHighWatermarks()
	m.mu.Lock()
	hs := slices.Collect(maps.Values(m.mu.hosted))
	clear(m.mu.hosted)
	clear(m.mu.offline)
	m.mu.closed = true
	m.mu.Unlock()
	// Wait for each open in progress, then close the open logs together: CloseLogs syncs
	// each filesystem twice instead of fsyncing every file it writes.
	var logs []*storage.Log
	for _, h := range hs {
		h.openMu.Lock()
		if h.p != nil {
			logs = append(logs, h.p.log)
		}
		h.openMu.Unlock()
	}
	start := time.Now()
	err := storage.CloseLogs(logs, ioParallelism)
	m.log.Info("closed partition logs", "logs", len(logs), "took", time.Since(start).Round(time.Millisecond))
	return err
}

// ShrinkISRs proposes ISR shrinks for the replicated partitions this node leads whose
// followers have not caught up within replica.lag.time.max.ms. Run calls it every half of
// that; tests call it directly.
func (m *Manager) ShrinkISRs() {
	for _, p := range m.openPartitions() {
		if p.replicated.Load() {
			p.maybeShrinkISR()
		}
	}
}
