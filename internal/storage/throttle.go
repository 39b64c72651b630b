package storage

import (
	"context"
	"math"
	"sync"
	"time"
)

// Throttler bounds the cleaner's I/O (log.cleaner.io.max.bytes.per.second): Log.Clean calls
// Wait with the bytes it read or wrote since its last call, and Wait returns once that much
// more I/O is allowed, or with the context's error.
type Throttler interface {
	Wait(ctx context.Context, bytes int64) error
}

// TokenBucket is a Throttler of rate bytes per second shared by all the cleaner goroutines
// of a broker, with a burst of a tenth of a second's bytes: I/O beyond the tokens saved puts
// the bucket in debt, and Wait sleeps until the debt is paid.
type TokenBucket struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewTokenBucket returns a throttler of bytesPerSecond; a rate that is not positive and
// finite (Kafka's default is Double.MaxValue) does not throttle.
func NewTokenBucket(bytesPerSecond float64) *TokenBucket {
	return newTokenBucket(bytesPerSecond, time.Now)
}

func newTokenBucket(bytesPerSecond float64, now func() time.Time) *TokenBucket {
	b := &TokenBucket{rate: bytesPerSecond, burst: bytesPerSecond / 10, now: now}
	b.tokens, b.last = b.burst, now()
	return b
}

// reserve takes n bytes from the bucket and returns how long the caller must wait for them.
func (b *TokenBucket) reserve(n int64) time.Duration {
	if !(b.rate > 0) || math.IsInf(b.rate, 1) || b.rate >= math.MaxFloat64 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// Wait implements Throttler.
func (b *TokenBucket) Wait(ctx context.Context, bytes int64) error {
	d := b.reserve(bytes)
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-time.After(d): // collected once stopped or fired (Go 1.23 timers)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
