package broker_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

// reauthWatch counts a kgo client's re-authentications (its debug log) and the connections it
// lost.
type reauthWatch struct {
	mu                      sync.Mutex
	reauths, failed, closed int
}

func (w *reauthWatch) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (w *reauthWatch) Log(_ kgo.LogLevel, msg string, _ ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case strings.Contains(msg, "sasl reauth failed"):
		w.failed++
	case strings.Contains(msg, "reauthenticating"):
		w.reauths++
	}
}

func (w *reauthWatch) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) {
	w.mu.Lock()
	w.closed++
	w.mu.Unlock()
}

func (w *reauthWatch) counts() (reauths, failed, closed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reauths, w.failed, w.closed
}

// TestReauthKgo: with connections.max.reauth.ms=2000, franz-go re-authenticates its
// connections in place (PLAIN, SCRAM-SHA-256) while it produces and consumes: no connection
// is lost, no re-authentication fails, every record is read back. OAUTHBEARER has no
// connections.max.reauth.ms on the listener: its tokens live 3 s, and their expiry alone ends
// the sessions (the provider makes a fresh token at each re-authentication).
func TestReauthKgo(t *testing.T) {
	key := authtest.MustSigningKey(t, "rs-1", jose.RS256)
	jwks := authtest.NewJWKSServer(key)
	defer jwks.Close()
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,OAUTHBEARER",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS,
		"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class="+validatorClass,
		"sasl.oauthbearer.jwks.endpoint.url="+jwks.JWKSURL(),
		"connections.max.reauth.ms=2000",
		"listener.name.sasl_plaintext.oauthbearer.connections.max.reauth.ms=0")
	if _, err := kadm.NewClient(newClient(t, n.Node)).AlterUserSCRAMs(ctxT(t), nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-secret"},
	}); err != nil {
		t.Fatal(err)
	}
	addr := n.Server().ListenerAddr("SASL_PLAINTEXT")
	for _, tc := range []struct {
		name string
		mech sasl.Mechanism
	}{
		{"PLAIN", plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()},
		{"SCRAM-SHA-256", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()},
		// A fresh token at each (re-)authentication, as a real token provider. exp is in whole
		// seconds: the session lasts 2 to 3 s, and franz-go re-authenticates 1 s before its end.
		{"OAUTHBEARER", oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			return oauth.Auth{Token: key.Sign(authtest.Claims("alice", 3*time.Second, nil))}, nil
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "reauth-" + strings.ToLower(tc.name)
			createTopic(t, n.Node, topic, 1, nil)
			var pw, cw reauthWatch
			prod := secClient(t, addr, kgo.SASL(tc.mech), kgo.WithLogger(&pw), kgo.WithHooks(&pw))
			cons := secClient(t, addr, kgo.SASL(tc.mech), kgo.WithLogger(&cw), kgo.WithHooks(&cw),
				kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			ctx := ctxT(t)
			produced, consumed := 0, 0
			// Produce and consume until both clients have re-authenticated three times (a
			// 2 s session: about 6 s).
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				pr, _, _ := pw.counts()
				cr, _, _ := cw.counts()
				if pr >= 3 && cr >= 3 {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("re-authentications: producer %d, consumer %d, want 3 each", pr, cr)
				case <-tick.C:
				}
				if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
					t.Fatalf("produce %d: %v", produced, err)
				}
				produced++
				pollCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				fs := cons.PollFetches(pollCtx)
				cancel()
				for _, e := range fs.Errors() {
					if e.Err != context.DeadlineExceeded {
						t.Fatalf("fetch: %v", e.Err)
					}
				}
				consumed += len(fs.Records())
			}
			for consumed < produced {
				fs := cons.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("consumed %d of %d", consumed, produced)
				}
				consumed += len(fs.Records())
			}
			for who, w := range map[string]*reauthWatch{"producer": &pw, "consumer": &cw} {
				if r, failed, closed := w.counts(); failed != 0 || closed != 0 {
					t.Errorf("%s: %d re-authentications, %d failed, %d connections lost", who, r, failed, closed)
				}
			}
		})
	}
}

