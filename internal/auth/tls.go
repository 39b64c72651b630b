package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/samsa-io/samsa/internal/config"
)

// TLSSettings are one listener's ssl.* settings (listener.name.<l>.ssl.* over the broker-wide
// ones).
type TLSSettings struct {
	Listener string
	// KeystoreLocation is a PEM file with the certificate chain and the private key; or
	// KeystoreChain and KeystoreKey hold them inline.
	KeystoreLocation, KeystoreChain, KeystoreKey string
	// TruststoreLocation is a PEM file of CA certificates; or TruststoreCerts holds them.
	TruststoreLocation, TruststoreCerts string
	// KeystoreType and TruststoreType are PEM, PKCS12 or JKS; a PKCS12 or JKS store is opened
	// with its password.
	KeystoreType, KeystorePassword, TruststoreType, TruststorePassword string
	// KeyPassword (ssl.key.password) decrypts the private key: an encrypted PKCS#8 PEM key,
	// or a JKS key entry protected by a password of its own (the store's when empty).
	KeyPassword string
	// ClientAuth is none, requested or required.
	ClientAuth string
	// Protocols are the enabled TLS versions (TLSv1.2, TLSv1.3).
	Protocols []string
}

// ListenerTLSSettings reads a listener's TLS settings from the broker configuration.
func ListenerTLSSettings(cfg *config.Server, listener string) TLSSettings {
	v := func(name string) string { return cfg.ListenerValue(listener, name) }
	var protocols []string
	for _, p := range strings.Split(v("ssl.enabled.protocols"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			protocols = append(protocols, p)
		}
	}
	return TLSSettings{
		Listener:           listener,
		KeystoreLocation:   v("ssl.keystore.location"),
		KeystoreChain:      v("ssl.keystore.certificate.chain"),
		KeystoreKey:        v("ssl.keystore.key"),
		TruststoreLocation: v("ssl.truststore.location"),
		TruststoreCerts:    v("ssl.truststore.certificates"),
		KeystoreType:       v("ssl.keystore.type"),
		KeystorePassword:   v("ssl.keystore.password"),
		KeyPassword:        v("ssl.key.password"),
		TruststoreType:     v("ssl.truststore.type"),
		TruststorePassword: v("ssl.truststore.password"),
		ClientAuth:         v("ssl.client.auth"),
		Protocols:          protocols,
	}
}

// TLSSource serves a listener's TLS configuration and builds it again when its PEM files
// change (checked at most once a second, at a handshake), so certificates are renewed without
// a restart. A file that fails to load keeps the previous configuration, with a log line.
type TLSSource struct {
	s   TLSSettings
	log *slog.Logger
	mu  struct {
		sync.Mutex
		cfg     *tls.Config
		stamps  string // the files' sizes and modification times when cfg was built
		checked time.Time
	}
}

// NewTLSSource loads a listener's TLS configuration; errors name the listener and the file.
func NewTLSSource(s TLSSettings, log *slog.Logger) (*TLSSource, error) {
	src := &TLSSource{s: s, log: log}
	cfg, err := s.build()
	if err != nil {
		return nil, err
	}
	src.mu.cfg, src.mu.stamps, src.mu.checked = cfg, s.stamps(), time.Now()
	return src, nil
}

// ServerConfig returns the tls.Config to serve the listener with: it asks the source for the
// current configuration at every handshake.
func (src *TLSSource) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return src.current(), nil
		},
	}
}

func (src *TLSSource) current() *tls.Config {
	src.mu.Lock()
	defer src.mu.Unlock()
	if now := time.Now(); now.Sub(src.mu.checked) >= time.Second {
		src.mu.checked = now
		if st := src.s.stamps(); st != src.mu.stamps {
			cfg, err := src.s.build()
			if err != nil {
				src.log.Warn("TLS files changed but do not load; keeping the previous certificates", "listener", src.s.Listener, "err", err)
			} else {
				src.log.Info("TLS files changed: certificates reloaded", "listener", src.s.Listener)
				src.mu.cfg = cfg
			}
			src.mu.stamps = st
		}
	}
	return src.mu.cfg
}

// stamps describes the PEM files' sizes and modification times.
func (s TLSSettings) stamps() string {
	var b strings.Builder
	for _, f := range []string{s.KeystoreLocation, s.TruststoreLocation} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

func (s TLSSettings) build() (*tls.Config, error) {
	fail := func(err error) (*tls.Config, error) {
		return nil, fmt.Errorf("listener %s: %w", s.Listener, err)
	}
	cert, err := s.keyPair()
	if err != nil {
		return fail(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS12
	for _, p := range s.Protocols {
		v := map[string]uint16{"TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}[p]
		if v == 0 {
			return fail(fmt.Errorf("ssl.enabled.protocols: %s is not supported (TLSv1.2, TLSv1.3)", p))
		}
		cfg.MinVersion, cfg.MaxVersion = min(cfg.MinVersion, v), max(cfg.MaxVersion, v)
	}
	if len(s.Protocols) == 0 {
		return fail(errors.New("ssl.enabled.protocols is empty"))
	}
	if cfg.ClientCAs, err = s.trustPool(); err != nil {
		return fail(err)
	}
	switch s.ClientAuth {
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if cfg.ClientAuth != tls.NoClientCert && cfg.ClientCAs == nil {
		return fail(fmt.Errorf("ssl.client.auth=%s needs a trust store (ssl.truststore.location) to check client certificates", s.ClientAuth))
	}
	return cfg, nil
}

// CertPrincipal is the principal of a client certificate as Kafka's default principal builder
// names it with the DEFAULT ssl.principal.mapping.rules: User: and the subject's
// distinguished name as Java writes it (DistinguishedName: CN=...,O=...).
func CertPrincipal(cert *x509.Certificate) string {
	return "User:" + DistinguishedName(cert)
}

// TLSPrincipal is the principal of a TLS connection: its client certificate's, else
// User:ANONYMOUS, as in Kafka.
func TLSPrincipal(st tls.ConnectionState) string {
	if len(st.PeerCertificates) > 0 {
		return CertPrincipal(st.PeerCertificates[0])
	}
	return Anonymous
}

// Anonymous is the principal of an unauthenticated connection.
const Anonymous = "User:ANONYMOUS"

// clientTLS is a client's TLS configuration with the CA certificates roots (nil: the
// system's) and the certificates to present.
func clientTLS(roots *x509.CertPool, certs []tls.Certificate, verifyHost bool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: certs}
	if !verifyHost {
		cfg.InsecureSkipVerify = true // replaced by VerifyConnection: the chain without the host name
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg
}
