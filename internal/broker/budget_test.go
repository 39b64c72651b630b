package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// acquireAsync starts an acquire and returns the channel its result arrives on.
func acquireAsync(ctx context.Context, b *requestBudget, held, n int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := b.acquire(ctx, held, n)
		done <- err
	}()
	return done
}

// waitForWaiters polls until the budget has n waiting readers.
func waitForWaiters(t *testing.T, b *requestBudget, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		got := len(b.waiters)
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustWait(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s: acquired (err %v) instead of waiting", what, err)
	default:
	}
}

func mustGet(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting", what)
	}
}

// TestRequestBudget: growth beyond queued.max.request.bytes waits rather than happens, in
// arrival order, and a frame whose growth cannot fit still gets it when every byte in use
// belongs to waiting readers (no deadlock).
func TestRequestBudget(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, b *requestBudget)
	}{
		{"waits while spent, granted on release", func(t *testing.T, b *requestBudget) {
			mustGet(t, acquireAsync(ctx, b, 0, 60), "first")
			second := acquireAsync(ctx, b, 0, 60)
			waitForWaiters(t, b, 1)
			mustWait(t, second, "second")
			if b.used != 60 {
				t.Fatalf("used %d, want 60", b.used)
			}
			b.release(60)
			mustGet(t, second, "second after release")
		}},
		{"arrival order: a small growth waits behind a large one", func(t *testing.T, b *requestBudget) {
			mustGet(t, acquireAsync(ctx, b, 0, 50), "reading frame")
			large := acquireAsync(ctx, b, 0, 80)
			waitForWaiters(t, b, 1)
			small := acquireAsync(ctx, b, 0, 10) // would fit, but someone waits first
			waitForWaiters(t, b, 2)
			mustWait(t, small, "small")
			b.release(50)
			mustGet(t, large, "large")
			mustGet(t, small, "small")
		}},
		{"frames that all wait: the oldest goes past the bound", func(t *testing.T, b *requestBudget) {
			mustGet(t, acquireAsync(ctx, b, 0, 50), "a")
			mustGet(t, acquireAsync(ctx, b, 0, 50), "b")
			a := acquireAsync(ctx, b, 50, 50)
			waitForWaiters(t, b, 1)
			mustWait(t, a, "a while b reads")
			bb := acquireAsync(ctx, b, 50, 50)
			mustGet(t, a, "a once b waits too")
			waitForWaiters(t, b, 1)
			mustWait(t, bb, "b while a reads past the bound")
			b.release(100) // a's frame handled
			mustGet(t, bb, "b")
		}},
		{"a frame larger than the bound, alone", func(t *testing.T, b *requestBudget) {
			mustGet(t, acquireAsync(ctx, b, 0, 150), "alone")
		}},
		{"a cancelled waiter leaves its place", func(t *testing.T, b *requestBudget) {
			mustGet(t, acquireAsync(ctx, b, 0, 90), "holder")
			cctx, cancel := context.WithCancel(ctx)
			big := acquireAsync(cctx, b, 0, 50)
			waitForWaiters(t, b, 1)
			small := acquireAsync(ctx, b, 0, 10)
			waitForWaiters(t, b, 2)
			cancel()
			if err := <-big; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled: %v", err)
			}
			mustGet(t, small, "small once the big one left")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newRequestBudget(100)
			before := RequestReadersWaiting()
			tc.run(t, b)
			if got := RequestReadersWaiting(); got != before {
				t.Fatalf("%d readers still counted as waiting", got-before)
			}
		})
	}
}

func TestFrameClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, 0}, {1, 0}, {512, 0}, {513, 1}, {1024, 1}, {1025, 2}, {4 << 20, 13}, {1 << 30, 21},
	} {
		if got := frameClass(tc.n); got != tc.class {
			t.Errorf("frameClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
		if size := 1 << (tc.class + minFrameClass); size < tc.n {
			t.Errorf("class %d (%d bytes) too small for %d", tc.class, size, tc.n)
		}
	}
}
