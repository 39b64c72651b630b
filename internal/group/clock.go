package group

import (
	"sync"
	"time"
)

// Clock is the coordinator's source of time. The real one is time.Now and time.AfterFunc;
// tests drive a manual clock so that timeouts fire deterministically.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a manual clock, when time is advanced)
	// once d has passed. It must never call f before returning.
	AfterFunc(d time.Duration, f func()) Stopper
}

// Stopper stops a timer started by Clock.AfterFunc.
type Stopper interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                              { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Stopper { return time.AfterFunc(d, f) }

// timerKind names what a timer is for.
type timerKind uint8

const (
	timerJoin      timerKind = iota // a group's rebalance (join phase) deadline or initial delay
	timerSync                       // a group's deadline for SyncGroup from every member
	timerHeartbeat                  // a member's session (or new-member join) deadline
	timerPending                    // a pending member's deadline to rejoin with its id
	timerExpire                     // the shard's periodic offset expiration
)

// timerKey identifies one timer of a shard; scheduling a key again replaces its timer.
type timerKey struct {
	kind   timerKind
	group  string
	member string
}

// timers is how a Shard keeps time: the current time, and named one-shot timers whose
// callbacks run with the shard's lock held.
type timers interface {
	now() time.Time
	schedule(key timerKey, d time.Duration, fn func())
	cancel(key timerKey)
}

// clockTimers implements timers on a Clock. Its map is guarded by lock, the lock of the
// shard that owns it: schedule and cancel are called with it held, and callbacks take it.
type clockTimers struct {
	clock   Clock
	lock    sync.Locker
	seq     uint64
	m       map[timerKey]timerEntry
	stopped bool
}

type timerEntry struct {
	seq uint64
	t   Stopper
}

func newClockTimers(clock Clock, lock sync.Locker) *clockTimers {
	return &clockTimers{clock: clock, lock: lock, m: make(map[timerKey]timerEntry)}
}

func (ts *clockTimers) now() time.Time { return ts.clock.Now() }

func (ts *clockTimers) schedule(key timerKey, d time.Duration, fn func()) {
	if ts.stopped {
		return
	}
	ts.cancel(key)
	ts.seq++
	seq := ts.seq
	if d < 0 {
		d = 0
	}
	t := ts.clock.AfterFunc(d, func() {
		ts.lock.Lock()
		defer ts.lock.Unlock()
		// A timer that was stopped too late, or replaced, finds another entry (or none).
		if e, ok := ts.m[key]; !ok || e.seq != seq || ts.stopped {
			return
		}
		delete(ts.m, key)
		fn()
	})
	ts.m[key] = timerEntry{seq: seq, t: t}
}

func (ts *clockTimers) cancel(key timerKey) {
	if e, ok := ts.m[key]; ok {
		e.t.Stop()
		delete(ts.m, key)
	}
}

// stopAll cancels every timer and refuses new ones (the shard is unloaded).
func (ts *clockTimers) stopAll() {
	ts.stopped = true
	for k, e := range ts.m {
		e.t.Stop()
		delete(ts.m, k)
	}
}
