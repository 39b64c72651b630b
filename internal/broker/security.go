package broker

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/wire"
)

// The connection's security state machine (Kafka's SaslServerAuthenticator):
//
//	PLAINTEXT listener: authenticated at once as User:ANONYMOUS.
//	SSL listener: TLS handshake, then authenticated as the client certificate's subject
//	  (User:CN=...), or User:ANONYMOUS without one (ssl.client.auth=none|requested).
//	SASL_PLAINTEXT / SASL_SSL (after the TLS handshake): only ApiVersions and SaslHandshake
//	  are served; SaslHandshake picks an enabled mechanism (else UNSUPPORTED_SASL_MECHANISM and
//	  the connection closes). With SaslHandshake v1 the exchange runs in SaslAuthenticate
//	  requests; with v0 the next frames are raw SASL tokens (size-prefixed, no Kafka header).
//	  Success sets the principal (User:<name>) and every API is served from then on; failure
//	  answers SASL_AUTHENTICATION_FAILED with Kafka's message after
//	  connection.failed.authentication.delay.ms, logs the client's address and user, and closes.
//	  Any other request before authentication closes the connection.
//	OAUTHBEARER: a refused token is answered with the error document
//	  ({"status":"invalid_token"}) and no error; the client's 0x01 then fails the exchange.
//	Session (KIP-368): success computes the session's lifetime, connections.max.reauth.ms of
//	  the mechanism capped by the credential's expiry (an OAUTHBEARER token's), and
//	  SaslAuthenticate v1+ tells it to the client (0: no limit).
//	    authenticated ──SaslHandshake v1 (same or other mechanism)──▶ re-authenticating
//	      (refused with ILLEGAL_SASL_STATE, the connection kept, when the session has no
//	      expiry, the handshake is v0, or the last re-authentication began under 1 s ago)
//	    re-authenticating ──SaslAuthenticate*──▶ authenticated, a new session; failure, another
//	      principal ("Cannot change principals during re-authentication from User.a: User.b")
//	      or another mechanism: SASL_AUTHENTICATION_FAILED, close; any other request: close
//	    authenticated, session expired: any request but SaslHandshake/SaslAuthenticate closes
//	      the connection (logged).
//
// While a SASL connection is not authenticated its reader waits for each request to be
// handled before reading the next frame, so that the frame after a v0 handshake is read as a
// raw token and nothing is decoded ahead of the state it depends on. A re-authentication
// needs no such wait: the handler takes its requests in order, and the principal does not
// change.

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// saslMaxReceiveSize bounds a raw SASL token (Kafka's sasl.server.max.receive.size).
const saslMaxReceiveSize = 524288

// minReauthInterval is how soon after the start of a re-authentication another may start
// (Kafka's KafkaChannel: once a second).
const minReauthInterval = time.Second

// listenerSecurity is how one listener's connections are secured.
type listenerSecurity struct {
	protocol string
	tls      *tls.Config  // nil without TLS
	sasl     *auth.Server // nil without SASL
	// maxReauth is connections.max.reauth.ms of each enabled mechanism (0: no limit).
	maxReauth map[string]time.Duration
}

// saslState is a SASL connection's exchange and session. The handler owns it; the reader
// reads rawTokens and session only while the connection is unauthenticated, once the handler
// is done.
type saslState struct {
	// session is the exchange in progress (nil between exchanges).
	session auth.Session
	// mechanism is the mechanism of the exchange in progress, else of the session.
	mechanism string
	// rawTokens: the handshake was v0, the tokens come without Kafka headers.
	rawTokens bool
	// reauth: the exchange in progress re-authenticates an authenticated connection.
	reauth bool
	// badMechanism fails the re-authentication that asked for another mechanism.
	badMechanism string
	// expiry is when the session ends (zero: never); lifetimeMs what SaslAuthenticate said.
	expiry     time.Time
	lifetimeMs int64
	// reauthStarted is when the last re-authentication began.
	reauthStarted time.Time
}

// authText names the exchange in progress in logs and messages, as Kafka does.
func (s *saslState) authText() string { return s.authTextOf(s.reauth) }

