package auth

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

// The fuzz targets feed the SASL exchanges what an unauthenticated client may send. Each
// checks that nothing panics, that a refusal is a *Failure (what the broker answers with), and
// that nothing is accepted that should not be. Their seed corpora are in testdata/fuzz.

// maxFuzzAnswer bounds what the server answers to one message: a server-first message or an
// error document, never something that grows with a hostile input beyond it.
const maxFuzzAnswer = 4096

func checkStep(t *testing.T, s Session, msg []byte) (done bool) {
	t.Helper()
	answer, done, err := s.Step(msg)
	if err != nil {
		if _, ok := err.(*Failure); !ok {
			t.Fatalf("error %T %v is not a *Failure", err, err)
		}
		return false
	}
	if len(answer) > maxFuzzAnswer+len(msg) {
		t.Fatalf("answer of %d bytes to a message of %d", len(answer), len(msg))
	}
	return done
}

func FuzzPlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Add([]byte("alice\x00alice\x00secret"))
	srv := NewServerWith([]string{"PLAIN"}, map[string]string{"alice": "secret"}, nil)
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _ := srv.Start("PLAIN")
		if checkStep(t, s, msg) {
			parts := bytes.Split(msg, []byte{0})
			if len(parts) != 3 || string(parts[1]) != "alice" || string(parts[2]) != "secret" {
				t.Fatalf("%q authenticated as %s", msg, s.Principal())
			}
		}
	})
}

// fuzzScramServer is a SCRAM server knowing user "user" (password "pencil"; its
// SCRAM-SHA-256 credential, also returned for SCRAM-SHA-512, where it cannot verify), and
// delegation token "tok1" (tokenauth=true) with the same credential.
func fuzzScramServer() *Server {
	salt := []byte("0123456789abcdef")
	salted, _ := pbkdf2.Key(sha256.New, "pencil", salt, 4096, sha256.Size)
	cred := NewScramCredential("SCRAM-SHA-256", salt, salted, 4096)
	return NewServerWith([]string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, nil, func(user, _ string) (ScramCredential, bool) {
		return cred, user == "user"
	}).WithDelegationTokens(func(id, _ string) (DelegationTokenLogin, bool) {
		return DelegationTokenLogin{Owner: "User:owner", Credential: cred, ExpiryMs: 1 << 50}, id == "tok1"
	})
}

func FuzzScramClientFirst(f *testing.F) {
	f.Add([]byte("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"))
	f.Add([]byte("n,a=user,n=user,r=abc,ext=1"))
	f.Add([]byte("n,,n=tok1,r=abc,tokenauth=true"))
	f.Add([]byte("n,,n=tok1,r=abc,tokenauth"))
	f.Add([]byte("n,,n=tok1,r=abc,=true,tokenauth=true"))
	srv := fuzzScramServer()
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
			s, _ := srv.Start(m)
			if checkStep(t, s, msg) {
				t.Fatalf("a client-first message %q ended the exchange", msg)
			}
		}
	})
}

// FuzzScramClientFinal runs a valid client-first message, then the fuzzed client-final one,
// with SERVERNONCE in it replaced by the server's nonce (which is random) so that the fuzzer
// reaches the proof check.
func FuzzScramClientFinal(f *testing.F) {
	f.Add([]byte("c=biws,r=fyko+d2lbbFgONRv9qkxdawLSERVERNONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="))
	f.Add([]byte("c=biws,r=SERVERNONCE,p="))
	f.Add([]byte("c=biws,r=fyko+d2lbbFgONRv9qkxdawLSERVERNONCE,e=x,p=AAAA"))
	srv := fuzzScramServer()
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _ := srv.Start("SCRAM-SHA-256")
		first, _, err := s.Step([]byte("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := strings.TrimPrefix(strings.Split(string(first), ",")[0], "r=fyko+d2lbbFgONRv9qkxdawL")
		msg = bytes.ReplaceAll(msg, []byte("SERVERNONCE"), []byte(nonce))
		if checkStep(t, s, msg) {
			t.Fatalf("a client-final message without the password's proof authenticated: %q", msg)
		}
	})
}

