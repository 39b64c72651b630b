package quota

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestResolvePrecedence(t *testing.T) {
	u, c, d := Named("alice"), Named("app"), DefaultName()
	levels := []struct {
		name string
		e    Entity
		key  Key
	}{
		{"users/alice/clients/app", Entity{User: u, ClientID: c}, Key{"alice", "app"}},
		{"users/alice/clients/<default>", Entity{User: u, ClientID: d}, Key{"alice", "app"}},
		{"users/alice", Entity{User: u}, Key{"alice", ""}},
		{"users/<default>/clients/app", Entity{User: d, ClientID: c}, Key{"alice", "app"}},
		{"users/<default>/clients/<default>", Entity{User: d, ClientID: d}, Key{"alice", "app"}},
		{"users/<default>", Entity{User: d}, Key{"alice", ""}},
		{"clients/app", Entity{ClientID: c}, Key{"", "app"}},
		{"clients/<default>", Entity{ClientID: d}, Key{"", "app"}},
	}
	// Level i is configured together with every less specific level: level i must win.
	for i, l := range levels {
		t.Run(l.name, func(t *testing.T) {
			tab := &Table{Quotas: map[Entity]Values{}}
			for j := i; j < len(levels); j++ {
				tab.Quotas[levels[j].e] = Values{ProducerByteRate: float64(100 + j)}
			}
			// Noise: other users, clients and keys never apply.
			tab.Quotas[Entity{User: Named("bob")}] = Values{ProducerByteRate: 1}
			tab.Quotas[Entity{ClientID: Named("other")}] = Values{ProducerByteRate: 2}
			tab.Quotas[Entity{User: u, ClientID: c}] = mergeValues(tab.Quotas[Entity{User: u, ClientID: c}], Values{ConsumerByteRate: 3})
			got := tab.Resolve(ProducerByteRate, "alice", "app")
			want := Resolved{Key: l.key, Limit: float64(100 + i), OK: true}
			if got != want {
				t.Fatalf("Resolve = %+v, want %+v", got, want)
			}
			var r Resolver
			if got := r.Resolve(tab, ProducerByteRate, "alice", "app"); got != want {
				t.Fatalf("cached Resolve = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		tab := &Table{Quotas: map[Entity]Values{{User: u}: {ConsumerByteRate: 5}}}
		got := tab.Resolve(ProducerByteRate, "alice", "app")
		if got.OK || got.Key != (Key{"", "app"}) {
			t.Fatalf("Resolve = %+v, want no quota keyed by the client id", got)
		}
	})
}

func mergeValues(a, b Values) Values {
	out := Values{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestResolverFollowsTables(t *testing.T) {
	var r Resolver
	t1 := &Table{Quotas: map[Entity]Values{{ClientID: DefaultName()}: {RequestPercentage: 10}}}
	t2 := &Table{Quotas: map[Entity]Values{{ClientID: DefaultName()}: {RequestPercentage: 20}}}
	if got := r.Resolve(t1, RequestPercentage, "u", "c").Limit; got != 10 {
		t.Fatalf("t1: %v", got)
	}
	if got := r.Resolve(t2, RequestPercentage, "u", "c").Limit; got != 20 {
		t.Fatalf("t2: %v (the cache kept the old table's answer)", got)
	}
}

func TestIPConnectionRate(t *testing.T) {
	tab := &Table{Quotas: map[Entity]Values{
		{IP: Named("10.0.0.1")}:        {ConnectionCreationRate: 5},
		{IP: Named("db.example")}:      {ConnectionCreationRate: 7},
		{IP: Named("10.0.0.9")}:        {ConnectionCreationRate: 9},
		{IP: Named("other.example")}:   {ProducerByteRate: 1}, // not an ip key: no host to resolve
		{IP: DefaultName()}:            {ConnectionCreationRate: 50},
		{User: Named("alice.example")}: {ProducerByteRate: 1},
	}}
	for _, tc := range []struct {
		ip, host string
		want     float64
	}{{"10.0.0.1", "", 5}, {"10.0.0.2", "", 50}, {"10.0.0.2", "db.example", 7}, {"10.0.0.9", "db.example", 9}, {"10.0.0.3", "nohost.example", 50}} {
		if got, ok := tab.IPConnectionRate(tc.ip, tc.host); !ok || got != tc.want {
			t.Errorf("%s (%q): %v %v, want %v", tc.ip, tc.host, got, ok, tc.want)
		}
	}
	if _, ok := (&Table{}).IPConnectionRate("10.0.0.1", ""); ok {
		t.Error("an empty table has an ip quota")
	}
	if got := tab.IPHostNames(); !reflect.DeepEqual(got, []string{"db.example"}) {
		t.Errorf("host names %v", got)
	}
}

func TestRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type rec struct {
		at int
		v  float64
	}
	for _, tc := range []struct {
		name       string
		cfg        Config
		recs       []rec
		at         int
		wantWindow time.Duration
		wantRate   float64
	}{
		// One value: measured over samples-1 full windows, not over no time at all.
		{"first", DefaultConfig, []rec{{0, 1000}}, 0, 10 * time.Second, 100},
		{"into the window", DefaultConfig, []rec{{0, 1000}, {500, 1000}}, 500, 10500 * time.Millisecond, 2000 / 10.5},
		// Eleven windows of 1 s: the oldest starts at 0, so the span is 10.5 s.
		{"full span", DefaultConfig, func() []rec {
			var rs []rec
			for i := 0; i < 11; i++ {
				rs = append(rs, rec{i * 1000, 100})
			}
			return rs
		}(), 10500, 10500 * time.Millisecond, 1100 / 10.5},
		// A sample a whole span old is obsolete.
		{"obsolete", DefaultConfig, []rec{{0, 1e6}, {11000, 100}}, 11000, 10 * time.Second, 10},
		{"two samples", Config{Samples: 2, Window: time.Second}, []rec{{0, 300}, {1000, 300}}, 1500, 1500 * time.Millisecond, 400},
		// One sample: no padding (samples-1 = 0 full windows), measured over the time elapsed.
		{"one sample", Config{Samples: 1, Window: time.Second}, []rec{{0, 300}, {500, 300}}, 500, 500 * time.Millisecond, 1200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRate(tc.cfg)
			for _, x := range tc.recs {
				r.Record(x.v, ms(x.at))
			}
			if got := r.WindowSize(ms(tc.at)); got != tc.wantWindow {
				t.Errorf("window %v, want %v", got, tc.wantWindow)
			}
			if got := r.Measure(ms(tc.at)); math.Abs(got-tc.wantRate) > 1e-9 {
				t.Errorf("rate %v, want %v", got, tc.wantRate)
			}
		})
	}
}

func TestThrottleTime(t *testing.T) {
	for _, tc := range []struct {
		observed, limit float64
		window, max     time.Duration
		want            time.Duration
	}{
		{50, 50, 2 * time.Second, 0, 0},
		{40, 50, 2 * time.Second, 0, 0},
		{100, 50, 2 * time.Second, 0, 2 * time.Second},                     // Kafka's testThrottleTimeObservedRateAboveQuota
		{190.5, 100, 10500 * time.Millisecond, 0, 9503 * time.Millisecond}, // rounded to the ms
		{100, 50, 2 * time.Second, time.Second, time.Second},               // bounded
		{60, 50, 10 * time.Second, time.Second, time.Second},
		{51, 50, 10 * time.Second, time.Second, 200 * time.Millisecond},
		{math.Inf(1), 50, 0, 0, 0},
		{1e15, 1, 10 * time.Second, 0, math.MaxInt32 * time.Millisecond},
	} {
		var got time.Duration
		if tc.max > 0 {
			got = BoundedThrottleTime(tc.observed, tc.limit, tc.window, tc.max)
		} else {
			got = ThrottleTime(tc.observed, tc.limit, tc.window)
		}
		if got != tc.want {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
}

func TestSensorsRecordAndThrottle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := Resolved{Key: Key{ClientID: "c"}, Limit: 100, OK: true}
	for _, tc := range []struct {
		name    string
		bounded bool
		want    time.Duration
	}{
		// 2000 bytes over 10 s = 200/s against 100/s: (200-100)/100 × 10 s.
		{"byte rate", false, 10 * time.Second},
		{"request quota bounded at one window", true, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSensors(DefaultConfig, tc.bounded)
			if got := s.RecordAndThrottle(q, 1000, t0); got != 0 {
				t.Fatalf("within quota: throttled %v", got)
			}
			if got := s.RecordAndThrottle(q, 1000, t0); got != tc.want {
				t.Fatalf("over quota: throttle %v, want %v", got, tc.want)
			}
			if got := s.RecordAndThrottle(Resolved{Key: Key{ClientID: "free"}}, 1e9, t0); got != 0 || s.Len() != 1 {
				t.Fatalf("no quota: throttle %v, %d sensors", got, s.Len())
			}
		})
	}
}

func TestSensorsShareByKey(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := NewSensors(DefaultConfig, false)
	// /users/alice: both of alice's clients share one sensor.
	tab := &Table{Quotas: map[Entity]Values{{User: Named("alice")}: {ProducerByteRate: 100}}}
	s.RecordAndThrottle(tab.Resolve(ProducerByteRate, "alice", "a"), 1000, t0)
	if got := s.RecordAndThrottle(tab.Resolve(ProducerByteRate, "alice", "b"), 1000, t0); got == 0 {
		t.Fatal("the user's second client was not throttled by the user's shared quota")
	}
	// /clients/<default>: each client id has its own.
	tab = &Table{Quotas: map[Entity]Values{{ClientID: DefaultName()}: {ProducerByteRate: 100}}}
	s.RecordAndThrottle(tab.Resolve(ProducerByteRate, "alice", "x"), 1000, t0)
	if got := s.RecordAndThrottle(tab.Resolve(ProducerByteRate, "alice", "y"), 1000, t0); got != 0 {
		t.Fatalf("a default client quota is shared across client ids: throttled %v", got)
	}
}

func TestSensorsExpire(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := NewSensors(DefaultConfig, false)
	q := func(c string) Resolved { return Resolved{Key: Key{ClientID: c}, Limit: 1, OK: true} }
	s.RecordAndThrottle(q("old"), 1, t0)
	s.RecordAndThrottle(q("recent"), 1, t0.Add(SensorIdle-time.Minute))
	s.RecordAndThrottle(q("new"), 1, t0.Add(SensorIdle+time.Minute))
	if s.Len() != 2 || s.Measure(Key{ClientID: "old"}, t0.Add(SensorIdle+time.Minute)) != 0 {
		t.Fatalf("%d sensors; the idle one should be gone", s.Len())
	}
}

func TestMaxValueInWindow(t *testing.T) {
	s := NewSensors(DefaultConfig, false)
	if v, ok := s.MaxValueInWindow(Resolved{Limit: 1000, OK: true}); !ok || v != 10000 {
		t.Fatalf("got %v %v", v, ok)
	}
	if _, ok := s.MaxValueInWindow(Resolved{}); ok {
		t.Fatal("no quota is bounded")
	}
}

// TestGreedyClientHeldToQuota plays a client that sends 16 KiB whenever it is not throttled
// (a fake clock, 2 ms per round trip) against a 512 KiB/s quota measured over 2 samples of
// 1 s: over any 8 s after its first throttle it gets the quota within 20%. (With the default
// 11 samples the first burst is 10 s of quota and the flow is bursty for 11 s periods, as in
// Kafka: the long-run rate is the quota, not each few seconds' rate.)
func TestGreedyClientHeldToQuota(t *testing.T) {
	const limit = 512 << 10
	s := NewSensors(Config{Samples: 2, Window: time.Second}, false)
	q := Resolved{Key: Key{ClientID: "c"}, Limit: limit, OK: true}
	now, t0 := time.Unix(0, 0), time.Unix(0, 0)
	type point struct {
		at    time.Duration
		total float64
	}
	var points []point
	var total float64
	first := time.Duration(-1)
	for now.Sub(t0) < 40*time.Second {
		th := s.RecordAndThrottle(q, 16<<10, now)
		total += 16 << 10
		points = append(points, point{now.Sub(t0), total})
		if th > 0 && first < 0 {
			first = now.Sub(t0)
		}
		now = now.Add(th + 2*time.Millisecond)
	}
	if first < 0 {
		t.Fatal("never throttled")
	}
	totalAt := func(d time.Duration) float64 {
		v := 0.0
		for _, p := range points {
			if p.at <= d {
				v = p.total
			}
		}
		return v
	}
	const span = 8 * time.Second
	for from := first; from+span < 40*time.Second; from += 100 * time.Millisecond {
		rate := (totalAt(from+span) - totalAt(from)) / span.Seconds()
		if rate < 0.8*limit || rate > 1.2*limit {
			t.Fatalf("from %v: %.0f B/s, quota %d", from, rate, limit)
		}
	}
}