func (s *saslState) authTextOf(reauth bool) string {
	if reauth {
		return "re-authentication"
	}
	return "authentication"
}

// ConfigureSecurity builds every client listener's TLS and SASL from the configuration
// (before Serve). Errors name the listener and the setting.
func (b *Broker) ConfigureSecurity() error {
	b.security = map[string]*listenerSecurity{}
	for _, l := range b.cfg.Listeners {
		sec := &listenerSecurity{protocol: l.Protocol}
		if config.ProtocolTLS(l.Protocol) {
			src, err := auth.NewTLSSource(auth.ListenerTLSSettings(b.cfg, l.Name), b.log)
			if err != nil {
				return err
			}
			sec.tls = src.ServerConfig()
		}
		if config.ProtocolSASL(l.Protocol) {
			s, err := auth.NewServer(b.cfg, l.Name, b.scramCredential, b.log)
			if err != nil {
				return err
			}
			s.WithDelegationTokens(b.tokenLogin)
			sec.sasl = s
			sec.maxReauth = map[string]time.Duration{}
			for _, m := range s.Mechanisms() {
				ms, _ := strconv.ParseInt(b.cfg.MechanismValue(l.Name, m, "connections.max.reauth.ms"), 10, 64)
				sec.maxReauth[m] = time.Duration(ms) * time.Millisecond
			}
		}
		b.security[l.Name] = sec
	}
	b.authFailureDelay = time.Duration(b.cfg.Int64("connection.failed.authentication.delay.ms")) * time.Millisecond
	return nil
}

// scramCredential looks a user's SCRAM credential up in the current metadata image.
func (b *Broker) scramCredential(user, mechanism string) (auth.ScramCredential, bool) {
	c, ok := b.ctrl.Image().ScramCredential(user, mechanism)
	if !ok {
		return auth.ScramCredential{}, false
	}
	return auth.ScramCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}, true
}

// secure runs the connection's TLS handshake, if its listener has TLS, and sets the principal
// of a connection that needs no SASL. It reports false when the connection must close.
func (c *conn) secure() bool {
	c.principal = auth.Anonymous
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if c.ctx.Err() == nil {
				c.logger().Info("closing connection: TLS handshake failed", "listener", c.listener, "err", err)
			}
			return false
		}
		c.principal = auth.TLSPrincipal(tc.ConnectionState())
	}
	if c.sec == nil || c.sec.sasl == nil {
		c.authenticated.Store(true)
	}
	return true
}

// preAuthAllowed reports whether a request may be handled on a connection not authenticated
// yet.
func preAuthAllowed(key int16) bool {
	return key == kmsg.ApiVersions.Int16() || key == kmsg.SASLHandshake.Int16() || key == kmsg.SASLAuthenticate.Int16()
}

// errNotAuthenticated closes a SASL connection that sends another request before it has
// authenticated, as Kafka does.
var errNotAuthenticated = errors.New("request before SASL authentication")

func init() {
	register(kmsg.SASLHandshake.Int16(), 0, 1, handleSASLHandshake)
	register(kmsg.SASLAuthenticate.Int16(), 0, 2, handleSASLAuthenticate)
}

