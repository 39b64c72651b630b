package broker

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/internal/quota"
)

// Host-name ip quota entities. Kafka's controller takes an ip entity that names a host it can
// resolve, and its brokers apply the entity's connection_creation_rate to the address the name
// resolves to (ClientQuotaMetadataManager, InetAddress.getByName when the record is applied).
// Here a hostQuotas resolves the host names of each new quota table in a goroutine of its own,
// outside the accept path, and publishes which host each address belongs to; the accept loop
// reads that map through an atomic pointer and takes the quota's value from the current table,
// so a changed or removed quota applies at once and only a newly named host waits for its
// resolution. Every address a name resolves to gets its quota (Kafka uses the first).

const (
	// hostResolveTimeout bounds one host name's lookup.
	hostResolveTimeout = 2 * time.Second
	// hostCacheTTL is how long a lookup (or its failure) is reused for later tables.
	hostCacheTTL = time.Minute
	// hostCacheMax bounds the cache of lookups; beyond it, the names no table still names
	// are dropped.
	hostCacheMax = 1024
)

// hostQuotas follows the host names of the ip quota entities.
type hostQuotas struct {
	ctx    context.Context // the broker's: ends lookups when it closes
	lookup func(ctx context.Context, host string) ([]string, error)
	log    func(msg string, args ...any)
	// byAddr maps an address (net.IP's String) to the host-name entity it resolves from.
	byAddr atomic.Pointer[map[string]string]

	mu struct {
		sync.Mutex
		seen    *quota.Table // the table last handed to follow
		pending *quota.Table // the table the resolver goroutine is to resolve next
		running bool         // a resolver goroutine runs
		cache   map[string]hostLookup
	}
}

type hostLookup struct {
	addrs []string
	at    time.Time
}

func newHostQuotas(ctx context.Context, log func(string, ...any)) *hostQuotas {
	h := &hostQuotas{ctx: ctx, log: log, lookup: net.DefaultResolver.LookupHost}
	h.mu.cache = map[string]hostLookup{}
	return h
}

// hostOf is the host-name entity addr resolves from, "" when none.
func (h *hostQuotas) hostOf(addr string) string {
	if h == nil {
		return ""
	}
	if m := h.byAddr.Load(); m != nil {
		return (*m)[addr]
	}
	return ""
}

// follow notes the current quota table (cheap when unchanged: a pointer comparison) and, when
// it differs and names hosts (or did), starts resolving them unless a resolver already runs,
// which then resolves the newest table next. It never waits for a lookup.
func (h *hostQuotas) follow(t *quota.Table) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t == h.mu.seen {
		return
	}
	h.mu.seen = t
	if len(t.IPHostNames()) == 0 && h.byAddr.Load() == nil {
		return
	}
	h.mu.pending = t
	if !h.mu.running {
		h.mu.running = true
		go h.run()
	}
}

// run resolves pending tables until none is left.
func (h *hostQuotas) run() {
	for {
		h.mu.Lock()
		t := h.mu.pending
		h.mu.pending = nil
		if t == nil {
			h.mu.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		h.resolve(t.IPHostNames())
	}
}

// resolve looks up names (through the cache) and publishes the addresses' hosts; an address
// of two names goes to the first in order.
func (h *hostQuotas) resolve(names []string) {
	if len(names) == 0 {
		h.byAddr.Store(nil)
		return
	}
	byAddr := map[string]string{}
	for _, name := range names {
		for _, a := range h.addrsOf(name) {
			if _, taken := byAddr[a]; !taken {
				byAddr[a] = name
			}
		}
	}
	h.byAddr.Store(&byAddr)
	h.trimCache(names)
}

// addrsOf are name's addresses, from the cache when looked up less than hostCacheTTL ago.
func (h *hostQuotas) addrsOf(name string) []string {
	h.mu.Lock()
	c, ok := h.mu.cache[name]
	h.mu.Unlock()
	if ok && time.Since(c.at) < hostCacheTTL {
		return c.addrs
	}
	ctx, cancel := context.WithTimeout(h.ctx, hostResolveTimeout)
	found, err := h.lookup(ctx, name)
	cancel()
	if err != nil {
		h.log("cannot resolve the host of an ip quota entity; its connection_creation_rate applies to no address", "host", name, "err", err)
	}
	var addrs []string
	for _, a := range found {
		if ip := net.ParseIP(a); ip != nil {
			addrs = append(addrs, ip.String())
		}
	}
	h.mu.Lock()
	h.mu.cache[name] = hostLookup{addrs: addrs, at: time.Now()}
	h.mu.Unlock()
	return addrs
}

// trimCache keeps the cache within hostCacheMax by dropping names not in names (the current
// table's, which it always keeps).
func (h *hostQuotas) trimCache(names []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.mu.cache) <= hostCacheMax {
		return
	}
	keep := make(map[string]hostLookup, len(names))
	for _, n := range names {
		if c, ok := h.mu.cache[n]; ok {
			keep[n] = c
		}
	}
	h.mu.cache = keep
}
