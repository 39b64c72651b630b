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

// tlsState is a connection's TLS state: a TLS listener's, or the controller listener's, whose
// connections the controller hands over after their handshake (behind a wrapper).
type tlsState interface{ ConnectionState() tls.ConnectionState }

// mapTLSPrincipal names the principal of a TLS connection with a client certificate by its
// listener's ssl.principal.mapping.rules (after secure, before any request). It reports false,
// with a log line, when no rule applies: the authentication fails and the connection closes,
// as Kafka's.
func (c *conn) mapTLSPrincipal() bool {
	st, ok := c.nc.(tlsState)
	if !ok {
		return true
	}
	cs := st.ConnectionState()
	if !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return true
	}
	m := c.b.principalMappers[c.listener]
	if m == nil {
		c.principal = auth.CertPrincipal(cs.PeerCertificates[0]) // DEFAULT
		return true
	}
	name, err := m.Name(auth.DistinguishedName(cs.PeerCertificates[0]))
	if err != nil {
		c.logger().Warn("closing connection: TLS authentication failed", "listener", c.listener, "err", err)
		return false
	}
	c.principal = "User:" + name
	return true
}
