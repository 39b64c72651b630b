package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/samsa-io/samsa/internal/auth/authtest"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestCommandConfigOAuthBearer: the CLI logs in with OAUTHBEARER as Kafka's clients do, on a
// broker whose standard authorizer lets only User:alice create topics: the unsecured login
// (an alg=none token with unsecuredLoginStringClaim_sub) on a listener with Kafka's unsecured
// validator, and the client-credentials login (OAuthBearerLoginCallbackHandler, a token from
// an HTTP token endpoint) on a listener validating signed JWTs against a JWKS. The principal
// is the token's subject: bob's token is refused by the authorizer, a wrong client secret by
// the token endpoint. A token endpoint that answers 503 twice is retried after
// sasl.login.retry.backoff.ms, as Kafka's login does.
func TestCommandConfigOAuthBearer(t *testing.T) {
	key := authtest.MustSigningKey(t, "k1", jose.RS256)
	jwks := authtest.NewJWKSServer(key)
	t.Cleanup(jwks.Close)
	var flaky atomic.Int32 // requests to /flaky: the first two are answered 503
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" && flaky.Add(1) <= 2 {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.FormValue("grant_type") != "client_credentials" || r.FormValue("scope") != "kafka" ||
			!ok || secret != id+"-secret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		tok := key.Sign(authtest.Claims(id, time.Hour, nil))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"` + tok + `","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(idp.Close)
	node := testcluster.Start(t,
		"listeners=PLAINTEXT://127.0.0.1:0,UNSECURED://127.0.0.1:0,JWKS://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,UNSECURED:SASL_PLAINTEXT,JWKS:SASL_PLAINTEXT",
		"sasl.enabled.mechanisms=OAUTHBEARER",
		"listener.name.jwks.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
		"listener.name.jwks.oauthbearer.sasl.oauthbearer.jwks.endpoint.url="+jwks.JWKSURL(),
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:alice",
		"connection.failed.authentication.delay.ms=0")
	props := filepath.Join(t.TempDir(), "client.properties")
	write := func(lines ...string) {
		if err := os.WriteFile(props, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const module = "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
	unsecured := func(sub string) []string {
		return []string{"security.protocol=SASL_PLAINTEXT", "sasl.mechanism=OAUTHBEARER",
			module + `unsecuredLoginStringClaim_sub="` + sub + `";`}
	}
	credentialsAt := func(url, id string, more ...string) []string {
		return append([]string{"security.protocol=SASL_PLAINTEXT", "sasl.mechanism=OAUTHBEARER",
			"sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
			"sasl.oauthbearer.token.endpoint.url=" + url,
			module + `clientId="` + id + `" clientSecret="alice-secret" scope="kafka";`}, more...)
	}
	credentials := func(id string) []string { return credentialsAt(idp.URL, id) }
	for _, tc := range []struct {
		name     string
		listener string
		props    []string
		wantErr  string
	}{
		{"unsecured alice", "UNSECURED", unsecured("alice"), ""},
		{"unsecured bob", "UNSECURED", unsecured("bob"), "TOPIC_AUTHORIZATION_FAILED"},
		{"client credentials alice", "JWKS", credentials("alice"), ""},
		{"client credentials, wrong secret", "JWKS", credentials("bob"), `response code 401 and error response {"invalid_client" - }`},
		{"client credentials, endpoint down twice", "JWKS", credentialsAt(idp.URL+"/flaky", "alice",
			"sasl.login.retry.backoff.ms=10", "sasl.login.read.timeout.ms=10000", "sasl.login.connect.timeout.ms=10000"), ""},
		{"unsecured token on the JWKS listener", "JWKS", unsecured("alice"), "oauth response"}, // the server's RFC 7628 error challenge
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.props...)
			topic := "t-" + strings.ReplaceAll(tc.name, " ", "-")
			topic = strings.ReplaceAll(topic, ",", "")
			out, stderr, err := runCLI(t, "", "topic", "create", topic, "--partitions", "1",
				"--brokers="+node.Server().ListenerAddr(tc.listener), "--command-config", props)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("topic create: %v (stderr %q)", err, stderr)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error()+stderr, tc.wantErr)):
				t.Fatalf("topic create: %v %q %q, want an error with %q", err, out, stderr, tc.wantErr)
			}
		})
	}
	if n := flaky.Load(); n != 3 {
		t.Fatalf("%d requests to the flaky token endpoint, want 3 (two 503s retried)", n)
	}
}
