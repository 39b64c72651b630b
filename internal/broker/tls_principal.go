package broker

import (
	"crypto/tls"
	"fmt"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
)

// ConfigurePrincipalMapping reads every TLS listener's ssl.principal.mapping.rules (before
// Serve); a listener with the DEFAULT rule alone keeps the certificate's distinguished name.
func (b *Broker) ConfigurePrincipalMapping() error {
	b.principalMappers = map[string]*auth.SSLPrincipalMapper{}
	for _, l := range b.cfg.Listeners {
		if !config.ProtocolTLS(l.Protocol) {
			continue
		}
		m, err := auth.ParseSSLPrincipalMappingRules(b.cfg.ListenerValue(l.Name, "ssl.principal.mapping.rules"))
		if err != nil {
			return fmt.Errorf("listener %s: ssl.principal.mapping.rules: %w", l.Name, err)
		}
		if !m.IsDefault() {
			b.principalMappers[l.Name] = m
		}
	}
	return nil
}

// mapTLSPrincipal names the principal of a TLS connection with a client certificate by its
// listener's ssl.principal.mapping.rules (after secure, before any request). It reports false,
// with a log line, when no rule applies: the authentication fails and the connection closes,
// as Kafka's.
func (c *conn) mapTLSPrincipal() bool {
	m := c.b.principalMappers[c.listener]
	tc, ok := c.nc.(*tls.Conn)
	if m == nil || !ok {
		return true
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return true
	}
	name, err := m.Name(auth.DistinguishedName(certs[0]))
	if err != nil {
		c.logger().Warn("closing connection: TLS authentication failed", "listener", c.listener, "err", err)
		return false
	}
	c.principal = "User:" + name
	return true
}
