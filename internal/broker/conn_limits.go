package broker

import (
	"context"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

// connLimits are the broker's connection limits on its client listeners (Kafka's
// ConnectionQuotas; the controller listener is not limited): max.connections and
// listener.name.<l>.max.connections make the accept loop wait for a slot; the broker-wide and
// listener max.connection.creation.rate delay accepts; max.connections.per.ip (and its
// overrides) closes the connection beyond it at once; an ip's connection_creation_rate quota
// closes a connection over it after the throttle time. The inter-broker listener is not held
// to max.connections (nor the broker-wide rate) when there are other listeners, so brokers
// can always reach each other.
type connLimits struct {
	// limits and perIPOverride change at run time (reconfigure) under mu.
	limits config.ConnectionLimits
	// perIPOverride is max.connections.per.ip.overrides by ip address (host names resolved
	// at start).
	perIPOverride map[string]int
	interBroker   string
	listeners     int // client listeners
	window        quota.Config
	// ipRates gives the connection_creation_rate quotas of ips (the client quota source).
	ipRates func() *quota.Table
	// hosts are the addresses of the ip entities that name hosts (nil: none followed).
	hosts *hostQuotas
	log   func(msg string, args ...any)
	// applied are the values last applied by reconfigure, by setting name; reconfigure runs
	// on one goroutine at a time (start-up, then the image publisher).
	applied map[string]string

	mu struct {
		sync.Mutex
		total      int
		perIP      map[string]int
		perLis     map[string]int
		brokerRate *quota.Rate
		lisRates   map[string]*quota.Rate
		ipRates    map[string]*ipRate
		swept      time.Time
		// changed is closed (and replaced) whenever a connection ends, waking accept loops
		// waiting for a slot.
		changed chan struct{}
	}
}

type ipRate struct {
	rate *quota.Rate
	last time.Time
}

const unlimited = math.MaxInt32

func newConnLimits(cfg *config.Server, window quota.Config, ipRates func() *quota.Table, log func(string, ...any)) *connLimits {
	l := &connLimits{limits: cfg.ConnectionLimits(), window: window, ipRates: ipRates, log: log,
		perIPOverride: map[string]int{}}
	if ib, ok := cfg.InterBrokerListener(); ok {
		l.interBroker = ib.Name
	}
	l.listeners = len(cfg.ClientListeners())
	l.perIPOverride = resolveOverrides(l.limits.PerIPOverrides, log)
	l.mu.perIP = map[string]int{}
	l.mu.perLis = map[string]int{}
	l.mu.lisRates = map[string]*quota.Rate{}
	l.mu.ipRates = map[string]*ipRate{}
	l.mu.brokerRate = quota.NewRate(window)
	l.mu.changed = make(chan struct{})
	return l
}

// resolveOverrides keys max.connections.per.ip.overrides by ip address, resolving host names.
func resolveOverrides(hosts map[string]int, log func(string, ...any)) map[string]int {
	out := make(map[string]int, len(hosts))
	for host, n := range hosts {
		if ip := net.ParseIP(host); ip != nil {
			out[ip.String()] = n
			continue
		}
		ips, err := net.LookupIP(host)
		if err != nil {
			log("max.connections.per.ip.overrides: cannot resolve host; its override is ignored", "host", host, "err", err)
		}
		for _, ip := range ips {
			out[ip.String()] = n
		}
	}
	return out
}

// connLimitsAtRunTime are the connection limits Kafka changes at run time (AlterConfigs of
// the broker resource, per broker or cluster-wide) and Samsa follows.
var connLimitsAtRunTime = []string{"max.connections", "max.connections.per.ip",
	"max.connections.per.ip.overrides", "max.connection.creation.rate"}

// reconfigure applies the connection limits value gives (run-time values over
// server.properties), waking the accept loops waiting for a slot. Unchanged values cost a
// comparison (it runs on every metadata image).
func (l *connLimits) reconfigure(value func(name string) string) {
	changed := false
	vals := make(map[string]string, len(connLimitsAtRunTime))
	for _, name := range connLimitsAtRunTime {
		vals[name] = value(name)
		changed = changed || l.applied == nil || vals[name] != l.applied[name]
	}
	if !changed {
		return
	}
	overrides, err := config.ParseIPOverrides(vals["max.connections.per.ip.overrides"])
	if err != nil {
		l.log("ignoring connection limits", "err", err)
		return
	}
	atoi := func(name string) int {
		n, err := strconv.Atoi(vals[name])
		if err != nil {
			return unlimited
		}
		return n
	}
	perIP := resolveOverrides(overrides, l.log)
	first := l.applied == nil
	l.applied = vals
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits.MaxConnections = atoi("max.connections")
	l.limits.MaxPerIP = atoi("max.connections.per.ip")
	l.limits.CreationRate = atoi("max.connection.creation.rate")
	l.limits.PerIPOverrides = overrides
	l.perIPOverride = perIP
	close(l.mu.changed)
	l.mu.changed = make(chan struct{})
	if !first {
		l.log("connection limits changed", "max.connections", l.limits.MaxConnections, "max.connections.per.ip", l.limits.MaxPerIP,
			"max.connections.per.ip.overrides", vals["max.connections.per.ip.overrides"], "max.connection.creation.rate", l.limits.CreationRate)
	}
}

// applyConnLimits follows the run-time connection limits of img: this broker's own, else
// the cluster-wide default, else server.properties (Kafka's DynamicBrokerConfig order).
func (b *Broker) applyConnLimits(img *metadata.Image) {
	b.connLimits.reconfigure(func(name string) string {
		if v, ok := img.DynamicBrokerValue(b.cfg.NodeID, name); ok {
			return v
		}
		v, _ := b.cfg.Value(name)
		return v
	})
}

// checkConnLimitChanges checks new connection limits as Kafka does: the overrides' format.
func checkConnLimitChanges(set map[string]string) error {
	if v, ok := set["max.connections.per.ip.overrides"]; ok {
		if _, err := config.ParseIPOverrides(v); err != nil {
			return kerrMsg(kerr.InvalidConfig, err.Error())
		}
	}
	return nil
}

// admission is the outcome of admit.
type admission int8

const (
	admitted admission = iota
	// admitClosed: the broker is closing.
	admitClosed
	// admitTooMany: over max.connections.per.ip; counted, so release it before closing.
	admitTooMany
	// admitThrottled: over the ip's connection_creation_rate; close after the delay
	// returned. Not counted.
	admitThrottled
)

// protected reports whether a listener is the inter-broker one kept out of max.connections.
func (l *connLimits) protected(listener string) bool {
	return listener == l.interBroker && l.listeners > 1
}

// slotLocked reports whether a new connection on listener fits max.connections and the
// listener's own bound.
func (l *connLimits) slotLocked(listener string) bool {
	if max, ok := l.limits.PerListener[listener]; ok && l.mu.perLis[listener] >= max {
		return false
	}
	return l.protected(listener) || l.mu.total < l.limits.MaxConnections
}

// recordRateLocked records a new connection in the broker-wide (unless protected) and
// listener creation rates, and returns how long its accept must wait: the longer of the
// two throttles, each capped at one window (Kafka's boundedThrottleTime).
func (l *connLimits) recordRateLocked(listener string, now time.Time) time.Duration {
	var d time.Duration
	if !l.protected(listener) && l.limits.CreationRate < unlimited {
		d = l.recordLocked(l.mu.brokerRate, float64(l.limits.CreationRate), now)
	}
	if r, ok := l.limits.ListenerCreationRate[listener]; ok && r < unlimited {
		lr := l.mu.lisRates[listener]
		if lr == nil {
			lr = quota.NewRate(l.window)
			l.mu.lisRates[listener] = lr
		}
		d = max(d, l.recordLocked(lr, float64(r), now))
	}
	return d
}

func (l *connLimits) recordLocked(r *quota.Rate, limit float64, now time.Time) time.Duration {
	r.Record(1, now)
	return quota.BoundedThrottleTime(r.Measure(now), limit, r.WindowSize(now), l.window.MaxThrottle())
}

// admit decides a new connection from ip on listener, as Kafka's ConnectionQuotas.inc: it
// waits (the accept loop with it) for the creation rates and for a slot, then checks the
// ip's creation-rate quota and max.connections.per.ip. An admitted or admitTooMany
// connection is counted until release.
func (l *connLimits) admit(ctx context.Context, listener, ip string) (admission, time.Duration) {
	l.mu.Lock()
	now := time.Now()
	end := now.Add(l.recordRateLocked(listener, now))
	for {
		remaining := time.Until(end)
		if remaining <= 0 && l.slotLocked(listener) {
			break
		}
		changed := l.mu.changed
		l.mu.Unlock()
		if !waitChangeOrTimeout(ctx, changed, remaining) {
			return admitClosed, 0
		}
		l.mu.Lock()
	}
	defer l.mu.Unlock()
	now = time.Now()
	if d := l.ipThrottleLocked(listener, ip, now); d > 0 {
		return admitThrottled, d
	}
	count := l.mu.perIP[ip]
	l.mu.perIP[ip] = count + 1
	l.mu.total++
	l.mu.perLis[listener]++
	max := l.limits.MaxPerIP
	if n, ok := l.perIPOverride[ip]; ok {
		max = n
	}
	if count >= max {
		l.log("rejected connection: address already has the configured maximum of connections (max.connections.per.ip)", "ip", ip, "max", max)
		return admitTooMany, 0
	}
	return admitted, 0
}

// waitChangeOrTimeout waits until changed is closed or d passes (d <= 0: only changed);
// false when ctx ends.
func waitChangeOrTimeout(ctx context.Context, changed <-chan struct{}, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-changed:
	case <-timeout:
	case <-ctx.Done():
		return false
	}
	return true
}

