package quota

import (
	"sync"
	"time"
)

// SensorIdle is how long a sensor nobody records into is kept (Kafka's quota sensors expire
// after one hour of inactivity).
const SensorIdle = time.Hour

// Sensors measures one kind of client quota (produce bytes, fetch bytes, request time) per
// Key, as one of Kafka's ClientQuotaManagers: a rate per sensor key, created on first use
// and dropped after SensorIdle without a record. Safe for concurrent use.
type Sensors struct {
	cfg Config
	// bounded caps throttle times at one window (request quotas), as Kafka's
	// ClientRequestQuotaManager; byte-rate quotas are not capped.
	bounded bool
	mu      struct {
		sync.Mutex
		rates map[Key]*sensor
		// swept is when idle sensors were last looked for.
		swept time.Time
	}
}

type sensor struct {
	rate *Rate
	last time.Time
}

// NewSensors returns the sensors of one quota kind; bounded caps throttle times at one window.
func NewSensors(cfg Config, bounded bool) *Sensors {
	s := &Sensors{cfg: cfg, bounded: bounded}
	s.mu.rates = make(map[Key]*sensor)
	return s
}

// Config returns how use is measured.
func (s *Sensors) Config() Config { return s.cfg }

// RecordAndThrottle records v into the sensor of q at now and returns how long the client
// must be throttled: Kafka records the value whatever the outcome, then computes the throttle
// from the rate including it. A quota that does not apply records nothing.
func (s *Sensors) RecordAndThrottle(q Resolved, v float64, now time.Time) time.Duration {
	if !q.OK {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	sn := s.mu.rates[q.Key]
	if sn == nil {
		sn = &sensor{rate: NewRate(s.cfg)}
		s.mu.rates[q.Key] = sn
	}
	sn.last = now
	sn.rate.Record(v, now)
	observed := sn.rate.Measure(now)
	if observed <= q.Limit {
		return 0
	}
	window := sn.rate.WindowSize(now)
	if s.bounded {
		return BoundedThrottleTime(observed, q.Limit, window, s.cfg.MaxThrottle())
	}
	return ThrottleTime(observed, q.Limit, window)
}

// Measure returns the current rate of a sensor (0 for one that does not exist).
func (s *Sensors) Measure(k Key, now time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.mu.rates[k]
	if sn == nil {
		return 0
	}
	return sn.rate.Measure(now)
}

// Len returns how many sensors exist.
func (s *Sensors) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.rates)
}

// MaxValueInWindow is the most a client with quota q may use in one measured span: Kafka's
// getMaxValueInQuotaWindow, limit × (samples - 1) × window seconds, which bounds a fetch
// response's size for a throttled consumer. With no quota it is unbounded (+Inf semantics:
// ok false).
func (s *Sensors) MaxValueInWindow(q Resolved) (float64, bool) {
	if !q.OK {
		return 0, false
	}
	return q.Limit * float64(s.cfg.Samples-1) * s.cfg.Window.Seconds(), true
}

// sweepLocked drops the sensors idle for SensorIdle, at most once a minute.
func (s *Sensors) sweepLocked(now time.Time) {
	sweepIdle(s.mu.rates, &s.mu.swept, now, func(sn *sensor) time.Time { return sn.last })
}

// sweepIdle drops the entries of m whose last record is SensorIdle old, at most once a minute
// (swept is when it last looked).
func sweepIdle[V any](m map[Key]V, swept *time.Time, now time.Time, last func(V) time.Time) {
	if now.Sub(*swept) < time.Minute {
		return
	}
	*swept = now
	for k, v := range m {
		if now.Sub(last(v)) >= SensorIdle {
			delete(m, k)
		}
	}
}
