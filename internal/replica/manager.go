package replica

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
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
}

// maxRetryBackoff caps the wait between attempts to open an offline partition.
const maxRetryBackoff = time.Minute

// Manager owns the partitions hosted by this broker.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	floor *storage.SpaceFloor // Dir's free-space floor, shared by its logs

	// mu guards partitions. Handlers take the read lock to look partitions up; Apply takes
	// the write lock only to swap entries, never while doing log I/O for other partitions.
	mu struct {
		sync.RWMutex
		partitions map[TopicPartition]*Partition
		configs    map[string]map[string]string // topic -> configs last applied
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
}

// NewManager returns a Manager with no partitions; call Apply with the first metadata image.
func NewManager(cfg Config) *Manager {
	m := &Manager{cfg: cfg, log: cfg.Logger, floor: storage.NewSpaceFloor(cfg.Dir, cfg.MinFreeBytes)}
	m.mu.partitions = make(map[TopicPartition]*Partition)
	m.mu.configs = make(map[string]map[string]string)
	m.mu.offline = make(map[TopicPartition]*offlinePartition)
	if m.cfg.RetryBackoff <= 0 {
		m.cfg.RetryBackoff = time.Second
	}
	m.appliedCond = sync.NewCond(&m.appliedMu)
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

// Partition returns the hosted partition, or nil.
func (m *Manager) Partition(topic string, partition int32) *Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mu.partitions[TopicPartition{topic, partition}]
}

// Partitions returns all hosted partitions.
func (m *Manager) Partitions() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Partition, 0, len(m.mu.partitions))
	for _, p := range m.mu.partitions {
		out = append(out, p)
	}
	return out
}

func partitionDir(root string, tp TopicPartition) string {
	return filepath.Join(root, tp.Topic+"-"+strconv.Itoa(int(tp.Partition)))
}

// Apply brings the hosted partitions in line with img: it opens logs of partitions this node
// replicates (a log that fails to open leaves its partition offline, see RetryOffline), deletes logs of topics that are gone (or were recreated with a new id), updates
// leader epochs and pushes changed topic configs to the logs. It also removes stray partition
// directories left by a topic deleted while the broker was down.
func (m *Manager) Apply(img *metadata.Image) error {
	return m.ApplyContext(context.Background(), img)
}

// ApplyContext is Apply that stops opening partitions once ctx ends (start-up, where opening
// many logs can take long, must end on SIGTERM). It then returns ctx's cause, leaving the
// partitions opened so far for Close, and does not mark img applied. Partitions whose logs
// cannot be opened do not make it fail: they are offline until a retry opens them.
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
	// Remove partitions that are gone or belong to an older incarnation of the topic.
	for _, p := range m.Partitions() {
		t, ok := want[p.TP]
		if ok && t.ID == p.TopicID {
			continue
		}
		m.mu.Lock()
		delete(m.mu.partitions, p.TP)
		m.mu.Unlock()
		if err := p.log.Delete(); err != nil {
			m.log.Warn("deleting partition log", "topic", p.TP.Topic, "partition", p.TP.Partition, "err", err)
		} else {
			m.log.Info("deleted partition", "topic", p.TP.Topic, "partition", p.TP.Partition)
		}
		p.wake()
	}
	m.forgetOffline(want)
	var failed openFailures
	var toOpen []TopicPartition
	now := time.Now()
	for tp, t := range want {
		mp := t.Partitions[tp.Partition]
		if p := m.Partition(tp.Topic, tp.Partition); p != nil {
			p.leaderEpoch.Store(mp.LeaderEpoch)
			if !sameConfigs(m.appliedConfigs(tp.Topic), t.Configs) {
				p.log.SetConfig(m.cfg.LogConfig(t.Configs))
			}
			continue
		}
		if m.offlineDue(tp, t, mp.LeaderEpoch, now) {
			toOpen = append(toOpen, tp)
		}
	}
	// Opening a log is mostly waiting for the disk (directory reads, checkpoint writes and
	// their fsyncs), so many partitions open at once.
	var failedMu sync.Mutex
	err := parallel(ctx, len(toOpen), func(i int) {
		tp := toOpen[i]
		t := want[tp]
		var f openFailures
		if !m.tryOpen(tp, t, t.Partitions[tp.Partition].LeaderEpoch, now, &f) {
			failedMu.Lock()
			failed.add(f)
			failedMu.Unlock()
		}
	})
	if err != nil {
		return fmt.Errorf("stopped opening partitions: %w", err)
	}
	m.reportOpenFailures(&failed)
	m.mu.Lock()
	for _, t := range img.Topics {
		m.mu.configs[t.Name] = t.Configs
	}
	for name := range m.mu.configs {
		if _, ok := img.Topics[name]; !ok {
			delete(m.mu.configs, name)
		}
	}
	m.mu.Unlock()
	m.removeStrayDirs(want)
	m.markApplied(img.Index)
	return nil
}

func (m *Manager) appliedConfigs(topic string) map[string]string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mu.configs[topic]
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
			if err := os.RemoveAll(dir); err != nil {
				return nil, err
			}
		}
	}
	l, err := storage.OpenLog(dir, m.cfg.LogConfig(t.Configs), storage.Options{Logger: m.log.With("topic", tp.Topic, "partition", tp.Partition), FileCache: m.cfg.FileCache, Floor: m.floor})
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
		os.RemoveAll(dir)
	}
}

// Run does the periodic log work until ctx ends: retention and time-based rolls every
// RetentionCheckInterval, scheduled flushes every FlushCheckInterval.
func (m *Manager) Run(ctx context.Context) {
	retention := time.NewTicker(m.cfg.RetentionCheckInterval)
	defer retention.Stop()
	retry := time.NewTicker(m.cfg.RetryBackoff)
	defer retry.Stop()
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
		case <-flushC:
			for _, p := range m.Partitions() {
				if err := p.log.FlushIfDue(); err != nil {
					m.log.Error("scheduled flush", "topic", p.TP.Topic, "partition", p.TP.Partition, "err", err)
				}
			}
		}
	}
}

// EnforceRetention runs retention and time-based rolls on every partition now.
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

// Close closes every log (flushing it and recording a clean shutdown).
func (m *Manager) Close() error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	var firstErr error
	var errMu sync.Mutex
	parts := slices.Collect(maps.Values(m.mu.partitions))
	// Closing a log waits for its fsyncs: close many at once.
	parallel(context.Background(), len(parts), func(i int) {
		if err := parts[i].log.Close(); err != nil {
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
		}
	})
	clear(m.mu.partitions)
	clear(m.mu.offline)
	m.mu.closed = true
	return firstErr
}