// rawPlain authenticates a raw connection with PLAIN: the SaslAuthenticate response.
func rawPlain(t *testing.T, c net.Conn, corr int32, user, pass string) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	b, err := sendRaw(t, c, corr, hs)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if r := decodeRaw[*kmsg.SASLHandshakeResponse](t, b, hs); r.ErrorCode != 0 {
		t.Fatalf("handshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	return rawAuthenticate(t, c, corr+1, []byte("\x00"+user+"\x00"+pass))
}

// metadataServed reports whether a Metadata request is answered on c (else the broker closed
// the connection).
func metadataServed(t *testing.T, c net.Conn, corr int32) bool {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 4
	_, err := sendRaw(t, c, corr, req)
	return err == nil
}

// TestReauthRaw: the broker's side of KIP-368 with raw requests.
func TestReauthRaw(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0,NOREAUTH://127.0.0.1:0",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,NOREAUTH:SASL_PLAINTEXT",
		"sasl.enabled.mechanisms=PLAIN,OAUTHBEARER",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS,
		"listener.name.noreauth.plain.sasl.jaas.config="+plainJAAS,
		"connections.max.reauth.ms=60000",
		"listener.name.noreauth.plain.connections.max.reauth.ms=0",
		"listener.name.noreauth.oauthbearer.connections.max.reauth.ms=0")
	addr, noReauth := n.Server().ListenerAddr("SASL_PLAINTEXT"), n.Server().ListenerAddr("NOREAUTH")
	login := func(t *testing.T, addr string) net.Conn {
		c := dialT(t, addr)
		if r := rawPlain(t, c, 1, "alice", "alice-secret"); r.ErrorCode != 0 {
			t.Fatalf("login: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		return c
	}
	failedWith := func(t *testing.T, r *kmsg.SASLAuthenticateResponse, c net.Conn, want string) {
		t.Helper()
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || *r.ErrorMessage != want {
			t.Fatalf("got %v %v, want SASL_AUTHENTICATION_FAILED %q", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, want)
		}
		if metadataServed(t, c, 90) {
			t.Fatal("the connection stays open after a failed re-authentication")
		}
	}

	t.Run("lifetime", func(t *testing.T) {
		c := dialT(t, addr)
		if r := rawPlain(t, c, 1, "alice", "alice-secret"); r.ErrorCode != 0 || r.SessionLifetimeMillis != 60000 {
			t.Fatalf("login: %v, session lifetime %d, want 60000", kerr.ErrorForCode(r.ErrorCode), r.SessionLifetimeMillis)
		}
		c = dialT(t, noReauth)
		if r := rawPlain(t, c, 1, "alice", "alice-secret"); r.ErrorCode != 0 || r.SessionLifetimeMillis != 0 {
			t.Fatalf("login without reauth: %v, session lifetime %d, want 0", kerr.ErrorForCode(r.ErrorCode), r.SessionLifetimeMillis)
		}
	})
	t.Run("same principal", func(t *testing.T) {
		c := login(t, addr)
		if !metadataServed(t, c, 3) {
			t.Fatal("Metadata after login")
		}
		if r := rawPlain(t, c, 4, "alice", "alice-secret"); r.ErrorCode != 0 || r.SessionLifetimeMillis != 60000 {
			t.Fatalf("re-authentication: %v, lifetime %d", kerr.ErrorForCode(r.ErrorCode), r.SessionLifetimeMillis)
		}
		if !metadataServed(t, c, 6) {
			t.Fatal("Metadata after re-authentication")
		}
	})
	t.Run("other principal", func(t *testing.T) {
		c := login(t, addr)
		failedWith(t, rawPlain(t, c, 3, "admin", "admin-secret"), c, "Cannot change principals during re-authentication from User.alice: User.admin")
	})
	t.Run("wrong password", func(t *testing.T) {
		c := login(t, addr)
		failedWith(t, rawPlain(t, c, 3, "alice", "nope"), c, "Authentication failed: Invalid username or password")
	})
	t.Run("malformed", func(t *testing.T) {
		c := dialT(t, addr)
		tok := authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, nil))
		if r, doc := rawOAuth(t, c, tok); r.ErrorCode != 0 || doc != "" {
			t.Fatalf("OAUTHBEARER login: %v %q", kerr.ErrorForCode(r.ErrorCode), doc)
		}
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "OAUTHBEARER"
		if _, err := sendRaw(t, c, 4, hs); err != nil {
			t.Fatal(err)
		}
		failedWith(t, rawAuthenticate(t, c, 5, []byte("n,,\x01nothing\x01\x01")), c,
			"Authentication failed during re-authentication due to invalid credentials with SASL mechanism OAUTHBEARER")
	})
	t.Run("other mechanism", func(t *testing.T) {
		c := login(t, addr)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "OAUTHBEARER"
		b, err := sendRaw(t, c, 3, hs)
		if err != nil || decodeRaw[*kmsg.SASLHandshakeResponse](t, b, hs).ErrorCode != 0 {
			t.Fatalf("handshake: %v", err)
		}
		tok := authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, nil))
		failedWith(t, rawAuthenticate(t, c, 4, []byte("n,,\x01auth=Bearer "+tok+"\x01\x01")), c,
			"SASL mechanism 'OAUTHBEARER' requested by client is not supported for re-authentication of mechanism 'PLAIN'")
	})
	t.Run("request during re-authentication", func(t *testing.T) {
		c := login(t, addr)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		if _, err := sendRaw(t, c, 3, hs); err != nil {
			t.Fatal(err)
		}
		if metadataServed(t, c, 4) {
			t.Fatal("Metadata answered between the re-authentication's handshake and its SaslAuthenticate")
		}
	})
	t.Run("not enabled", func(t *testing.T) {
		// No session expiry: a handshake is refused with ILLEGAL_SASL_STATE, the connection
		// stays, as Kafka.
		c := login(t, noReauth)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		b, err := sendRaw(t, c, 3, hs)
		if err != nil || decodeRaw[*kmsg.SASLHandshakeResponse](t, b, hs).ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("handshake without reauth: %v, want ILLEGAL_SASL_STATE", err)
		}
		if !metadataServed(t, c, 4) {
			t.Fatal("the connection closed after a refused handshake")
		}
	})
	t.Run("oauthbearer token lifetime", func(t *testing.T) {
		// connections.max.reauth.ms=0: the session still ends with the token (Kafka's
		// SaslServerAuthenticator); 60000: the smaller of the two.
		tok := authtest.UnsecuredToken(authtest.Claims("alice", time.Hour, nil))
		for _, tc := range []struct {
			addr    string
			atLeast int64
			atMost  int64
		}{
			{noReauth, 3_000_000, 3_600_000},
			{addr, 60_000, 60_000},
		} {
			r, doc := rawOAuth(t, dialT(t, tc.addr), tok)
			if r.ErrorCode != 0 || doc != "" || r.SessionLifetimeMillis < tc.atLeast || r.SessionLifetimeMillis > tc.atMost {
				t.Errorf("OAUTHBEARER: %v %q, lifetime %d, want [%d, %d]", kerr.ErrorForCode(r.ErrorCode), doc, r.SessionLifetimeMillis, tc.atLeast, tc.atMost)
			}
		}
	})
}

// TestReauthSessionExpired: a client that lets its session expire and then sends a request
// has its connection closed.
func TestReauthSessionExpired(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS,
		"listener.name.sasl_plaintext.plain.connections.max.reauth.ms=1000")
	c := dialT(t, n.Server().ListenerAddr("SASL_PLAINTEXT"))
	start := time.Now()
	r := rawPlain(t, c, 1, "alice", "alice-secret")
	if r.ErrorCode != 0 || r.SessionLifetimeMillis != 1000 {
		t.Fatalf("login: %v, lifetime %d", kerr.ErrorForCode(r.ErrorCode), r.SessionLifetimeMillis)
	}
	// The session ends 1 s after the login answered at the latest; wait past it.
	time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
	if metadataServed(t, c, 3) {
		t.Fatal("Metadata answered on a connection whose session expired")
	}
}
