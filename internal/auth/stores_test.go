package auth

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

// TestStoreFiles: a listener's key and trust stores as PKCS12 files, written by go-pkcs12
// and by openssl and keytool (as Kafka's users make them; skipped without the tools), and as
// JKS files written by keytool (ssl.*.type=JKS, or left at the default type), load with their
// password: the served certificate is the key store's and client certificates are checked
// against the trust store's CA. A wrong password fails, naming the setting.
func TestStoreFiles(t *testing.T) {
	ca, _ := authtest.NewCA("ca")
	is, _ := ca.Issue("broker", "Samsa tests", "127.0.0.1")
	for _, c := range []struct {
		name      string
		write     func(dir, name string, is authtest.Issued, password string) (string, string, error)
		storeType string
	}{
		{"go-pkcs12", ca.WritePKCS12, "PKCS12"},
		{"openssl and keytool", ca.WritePKCS12WithTools, "PKCS12"},
		{"keytool JKS", ca.WriteJKSWithTools, "JKS"},
		{"keytool JKS, type left at the default", ca.WriteJKSWithTools, "PEM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ks, ts, err := c.write(t.TempDir(), "broker", is, "store-secret")
			if errors.Is(err, exec.ErrNotFound) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			s := TLSSettings{Listener: "SSL", KeystoreType: c.storeType, KeystoreLocation: ks, KeystorePassword: "store-secret",
				TruststoreType: c.storeType, TruststoreLocation: ts, TruststorePassword: "store-secret",
				ClientAuth: "required", Protocols: []string{"TLSv1.3"}}
			src, err := NewTLSSource(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := src.ServerConfig().GetConfigForClient(&tls.ClientHelloInfo{})
			leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
			if leaf.Subject.CommonName != "broker" || len(cfg.Certificates[0].Certificate) != 2 {
				t.Errorf("served %q with %d certificates, want broker and its CA", leaf.Subject.CommonName, len(cfg.Certificates[0].Certificate))
			}
			client, _ := ca.Issue("alice", "")
			kp, _ := client.KeyPair()
			cc, _ := x509.ParseCertificate(kp.Certificate[0])
			if _, err := cc.Verify(x509.VerifyOptions{Roots: cfg.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("a client certificate of the trusted CA: %v", err)
			}
			for _, wrong := range []struct{ field, setting string }{{"keystore", "ssl.keystore.password"}, {"truststore", "ssl.truststore.password"}} {
				bad := s
				if wrong.field == "keystore" {
					bad.KeystorePassword = "wrong"
				} else {
					bad.TruststorePassword = "wrong"
				}
				if _, err := NewTLSSource(bad, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), wrong.setting) {
					t.Errorf("wrong %s password: %v, want an error naming %s", wrong.field, err, wrong.setting)
				}
			}
		})
	}
}

// TestKeyPassword: ssl.key.password opens a key with a password of its own: a JKS key entry
// re-protected by keytool -keypasswd, and an encrypted PKCS#8 PEM key from openssl pkcs8
// -topk8 (in the key store file, and inline as ssl.keystore.key). Without it, or with a
// wrong one, the listener does not start and the error names ssl.key.password.
func TestKeyPassword(t *testing.T) {
	ca, _ := authtest.NewCA("ca")
	is, _ := ca.Issue("broker", "Samsa tests", "127.0.0.1")
	for _, c := range []struct {
		name     string
		settings func(dir string) (TLSSettings, error)
	}{
		{"JKS key entry", func(dir string) (TLSSettings, error) {
			ks, _, err := ca.WriteJKSKeyPasswordWithTools(dir, "broker", is, "store-secret", "key-secret")
			return TLSSettings{KeystoreType: "JKS", KeystoreLocation: ks, KeystorePassword: "store-secret"}, err
		}},
		{"encrypted PEM file", func(dir string) (TLSSettings, error) {
			f, err := ca.WriteEncryptedPEMWithTools(dir, "broker", is, "key-secret")
			return TLSSettings{KeystoreType: "PEM", KeystoreLocation: f}, err
		}},
		{"encrypted PEM inline", func(dir string) (TLSSettings, error) {
			f, err := ca.WriteEncryptedPEMWithTools(dir, "broker", is, "key-secret")
			if err != nil {
				return TLSSettings{}, err
			}
			data, err := os.ReadFile(f)
			return TLSSettings{KeystoreType: "PEM", KeystoreChain: string(is.CertPEM), KeystoreKey: string(data[len(is.CertPEM):])}, err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.settings(t.TempDir())
			if errors.Is(err, exec.ErrNotFound) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			s.Listener, s.Protocols = "SSL", []string{"TLSv1.3"}
			discard := slog.New(slog.NewTextHandler(io.Discard, nil))
			for _, wrong := range []string{"", "wrong-secret"} {
				bad := s
				bad.KeyPassword = wrong
				if _, err := NewTLSSource(bad, discard); err == nil || !strings.Contains(err.Error(), "ssl.key.password") {
					t.Errorf("key password %q: %v, want an error naming ssl.key.password", wrong, err)
				}
			}
			s.KeyPassword = "key-secret"
			src, err := NewTLSSource(s, discard)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := src.ServerConfig().GetConfigForClient(&tls.ClientHelloInfo{})
			leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
			if leaf.Subject.CommonName != "broker" {
				t.Errorf("served %q, want broker", leaf.Subject.CommonName)
			}
			if !cfg.Certificates[0].PrivateKey.(interface{ Equal(crypto.PrivateKey) bool }).Equal(mustKey(t, is).PrivateKey) {
				t.Error("the decrypted key is not the certificate's key")
			}
		})
	}
}

func mustKey(t *testing.T, is authtest.Issued) tls.Certificate {
	t.Helper()
	kp, err := is.KeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}
