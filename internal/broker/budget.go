package broker

import (
	"context"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// requestBytesHeld counts the bytes of request frame buffers held by every broker of this
// process: frames being received and frames waiting for or in their handler.
var requestBytesHeld atomic.Int64

// requestReadersWaiting counts the connection readers of this process waiting for budget.
var requestReadersWaiting atomic.Int64

// RequestReadersWaiting returns how many connection readers of this process's brokers wait
// for queued.max.request.bytes, not reading from their sockets meanwhile.
func RequestReadersWaiting() int64 { return requestReadersWaiting.Load() }

// RequestBytesHeld returns the bytes of request frame buffers held by the brokers of this
// process (frames being received, queued or being handled). Tests and measurements read it.
func RequestBytesHeld() int64 { return requestBytesHeld.Load() }

// requestBudget bounds the memory of request frames across a broker's connections
// (queued.max.request.bytes): a frame's buffer grows only once the budget grants the growth,
// and the bytes return to it when the request has been handled. Readers whose growth does not
// fit wait in arrival order, not reading from their sockets. So that a frame larger than what
// is left always makes progress, the oldest waiter is granted its growth beyond the bound when
// every byte in use belongs to waiting readers (nothing else would ever give bytes back): the
// memory stays within the bound plus one frame, and only in that case goes past the bound.
type requestBudget struct {
	limit int64 // <= 0: unbounded
	mu    sync.Mutex
	used  int64
	// waitingHeld is the part of used held by frames whose readers wait in waiters.
	waitingHeld int64
	waiters     []*budgetWaiter
}

type budgetWaiter struct {
	n, held int64
	ready   chan struct{}
}

func newRequestBudget(limit int64) *requestBudget { return &requestBudget{limit: limit} }

// acquire takes n bytes for a frame that already holds held bytes, waiting while the budget
// is spent. It returns how long it waited; ctx ends the wait with ctx's error.
func (b *requestBudget) acquire(ctx context.Context, held, n int64) (time.Duration, error) {
	if b.limit <= 0 {
		requestBytesHeld.Add(n)
		return 0, nil
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.limit {
		b.take(n)
		b.mu.Unlock()
		return 0, nil
	}
	w := &budgetWaiter{n: n, held: held, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.waitingHeld += held
	requestReadersWaiting.Add(1)
	b.grantLocked()
	b.mu.Unlock()
	start := time.Now()
	select {
	case <-w.ready:
		return time.Since(start), nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.used -= n
		requestBytesHeld.Add(-n)
	default:
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
		b.waitingHeld -= held
		requestReadersWaiting.Add(-1)
	}
	b.grantLocked()
	return time.Since(start), ctx.Err()
}

// release gives n bytes back and wakes the waiters that now fit.
func (b *requestBudget) release(n int64) {
	if n == 0 {
		return
	}
	if b.limit <= 0 {
		requestBytesHeld.Add(-n)
		return
	}
	b.mu.Lock()
	b.used -= n
	requestBytesHeld.Add(-n)
	b.grantLocked()
	b.mu.Unlock()
}

func (b *requestBudget) take(n int64) {
	b.used += n
	requestBytesHeld.Add(n)
}

// grantLocked grants waiters in order while they fit, or the first one beyond the bound when
// every byte in use is held by waiting readers.
func (b *requestBudget) grantLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.used+w.n > b.limit && b.used != b.waitingHeld {
			return
		}
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.waitingHeld -= w.held
		requestReadersWaiting.Add(-1)
		b.take(w.n)
		close(w.ready)
	}
}

// frameBufferClasses are the pooled frame buffer sizes: powers of two from 512 bytes to
// 1 GiB (socket.request.max.bytes is an int32).
const minFrameClass, frameClasses = 9, 22

// framePools recycle frame buffers by size class (power of two). Buffers of every request
// grow through them; produce frames go back to them once appended (their decoded form is not
// kept), other requests' frames are left to the GC because handlers may keep slices of them.
var framePools [frameClasses]sync.Pool

// frameClass returns the class of the smallest pooled buffer of at least n bytes.
func frameClass(n int) int {
	if n <= 1<<minFrameClass {
		return 0
	}
	return bits.Len(uint(n-1)) - minFrameClass
}

// getFrameBuffer returns an empty buffer of capacity 1<<(class+minFrameClass).
func getFrameBuffer(class int) []byte {
	if b, ok := framePools[class].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<(class+minFrameClass))
}

// maxPooledFrame is the largest frame buffer kept for reuse: larger ones go back to the GC
// (and so to the OS), not to a pool between bursts.
const maxPooledFrame = 4 << 20

// putFrameBuffer recycles a buffer from getFrameBuffer.
func putFrameBuffer(b []byte) {
	class := frameClass(cap(b))
	if cap(b) > maxPooledFrame || cap(b) != 1<<(class+minFrameClass) {
		return // too large to keep, or not one of ours
	}
	b = b[:0]
	framePools[class].Put(&b)
}
