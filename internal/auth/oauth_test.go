package auth

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/samsa-io/samsa/internal/auth/authtest"
	"github.com/samsa-io/samsa/internal/config"
)

var testLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func initial(token string) []byte {
	return []byte("n,,\x01auth=Bearer " + token + "\x01\x01")
}

// runOAuth runs one OAUTHBEARER exchange: the principal on success, else the failure's
// message (after the error document and the client's 0x01, as Kafka's clients do).
func runOAuth(t *testing.T, v TokenValidator, msg []byte) (principal, failure string) {
	t.Helper()
	s, _ := NewServerWith([]string{"OAUTHBEARER"}, nil, nil).WithTokenValidator(v).Start("OAUTHBEARER")
	answer, done, err := s.Step(msg)
	if err == nil && !done {
		if !strings.HasPrefix(string(answer), `{"status":"`) {
			t.Fatalf("answer %q, want an error document", answer)
		}
		_, done, err = s.Step([]byte{0x01})
		var f *Failure
		if done || !errors.As(err, &f) || f.Message != string(answer) {
			t.Fatalf("after 0x01: done %v err %v, want the failure %q", done, err, answer)
		}
		return "", f.Message
	}
	if err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			t.Fatalf("error %v is not a *Failure", err)
		}
		return "", f.Message
	}
	return s.Principal(), ""
}

