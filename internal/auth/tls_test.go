package auth

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

func TestCertPrincipal(t *testing.T) {
	ca, _ := authtest.NewCA("ca")
	is, _ := ca.Issue("alice", "Example")
	kp, _ := is.KeyPair()
	cert, _ := x509.ParseCertificate(kp.Certificate[0])
	if p := CertPrincipal(cert); p != "User:CN=alice,O=Example" {
		t.Fatalf("principal %q", p)
	}
	if p := TLSPrincipal(tls.ConnectionState{}); p != "User:ANONYMOUS" {
		t.Fatalf("no certificate: %q", p)
	}
}

// TestTLSReload: a key store rewritten with a new certificate is served from the next
// handshake a second later; one that no longer loads keeps the previous certificate.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca, _ := authtest.NewCA("ca")
	first, _ := ca.Issue("first", "")
	caFile, ks, err := ca.WriteFiles(dir, "broker", first)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewTLSSource(TLSSettings{Listener: "SSL", KeystoreLocation: ks, TruststoreLocation: caFile,
		ClientAuth: "none", Protocols: []string{"TLSv1.2", "TLSv1.3"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		cfg, err := src.ServerConfig().GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
		return c.Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("served %q", cn)
	}
	second, _ := ca.Issue("second-certificate", "")
	if _, _, err := ca.WriteFiles(dir, "broker", second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if cn := served(); cn != "second-certificate" {
		t.Fatalf("after the rewrite: served %q", cn)
	}
	if err := os.WriteFile(filepath.Join(dir, "broker.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if cn := served(); cn != "second-certificate" {
		t.Fatalf("after a broken rewrite: served %q", cn)
	}
}

func TestTLSSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	ca, _ := authtest.NewCA("ca")
	is, _ := ca.Issue("b", "")
	_, ks, _ := ca.WriteFiles(dir, "broker", is)
	for name, s := range map[string]TLSSettings{
		"no key store":            {Protocols: []string{"TLSv1.2"}},
		"missing file":            {KeystoreLocation: filepath.Join(dir, "nope.pem"), Protocols: []string{"TLSv1.2"}},
		"required without trust":  {KeystoreLocation: ks, ClientAuth: "required", Protocols: []string{"TLSv1.2"}},
		"TLS 1.1":                 {KeystoreLocation: ks, Protocols: []string{"TLSv1.1"}},
		"location and inline key": {KeystoreLocation: ks, KeystoreKey: string(is.KeyPEM), Protocols: []string{"TLSv1.2"}},
	} {
		if _, err := s.build(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	cfg, err := TLSSettings{KeystoreChain: string(is.CertPEM), KeystoreKey: string(is.KeyPEM), Protocols: []string{"TLSv1.3"}}.build()
	if err != nil || cfg.MinVersion != tls.VersionTLS13 || cfg.MaxVersion != tls.VersionTLS13 {
		t.Fatalf("inline PEM, TLS 1.3 only: %v %+v", err, cfg)
	}
}