func handleSASLHandshake(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	c := req.conn
	if c.sec == nil || c.sec.sasl == nil || c.sasl.session != nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.closeAfterResponse = c.sec != nil && c.sec.sasl != nil
		return resp, nil
	}
	reauth := c.authenticated.Load()
	if reauth {
		// Re-authentication (KIP-368) needs a session that expires, SaslAuthenticate headers
		// (v1), and starts at most once a second; otherwise, as Kafka, the handshake is an
		// ordinary request refused with ILLEGAL_SASL_STATE and the connection stays open.
		now := time.Now()
		if c.sasl.expiry.IsZero() || r.Version == 0 || now.Sub(c.sasl.reauthStarted) < minReauthInterval {
			resp.ErrorCode = kerr.IllegalSaslState.Code
			return resp, nil
		}
		c.sasl.reauthStarted = now
	}
	resp.SupportedMechanisms = c.sec.sasl.Mechanisms()
	s, ok := c.sec.sasl.Start(r.Mechanism)
	if !ok {
		c.logger().Info("closing connection: SASL mechanism not enabled", "listener", c.listener, "mechanism", r.Mechanism)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		c.closeAfterResponse = true
		return resp, nil
	}
	c.sasl.badMechanism = ""
	if reauth && r.Mechanism != c.sasl.mechanism {
		// Kafka answers the handshake and fails the SaslAuthenticate that follows.
		c.sasl.badMechanism = fmt.Sprintf("SASL mechanism '%s' requested by client is not supported for re-authentication of mechanism '%s'", r.Mechanism, c.sasl.mechanism)
	} else {
		c.sasl.mechanism = r.Mechanism
	}
	c.sasl.session, c.sasl.reauth = s, reauth
	c.sasl.rawTokens = r.Version == 0
	return resp, nil
}

func handleSASLAuthenticate(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := req.conn
	if c.sec == nil || c.sec.sasl == nil || c.sasl.session == nil || c.sasl.rawTokens {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "Unexpected SaslAuthenticate request: no SASL handshake in progress"
		resp.ErrorMessage = &msg
		c.closeAfterResponse = c.sec != nil && c.sec.sasl != nil
		return resp, nil
	}
	answer, done, err := c.saslStep(r.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		var f *auth.Failure
		if errors.As(err, &f) {
			msg = f.Message
		}
		if c.sasl.reauth { // Kafka's messages name the exchange
			msg = strings.Replace(msg, "during authentication", "during re-authentication", 1)
		}
		resp.ErrorMessage = &msg
		c.closeAfterResponse = true
		return resp, nil
	}
	resp.SASLAuthBytes = answer
	if done {
		resp.SessionLifetimeMillis = c.sasl.lifetimeMs
	}
	return resp, nil
}

// saslStep feeds the client's message to the connection's SASL exchange. On success it marks
// the connection authenticated and starts its session; on failure it logs the client and user
// and waits connection.failed.authentication.delay.ms before the caller answers.
func (c *conn) saslStep(msg []byte) ([]byte, bool, error) {
	var answer []byte
	var done bool
	var err error
	if c.sasl.badMechanism != "" {
		err = &auth.Failure{Message: c.sasl.badMechanism}
	} else {
		answer, done, err = c.sasl.session.Step(msg)
	}
	if err == nil && done && c.sasl.reauth {
		if p := c.sasl.session.Principal(); p != c.principal {
			err = &auth.Failure{Message: fmt.Sprintf("Cannot change principals during re-authentication from %s: %s", kafkaPrincipalText(c.principal), kafkaPrincipalText(p))}
		}
	}
	if err != nil {
		user := ""
		var f *auth.Failure
		if errors.As(err, &f) {
			user = f.User
		}
		c.logger().Warn(c.sasl.authText()+" failed", "listener", c.listener, "mechanism", c.sasl.mechanism, "user", user, "err", err)
		if d := c.b.authFailureDelay; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
			}
		}
		return nil, false, err
	}
	if done {
		c.startSession()
	}
	return answer, done, nil
}