func TestJWTValidator(t *testing.T) {
	rs := authtest.MustSigningKey(t, "rs", jose.RS256)
	es := authtest.MustSigningKey(t, "es", jose.ES384)
	ps := authtest.MustSigningKey(t, "ps", jose.PS512)
	noKid := authtest.MustSigningKey(t, "", jose.ES256)
	other := authtest.MustSigningKey(t, "rs", jose.RS256) // same kid, another key: a bad signature
	unknown := authtest.MustSigningKey(t, "new", jose.RS256)
	dir := t.TempDir()
	file := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(file, authtest.JWKS(rs, es, ps, noKid), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := authtest.NewJWKSServer(rs, es, ps, noKid)
	defer srv.Close()
	for _, url := range []string{srv.JWKSURL(), "file://" + file} {
		jwks, err := NewJWKS(JWKSConfig{URL: url, Refresh: time.Hour, Backoff: time.Hour, MaxBackoff: time.Hour}, testLog)
		if err != nil {
			t.Fatal(err)
		}
		v := &JWTValidator{Keys: jwks, Audience: []string{"other", "kafka"}, Issuer: "https://idp", SubClaim: "sub", ScopeClaim: "scope", ClockSkew: 30 * time.Second}
		for _, tc := range []struct {
			name   string
			token  string
			want   string // principal, or the failure message
			custom *JWTValidator
		}{
			{name: "RS256", token: rs.Sign(claims("alice", nil)), want: "User:alice"},
			{name: "ES384", token: es.Sign(claims("bob", nil)), want: "User:bob"},
			{name: "PS512", token: ps.Sign(claims("carol", nil)), want: "User:carol"},
			{name: "no kid", token: noKid.Sign(claims("dave", nil)), want: "User:dave"},
			{name: "audience list", token: rs.Sign(claims("alice", map[string]any{"aud": []string{"x", "kafka"}})), want: "User:alice"},
			{name: "within the clock skew", token: rs.Sign(claims("alice", map[string]any{"exp": time.Now().Add(-10 * time.Second).Unix(), "iat": time.Now().Add(-time.Minute).Unix()})), want: "User:alice"},
			{name: "expired", token: rs.Sign(claims("alice", map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), want: `{"status":"invalid_token"}`},
			{name: "no exp", token: rs.Sign(claims("alice", map[string]any{"exp": nil})), want: `{"status":"invalid_token"}`},
			{name: "no iat", token: rs.Sign(claims("alice", map[string]any{"iat": nil})), want: `{"status":"invalid_token"}`},
			{name: "not yet valid", token: rs.Sign(claims("alice", map[string]any{"nbf": time.Now().Add(time.Minute).Unix()})), want: `{"status":"invalid_token"}`},
			{name: "issued in the future", token: rs.Sign(claims("alice", map[string]any{"iat": time.Now().Add(time.Minute).Unix()})), want: `{"status":"invalid_token"}`},
			{name: "wrong audience", token: rs.Sign(claims("alice", map[string]any{"aud": "elsewhere"})), want: `{"status":"invalid_token"}`},
			{name: "no audience", token: rs.Sign(claims("alice", map[string]any{"aud": nil})), want: `{"status":"invalid_token"}`},
			{name: "wrong issuer", token: rs.Sign(claims("alice", map[string]any{"iss": "https://evil"})), want: `{"status":"invalid_token"}`},
			{name: "unknown kid", token: unknown.Sign(claims("alice", nil)), want: `{"status":"invalid_token"}`},
			{name: "bad signature", token: other.Sign(claims("alice", nil)), want: `{"status":"invalid_token"}`},
			{name: "alg none", token: authtest.UnsecuredToken(claims("alice", nil)), want: `{"status":"invalid_token"}`},
			{name: "no sub", token: rs.Sign(claims("alice", map[string]any{"sub": nil})), want: `{"status":"invalid_token"}`},
			{name: "tampered claims", token: tamper(rs.Sign(claims("alice", nil)), claims("admin", nil)), want: `{"status":"invalid_token"}`},
			{name: "custom sub claim", token: rs.Sign(claims("alice", map[string]any{"client_id": "svc"})), want: "User:svc",
				custom: &JWTValidator{Keys: jwks, SubClaim: "client_id", ScopeClaim: "scope", ClockSkew: time.Second}},
		} {
			vv := v
			if tc.custom != nil {
				vv = tc.custom
			}
			p, f := runOAuth(t, vv, initial(tc.token))
			if got := p + f; got != tc.want {
				t.Errorf("%s %s: %q, want %q", url[:4], tc.name, got, tc.want)
			}
		}
	}
}

func claims(sub string, extra map[string]any) map[string]any {
	base := map[string]any{"iss": "https://idp", "aud": "kafka"}
	for k, v := range extra {
		base[k] = v
	}
	return authtest.Claims(sub, time.Hour, base)
}

// tamper replaces a signed token's claims, keeping its header and signature.
func tamper(token string, claims map[string]any) string {
	parts := strings.Split(token, ".")
	forged := strings.Split(authtest.UnsecuredToken(claims), ".")
	return parts[0] + "." + forged[1] + "." + parts[2]
}

// TestJWKSRotation: a token signed by a key the JWKS did not have is accepted once the JWKS
// has it (fetched again for the unknown kid), and fetches for unknown kids back off.
func TestJWKSRotation(t *testing.T) {
	old := authtest.MustSigningKey(t, "k1", jose.RS256)
	rotated := authtest.MustSigningKey(t, "k2", jose.ES256)
	srv := authtest.NewJWKSServer(old)
	defer srv.Close()
	jwks, err := NewJWKS(JWKSConfig{URL: srv.JWKSURL(), Refresh: time.Hour, Backoff: time.Hour, MaxBackoff: time.Hour}, testLog)
	if err != nil {
		t.Fatal(err)
	}
	v := &JWTValidator{Keys: jwks, SubClaim: "sub", ScopeClaim: "scope"}
	if p, f := runOAuth(t, v, initial(old.Sign(claims("alice", nil)))); p != "User:alice" {
		t.Fatalf("old key: %q", f)
	}
	srv.SetKeys(old, rotated)
	if p, f := runOAuth(t, v, initial(rotated.Sign(claims("bob", nil)))); p != "User:bob" {
		t.Fatalf("rotated key: %q", f)
	}
	fetches := srv.Fetches()
	// More unknown kids: no fetch within the backoff (an hour here) of the last one.
	stranger := authtest.MustSigningKey(t, "k3", jose.RS256)
	for range 5 {
		if p, _ := runOAuth(t, v, initial(stranger.Sign(claims("eve", nil)))); p != "" {
			t.Fatal("a token of an unknown key was accepted")
		}
	}
	if got := srv.Fetches() - fetches; got != 0 {
		t.Fatalf("%d fetches for 5 tokens of an unknown kid within the backoff, want 0", got)
	}
}

func TestJWKSLimits(t *testing.T) {
	srv := authtest.NewJWKSServer()
	defer srv.Close()
	for name, doc := range map[string][]byte{
		"too large": []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSSize) + `"}`),
		"not JSON":  []byte("<html>"),
		"no keys":   []byte(`{"keys":[]}`),
		"bad key":   []byte(`{"keys":[{"kty":"RSA","n":"AQ"}]}`),
	} {
		srv.SetDocument(doc)
		j, err := NewJWKS(JWKSConfig{URL: srv.JWKSURL(), Refresh: time.Hour, Backoff: time.Hour, MaxBackoff: time.Hour}, testLog)
		if err != nil {
			t.Fatal(err)
		}
		if keys := j.Keys(""); len(keys) != 0 {
			t.Errorf("%s: %d keys", name, len(keys))
		}
	}
	for _, bad := range []string{"ftp://x/jwks", "://"} {
		if _, err := NewJWKS(JWKSConfig{URL: bad}, testLog); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestUnsecuredValidator(t *testing.T) {
	v, err := NewUnsecuredValidator(map[string]string{"unsecuredValidatorRequiredScope": "produce consume"})
	if err != nil {
		t.Fatal(err)
	}
	scoped := map[string]any{"scope": "produce consume admin"}
	k := authtest.MustSigningKey(t, "k", jose.RS256)
	for _, tc := range []struct {
		name  string
		token string
		want  string
	}{
		{"scope string", authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, scoped)), "User:alice"},
		{"scope list", authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, map[string]any{"scope": []string{"consume", "produce"}})), "User:alice"},
		{"insufficient scope", authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, map[string]any{"scope": "produce"})), `{"status":"insufficient_scope", "scope":"produce consume"}`},
		{"expired", authtest.UnsecuredToken(authtest.Claims("alice", -time.Second, scoped)), `{"status":"invalid_token"}`},
		{"no exp", authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, map[string]any{"scope": "produce consume", "exp": nil})), `{"status":"invalid_token"}`},
		{"exp not a number", authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, map[string]any{"scope": "produce consume", "exp": "soon"})), `{"status":"invalid_token"}`},
		{"no sub", authtest.UnsecuredToken(authtest.Claims("", time.Hour, scoped)), `{"status":"invalid_token"}`},
		{"signed", k.Sign(authtest.Claims("alice", time.Hour, scoped)), `{"status":"invalid_token"}`},
		{"two parts", "eyJhbGciOiJub25lIn0.e30", `{"status":"invalid_token"}`},
	} {
		p, f := runOAuth(t, v, initial(tc.token))
		if got := p + f; got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := NewUnsecuredValidator(map[string]string{"unsecuredValidatorAllowableClockSkewMs": "-1"}); err == nil {
		t.Error("a negative clock skew was accepted")
	}
}

