package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/auth"
)

// CommandConfigUsage documents --command-config.
const CommandConfigUsage = "a Kafka client properties file for secured listeners, as Kafka's tools take it: security.protocol, sasl.mechanism, sasl.jaas.config (username/password), ssl.truststore.location and ssl.keystore.location (PEM, or PKCS12 with ssl.*.type and ssl.*.password)"

// ClientSecurity turns the client properties of Kafka's tools (--command-config) into franz-go
// options: security.protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); for TLS,
// ssl.truststore.location (CAs; the system's when absent), ssl.keystore.location (a
// certificate and key, for mutual TLS), each PEM or, with ssl.truststore.type /
// ssl.keystore.type PKCS12, a PKCS12 file opened with ssl.truststore.password /
// ssl.keystore.password, and ssl.endpoint.identification.algorithm (empty: the
// chain is checked but not the host name); for SASL, sasl.mechanism (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512) and the username and password of sasl.jaas.config. Settings it does not know
// are errors, so a typo does not silently connect in plain text.
func ClientSecurity(props map[string]string) ([]kgo.Opt, error) {
	known := map[string]bool{"security.protocol": true, "sasl.mechanism": true, "sasl.jaas.config": true,
		"ssl.truststore.location": true, "ssl.truststore.type": true, "ssl.keystore.location": true,
		"ssl.keystore.type": true, "ssl.endpoint.identification.algorithm": true,
		"ssl.truststore.password": true, "ssl.keystore.password": true}
	for k, v := range props {
		if !known[k] {
			return nil, fmt.Errorf("command config: %s is not supported (known: security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.location, ssl.truststore.type, ssl.truststore.password, ssl.keystore.location, ssl.keystore.type, ssl.keystore.password, ssl.endpoint.identification.algorithm)", k)
		}
		if (k == "ssl.truststore.type" || k == "ssl.keystore.type") && !strings.EqualFold(v, auth.StoreTypePEM) && !strings.EqualFold(v, auth.StoreTypePKCS12) {
			return nil, fmt.Errorf("command config: %s=%s: only PEM and PKCS12 are supported", k, v)
		}
	}
	proto := strings.ToUpper(props["security.protocol"])
	var opts []kgo.Opt
	switch proto {
	case "", "PLAINTEXT":
		return nil, nil
	case "SSL", "SASL_SSL":
		cfg, err := clientTLS(props)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	case "SASL_PLAINTEXT":
	default:
		return nil, fmt.Errorf("command config: unknown security.protocol %q", props["security.protocol"])
	}
	if !strings.HasPrefix(proto, "SASL_") {
		return opts, nil
	}
	j, err := auth.ParseJAAS(props["sasl.jaas.config"])
	if err != nil {
		return nil, fmt.Errorf("command config: sasl.jaas.config: %w", err)
	}
	user, pass := j.Options["username"], j.Options["password"]
	if user == "" {
		return nil, errors.New("command config: sasl.jaas.config has no username")
	}
	m, err := auth.ClientSASL(strings.ToUpper(props["sasl.mechanism"]), user, pass)
	if err != nil {
		return nil, fmt.Errorf("command config: sasl.mechanism: %w", err)
	}
	opts = append(opts, kgo.SASL(m))
	return opts, nil
}

func clientTLS(props map[string]string) (*tls.Config, error) {
	alg, set := props["ssl.endpoint.identification.algorithm"]
	cfg, err := auth.ListenerClientTLS(auth.TLSSettings{
		KeystoreType: props["ssl.keystore.type"], KeystoreLocation: props["ssl.keystore.location"], KeystorePassword: props["ssl.keystore.password"],
		TruststoreType: props["ssl.truststore.type"], TruststoreLocation: props["ssl.truststore.location"], TruststorePassword: props["ssl.truststore.password"],
	}, !set || alg != "")
	if err != nil {
		return nil, fmt.Errorf("command config: %w", err)
	}
	return cfg, nil
}
