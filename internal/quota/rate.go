package quota

import (
	"math"
	"time"
)

// Config is how use is measured: quota.window.num samples of quota.window.size.seconds each
// (Kafka's defaults: 11 samples of 1 s).
type Config struct {
	Samples int
	Window  time.Duration
}

// DefaultConfig is Kafka's quota.window.num=11, quota.window.size.seconds=1.
var DefaultConfig = Config{Samples: 11, Window: time.Second}

// MaxThrottle is the bound Kafka puts on request-percentage and connection-rate throttle
// times: one sample window.
func (c Config) MaxThrottle() time.Duration { return c.Window }

// sample is one window of a Rate: the sum of the values recorded from start on.
type sample struct {
	start time.Time
	value float64
}

// Rate is Kafka's Rate over a SampledTotal: values are summed into Samples windows of Window
// each (a window starts with the first value recorded after the previous one is full); the
// rate is the sum of the windows not yet obsolete over the time they cover, which counts at
// least Samples-1 full windows so that a first burst is not measured over a few
// milliseconds. Not safe for concurrent use.
type Rate struct {
	cfg     Config
	samples []sample
	current int
}

// NewRate returns an empty rate measured with cfg.
func NewRate(cfg Config) *Rate {
	cfg.Samples = max(cfg.Samples, 1)
	if cfg.Window <= 0 {
		cfg.Window = DefaultConfig.Window
	}
	return &Rate{cfg: cfg}
}

// Record adds v at now.
func (r *Rate) Record(v float64, now time.Time) {
	s := r.currentSample(now)
	if now.Sub(s.start) >= r.cfg.Window {
		s = r.advance(now)
	}
	s.value += v
}

func (r *Rate) currentSample(now time.Time) *sample {
	if len(r.samples) == 0 {
		r.samples = append(r.samples, sample{start: now})
	}
	return &r.samples[r.current]
}

func (r *Rate) advance(now time.Time) *sample {
	r.current = (r.current + 1) % r.cfg.Samples
	if r.current >= len(r.samples) {
		r.samples = append(r.samples, sample{start: now})
	} else {
		r.samples[r.current] = sample{start: now}
	}
	return &r.samples[r.current]
}

// purge resets the samples that started a whole span (Samples windows) ago or more.
func (r *Rate) purge(now time.Time) {
	span := time.Duration(r.cfg.Samples) * r.cfg.Window
	for i := range r.samples {
		if now.Sub(r.samples[i].start) >= span {
			r.samples[i] = sample{start: now}
		}
	}
}

// WindowSize is the time the rate is measured over at now: from the oldest sample's start,
// and at least Samples-1 full windows plus the time into the current one (Kafka's
// Rate.windowSize).
func (r *Rate) WindowSize(now time.Time) time.Duration {
	r.purge(now)
	oldest := now
	for _, s := range r.samples {
		if s.start.Before(oldest) {
			oldest = s.start
		}
	}
	elapsed := now.Sub(oldest)
	full := int(elapsed / r.cfg.Window)
	if minFull := r.cfg.Samples - 1; full < minFull {
		elapsed += time.Duration(minFull-full) * r.cfg.Window
	}
	return elapsed
}

// Measure returns the rate at now, per second.
func (r *Rate) Measure(now time.Time) float64 {
	size := r.WindowSize(now) // purges first
	var total float64
	for _, s := range r.samples {
		total += s.value
	}
	if size <= 0 { // one sample, measured at the instant of its first record
		if total > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return total / size.Seconds()
}

// ThrottleTime is Kafka's QuotaUtils.throttleTime: how long a client whose measured rate is
// observed must wait for it to come down to limit, when the rate is measured over window:
// (observed - limit) / limit × window, rounded to the millisecond; 0 when within the limit.
func ThrottleTime(observed, limit float64, window time.Duration) time.Duration {
	if observed <= limit || limit <= 0 && observed <= 0 {
		return 0
	}
	if limit <= 0 {
		return window
	}
	ms := (observed - limit) / limit * float64(window.Milliseconds())
	if math.IsNaN(ms) || window <= 0 {
		return 0 // an infinite rate over no time: Kafka's Math.round(NaN)
	}
	// Kafka narrows the throttle to an int of milliseconds; a response carries an int32.
	return time.Duration(min(math.Round(ms), math.MaxInt32)) * time.Millisecond
}

// BoundedThrottleTime is ThrottleTime capped at max (Kafka's boundedThrottleTime, used for
// request-percentage and connection-creation-rate quotas).
func BoundedThrottleTime(observed, limit float64, window, max time.Duration) time.Duration {
	return min(ThrottleTime(observed, limit, window), max)
}