func TestOAuthBearerInitialResponse(t *testing.T) {
	v, _ := NewUnsecuredValidator(nil)
	tok := authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, nil))
	const malformed = "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
	for _, tc := range []struct {
		msg, want string
	}{
		{"n,,\x01auth=Bearer " + tok + "\x01\x01", "User:alice"},
		{"n,a=alice,\x01auth=Bearer " + tok + "\x01\x01", "User:alice"},
		{"n,,\x01auth=bearer  " + tok + "\x01host=kafka\x01port=9092\x01\x01", "User:alice"},
		{"n,a=bob,\x01auth=Bearer " + tok + "\x01\x01", "Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)"},
		{"n,,\x01auth=Basic " + tok + "\x01\x01", malformed},
		{"n,,\x01host=kafka\x01\x01", malformed},
		{"n,,\x01auth=Bearer " + tok + "\x01", malformed},
		{"y,,\x01auth=Bearer " + tok + "\x01\x01", malformed},
		{"n,a=a,b,\x01auth=Bearer " + tok + "\x01\x01", malformed},
		{"n,,\x01auth=Bearer tok+en\x01\x01", malformed},
		{"n,,\x01a1=x\x01auth=Bearer " + tok + "\x01\x01", malformed},
		{"n,,\x01auth=Bearer " + strings.Repeat("a", maxTokenSize+1) + "\x01\x01", malformed},
		{"", malformed},
	} {
		p, f := runOAuth(t, v, []byte(tc.msg))
		if got := p + f; got != tc.want {
			t.Errorf("%q: %q, want %q", tc.msg, got, tc.want)
		}
	}
	// After the error document anything but 0x01 fails too.
	s, _ := NewServerWith([]string{"OAUTHBEARER"}, nil, nil).WithTokenValidator(v).Start("OAUTHBEARER")
	if _, done, err := s.Step(initial("x.y.")); err != nil || done {
		t.Fatalf("bad token: done %v err %v, want the error document", done, err)
	}
	if _, _, err := s.Step(initial(tok)); err == nil {
		t.Fatal("a second token after the error document was accepted")
	}
}