// ipThrottleLocked records a connection from ip against its connection_creation_rate
// quota (its own, else its host name's, else the default ip entity's), if it has one; over it, the connection is unrecorded everywhere (it is not
// accepted) and the delay before closing it is returned.
func (l *connLimits) ipThrottleLocked(listener, ip string, now time.Time) time.Duration {
	limit, ok := l.ipRates().IPConnectionRate(ip, l.hosts.hostOf(ip))
	if !ok {
		return 0
	}
	l.sweepLocked(now)
	r := l.mu.ipRates[ip]
	if r == nil {
		r = &ipRate{rate: quota.NewRate(l.window)}
		l.mu.ipRates[ip] = r
	}
	r.last = now
	d := l.recordLocked(r.rate, limit, now)
	if d <= 0 {
		return 0
	}
	r.rate.Record(-1, now)
	if !l.protected(listener) && l.limits.CreationRate < unlimited {
		l.mu.brokerRate.Record(-1, now)
	}
	if lr := l.mu.lisRates[listener]; lr != nil {
		lr.Record(-1, now)
	}
	return d
}

// sweepLocked drops the rates of ips idle for an hour, at most once a minute.
func (l *connLimits) sweepLocked(now time.Time) {
	if now.Sub(l.mu.swept) < time.Minute {
		return
	}
	l.mu.swept = now
	for ip, r := range l.mu.ipRates {
		if now.Sub(r.last) >= quota.SensorIdle {
			delete(l.mu.ipRates, ip)
		}
	}
}

// release uncounts a connection that ended (or was refused as admitTooMany) and wakes the
// accept loops waiting for a slot.
func (l *connLimits) release(listener, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.perIP[ip] <= 1 {
		delete(l.mu.perIP, ip)
	} else {
		l.mu.perIP[ip]--
	}
	l.mu.total--
	l.mu.perLis[listener]--
	close(l.mu.changed)
	l.mu.changed = make(chan struct{})
}

// remoteIP is the ip address of a connection's peer.
func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	return host
}

// admitConn applies the connection limits to a connection accepted on a client listener. It
// reports false when the connection was refused (closed now, or after its throttle) or the
// broker is closing; an admitted connection must be released when it ends.
func (b *Broker) admitConn(nc net.Conn, listener string) bool {
	ip := remoteIP(nc)
	res, delay := b.connLimits.admit(b.ctx, listener, ip)
	switch res {
	case admitted:
		return true
	case admitTooMany:
		b.connLimits.release(listener, ip)
		nc.Close()
	case admitThrottled:
		b.log.Debug("connection over the ip's connection_creation_rate quota; closing it after the throttle", "ip", ip, "delay", delay)
		time.AfterFunc(delay, func() { nc.Close() })
	default:
		nc.Close()
	}
	return false
}
