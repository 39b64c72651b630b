package quota

import (
	"math"
	"sync"
	"time"
)

// Controller mutation quotas (KIP-599): the partitions a client creates (CreateTopics,
// CreatePartitions) and deletes (DeleteTopics) are measured with a token bucket rather than
// the sampled Rate of the other quotas, as Kafka's ControllerMutationQuotaManager does: the
// bucket refills at the quota (mutations per second) up to a burst of quota × Samples ×
// Window, a mutation takes its partitions out of it (the tokens may go below zero), and the
// quota is exhausted while the tokens are below zero; -tokens / quota is the time until they
// are back to zero, the throttle time.

// TokenBucket is Kafka's TokenBucket stat: the tokens left at the last update. A new bucket
// is full (Kafka's first refill covers the time since the epoch). Not safe for concurrent
// use.
type TokenBucket struct {
	tokens float64
	last   time.Time
}

// Burst is the most tokens a bucket holds for limit: limit × Samples × Window seconds.
func (c Config) Burst(limit float64) float64 {
	return limit * float64(c.Samples) * c.Window.Seconds()
}

// refill adds the tokens earned at limit per second since the last update, up to burst.
func (b *TokenBucket) refill(limit, burst float64, now time.Time) {
	if b.last.IsZero() {
		b.tokens = burst
	} else if el := now.Sub(b.last); el > 0 {
		b.tokens = min(burst, b.tokens+limit*el.Seconds())
	}
	if now.After(b.last) {
		b.last = now
	}
}

// Tokens returns the tokens left at now for a quota of limit.
func (b *TokenBucket) Tokens(c Config, limit float64, now time.Time) float64 {
	b.refill(limit, c.Burst(limit), now)
	return b.tokens
}

// Record takes v tokens out at now (a negative v gives them back), for a quota of limit.
func (b *TokenBucket) Record(c Config, limit, v float64, now time.Time) {
	burst := c.Burst(limit)
	b.refill(limit, burst, now)
	b.tokens = min(burst, b.tokens-v)
}

// tokenThrottle is Kafka's ControllerMutationQuotaManager.throttleTimeMs: the time until
// tokens below zero are back to zero at limit per second, rounded to the millisecond.
func tokenThrottle(tokens, limit float64) time.Duration {
	if tokens >= 0 {
		return 0
	}
	if limit <= 0 {
		return time.Duration(math.MaxInt32) * time.Millisecond
	}
	ms := min(math.Round(-tokens/limit*1000), math.MaxInt32)
	return time.Duration(ms) * time.Millisecond
}

// MutationSensors holds the token buckets of the controller_mutation_rate quota per sensor
// key (Kafka's ControllerMutationQuotaManager), created on first use and dropped after
// SensorIdle without a record. Safe for concurrent use.
type MutationSensors struct {
	cfg Config
	mu  struct {
		sync.Mutex
		buckets map[Key]*bucketSensor
		swept   time.Time
	}
}

type bucketSensor struct {
	bucket TokenBucket
	last   time.Time
}

// NewMutationSensors returns the buckets of controller mutation quotas measured with cfg
// (controller.quota.window.num, controller.quota.window.size.seconds).
func NewMutationSensors(cfg Config) *MutationSensors {
	cfg.Samples = max(cfg.Samples, 1)
	if cfg.Window <= 0 {
		cfg.Window = DefaultConfig.Window
	}
	s := &MutationSensors{cfg: cfg}
	s.mu.buckets = make(map[Key]*bucketSensor)
	return s
}

// Config returns how mutations are measured.
func (s *MutationSensors) Config() Config { return s.cfg }

// bucketLocked returns the bucket of k, creating it.
func (s *MutationSensors) bucketLocked(k Key, now time.Time) *TokenBucket {
	s.sweepLocked(now)
	sn := s.mu.buckets[k]
	if sn == nil {
		sn = &bucketSensor{}
		s.mu.buckets[k] = sn
	}
	sn.last = now
	return &sn.bucket
}

// RecordStrict is Kafka's StrictControllerMutationQuota.record: when q's tokens are below zero
// at now the mutation is refused (ok false) with the time until they are back to zero;
// otherwise its partitions are taken out, whatever is left (a mutation that finds tokens is
// accepted whole, even when it takes them below zero). A quota that does not apply accepts
// everything and records nothing.
func (s *MutationSensors) RecordStrict(q Resolved, partitions float64, now time.Time) (throttle time.Duration, ok bool) {
	if !q.OK {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(q.Key, now)
	if tokens := b.Tokens(s.cfg, q.Limit, now); tokens < 0 {
		return tokenThrottle(tokens, q.Limit), false
	}
	b.Record(s.cfg, q.Limit, partitions, now)
	return 0, true
}

// RecordPermissive is Kafka's PermissiveControllerMutationQuota.record: the mutation is
// always accepted and its partitions taken out; the returned throttle is the time until the
// tokens are back to zero when that left them below.
func (s *MutationSensors) RecordPermissive(q Resolved, partitions float64, now time.Time) time.Duration {
	if !q.OK {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(q.Key, now)
	b.Record(s.cfg, q.Limit, partitions, now)
	return tokenThrottle(b.tokens, q.Limit)
}

// Unrecord gives back the partitions of a mutation that was accepted by the quota but then
// failed (Kafka checks a topic before it charges the quota, so a refused topic costs
// nothing).
func (s *MutationSensors) Unrecord(q Resolved, partitions float64, now time.Time) {
	if !q.OK {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bucketLocked(q.Key, now).Record(s.cfg, q.Limit, -partitions, now)
}

// Tokens returns the tokens q's bucket holds at now (a full burst for one not yet used).
func (s *MutationSensors) Tokens(q Resolved, now time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn := s.mu.buckets[q.Key]; sn != nil {
		return sn.bucket.Tokens(s.cfg, q.Limit, now)
	}
	return s.cfg.Burst(q.Limit)
}

// Len returns how many buckets exist.
func (s *MutationSensors) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.buckets)
}

// sweepLocked drops the buckets idle for SensorIdle (full again by then unless one mutation
// took more than an hour of quota), at most once a minute.
func (s *MutationSensors) sweepLocked(now time.Time) {
	sweepIdle(s.mu.buckets, &s.mu.swept, now, func(sn *bucketSensor) time.Time { return sn.last })
}
