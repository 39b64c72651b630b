package authtest

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"software.sslmate.com/src/go-pkcs12"
)

// WritePKCS12 writes, in dir, <name>.p12 (the certificate, its key and the CA certificate, as
// ssl.keystore.type=PKCS12 takes it) and truststore.p12 (the CA certificate as a trusted
// entry), both with password, encoded by go-pkcs12 (AES-256 and PBKDF2, as OpenSSL 3 and Java
// write them), and returns their paths.
func (ca *CA) WritePKCS12(dir, name string, is Issued, password string) (keystore, truststore string, err error) {
	kp, err := is.KeyPair()
	if err != nil {
		return "", "", err
	}
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		return "", "", err
	}
	ks, err := pkcs12.Modern.Encode(kp.PrivateKey, leaf, []*x509.Certificate{ca.Cert}, password)
	if err != nil {
		return "", "", err
	}
	ts, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{ca.Cert}, password)
	if err != nil {
		return "", "", err
	}
	keystore, truststore = filepath.Join(dir, name+".p12"), filepath.Join(dir, "truststore.p12")
	if err := os.WriteFile(keystore, ks, 0o600); err != nil {
		return "", "", err
	}
	return keystore, truststore, os.WriteFile(truststore, ts, 0o600)
}

// WritePKCS12WithTools writes the same two stores with the tools Kafka users make them with:
// openssl pkcs12 -export for the key store, keytool -importcert for the trust store. It
// returns an error wrapping exec.ErrNotFound when a tool is missing.
func (ca *CA) WritePKCS12WithTools(dir, name string, is Issued, password string) (keystore, truststore string, err error) {
	caFile, pemFile, err := ca.WriteFiles(dir, name, is)
	if err != nil {
		return "", "", err
	}
	keystore, truststore = filepath.Join(dir, name+"-tools.p12"), filepath.Join(dir, "truststore-tools.p12")
	for _, cmd := range [][]string{
		{"openssl", "pkcs12", "-export", "-in", pemFile, "-certfile", caFile, "-out", keystore, "-passout", "pass:" + password},
		{"keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", caFile, "-keystore", truststore, "-storetype", "PKCS12", "-storepass", password},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("%s: %w: %s", cmd[0], err, out)
		}
	}
	return keystore, truststore, nil
}

// WriteJKSWithTools writes the two stores as JKS files, Kafka's default store type, with
// keytool: the key store converted from WritePKCS12WithTools's (keytool -importkeystore
// -deststoretype JKS; the key keeps the store's password), the trust store with keytool
// -importcert -storetype JKS. It returns an error wrapping exec.ErrNotFound when a tool is
// missing.
func (ca *CA) WriteJKSWithTools(dir, name string, is Issued, password string) (keystore, truststore string, err error) {
	p12, _, err := ca.WritePKCS12WithTools(dir, name, is, password)
	if err != nil {
		return "", "", err
	}
	caFile := filepath.Join(dir, "ca.pem")
	keystore, truststore = filepath.Join(dir, name+".jks"), filepath.Join(dir, "truststore.jks")
	for _, cmd := range [][]string{
		{"keytool", "-importkeystore", "-noprompt", "-srckeystore", p12, "-srcstoretype", "PKCS12", "-srcstorepass", password,
			"-destkeystore", keystore, "-deststoretype", "JKS", "-deststorepass", password, "-destkeypass", password},
		{"keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", caFile, "-keystore", truststore, "-storetype", "JKS", "-storepass", password},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("%s: %w: %s", cmd[0], err, out)
		}
	}
	return keystore, truststore, nil
}

// WriteJKSKeyPasswordWithTools writes the stores of WriteJKSWithTools, then gives the key
// entry a password of its own with keytool -keypasswd (a Kafka configuration then needs
// ssl.key.password). It returns an error wrapping exec.ErrNotFound when a tool is missing.
func (ca *CA) WriteJKSKeyPasswordWithTools(dir, name string, is Issued, password, keyPassword string) (keystore, truststore string, err error) {
	if keystore, truststore, err = ca.WriteJKSWithTools(dir, name, is, password); err != nil {
		return "", "", err
	}
	// openssl pkcs12 -export without -name leaves the entry unnamed; keytool calls it "1".
	cmd := exec.Command("keytool", "-keypasswd", "-alias", "1", "-keypass", password, "-new", keyPassword,
		"-keystore", keystore, "-storepass", password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("keytool -keypasswd: %w: %s", err, out)
	}
	return keystore, truststore, nil
}

// WriteEncryptedPEMWithTools writes, in dir, <name>-encrypted.pem: the certificate followed
// by its key encrypted with keyPassword by openssl pkcs8 -topk8 (PKCS#8, PBES2 with PBKDF2 and
// AES-256-CBC, OpenSSL 3's default), as ssl.keystore.location takes it with ssl.key.password.
// It returns an error wrapping exec.ErrNotFound when openssl is missing.
func (ca *CA) WriteEncryptedPEMWithTools(dir, name string, is Issued, keyPassword string) (string, error) {
	plain := filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(plain, is.KeyPEM, 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command("openssl", "pkcs8", "-topk8", "-in", plain, "-passout", "pass:"+keyPassword)
	enc, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("openssl pkcs8 -topk8: %w", err)
	}
	out := filepath.Join(dir, name+"-encrypted.pem")
	return out, os.WriteFile(out, append(append([]byte{}, is.CertPEM...), enc...), 0o600)
}