// startSession ends a successful exchange: the principal is set (unchanged by a
// re-authentication), and the session's lifetime is computed as Kafka's
// SaslServerAuthenticator does: connections.max.reauth.ms of the mechanism, capped by the
// credential's expiry (an OAUTHBEARER token's exp, which limits the session even when
// connections.max.reauth.ms is 0). No lifetime: the session does not expire.
func (c *conn) startSession() {
	now := time.Now()
	maxReauth := c.sec.maxReauth[c.sasl.mechanism]
	var credExpiry time.Time
	if es, ok := c.sasl.session.(auth.ExpiringSession); ok {
		credExpiry = es.CredentialExpiry()
	}
	var lifetime time.Duration
	c.sasl.expiry = time.Time{}
	if !credExpiry.IsZero() || maxReauth > 0 {
		switch {
		case credExpiry.IsZero():
			lifetime = maxReauth
		case maxReauth <= 0:
			lifetime = credExpiry.Sub(now)
		default:
			lifetime = min(credExpiry.Sub(now), maxReauth)
		}
		lifetime = max(lifetime, 0)
		c.sasl.expiry = now.Add(lifetime)
	}
	c.sasl.lifetimeMs = lifetime.Milliseconds()
	reauth := c.sasl.reauth
	if !reauth { // a re-authentication keeps the principal (saslStep checked it)
		c.principal = c.sasl.session.Principal()
	}
	ts, ok := c.sasl.session.(auth.TokenSession)
	c.tokenAuthenticated = ok && ts.TokenAuthenticated()
	c.sasl.session, c.sasl.reauth = nil, false
	c.authenticated.Store(true)
	c.logger().Debug(c.sasl.authTextOf(reauth)+" complete", "listener", c.listener, "mechanism", c.sasl.mechanism,
		"principal", c.principal, "session_lifetime_ms", c.sasl.lifetimeMs)
}

// kafkaPrincipalText writes a principal as Kafka's messages do: User.alice.
func kafkaPrincipalText(p string) string { return strings.Replace(p, ":", ".", 1) }

// readRawTokens runs the SASL exchange of a SaslHandshake v0 client: size-prefixed tokens
// with no request header, each answered the same way. Failure closes the connection (the v0
// exchange has no error answer). It reports whether the connection is authenticated.
func (c *conn) readRawTokens(r *connReader) bool {
	for {
		r.nextFrame()
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			c.logReadEnd(r, err)
			return false
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > saslMaxReceiveSize {
			c.logger().Warn("closing connection: SASL token too large", "size", n, "max", saslMaxReceiveSize)
			return false
		}
		tok := make([]byte, n) // bounded by saslMaxReceiveSize
		if _, err := io.ReadFull(r, tok); err != nil {
			c.logReadEnd(r, err)
			return false
		}
		answer, done, err := c.saslStep(tok)
		if err != nil {
			return false
		}
		out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(answer)), uint32(len(answer)))
		if _, err := c.nc.Write(append(out, answer...)); err != nil {
			return false
		}
		if done {
			return true
		}
	}
}

// checkAuthenticated closes a SASL connection that asks for anything but the SASL APIs and
// ApiVersions before it authenticated, anything but SaslAuthenticate while it
// re-authenticates, and anything but the SASL APIs read after its session expired (KIP-368:
// the client had to re-authenticate before). Kafka checks when it reads a request, which it
// does one at a time per connection; Samsa's reader reads ahead of the handler, so the check
// is against the time the reader read the request (arrived): a request that reached the broker
// in time, queued behind a long fetch, is served.
func (c *conn) checkAuthenticated(hdr wire.RequestHeader, arrived time.Time) error {
	if !c.authenticated.Load() {
		if preAuthAllowed(hdr.Key) {
			return nil
		}
		return fmt.Errorf("%w: %s from an unauthenticated client on listener %s", errNotAuthenticated, kmsg.NameForKey(hdr.Key), c.listener)
	}
	switch {
	case c.sasl.reauth && hdr.Key != kmsg.SASLAuthenticate.Int16():
		return fmt.Errorf("%w: %s during re-authentication on listener %s", errNotAuthenticated, kmsg.NameForKey(hdr.Key), c.listener)
	case !c.sasl.expiry.IsZero() && hdr.Key != kmsg.SASLHandshake.Int16() && hdr.Key != kmsg.SASLAuthenticate.Int16() &&
		arrived.After(c.sasl.expiry):
		return fmt.Errorf("%w at %s: %s of %s without re-authentication (connections.max.reauth.ms or the token's expiry) on listener %s",
			errSessionExpired, c.sasl.expiry.Format(time.RFC3339Nano), kmsg.NameForKey(hdr.Key), c.principal, c.listener)
	}
	return nil
}

// errSessionExpired closes a connection whose SASL session expired (the handler logs it).
var errSessionExpired = errors.New("SASL session expired")
