package cli

import (
	"strings"
	"testing"
)

func TestClientSecurity(t *testing.T) {
	jaas := `org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";`
	for _, tc := range []struct {
		props map[string]string
		opts  int
		err   string
	}{
		{map[string]string{}, 0, ""},
		{map[string]string{"security.protocol": "PLAINTEXT"}, 0, ""},
		{map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256", "sasl.jaas.config": jaas}, 1, ""},
		{map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.jaas.config": jaas}, 2, ""},
		{map[string]string{"security.protocol": "SSL"}, 1, ""},
		{map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI", "sasl.jaas.config": jaas}, 0, "not supported"},
		{map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"}, 0, "sasl.jaas.config"},
		{map[string]string{"security.protocol": "TLS"}, 0, "unknown security.protocol"},
		{map[string]string{"security.protocol": "SSL", "ssl.truststore.type": "JKS"}, 0, "only PEM"},
		{map[string]string{"security.protocol": "SSL", "ssl.truststore.location": "/nonexistent"}, 0, "ssl.truststore.location"},
		{map[string]string{"sasl.mechanisms": "PLAIN"}, 0, "not supported"},
	} {
		opts, err := ClientSecurity(tc.props)
		switch {
		case tc.err == "" && (err != nil || len(opts) != tc.opts):
			t.Errorf("%v: %d options, %v; want %d", tc.props, len(opts), err, tc.opts)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v: %v, want %q", tc.props, err, tc.err)
		}
	}
}
