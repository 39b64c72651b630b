package auth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
)

// StoreTypeJKS is Java's own key store format (Kafka's default ssl.keystore.type and
// ssl.truststore.type), as keytool writes it with -storetype JKS.
const StoreTypeJKS = "JKS"

// jksMagic starts every JKS file.
var jksMagic = []byte{0xFE, 0xED, 0xFE, 0xED}

// isJKS reports whether a store is read as JKS: its type says so, or it is left at PEM (the
// default) and the file starts with JKS's magic number, so a Kafka configuration that relied
// on Kafka's default type JKS works as it is.
func isJKS(storeType string, data []byte) bool {
	if strings.EqualFold(storeType, StoreTypeJKS) {
		return true
	}
	return (storeType == "" || strings.EqualFold(storeType, StoreTypePEM)) && bytes.HasPrefix(data, jksMagic)
}

// loadJKS opens a JKS file with its store password, checking the file's integrity digest;
// store is keystore or truststore, naming the settings in errors.
func loadJKS(store, location string, data []byte, password string) (keystore.KeyStore, error) {
	ks := keystore.New(keystore.WithOrderedAliases(), keystore.WithCaseExactAliases())
	if err := ks.Load(bytes.NewReader(data), []byte(password)); err != nil {
		return ks, fmt.Errorf("ssl.%s.location %s (JKS, ssl.%s.password): %w", store, location, store, err)
	}
	return ks, nil
}

// jksKeyPair reads the first private key entry of a JKS key store (in alias order), its key
// protected by keyPassword (ssl.key.password, or the store's password: keytool's default),
// and the entry's certificate chain.
func jksKeyPair(location string, data []byte, password, keyPassword string) (tls.Certificate, error) {
	setting := "ssl.keystore.location " + location
	ks, err := loadJKS("keystore", location, data, password)
	if err != nil {
		return tls.Certificate{}, err
	}
	aliases := ks.Aliases()
	slices.Sort(aliases)
	for _, alias := range aliases {
		if !ks.IsPrivateKeyEntry(alias) {
			continue
		}
		e, err := ks.GetPrivateKeyEntry(alias, []byte(keyPassword))
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%s: key %q (its password is ssl.key.password, or ssl.keystore.password when that is unset): %w", setting, alias, err)
		}
		key, err := x509.ParsePKCS8PrivateKey(e.PrivateKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%s: key %q: %w", setting, alias, err)
		}
		var out tls.Certificate
		for _, c := range e.CertificateChain {
			out.Certificate = append(out.Certificate, c.Content)
		}
		if len(out.Certificate) == 0 {
			return tls.Certificate{}, fmt.Errorf("%s: key %q has no certificate", setting, alias)
		}
		if out.Leaf, err = x509.ParseCertificate(out.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("%s: certificate of %q: %w", setting, alias, err)
		}
		out.PrivateKey = key
		return out, nil
	}
	return tls.Certificate{}, fmt.Errorf("%s: no private key entry in the JKS store", setting)
}

// jksTrustPool reads the trusted certificate entries of a JKS trust store, as Java's trust
// manager does (key entries are not trusted).
func jksTrustPool(location string, data []byte, password string) (*x509.CertPool, error) {
	setting := "ssl.truststore.location " + location
	ks, err := loadJKS("truststore", location, data, password)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for _, alias := range ks.Aliases() {
		if !ks.IsTrustedCertificateEntry(alias) {
			continue
		}
		e, err := ks.GetTrustedCertificateEntry(alias)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", setting, alias, err)
		}
		c, err := x509.ParseCertificate(e.Certificate.Content)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", setting, alias, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("ssl.truststore: no trusted certificate in the JKS store")
	}
	return pool, nil
}

// readStore reads a store file named by setting.
func readStore(setting, location string) ([]byte, error) {
	data, err := os.ReadFile(location)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	return data, nil
}
