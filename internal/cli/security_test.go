package cli

import (
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

func TestClientSecurity(t *testing.T) {
	jaas := `org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";`
	token := `org.apache.kafka.common.security.scram.ScramLoginModule required username="id" password="bWFj" tokenauth="true";`
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
		{map[string]string{"security.protocol": "SSL", "ssl.truststore.type": "BKS"}, 0, "only PEM, PKCS12 and JKS"},
		{map[string]string{"security.protocol": "SSL", "ssl.truststore.type": "JKS"}, 0, "ssl.truststore.type=JKS needs ssl.truststore.location"},
		{map[string]string{"security.protocol": "SSL", "ssl.truststore.type": "PKCS12", "ssl.truststore.location": "/nonexistent"}, 0, "ssl.truststore.location"},
		{map[string]string{"security.protocol": "SSL", "ssl.truststore.location": "/nonexistent"}, 0, "ssl.truststore.location"},
		{map[string]string{"sasl.mechanisms": "PLAIN"}, 0, "not supported"},
		{map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": token}, 1, ""},
		{map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": token}, 0, `tokenauth="true" needs sasl.mechanism SCRAM`},
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

// TestClientSecurityPKCS12: --command-config with PKCS12 trust and key stores (Kafka's
// ssl.*.type=PKCS12 and ssl.*.password) loads them; a wrong password is an error naming it.
func TestClientSecurityPKCS12(t *testing.T) {
	ca, _ := authtest.NewCA("ca")
	is, _ := ca.Issue("alice", "")
	ks, ts, err := ca.WritePKCS12(t.TempDir(), "alice", is, "pw")
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{"security.protocol": "SSL",
		"ssl.truststore.type": "PKCS12", "ssl.truststore.location": ts, "ssl.truststore.password": "pw",
		"ssl.keystore.type": "PKCS12", "ssl.keystore.location": ks, "ssl.keystore.password": "pw"}
	if opts, err := ClientSecurity(props); err != nil || len(opts) != 1 {
		t.Fatalf("PKCS12 stores: %d options, %v", len(opts), err)
	}
	props["ssl.keystore.password"] = "wrong"
	if _, err := ClientSecurity(props); err == nil || !strings.Contains(err.Error(), "ssl.keystore.password") {
		t.Fatalf("wrong key store password: %v", err)
	}
}
