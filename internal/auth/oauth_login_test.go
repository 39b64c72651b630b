package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestUnsecuredLoginToken: the client's unsecured token is what Kafka's unsecured validator
// accepts, with its claims; iat and exp cannot be set and the principal claim must be there.
func TestUnsecuredLoginToken(t *testing.T) {
	now := time.Now()
	opts := map[string]string{
		"unsecuredLoginStringClaim_sub":   "alice",
		"unsecuredLoginListClaim_scope":   "|produce|consume",
		"unsecuredLoginNumberClaim_n":     "12.5",
		"unsecuredLoginLifetimeSeconds":   "60",
		"unsecuredLoginExtension_traceId": "x",
	}
	tok, err := UnsecuredLoginToken(opts, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&UnsecuredValidator{PrincipalClaim: "sub", ScopeClaim: "scope", RequiredScope: []string{"produce"}}).Validate(tok)
	if err != nil {
		t.Fatalf("the unsecured validator refused %s: %v", tok, err)
	}
	if got.Principal != "alice" {
		t.Fatalf("principal %q", got.Principal)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["n"] != 12.5 || !reflect.DeepEqual(claims["scope"], []any{"produce", "consume"}) ||
		claims["exp"].(float64)-claims["iat"].(float64) != 60 || claims["traceId"] != nil {
		t.Fatalf("claims %v", claims)
	}
	for _, tc := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"unsecuredLoginStringClaim_sub": "a", "unsecuredLoginNumberClaim_exp": "1"}, "Cannot explicitly set the 'exp' claim"},
		{map[string]string{"unsecuredLoginStringClaim_user": "a"}, "unsecuredLoginStringClaim_sub"},
		{map[string]string{"unsecuredLoginStringClaim_user": "a", "unsecuredLoginPrincipalClaimName": "user"}, ""},
		{map[string]string{"unsecuredLoginStringClaim_sub": "a", "unsecuredLoginLifetimeSeconds": "x"}, "LifetimeSeconds"},
	} {
		_, err := UnsecuredLoginToken(tc.opts, now)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.opts, err, tc.want)
		}
	}
	if ext, err := LoginExtensions(opts, "unsecuredLoginExtension_"); err != nil || ext["traceId"] != "x" || len(ext) != 1 {
		t.Fatalf("extensions %v %v", ext, err)
	}
	if _, err := LoginExtensions(map[string]string{"extension_a1": "v"}, "extension_"); err == nil {
		t.Fatal("an invalid extension name was accepted")
	}
}

// TestClientCredentials: the grant is a form POST with the client's basic authentication and
// scope; the token is kept until near its expiry; a refusal is an error naming the endpoint.
func TestClientCredentials(t *testing.T) {
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.FormValue("grant_type") != "client_credentials" || r.FormValue("scope") != "kafka" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if !ok || id != "cli" || secret != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	cc := &ClientCredentials{TokenURL: srv.URL, ClientID: "cli", ClientSecret: "s3cret", Scope: "kafka"}
	for range 2 {
		if tok, err := cc.Token(ctx); err != nil || tok != "tok-1" {
			t.Fatalf("token %q, %v", tok, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (the token kept)", n)
	}
	bad := &ClientCredentials{TokenURL: srv.URL, ClientID: "cli", ClientSecret: "wrong", Scope: "kafka"}
	if _, err := bad.Token(ctx); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("wrong secret: %v", err)
	}
}
