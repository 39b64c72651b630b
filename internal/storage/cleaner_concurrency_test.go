package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hookThrottler runs fn at its at-th Wait: a deterministic point in the middle of a pass.
type hookThrottler struct {
	calls, at int
	fn        func()
}

func (h *hookThrottler) Wait(ctx context.Context, _ int64) error {
	if h.calls++; h.calls == h.at {
		h.fn()
	}
	return ctx.Err()
}

// TestCleanAbandoned changes the log in the middle of a pass: the pass must give up with
// ErrCleanAborted (or the context's error), leave no cleaned file, and the log must read as
// the change left it.
func TestCleanAbandoned(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name   string
		change func(tl *testLog)
		want   error
	}{
		{"follower truncation", func(tl *testLog) {
			if err := tl.TruncateTo(30); err != nil {
				t.Fatal(err)
			}
		}, ErrCleanAborted},
		{"DeleteRecords drops the first segments", func(tl *testLog) {
			if _, err := tl.DeleteRecordsBefore(70); err != nil {
				t.Fatal(err)
			}
		}, ErrCleanAborted},
		{"closed", func(tl *testLog) { tl.Close() }, ErrCleanAborted},
		{"context canceled", func(*testLog) { cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := openTest(t, compactConfig())
			for range 4 {
				tl.appendUpdates(10, 3, 5, 0, 1000)
				rollNow(t, tl)
			}
			h := &hookThrottler{at: 15, fn: func() { tc.change(tl) }}
			_, err := tl.Clean(ctx, CleanOptions{UpperBound: math.MaxInt64, DedupeBufferBytes: 1 << 16, Throttler: h})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Clean = %v, want %v", err, tc.want)
			}
			if left, _ := filepath.Glob(filepath.Join(tl.dir, "*.cleaned")); len(left) > 0 {
				t.Fatalf("cleaned files left: %v", left)
			}
			if tc.name == "closed" {
				tl.reopen()
			}
			_, before := tl.allRecords()
			tl.restart()
			_, after := tl.allRecords()
			checkSameLatest(t, before, after)
			if st := tl.clean(0); st.EndOffset != tl.view.Load().active.seg.base {
				t.Fatalf("a later pass: %+v", st)
			}
			_, again := tl.allRecords()
			checkSameLatest(t, before, again)
		})
	}
}

// TestCleanConcurrentAppendsAndReads cleans over and over while a producer appends and readers
// read, through a file cache of 8 descriptors and a short file.delete.delay.ms (run with
// -race): appends never fail, every read returns whole valid batches reaching the offset asked
// for, and the log ends with the last value written for every key.
func TestCleanConcurrentAppendsAndReads(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 4 << 10
	cfg.FileDeleteDelayMs = 5
	tl := &testLog{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(1_700_000_000_000), logs: &logBuffer{}, cache: NewFileCache(8)}
	tl.reopen()
	defer tl.Close()
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		lastVal = map[string]string{}
		errs    = make(chan error, 16)
	)
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			k, v := fmt.Sprintf("k%d", i%20), fmt.Sprintf("v%d", i)
			if _, err := tl.AppendAsLeader(makeKeyedBatch(kbatch{recs: []rec{keyed(k, v, int64(i))}}), 0); err != nil {
				errs <- fmt.Errorf("append %d: %w", i, err)
				return
			}
			mu.Lock()
			lastVal[k] = v
			mu.Unlock()
			if i%200 == 199 {
				tl.MaybeRoll()
			}
		}
	})
	for r := range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				end := tl.LogEndOffset()
				if end == 0 {
					continue
				}
				off := max(int64(i*7919+r)%end, tl.LogStartOffset())
				if r == 1 {
					reg, ok, err := tl.ReadRegion(off, 4096, end, true)
					if err != nil {
						errs <- fmt.Errorf("ReadRegion(%d): %w", off, err)
						return
					}
					if ok {
						buf := make([]byte, reg.Len)
						_, err := reg.File.ReadAt(buf, reg.Pos)
						reg.Release()
						if err != nil && len(buf) > 0 {
							errs <- fmt.Errorf("reading a region at %d: %w", off, err)
							return
						}
					}
					continue
				}
				b, err := tl.Read(off, 4096, end, true)
				if err != nil {
					errs <- fmt.Errorf("Read(%d): %w", off, err)
					return
				}
				hs := batchesOf(t, b)
				if len(hs) == 0 || hs[len(hs)-1].LastOffset() < off {
					errs <- fmt.Errorf("Read(%d) gave %d batches not reaching it", off, len(hs))
					return
				}
			}
		})
	}
	passes, swapped := 0, 0
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && len(errs) == 0 {
		st, err := tl.Clean(context.Background(), CleanOptions{UpperBound: tl.LogEndOffset(), DedupeBufferBytes: 4 << 10})
		if err != nil && !errors.Is(err, ErrCleanAborted) {
			t.Fatalf("Clean: %v", err)
		}
		passes++
		if st.BytesWritten > 0 {
			swapped++
		}
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if swapped == 0 {
		t.Fatalf("%d passes, none rewrote a segment", passes)
	}
	check := func() {
		_, rs := tl.allRecords()
		got := latest(rs)
		for k, v := range lastVal {
			if got[k].value != v {
				t.Fatalf("key %s: %q, want %q", k, got[k].value, v)
			}
		}
	}
	check()
	tl.restart()
	check()
	t.Logf("%d passes, %d rewrote segments; %d segments", passes, swapped, len(tl.segmentFiles()))
}
