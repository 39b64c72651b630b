package config

import (
	"fmt"
	"strconv"
	"strings"
)

// listenerConnectionSettings are the connection limits that may be given for one listener as
// listener.name.<listener>.<setting> (Kafka's ListenerConnectionQuota).
var listenerConnectionSettings = map[string]bool{
	"max.connections":              true,
	"max.connection.creation.rate": true,
}

// ConnectionLimits are the broker's connection limits (Kafka's ConnectionQuotas).
type ConnectionLimits struct {
	// MaxConnections is max.connections, broker-wide.
	MaxConnections int
	// PerListener is listener.name.<listener>.max.connections, by listener name (upper case);
	// a listener missing from it has no bound of its own.
	PerListener map[string]int
	// MaxPerIP is max.connections.per.ip; PerIPOverrides its overrides by host as written.
	MaxPerIP       int
	PerIPOverrides map[string]int
	// CreationRate is max.connection.creation.rate (connections per second), broker-wide;
	// ListenerCreationRate its per-listener values.
	CreationRate         int
	ListenerCreationRate map[string]int
}

// ConnectionLimits returns the connection limits (validated by LoadServer).
func (s *Server) ConnectionLimits() ConnectionLimits {
	l := ConnectionLimits{
		MaxConnections:       int(s.int64Value("max.connections")),
		MaxPerIP:             int(s.int64Value("max.connections.per.ip")),
		CreationRate:         int(s.int64Value("max.connection.creation.rate")),
		PerListener:          map[string]int{},
		ListenerCreationRate: map[string]int{},
	}
	l.PerIPOverrides, _ = ParseIPOverrides(mustValue(s, "max.connections.per.ip.overrides"))
	for _, ls := range s.Listeners {
		prefix := listenerPrefix + strings.ToLower(ls.Name) + "."
		if v, ok := s.Explicit[prefix+"max.connections"]; ok {
			n, _ := strconv.Atoi(v)
			l.PerListener[ls.Name] = n
		}
		if v, ok := s.Explicit[prefix+"max.connection.creation.rate"]; ok {
			n, _ := strconv.Atoi(v)
			l.ListenerCreationRate[ls.Name] = n
		}
	}
	return l
}

// ParseIPOverrides parses max.connections.per.ip.overrides: host:N pairs separated by
// commas (Kafka's getMap: whitespace around entries is ignored, N at least 0).
func ParseIPOverrides(v string) (map[string]int, error) {
	out := map[string]int{}
	for _, e := range splitList(v) {
		i := strings.LastIndexByte(e, ':')
		if i <= 0 {
			return nil, fmt.Errorf("invalid value %q for max.connections.per.ip.overrides: %q is not host:N", v, e)
		}
		host := strings.TrimSpace(e[:i])
		n, err := strconv.Atoi(strings.TrimSpace(e[i+1:]))
		if err != nil || n < 0 || host == "" {
			return nil, fmt.Errorf("invalid value %q for max.connections.per.ip.overrides: %q is not host:N with N >= 0", v, e)
		}
		out[host] = n
	}
	return out, nil
}

// checkConnectionLimits applies Kafka's checks of the connection limits.
func (s *Server) checkConnectionLimits() error {
	overrides, err := ParseIPOverrides(mustValue(s, "max.connections.per.ip.overrides"))
	if err != nil {
		return err
	}
	if s.int64Value("max.connections.per.ip") == 0 && len(overrides) == 0 {
		return fmt.Errorf("max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set")
	}
	return nil
}
