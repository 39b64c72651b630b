package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBelowFloor is the cause of a *DiskFullError returned because the free space of the log
// directory is below its floor (SpaceFloor), before the disk is really full.
var ErrBelowFloor = errors.New("storage: free space below the log directory's floor")

// Defaults of a SpaceFloor's checks: statfs(2) at most every floorCheckInterval, or sooner
// once floorCheckBytes were admitted since the last one.
const (
	floorCheckInterval = 500 * time.Millisecond
	floorCheckBytes    = 16 << 20
)

// SpaceFloor refuses partition-data appends to a log directory whose free space is below a
// floor, so that data never takes the last space that the metadata store, checkpoints and
// producer snapshots need. One SpaceFloor serves every log of a directory (Options.Floor).
//
// It checks cheaply: it calls statfs at most every floorCheckInterval and otherwise counts the
// bytes it admits against the free space it last saw, calling statfs again once
// floorCheckBytes were admitted or the admitted bytes would reach the floor. While below the
// floor it refuses without a statfs until the interval has passed. A nil *SpaceFloor, or one
// with a floor of 0, admits everything.
type SpaceFloor struct {
	dir   string
	min   int64
	usage func(dir string) (total, usable int64, err error)
	now   func() time.Time

	// budget is the bytes that may still be admitted before the next statfs.
	budget atomic.Int64
	// deadline is when (unix nanoseconds) the next append calls statfs whatever the budget.
	deadline atomic.Int64
	// near: the last statfs left less than floorCheckBytes above the floor (or was below it),
	// so an exhausted budget means "refuse until the deadline", not "call statfs again".
	near atomic.Bool
	// free is the usable bytes the last statfs found (-1 when it failed), for the error.
	free atomic.Int64

	refresh sync.Mutex // serializes statfs calls
}

// NewSpaceFloor returns the floor of min free bytes for the log directory dir (0 disables it).
func NewSpaceFloor(dir string, min int64) *SpaceFloor {
	return newSpaceFloor(dir, min, DiskUsage, time.Now)
}

// newSpaceFloor is NewSpaceFloor with the statfs and the clock injected (tests).
func newSpaceFloor(dir string, min int64, usage func(string) (int64, int64, error), now func() time.Time) *SpaceFloor {
	f := &SpaceFloor{dir: dir, min: min, usage: usage, now: now}
	f.near.Store(true) // the first admission calls statfs
	return f
}

// Dir is the log directory.
func (f *SpaceFloor) Dir() string { return f.dir }

// Min is the floor in bytes; 0 disables it.
func (f *SpaceFloor) Min() int64 {
	if f == nil {
		return 0
	}
	return f.min
}

// admit charges an append of n bytes to the floor, returning a *DiskFullError (cause
// ErrBelowFloor) when it would leave less than the floor free.
func (f *SpaceFloor) admit(n int64) error {
	if f.Min() <= 0 {
		return nil
	}
	if f.now().UnixNano() < f.deadline.Load() {
		if f.budget.Add(-n) >= 0 {
			return nil
		}
		f.budget.Add(n) // not admitted
		if f.near.Load() {
			return f.belowErr()
		}
	}
	f.refresh.Lock()
	defer f.refresh.Unlock()
	if f.now().UnixNano() >= f.deadline.Load() || !f.near.Load() && f.budget.Load() < n {
		f.statfs()
	}
	if f.budget.Add(-n) >= 0 {
		return nil
	}
	f.budget.Add(n)
	return f.belowErr()
}

// Check calls statfs now and returns a *DiskFullError (cause ErrBelowFloor) if the free space
// is below the floor: for operations that are about to place new data in the directory
// (creating partitions), which are rare enough not to need the cached state.
func (f *SpaceFloor) Check() error {
	if f.Min() <= 0 {
		return nil
	}
	f.refresh.Lock()
	defer f.refresh.Unlock()
	if f.statfs() < f.min {
		return f.belowErr()
	}
	return nil
}

// statfs refreshes the free space, the budget and the deadline, and returns the free space it
// judges by. Holds f.refresh.
func (f *SpaceFloor) statfs() int64 {
	_, free, err := f.usage(f.dir)
	if err != nil {
		// An unreadable filesystem cannot be judged: admit, and let the writes report errors.
		free = f.min + floorCheckBytes
		f.free.Store(-1)
	} else {
		f.free.Store(free)
	}
	room := free - f.min
	f.near.Store(room < floorCheckBytes)
	f.budget.Store(min(room, floorCheckBytes))
	f.deadline.Store(f.now().Add(floorCheckInterval).UnixNano())
	return free
}

func (f *SpaceFloor) belowErr() error {
	return &DiskFullError{Dir: f.dir, Free: f.free.Load(), Floor: f.min, Err: ErrBelowFloor}
}
