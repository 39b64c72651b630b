package broker_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

const validatorClass = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"

// oauthNode is a node with three OAUTHBEARER listeners: JWKS (SASL_PLAINTEXT, keys from an
// HTTP JWKS), FILEJWKS (SASL_SSL, keys from a file: JWKS, the older handler class name) and
// UNSECURED (SASL_PLAINTEXT, Kafka's default unsecured validator).
type oauthNode struct {
	*secNode
	jwks *authtest.JWKSServer
	keys []*authtest.SigningKey // rs (RS256), es (ES256)
}

func startOAuthNode(t *testing.T, settings ...string) *oauthNode {
	t.Helper()
	rs, es := authtest.MustSigningKey(t, "rs-1", jose.RS256), authtest.MustSigningKey(t, "es-1", jose.ES256)
	srv := authtest.NewJWKSServer(rs, es)
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, authtest.JWKS(rs, es), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,JWKS:SASL_PLAINTEXT,FILEJWKS:SASL_SSL,UNSECURED:SASL_PLAINTEXT",
		"sasl.enabled.mechanisms=OAUTHBEARER,PLAIN",
		"listener.name.jwks.plain.sasl.jaas.config=" + plainJAAS,
		"listener.name.filejwks.plain.sasl.jaas.config=" + plainJAAS,
		"listener.name.unsecured.plain.sasl.jaas.config=" + plainJAAS,
		"listener.name.jwks.oauthbearer.sasl.server.callback.handler.class=" + validatorClass,
		"listener.name.jwks.oauthbearer.sasl.oauthbearer.jwks.endpoint.url=" + srv.JWKSURL(),
		"listener.name.filejwks.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
		"listener.name.filejwks.oauthbearer.sasl.oauthbearer.jwks.endpoint.url=file://" + file,
		"sasl.oauthbearer.expected.audience=kafka,other",
		"sasl.oauthbearer.expected.issuer=https://idp.example",
		"listener.name.unsecured.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope=\"produce\";",
	}
	n := startSecNode(t, "JWKS://127.0.0.1:0,FILEJWKS://127.0.0.1:0,UNSECURED://127.0.0.1:0", append(base, settings...)...)
	return &oauthNode{secNode: n, jwks: srv, keys: []*authtest.SigningKey{rs, es}}
}

