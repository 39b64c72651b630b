package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// SigningKey is a key that signs JWTs, made at run time, with its key id and algorithm.
type SigningKey struct {
	KID string
	Alg jose.SignatureAlgorithm
	key crypto.Signer
}

// NewSigningKey makes a key for alg: RS*/PS* an RSA 2048-bit key, ES256/384/512 an ECDSA key
// on P-256/384/521.
func NewSigningKey(kid string, alg jose.SignatureAlgorithm) (*SigningKey, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		return nil, fmt.Errorf("authtest: no key for %s", alg)
	}
	if err != nil {
		return nil, err
	}
	return &SigningKey{KID: kid, Alg: alg, key: key}, nil
}

// MustSigningKey is NewSigningKey for tests: a failure ends the test.
func MustSigningKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) *SigningKey {
	t.Helper()
	k, err := NewSigningKey(kid, alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Sign makes a compact JWS of the claims, with the key id in its header when KID is set.
func (k *SigningKey) Sign(claims map[string]any) string {
	opts := &jose.SignerOptions{}
	opts.WithType("JWT")
	if k.KID != "" {
		opts.WithHeader("kid", k.KID)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: k.key}, opts)
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		panic(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}

// JWK is the key's public half as a JWKS entry.
func (k *SigningKey) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// JWKS is the JSON document of the keys' public halves.
func JWKS(keys ...*SigningKey) []byte {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	return b
}

// Claims are a token's usual claims: sub, iat now, exp now+life, plus extra.
func Claims(sub string, life time.Duration, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"sub": sub, "iat": now.Unix(), "exp": now.Add(life).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// UnsecuredToken is an unsigned JWT ({"alg":"none"}, empty signature), as Kafka's
// OAuthBearerUnsecuredLoginCallbackHandler and librdkafka make them.
func UnsecuredToken(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(payload) + "."
}

// JWKSServer serves a JWKS over HTTP and counts the fetches; SetKeys changes it (a rotation).
type JWKSServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     []byte
	fetches int
}

// NewJWKSServer serves the keys' JWKS at /jwks.
func NewJWKSServer(keys ...*SigningKey) *JWKSServer {
	s := &JWKSServer{doc: JWKS(keys...)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		doc := s.doc
		s.fetches++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	return s
}

// URL is the JWKS's address.
func (s *JWKSServer) JWKSURL() string { return s.Server.URL + "/jwks" }

// SetKeys serves another key set.
func (s *JWKSServer) SetKeys(keys ...*SigningKey) {
	s.mu.Lock()
	s.doc = JWKS(keys...)
	s.mu.Unlock()
}

// SetDocument serves any document (a malformed or oversized JWKS).
func (s *JWKSServer) SetDocument(doc []byte) {
	s.mu.Lock()
	s.doc = doc
	s.mu.Unlock()
}

// Fetches is how many times the JWKS was fetched.
func (s *JWKSServer) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}