func FuzzOAuthBearerInitial(f *testing.F) {
	tok := authtest.UnsecuredToken(authtest.Claims("alice", 100*365*24*time.Hour, map[string]any{"scope": "a b"}))
	f.Add([]byte("n,,\x01auth=Bearer " + tok + "\x01\x01"))
	f.Add([]byte("n,a=alice,\x01auth=Bearer " + tok + "\x01host=h\x01port=1\x01\x01"))
	f.Add([]byte("n,,\x01auth=Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOjEsImV4cCI6MWUzMDB9.\x01\x01"))
	v, _ := NewUnsecuredValidator(nil)
	srv := NewServerWith([]string{"OAUTHBEARER"}, nil, nil).WithTokenValidator(v)
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _ := srv.Start("OAUTHBEARER")
		answer, done, err := s.Step(msg)
		if err == nil && !done {
			// The error document, then the client's 0x01 fails the exchange.
			if !bytes.HasPrefix(answer, []byte(`{"status":"`)) {
				t.Fatalf("answer %q", answer)
			}
			if _, _, err := s.Step([]byte{1}); err == nil {
				t.Fatal("0x01 after the error document did not fail")
			}
		}
		if done && !strings.HasPrefix(s.Principal(), "User:") {
			t.Fatalf("principal %q", s.Principal())
		}
	})
}

// FuzzJWT validates fuzzed compact JWS tokens against a JWKS with one RSA and one EC key:
// none may be accepted (the fuzzer cannot sign).
func FuzzJWT(f *testing.F) {
	rs, es := authtest.MustSigningKey(f, "rs", jose.RS256), authtest.MustSigningKey(f, "es", jose.ES256)
	f.Add(rs.Sign(authtest.Claims("alice", time.Hour, nil)))
	f.Add(es.Sign(authtest.Claims("alice", time.Hour, map[string]any{"aud": []string{"a"}})))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	file := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(file, authtest.JWKS(rs, es), 0o600); err != nil {
		f.Fatal(err)
	}
	jwks, err := NewJWKS(JWKSConfig{URL: "file://" + file, Refresh: time.Hour, Backoff: time.Hour, MaxBackoff: time.Hour}, testLog)
	if err != nil {
		f.Fatal(err)
	}
	v := &JWTValidator{Keys: jwks, SubClaim: "sub", ScopeClaim: "scope", ClockSkew: 30 * time.Second}
	valid := map[string]bool{}
	f.Fuzz(func(t *testing.T, token string) {
		if len(token) > maxTokenSize {
			return // ParseOAuthBearerInitial refuses it before the validator
		}
		tk, err := v.Validate(token)
		if err == nil && !valid[token] {
			// Only the seeds (signed here) may pass; a mutated token must not.
			parts := strings.Split(token, ".")
			if len(parts) != 3 || tk.Principal == "" {
				t.Fatalf("accepted %q as %+v", token, tk)
			}
			if _, err := jose.ParseSignedCompact(token, jwtAlgorithms); err != nil {
				t.Fatalf("accepted an unparsable token %q", token)
			}
		}
		if err != nil {
			if _, ok := err.(*TokenError); !ok {
				t.Fatalf("error %T is not a *TokenError", err)
			}
		}
	})
}

func FuzzJWKS(f *testing.F) {
	rs, es := authtest.MustSigningKey(f, "rs", jose.RS256), authtest.MustSigningKey(f, "es", jose.ES256)
	f.Add(authtest.JWKS(rs, es))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		set, err := ParseJWKS(doc)
		if err == nil && len(selectKeys(set, "")) > len(set.Keys) {
			t.Fatal("more keys selected than the set holds")
		}
	})
}

func FuzzJAAS(f *testing.F) {
	f.Add(`org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="a\\"b;c" debug=true;`)
	f.Add(`org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope="a b";`)
	f.Fuzz(func(t *testing.T, text string) {
		j, err := ParseJAAS(text)
		if err == nil {
			if _, err := NewUnsecuredValidator(j.Options); err == nil {
				j.PlainUsers()
			}
		}
	})
}
