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

// TestClientCredentialsRetries: as Kafka's HttpAccessTokenRetriever, a 5xx answer or a read
// that times out is tried again after sasl.login.retry.backoff.ms, doubled each attempt and
// never past sasl.login.retry.backoff.max.ms after the first; a 4xx answer is refused at once
// with the endpoint's error. The clock and the waits are the test's, so the backoffs are exact.
func TestClientCredentialsRetries(t *testing.T) {
	ms := time.Millisecond
	type opts = struct{ backoff, backoffMax, readTimeout time.Duration }
	for _, tc := range []struct {
		name      string
		answers   []int // status of each request in turn, the last repeated; 0 hangs
		cc        opts
		wantWaits []time.Duration
		wantTries int32
		wantErr   string
	}{
		{name: "503 twice then 200", answers: []int{503, 503, 200},
			wantWaits: []time.Duration{100 * ms, 200 * ms}, wantTries: 3},
		{name: "500 then 201, own backoff", answers: []int{500, 201}, cc: opts{backoff: 7 * ms},
			wantWaits: []time.Duration{7 * ms}, wantTries: 2},
		{name: "401 not retried", answers: []int{401},
			wantTries: 1, wantErr: `response code 401 and error response {"invalid_client" - "bad secret"} was encountered reading the token endpoint response; will not attempt further retries`},
		{name: "404 not retried", answers: []int{404}, wantTries: 1, wantErr: "will not attempt further retries"},
		{name: "429 retried", answers: []int{429, 200}, wantWaits: []time.Duration{100 * ms}, wantTries: 2},
		{name: "503 until the max", answers: []int{503},
			wantWaits: []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 3700 * ms}, wantTries: 8,
			wantErr: `unexpected response code 503 and error message {"temporarily_unavailable" - "try later"}`},
		{name: "503 until a short max", answers: []int{503}, cc: opts{backoff: 40 * ms, backoffMax: 100 * ms},
			wantWaits: []time.Duration{40 * ms, 60 * ms}, wantTries: 3, wantErr: "3 attempts in sasl.login.retry.backoff.max.ms 100"},
		{name: "read timeout retried", answers: []int{0, 200}, cc: opts{readTimeout: 100 * ms},
			wantWaits: []time.Duration{100 * ms}, wantTries: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tries atomic.Int32
			hang := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(tries.Add(1))
				code := tc.answers[min(n, len(tc.answers))-1]
				switch {
				case code == 0:
					<-hang
				case code >= 500 || code == 429:
					http.Error(w, `{"error":"temporarily_unavailable","error_description":"try later"}`, code)
				case code >= 400:
					http.Error(w, `{"error":"invalid_client","error_description":"bad secret"}`, code)
				default:
					w.WriteHeader(code)
					w.Write([]byte(`{"access_token":"tok","expires_in":60}`))
				}
			}))
			defer srv.Close()
			defer close(hang)
			clock := time.Unix(1e9, 0)
			var waits []time.Duration
			cc := &ClientCredentials{TokenURL: srv.URL, ClientID: "cli", ClientSecret: "s3cret",
				RetryBackoff: tc.cc.backoff, RetryBackoffMax: tc.cc.backoffMax, ReadTimeout: tc.cc.readTimeout}
			cc.Now = func() time.Time { return clock }
			cc.sleep = func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				clock = clock.Add(d)
				return nil
			}
			tok, err := cc.Token(context.Background())
			if tc.wantErr == "" && (err != nil || tok != "tok") {
				t.Fatalf("token %q, %v", tok, err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if got := tries.Load(); got != tc.wantTries {
				t.Errorf("%d requests, want %d", got, tc.wantTries)
			}
			if !reflect.DeepEqual(waits, tc.wantWaits) {
				t.Errorf("waits %v, want %v", waits, tc.wantWaits)
			}
		})
	}
}

// TestClientCredentialsRetryEndsWithContext: the wait between attempts ends with the
// caller's context.
func TestClientCredentialsRetryEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the caller gives up while the first answer is on its way
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cc := &ClientCredentials{TokenURL: srv.URL, ClientID: "cli", ClientSecret: "s", RetryBackoff: time.Hour, RetryBackoffMax: 2 * time.Hour}
	if _, err := cc.Token(ctx); err == nil {
		t.Fatal("a cancelled login succeeded")
	}
}