// jwtClaims are a valid token's claims for sub, with extra ones (nil removes a claim).
func jwtClaims(sub string, life time.Duration, extra map[string]any) map[string]any {
	c := authtest.Claims(sub, life, map[string]any{"iss": "https://idp.example", "aud": "kafka"})
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func oauthOpts(token string) kgo.Opt {
	return kgo.SASL(oauth.Auth{Token: token}.AsMechanism())
}

// rawOAuth authenticates a raw connection with OAUTHBEARER (SaslHandshake v1,
// SaslAuthenticate v1): the SaslAuthenticate response, after the client's 0x01 when the
// broker answered with an error document.
func rawOAuth(t *testing.T, c net.Conn, token string) (*kmsg.SASLAuthenticateResponse, string) {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "OAUTHBEARER"
	if b, err := sendRaw(t, c, 1, hs); err != nil {
		t.Fatalf("handshake: %v", err)
	} else if r := decodeRaw[*kmsg.SASLHandshakeResponse](t, b, hs); r.ErrorCode != 0 {
		t.Fatalf("handshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	resp := rawAuthenticate(t, c, 2, []byte("n,,\x01auth=Bearer "+token+"\x01\x01"))
	doc := ""
	if resp.ErrorCode == 0 && len(resp.SASLAuthBytes) > 0 {
		doc = string(resp.SASLAuthBytes)
		resp = rawAuthenticate(t, c, 3, []byte{0x01})
	}
	return resp, doc
}

func rawAuthenticate(t *testing.T, c net.Conn, corr int32, msg []byte) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = 1, msg
	b, err := sendRaw(t, c, corr, req)
	if err != nil {
		t.Fatalf("SaslAuthenticate: %v", err)
	}
	return decodeRaw[*kmsg.SASLAuthenticateResponse](t, b, req)
}

// decodeRaw decodes a raw response frame (size, correlation id, body; no flexible header).
func decodeRaw[R kmsg.Response](t *testing.T, frame []byte, req kmsg.Request) R {
	t.Helper()
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(frame[8:]); err != nil {
		t.Fatalf("decoding %T: %v", resp, err)
	}
	return resp.(R)
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOAuthBearerProduceConsume(t *testing.T) {
	n := startOAuthNode(t)
	rs, es := n.keys[0], n.keys[1]
	for _, tc := range []struct {
		listener, token string
		tls             bool
	}{
		{"JWKS", rs.Sign(jwtClaims("alice", time.Hour, nil)), false},
		{"FILEJWKS", es.Sign(jwtClaims("alice", time.Hour, map[string]any{"aud": []string{"x", "other"}})), true},
		{"UNSECURED", authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, map[string]any{"scope": "produce consume"})), false},
	} {
		addr := n.Server().ListenerAddr(tc.listener)
		opts := []kgo.Opt{kgo.SeedBrokers(addr), oauthOpts(tc.token)}
		if tc.tls {
			opts = append(opts, kgo.DialTLSConfig(n.clientTLS(t, "")))
		}
		roundTrip(t, n.Node, secClient(t, addr, opts...), "oauth-"+strings.ToLower(tc.listener), opts...)
	}
}

// TestOAuthBearerRefused: tokens the validating handler must refuse, over TCP: the broker
// answers the error document, and SASL_AUTHENTICATION_FAILED after the client's 0x01; franz-go
// fails its login.
func TestOAuthBearerRefused(t *testing.T) {
	n := startOAuthNode(t)
	rs := n.keys[0]
	stranger := authtest.MustSigningKey(t, "rs-2", jose.RS256)
	impostor := authtest.MustSigningKey(t, "rs-1", jose.RS256) // the known kid, another key
	addr := n.Server().ListenerAddr("JWKS")
	for _, tc := range []struct {
		name, token string
	}{
		{"expired", rs.Sign(jwtClaims("alice", -time.Minute, map[string]any{"iat": time.Now().Add(-time.Hour).Unix()}))},
		{"wrong audience", rs.Sign(jwtClaims("alice", time.Hour, map[string]any{"aud": "elsewhere"}))},
		{"wrong issuer", rs.Sign(jwtClaims("alice", time.Hour, map[string]any{"iss": "https://evil.example"}))},
		{"unknown kid", stranger.Sign(jwtClaims("alice", time.Hour, nil))},
		{"bad signature", impostor.Sign(jwtClaims("alice", time.Hour, nil))},
		{"alg none", authtest.UnsecuredToken(jwtClaims("alice", time.Hour, nil))},
		{"no exp", rs.Sign(jwtClaims("alice", time.Hour, map[string]any{"exp": nil}))},
	} {
		c := dialT(t, addr)
		resp, doc := rawOAuth(t, c, tc.token)
		if doc != `{"status":"invalid_token"}` || resp.ErrorCode != kerr.SaslAuthenticationFailed.Code ||
			resp.ErrorMessage == nil || *resp.ErrorMessage != doc {
			t.Errorf("%s: error document %q, then %v %v", tc.name, doc, kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
		}
		if err := pingErr(t, secClient(t, addr, oauthOpts(tc.token))); err == nil {
			t.Errorf("%s: franz-go logged in", tc.name)
		}
	}
	// The unsecured listener's required scope.
	c := dialT(t, n.Server().ListenerAddr("UNSECURED"))
	resp, doc := rawOAuth(t, c, authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, map[string]any{"scope": "consume"})))
	if doc != `{"status":"insufficient_scope", "scope":"produce"}` || resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Errorf("insufficient scope: %q then %v", doc, kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestOAuthBearerKeyRotation: a token signed by a key added to the JWKS after the broker
// fetched it is accepted (the unknown kid fetches the JWKS again).
func TestOAuthBearerKeyRotation(t *testing.T) {
	n := startOAuthNode(t)
	rotated := authtest.MustSigningKey(t, "es-2", jose.ES512)
	addr := n.Server().ListenerAddr("JWKS")
	token := rotated.Sign(jwtClaims("bob", time.Hour, nil))
	if err := pingErr(t, secClient(t, addr, oauthOpts(token))); err == nil {
		t.Fatal("a token of a key not in the JWKS was accepted")
	}
	n.jwks.SetKeys(append(n.keys, rotated)...)
	// The unknown kid's fetches back off (100 ms doubling): poll until one finds the key.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := pingErr(t, secClient(t, addr, oauthOpts(token)))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated key is still refused: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// saramaToken is sarama's OAUTHBEARER token provider.
type saramaToken string

func (s saramaToken) Token() (*sarama.AccessToken, error) {
	return &sarama.AccessToken{Token: string(s)}, nil
}

func TestSaramaOAuthBearer(t *testing.T) {
	n := startOAuthNode(t)
	addr := n.Server().ListenerAddr("JWKS")
	createTopic(t, n.Node, "sarama-oauth", 1, nil)
	cfg := func(token string) *sarama.Config {
		c := sarama.NewConfig()
		c.Version = sarama.V3_6_0_0
		c.Producer.Return.Successes = true
		c.Net.SASL.Enable = true
		c.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		c.Net.SASL.TokenProvider = saramaToken(token)
		c.Metadata.Retry.Max = 0
		return c
	}
	saramaRoundTrip(t, addr, cfg(n.keys[1].Sign(jwtClaims("alice", time.Hour, nil))), "sarama-oauth")
	_, err := sarama.NewClient([]string{addr}, cfg(n.keys[0].Sign(jwtClaims("alice", time.Hour, map[string]any{"aud": "elsewhere"}))))
	if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		t.Fatalf("sarama with a token for another audience: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}