// TestJWKSPeriodicRefresh: keys older than the refresh interval are fetched again in the
// background; a key removed from the JWKS (revoked) then stops verifying tokens.
func TestJWKSPeriodicRefresh(t *testing.T) {
	k1, k2 := authtest.MustSigningKey(t, "k1", jose.RS256), authtest.MustSigningKey(t, "k2", jose.ES256)
	srv := authtest.NewJWKSServer(k1, k2)
	defer srv.Close()
	jwks, err := NewJWKS(JWKSConfig{URL: srv.JWKSURL(), Refresh: time.Hour, Backoff: time.Hour, MaxBackoff: time.Hour}, testLog)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	jwks.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	v := &JWTValidator{Keys: jwks, SubClaim: "sub", ScopeClaim: "scope"}
	token := k1.Sign(claims("alice", nil))
	if p, f := runOAuth(t, v, initial(token)); p != "User:alice" {
		t.Fatalf("k1: %q", f)
	}
	srv.SetKeys(k2) // k1 revoked
	if p, _ := runOAuth(t, v, initial(token)); p != "User:alice" || srv.Fetches() != 1 {
		t.Fatalf("within the refresh interval: %q, %d fetches, want the keys held and 1 fetch", p, srv.Fetches())
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := runOAuth(t, v, initial(token))
		if p == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked key still verifies after the refresh interval (%d fetches)", srv.Fetches())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p, f := runOAuth(t, v, initial(k2.Sign(claims("bob", nil)))); p != "User:bob" {
		t.Fatalf("k2 after the refresh: %q", f)
	}
}

// TestNewServerOAuth: a listener's OAUTHBEARER validator from the configuration.
func TestNewServerOAuth(t *testing.T) {
	k := authtest.MustSigningKey(t, "k", jose.PS256)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, authtest.JWKS(k), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"listeners":               "PLAINTEXT://:9091,SASL_PLAINTEXT://:9092,CONTROLLER://:9093",
		"sasl.enabled.mechanisms": "OAUTHBEARER",
	}
	validating := "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
	for _, tc := range []struct {
		name    string
		props   map[string]string
		token   string
		want    string // principal or failure
		wantErr string
	}{
		{name: "validating, per listener and mechanism", props: map[string]string{
			"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class":        validating,
			"listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.url":        "file://" + file,
			"listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.expected.issuer":          "https://idp",
			"listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.expected.audience":        "a, kafka",
			"listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.sub.claim.name":           "client_id",
			"listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.clock.skew.seconds":       "0",
			"listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.refresh.ms": "60000",
		}, token: k.Sign(claims("alice", map[string]any{"client_id": "svc"})), want: "User:svc"},
		{name: "validating, wrong issuer", props: map[string]string{
			"sasl.server.callback.handler.class": validating,
			"sasl.oauthbearer.jwks.endpoint.url": "file://" + file,
			"sasl.oauthbearer.expected.issuer":   "https://other",
		}, token: k.Sign(claims("alice", nil)), want: `{"status":"invalid_token"}`},
		{name: "validating without a JWKS", props: map[string]string{
			"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": validating,
		}, wantErr: "sasl.oauthbearer.jwks.endpoint.url"},
		{name: "validating, bad URL scheme", props: map[string]string{
			"sasl.server.callback.handler.class": validating,
			"sasl.oauthbearer.jwks.endpoint.url": "ldap://idp/jwks",
		}, wantErr: "scheme"},
		{name: "unsecured by default", props: map[string]string{}, token: authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, nil)), want: "User:alice"},
		{name: "unsecured with JAAS options", props: map[string]string{
			"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorPrincipalClaimName="user";`,
		}, token: authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, map[string]any{"user": "carol"})), want: "User:carol"},
		{name: "unsecured, bad JAAS option", props: map[string]string{
			"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorAllowableClockSkewMs="soon";`,
		}, wantErr: "unsecuredValidatorAllowableClockSkewMs"},
	} {
		props := map[string]string{"log.dirs": t.TempDir()}
		for k, v := range base {
			props[k] = v
		}
		for k, v := range tc.props {
			props[k] = v
		}
		cfg, err := config.LoadServer(props)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		s, err := NewServer(cfg, "SASL_PLAINTEXT", nil, testLog)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		p, f := runOAuth(t, s.oauth, initial(tc.token))
		if got := p + f; got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
