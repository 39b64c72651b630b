package controller

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/samsa-io/samsa/internal/metadata"
)

// applyResult is what fsm.Apply returns to the proposer through raft's ApplyFuture.
type applyResult struct {
	image *metadata.Image
	err   error
}

// fsm is the metadata state machine. raft calls Apply, Snapshot and Restore from its single FSM
// goroutine; the current image is an atomic pointer so any goroutine can read it.
type fsm struct {
	logger    *slog.Logger
	image     atomic.Pointer[metadata.Image]
	publisher *publisher
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(logger *slog.Logger, pub *publisher) *fsm {
	f := &fsm{logger: logger, publisher: pub}
	f.image.Store(&metadata.Image{})
	return f
}

// Apply implements raft.FSM: it decodes one batch and applies it to the current image. A batch
// that does not decode or apply leaves the image unchanged on every node alike (the image is a
// deterministic function of the log), and the error goes back to the proposer.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	recs, err := metadata.DecodeBatch(l.Data)
	if err != nil {
		f.logger.Error("metadata log entry does not decode; skipped", "index", l.Index, "err", err)
		return applyResult{err: fmt.Errorf("decode log entry %d: %w", l.Index, err)}
	}
	old := f.image.Load()
	next, err := old.ApplyBatch(l.Index, recs)
	if err != nil {
		// Proposers validate first, so this is a race between proposals or a bug.
		f.logger.Warn("metadata log entry rejected", "index", l.Index, "err", err)
		return applyResult{err: err}
	}
	f.publish(old, next)
	return applyResult{image: next}
}

// publish makes next the current image and queues the change for the publish callbacks.
func (f *fsm) publish(old, next *metadata.Image) {
	f.image.Store(next)
	f.publisher.enqueue(publishEvent{old: old, new: next})
}

// Snapshot implements raft.FSM. Images are immutable, so the snapshot is just the pointer.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return imageSnapshot{image: f.image.Load()}, nil
}

// Restore implements raft.FSM: it replaces the image with the one in the snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("controller: read snapshot: %w", err)
	}
	img, err := metadata.DecodeImage(data)
	if err != nil {
		return fmt.Errorf("controller: restore snapshot: %w", err)
	}
	f.publish(f.image.Load(), img)
	return nil
}

// imageSnapshot persists one image with metadata.EncodeImage.
type imageSnapshot struct {
	image *metadata.Image
}

// Persist implements raft.FSMSnapshot.
func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := metadata.EncodeImage(s.image)
	if err == nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("controller: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (imageSnapshot) Release() {}

// PublishFunc is called with the previous and the new image each time the controller publishes
// an image. On registration it is first called once with old == nil and the current image.
type PublishFunc func(old, new *metadata.Image)

// publishEvent is one entry in the publisher's queue: an image change, or a callback to add
// (add != nil) or remove (remove != 0).
type publishEvent struct {
	old, new *metadata.Image
	add      PublishFunc
	addID    uint64
	remove   uint64
}

// publisher calls the publish callbacks in order from one goroutine, so that a slow callback
// never stalls raft's FSM goroutine and a callback may call back into the controller.
// Registrations travel through the same queue as image changes, so a callback sees every image
// after the one it is registered with, exactly once.
type publisher struct {
	wake chan struct{} // capacity 1: "the queue may be non-empty"
	done chan struct{} // closed when run returns
	mu   struct {
		sync.Mutex
		queue  []publishEvent
		closed bool
		nextID uint64
	}
}

func newPublisher(initial *metadata.Image) *publisher {
	p := &publisher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run(initial)
	return p
}

func (p *publisher) enqueue(ev publishEvent) {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.queue = append(p.mu.queue, ev)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// register queues fn and returns a function that unregisters it.
func (p *publisher) register(fn PublishFunc) (unregister func()) {
	p.mu.Lock()
	p.mu.nextID++
	id := p.mu.nextID
	p.mu.Unlock()
	p.enqueue(publishEvent{add: fn, addID: id})
	return func() { p.enqueue(publishEvent{remove: id}) }
}

// close stops the publisher after it has delivered everything queued so far.
func (p *publisher) close() {
	p.mu.Lock()
	p.mu.closed = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	<-p.done
}

// run owns the callback list and the last image it delivered.
func (p *publisher) run(current *metadata.Image) {
	defer close(p.done)
	type callback struct {
		id uint64
		fn PublishFunc
	}
	var callbacks []callback
	for range p.wake {
		p.mu.Lock()
		queue, closed := p.mu.queue, p.mu.closed
		p.mu.queue = nil
		p.mu.Unlock()
		for _, ev := range queue {
			switch {
			case ev.add != nil:
				callbacks = append(callbacks, callback{id: ev.addID, fn: ev.add})
				ev.add(nil, current)
			case ev.remove != 0:
				for i, cb := range callbacks {
					if cb.id == ev.remove {
						callbacks = append(callbacks[:i:i], callbacks[i+1:]...)
						break
					}
				}
			default:
				current = ev.new
				for _, cb := range callbacks {
					cb.fn(ev.old, ev.new)
				}
			}
		}
		if closed {
			return
		}
	}
}
