package perf

import (
	"context"
	"time"
)

// minSleep is the smallest lead over the schedule worth sleeping for: shorter sleeps are not
// honored precisely by the OS timer, so the limiter lets a few records through early and sleeps
// once it is this far ahead. The average rate is exact either way.
const minSleep = time.Millisecond

// Limiter paces a loop at a fixed number of events per second, measured from the first Wait:
// event n (counting from 0) is let through no earlier than start + n/rate. A loop that falls
// behind is not made to wait until it has caught up, so the long-run rate never exceeds the
// limit and bursts are no longer than what was missed. A rate <= 0 means no limit.
type Limiter struct {
	rate  float64
	n     int64
	start time.Time
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

// NewLimiter returns a limiter for rate events per second (<= 0: unlimited).
func NewLimiter(rate float64) *Limiter {
	return &Limiter{rate: rate, now: time.Now, sleep: sleepCtx}
}

// Unlimited reports whether the limiter never waits.
func (l *Limiter) Unlimited() bool { return l.rate <= 0 }

// Wait blocks until the next event is due or ctx ends (then it returns ctx's error).
func (l *Limiter) Wait(ctx context.Context) error {
	if l.rate <= 0 {
		return ctx.Err()
	}
	now := l.now()
	if l.n == 0 {
		l.start = now
	}
	due := l.start.Add(time.Duration(float64(l.n) / l.rate * float64(time.Second)))
	l.n++
	if ahead := due.Sub(now); ahead >= minSleep {
		return l.sleep(ctx, ahead)
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
