// Package replica owns the partitions this broker hosts: their logs, leader epochs and high
// watermarks, the notification that wakes waiting fetches when data arrives, and the
// background work on logs (retention, scheduled flushes, time-based rolls). It follows the
// metadata image: partitions appear when a topic is created (their logs open on first use,
// see Manager.Partition) and are deleted with it.
//
// Partitions with one replica commit on append: the high watermark is the log end offset and
// the append path does nothing more. Partitions with more replicas follow Kafka's ISR protocol
// (see leader.go, follower.go and fetcher.go): this node is the leader or a follower of each as
// the image says; the leader tracks its followers' log end offsets, keeps the high watermark at
// the smallest log end offset in the ISR and asks the controller to change the ISR through a
// PartitionStateSender; followers fetch from the leader, truncate after a leader change with
// OffsetForLeaderEpoch, and take the leader's high watermark. High watermarks of replicated
// partitions survive restarts in replication-offset-checkpoint (checkpoint.go).
package replica

import (
	"sync"
	"sync/atomic"

	"github.com/samsa-io/samsa/internal/storage"
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Partition is one hosted partition.
type Partition struct {
	TP      TopicPartition
	TopicID [16]byte
	log     *storage.Log
	env     *env // the manager's settings shared by its partitions; nil in bare tests

	leaderEpoch atomic.Int32
	// highWatermark is the offset up to which records are visible to consumers.
	highWatermark atomic.Int64
	// replicated is set while the partition has more than one replica: appends then go
	// through the leader's state (rs) instead of committing at once.
	replicated atomic.Bool
	// traffic counts clients' bytes and records (stats.go).
	traffic traffic

	// rs is the replication state (role, ISR, followers), see leader.go.
	rs replicationState

	// mu guards the notify channel, which is closed and replaced after every append so that
	// every waiting fetch wakes at once (a broadcast without polling).
	mu struct {
		sync.Mutex
		notify chan struct{}
	}
}

func newPartition(tp TopicPartition, id [16]byte, log *storage.Log, leaderEpoch int32) *Partition {
	p := &Partition{TP: tp, TopicID: id, log: log}
	p.leaderEpoch.Store(leaderEpoch)
	p.highWatermark.Store(log.LogEndOffset())
	p.mu.notify = make(chan struct{})
	return p
}

// Log returns the partition's log.
func (p *Partition) Log() *storage.Log { return p.log }

// LeaderEpoch returns the current leader epoch.
func (p *Partition) LeaderEpoch() int32 { return p.leaderEpoch.Load() }

// HighWatermark returns the offset below which records are committed and visible.
func (p *Partition) HighWatermark() int64 { return p.highWatermark.Load() }

// LastStableOffset returns the last stable offset for the high watermark hw (see
// storage.Log.LastStableOffset): what read_committed consumers may read below.
func (p *Partition) LastStableOffset(hw int64) int64 { return p.log.LastStableOffset(hw) }

// Wait returns a channel closed when the partition next receives data.
func (p *Partition) Wait() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.notify
}

func (p *Partition) wake() {
	p.mu.Lock()
	close(p.mu.notify)
	p.mu.notify = make(chan struct{})
	p.mu.Unlock()
}

// AppendAsLeader appends producer batches, advances the high watermark (a single replica
// commits on append; a replicated partition moves it only as far as its ISR has the records)
// and wakes waiting fetches. A replicated partition this node does not lead refuses with
// ErrNotLeader.
func (p *Partition) AppendAsLeader(batches []byte) (storage.AppendResult, error) {
	if p.replicated.Load() {
		return p.appendReplicated(batches)
	}
	res, err := p.log.AppendAsLeader(batches, p.leaderEpoch.Load())
	if err != nil || res.Duplicate {
		return res, err
	}
	p.advanceHighWatermark(res.LastOffset + 1)
	p.wake()
	return res, nil
}

// advanceHighWatermark raises the high watermark to hw, never lowering it; it reports whether
// it moved.
func (p *Partition) advanceHighWatermark(hw int64) bool {
	for {
		cur := p.highWatermark.Load()
		if hw <= cur {
			return false
		}
		if p.highWatermark.CompareAndSwap(cur, hw) {
			p.log.NoteHighWatermark(hw)
			return true
		}
	}
}

// Read returns committed batches from offset, up to maxBytes.
func (p *Partition) Read(offset int64, maxBytes int, minOneBatch bool) ([]byte, error) {
	return p.log.Read(offset, maxBytes, p.HighWatermark(), minOneBatch)
}

// ReadRegion locates batches from offset below hw in a segment file, for sendfile (see
// storage.Log.ReadRegion). The caller reads the high watermark once and passes it, so what it
// reports and what it serves agree: nothing at or above the reported high watermark is sent.
func (p *Partition) ReadRegion(offset int64, maxBytes int, hw int64, minOneBatch bool) (storage.Region, bool, error) {
	return p.log.ReadRegion(offset, maxBytes, hw, minOneBatch)
}

// ReadWith is Read into memory from alloc, of batches below hw (see storage.Log.ReadWith and
// ReadRegion).
func (p *Partition) ReadWith(alloc func(n int) []byte, offset int64, maxBytes int, hw int64, minOneBatch bool) ([]byte, error) {
	return p.log.ReadWith(alloc, offset, maxBytes, hw, minOneBatch)
}

// DeleteRecordsBefore raises the log start offset (DeleteRecords); -1 means the high watermark.
func (p *Partition) DeleteRecordsBefore(offset int64) (int64, error) {
	hw := p.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset > hw {
		return 0, storage.ErrOffsetOutOfRange
	}
	return p.log.DeleteRecordsBefore(offset)
}
