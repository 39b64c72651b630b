package auth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"
)

// Key and trust store types (ssl.keystore.type, ssl.truststore.type).
const (
	StoreTypePEM    = "PEM"
	StoreTypePKCS12 = "PKCS12"
	// StoreTypeJKS is in stores_jks.go.
)

// keyPair loads the listener's certificate chain and private key: a PEM file or inline PEM
// (ssl.keystore.type=PEM), a PKCS#12 file opened with ssl.keystore.password
// (ssl.keystore.type=PKCS12: its key, its certificate and the CA certificates after it), or a
// JKS file opened with it (ssl.keystore.type=JKS, or a JKS file left at the default type).
func (s TLSSettings) keyPair() (tls.Certificate, error) {
	if strings.EqualFold(s.KeystoreType, StoreTypePKCS12) {
		if s.KeystoreLocation == "" {
			return tls.Certificate{}, errors.New("ssl.keystore.type=PKCS12 needs ssl.keystore.location")
		}
		data, err := os.ReadFile(s.KeystoreLocation)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("ssl.keystore.location: %w", err)
		}
		key, cert, cas, err := pkcs12.DecodeChain(data, s.KeystorePassword)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("ssl.keystore.location %s (PKCS12, ssl.keystore.password): %w", s.KeystoreLocation, err)
		}
		out := tls.Certificate{PrivateKey: key, Leaf: cert, Certificate: [][]byte{cert.Raw}}
		for _, ca := range cas {
			out.Certificate = append(out.Certificate, ca.Raw)
		}
		return out, nil
	}
	if strings.EqualFold(s.KeystoreType, StoreTypeJKS) && s.KeystoreLocation == "" {
		return tls.Certificate{}, errors.New("ssl.keystore.type=JKS needs ssl.keystore.location")
	}
	chain, key := []byte(s.KeystoreChain), []byte(s.KeystoreKey)
	if s.KeystoreLocation != "" {
		if s.KeystoreChain != "" || s.KeystoreKey != "" {
			return tls.Certificate{}, errors.New("ssl.keystore.location and ssl.keystore.certificate.chain/ssl.keystore.key are exclusive")
		}
		data, err := readStore("ssl.keystore.location", s.KeystoreLocation)
		if err != nil {
			return tls.Certificate{}, err
		}
		if isJKS(s.KeystoreType, data) {
			keyPassword := s.KeystorePassword
			if s.KeyPassword != "" {
				keyPassword = s.KeyPassword
			}
			return jksKeyPair(s.KeystoreLocation, data, s.KeystorePassword, keyPassword)
		}
		chain, key = data, data
	}
	if len(chain) == 0 || len(key) == 0 {
		return tls.Certificate{}, errors.New("TLS needs a certificate and key: set ssl.keystore.location (PEM or PKCS12), or ssl.keystore.certificate.chain and ssl.keystore.key")
	}
	key, err := decryptPEMKey(key, s.KeyPassword)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ssl.keystore: %w", err)
	}
	return cert, nil
}

// decryptPEMKey returns the PEM private key of data ready for tls.X509KeyPair: an encrypted
// PKCS#8 key (BEGIN ENCRYPTED PRIVATE KEY, as openssl pkcs8 -topk8 and Java write it: PBES2
// with PBKDF2 or scrypt, AES or 3DES) decrypted with password (ssl.key.password), as Kafka's
// PEM key store reads it; data unchanged when its key is not encrypted. OpenSSL's legacy
// encrypted keys (Proc-Type: 4,ENCRYPTED) are refused, as Kafka refuses them.
func decryptPEMKey(data []byte, password string) ([]byte, error) {
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return data, nil
		}
		if _, legacy := block.Headers["DEK-Info"]; legacy {
			return nil, errors.New("ssl.keystore: the private key is encrypted in OpenSSL's legacy format (Proc-Type: 4,ENCRYPTED); convert it to encrypted PKCS#8 with openssl pkcs8 -topk8")
		}
		if block.Type != "ENCRYPTED PRIVATE KEY" {
			continue
		}
		if password == "" {
			return nil, errors.New("ssl.keystore: the private key is encrypted (BEGIN ENCRYPTED PRIVATE KEY): set ssl.key.password")
		}
		key, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(password))
		if err != nil {
			return nil, fmt.Errorf("ssl.key.password: the private key does not decrypt with it: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("ssl.keystore: the decrypted private key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
}

// trustPool loads the trusted CA certificates: PEM (a file or inline), or a PKCS#12 or JKS
// trust store opened with ssl.truststore.password (as Java's keytool writes them; JKS also
// when the type is left at the default). Nil when none is set.
func (s TLSSettings) trustPool() (*x509.CertPool, error) {
	if strings.EqualFold(s.TruststoreType, StoreTypePKCS12) {
		if s.TruststoreLocation == "" {
			return nil, errors.New("ssl.truststore.type=PKCS12 needs ssl.truststore.location")
		}
		data, err := os.ReadFile(s.TruststoreLocation)
		if err != nil {
			return nil, fmt.Errorf("ssl.truststore.location: %w", err)
		}
		certs, err := pkcs12.DecodeTrustStore(data, s.TruststorePassword)
		if err != nil {
			return nil, fmt.Errorf("ssl.truststore.location %s (PKCS12, ssl.truststore.password): %w", s.TruststoreLocation, err)
		}
		if len(certs) == 0 {
			return nil, errors.New("ssl.truststore: no trusted certificate in the PKCS12 store")
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		return pool, nil
	}
	if strings.EqualFold(s.TruststoreType, StoreTypeJKS) && s.TruststoreLocation == "" {
		return nil, errors.New("ssl.truststore.type=JKS needs ssl.truststore.location")
	}
	trust := []byte(s.TruststoreCerts)
	if s.TruststoreLocation != "" {
		var err error
		if trust, err = readStore("ssl.truststore.location", s.TruststoreLocation); err != nil {
			return nil, err
		}
		if isJKS(s.TruststoreType, trust) {
			return jksTrustPool(s.TruststoreLocation, trust, s.TruststorePassword)
		}
	}
	if len(trust) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(trust) {
		return nil, errors.New("ssl.truststore: no PEM certificate found")
	}
	return pool, nil
}

// ListenerClientTLS is the TLS configuration of a client with the stores of s: the broker's
// own clients on a listener (inter-broker, controller), and the CLI's --command-config. The
// trust store's CAs (the system's without one); the key store's certificate, if any, for
// mutual TLS. With verifyHost false (ssl.endpoint.identification.algorithm empty) the server's
// chain is checked, not its host name.
func ListenerClientTLS(s TLSSettings, verifyHost bool) (*tls.Config, error) {
	roots, err := s.trustPool()
	if err != nil {
		return nil, err
	}
	var certs []tls.Certificate
	if s.KeystoreLocation != "" || s.KeystoreChain != "" || s.KeystoreKey != "" {
		cert, err := s.keyPair()
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	return clientTLS(roots, certs, verifyHost), nil
}
