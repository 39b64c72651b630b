package quota

import (
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Key names the sensor a client's use is measured by: Kafka's quota metric tags (user,
// client-id). Which components are set depends on the entity whose quota is in force, as in
// Kafka's DefaultQuotaCallback: a quota of /users/<user>/clients/<client-id>,
// /users/<user>/clients/<default>, /users/<default>/clients/<client-id> or
// /users/<default>/clients/<default> is measured per (user, client id); one of /users/<user>
// or /users/<default> per user (all of a user's clients share it); one of
// /clients/<client-id> or /clients/<default> per client id (all users of that client id
// share it). A default quota therefore applies to each user (or client id) separately, as
// Kafka's does, never to all of them together.
type Key struct {
	User     string
	ClientID string
}

// Resolved is the quota of one kind in force for a (user, client id).
type Resolved struct {
	// Key is the sensor the use is recorded in.
	Key Key
	// Limit is the quota; meaningful only when OK.
	Limit float64
	// OK says a quota of this kind applies at all.
	OK bool
}

// UserName returns the user name of a principal ("User:alice" gives "alice"), the name
// Kafka's quotas are configured with.
func UserName(principal string) string {
	if n, ok := strings.CutPrefix(principal, "User:"); ok {
		return n
	}
	return principal
}

// precedence lists Kafka's eight levels for a (user, client id), most specific first:
// /config/users/<user>/clients/<client-id>, .../users/<user>/clients/<default>,
// /users/<user>, /users/<default>/clients/<client-id>, /users/<default>/clients/<default>,
// /users/<default>, /clients/<client-id>, /clients/<default>. perUser and perClient give the
// sensor key's components for a quota found at that level.
func precedence(user, clientID string) [8]struct {
	e                  Entity
	perUser, perClient bool
} {
	u, c := Named(user), Named(clientID)
	d := DefaultName()
	type level = struct {
		e                  Entity
		perUser, perClient bool
	}
	return [8]level{
		{Entity{User: u, ClientID: c}, true, true},
		{Entity{User: u, ClientID: d}, true, true},
		{Entity{User: u}, true, false},
		{Entity{User: d, ClientID: c}, true, true},
		{Entity{User: d, ClientID: d}, true, true},
		{Entity{User: d}, true, false},
		{Entity{ClientID: c}, false, true},
		{Entity{ClientID: d}, false, true},
	}
}

// Resolve returns the quota of kind key (ProducerByteRate, ConsumerByteRate,
// RequestPercentage, ...) that applies to user and clientID: the value of the first of
// Kafka's eight levels that configures this key (levels are looked up per key, so a user's
// produce quota and a default consume quota may both apply), and the sensor it is measured
// by. With no quota at all the key is (“”, clientID), as Kafka tags an unlimited client.
func (t *Table) Resolve(key, user, clientID string) Resolved {
	if t != nil && len(t.Quotas) > 0 {
		for _, l := range precedence(user, clientID) {
			v, ok := t.Quotas[l.e][key]
			if !ok {
				continue
			}
			var k Key
			if l.perUser {
				k.User = user
			}
			if l.perClient {
				k.ClientID = clientID
			}
			return Resolved{Key: k, Limit: v, OK: true}
		}
	}
	return Resolved{Key: Key{ClientID: clientID}}
}

// IPConnectionRate returns the connection_creation_rate quota of an ip: its own entity's,
// else that of the host name it resolves to (host, "" for none: an ip entity may name a
// host, as Kafka takes it), else the default ip entity's; false when none is set.
func (t *Table) IPConnectionRate(ip, host string) (float64, bool) {
	if t == nil {
		return 0, false
	}
	if v, ok := t.Quotas[Entity{IP: Named(ip)}][ConnectionCreationRate]; ok {
		return v, true
	}
	if host != "" {
		if v, ok := t.Quotas[Entity{IP: Named(host)}][ConnectionCreationRate]; ok {
			return v, true
		}
	}
	v, ok := t.Quotas[Entity{IP: DefaultName()}][ConnectionCreationRate]
	return v, ok
}

// IPHostNames are the names of the ip entities with a connection_creation_rate that are not
// address literals: host names, which the broker resolves to apply their quota.
func (t *Table) IPHostNames() []string {
	if t == nil {
		return nil
	}
	var out []string
	for e, v := range t.Quotas {
		if _, ok := v[ConnectionCreationRate]; ok && e.IP.Set && !e.IP.Default && net.ParseIP(e.IP.Name) == nil {
			out = append(out, e.IP.Name)
		}
	}
	slices.Sort(out)
	return out
}

// maxCached bounds a Resolver's cache; a table with more distinct clients than this starts
// a new cache (resolution is a few map lookups, the cache only saves them).
const maxCached = 10000

// Resolver caches resolutions per *Table: a Table never changes once published, so the
// cache is dropped when the Source publishes another one. Safe for concurrent use.
type Resolver struct {
	cur atomic.Pointer[resolveCache]
}

type resolveCache struct {
	table *Table
	mu    sync.Mutex
	m     map[resolveKey]Resolved
}

type resolveKey struct{ key, user, clientID string }

// Resolve is Table.Resolve through the cache of t.
func (r *Resolver) Resolve(t *Table, key, user, clientID string) Resolved {
	c := r.cur.Load()
	if c == nil || c.table != t {
		c = &resolveCache{table: t, m: make(map[resolveKey]Resolved)}
		r.cur.Store(c)
	}
	k := resolveKey{key, user, clientID}
	c.mu.Lock()
	res, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return res
	}
	res = t.Resolve(key, user, clientID)
	c.mu.Lock()
	if len(c.m) >= maxCached {
		clear(c.m)
	}
	c.m[k] = res
	c.mu.Unlock()
	return res
}

// Empty is a Source with no quota configured.
type Empty struct{}

// ClientQuotas returns an empty table.
func (Empty) ClientQuotas() *Table { return emptyTable }

var emptyTable = &Table{}

// SourceFunc is a Source given by a function (the broker reads the current metadata image's
// table through one).
type SourceFunc func() *Table

// ClientQuotas calls f.
func (f SourceFunc) ClientQuotas() *Table { return f() }
