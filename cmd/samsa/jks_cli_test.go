package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/auth/authtest"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestJKSStores: keytool's JKS stores (Kafka's default type) on both sides of mutual TLS: an
// SSL listener whose key and trust stores are JKS, and the CLI's --command-config with a JKS
// trust store and a JKS key store of its own certificate. Without its key store the CLI is
// refused, so the listener checks client certificates against the JKS trust store.
func TestJKSStores(t *testing.T) {
	ca, err := authtest.NewCA("samsa test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := ca.Issue("broker", "", "127.0.0.1")
	ks, ts, err := ca.WriteJKSWithTools(t.TempDir(), "broker", srv, "store-secret")
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := ca.Issue("alice", "")
	aliceKS, aliceTS, err := ca.WriteJKSWithTools(t.TempDir(), "alice", alice, "alice-secret")
	if err != nil {
		t.Fatal(err)
	}
	node := testcluster.Start(t,
		"listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.name.ssl.ssl.keystore.type=JKS", "listener.name.ssl.ssl.keystore.location="+ks,
		"listener.name.ssl.ssl.keystore.password=store-secret",
		"listener.name.ssl.ssl.truststore.type=JKS", "listener.name.ssl.ssl.truststore.location="+ts,
		"listener.name.ssl.ssl.truststore.password=store-secret",
		"listener.name.ssl.ssl.client.auth=required")
	props := filepath.Join(t.TempDir(), "client.properties")
	trust := []string{"security.protocol=SSL", "ssl.truststore.type=JKS", "ssl.truststore.location=" + aliceTS,
		"ssl.truststore.password=alice-secret"}
	for _, tc := range []struct {
		name    string
		props   []string
		wantErr string
	}{
		{"JKS trust and key stores", append(trust, "ssl.keystore.type=JKS", "ssl.keystore.location="+aliceKS, "ssl.keystore.password=alice-secret"), ""},
		{"no key store", trust, "certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(props, []byte(strings.Join(tc.props, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := runCLI(t, "", "topic", "create", "jks-"+strings.ReplaceAll(tc.name, " ", "-"), "--partitions", "1",
				"--brokers="+node.Server().ListenerAddr("SSL"), "--command-config", props)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("topic create over JKS-configured TLS: %v (stderr %q), want an error with %q", err, stderr, tc.wantErr)
			}
		})
	}
}
