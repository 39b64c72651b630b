package server

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
)

// interBrokerClientOpts are the options of the broker's own clients of other brokers (the
// replica fetchers, the transaction coordinator's peers) for the inter-broker listener's
// security, as Kafka configures its inter-broker clients from the same listener's settings:
// TLS with the listener's trust store (and its key store as the client certificate, for
// ssl.client.auth), SASL with sasl.mechanism.inter.broker.protocol and the username and
// password of the listener's <mechanism>.sasl.jaas.config. None for a PLAINTEXT listener.
func interBrokerClientOpts(cfg *config.Server) ([]kgo.Opt, error) {
	l, ok := cfg.InterBrokerListener()
	if !ok || l.Protocol == config.ProtocolPlaintext {
		return nil, nil
	}
	var opts []kgo.Opt
	if config.ProtocolTLS(l.Protocol) {
		tc, err := auth.ListenerClientTLS(auth.ListenerTLSSettings(cfg, l.Name), cfg.ListenerValue(l.Name, "ssl.endpoint.identification.algorithm") != "")
		if err != nil {
			return nil, fmt.Errorf("inter-broker listener %s: %w", l.Name, err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if !config.ProtocolSASL(l.Protocol) {
		return opts, nil
	}
	mech, _ := cfg.Value("sasl.mechanism.inter.broker.protocol")
	user, pass, err := listenerLogin(cfg, "inter-broker listener", l.Name, mech)
	if err != nil {
		return nil, err
	}
	m, err := auth.ClientSASL(mech, user, pass)
	if err != nil {
		return nil, fmt.Errorf("inter-broker listener %s: %w", l.Name, err)
	}
	opts = append(opts, kgo.SASL(m))
	return opts, nil
}
