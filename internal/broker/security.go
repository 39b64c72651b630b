package broker

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
//
// While a SASL connection is not authenticated its reader waits for each request to be
// handled before reading the next frame, so that the frame after a v0 handshake is read as a
// raw token and nothing is decoded ahead of the state it depends on.

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// saslMaxReceiveSize bounds a raw SASL token (Kafka's sasl.server.max.receive.size).
const saslMaxReceiveSize = 524288

// listenerSecurity is how one listener's connections are secured.
type listenerSecurity struct {
	protocol string
	tls      *tls.Config  // nil without TLS
	sasl     *auth.Server // nil without SASL
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
			s, err := auth.NewServer(b.cfg, l.Name, b.scramCredential)
			if err != nil {
				return err
			}
			sec.sasl = s
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
	if c.sec == nil || c.sec.sasl == nil || c.authenticated.Load() || c.saslSession != nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.closeAfterResponse = c.sec != nil && c.sec.sasl != nil
		return resp, nil
	}
	resp.SupportedMechanisms = c.sec.sasl.Mechanisms()
	s, ok := c.sec.sasl.Start(r.Mechanism)
	if !ok {
		c.logger().Info("closing connection: SASL mechanism not enabled", "listener", c.listener, "mechanism", r.Mechanism)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		c.closeAfterResponse = true
		return resp, nil
	}
	c.saslSession, c.saslMechanism = s, r.Mechanism
	c.saslRawTokens = r.Version == 0
	return resp, nil
}

func handleSASLAuthenticate(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := req.conn
	if c.sec == nil || c.sec.sasl == nil || c.authenticated.Load() || c.saslSession == nil || c.saslRawTokens {
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
		resp.ErrorMessage = &msg
		c.closeAfterResponse = true
		return resp, nil
	}
	resp.SASLAuthBytes = answer
	_ = done
	return resp, nil
}

// saslStep feeds the client's message to the connection's SASL exchange. On success it marks
// the connection authenticated; on failure it logs the client and user and waits
// connection.failed.authentication.delay.ms before the caller answers.
func (c *conn) saslStep(msg []byte) ([]byte, bool, error) {
	answer, done, err := c.saslSession.Step(msg)
	if err != nil {
		user := ""
		var f *auth.Failure
		if errors.As(err, &f) {
			user = f.User
		}
		c.logger().Warn("authentication failed", "listener", c.listener, "mechanism", c.saslMechanism, "user", user, "err", err)
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
		c.principal = c.saslSession.Principal()
		c.authenticated.Store(true)
		c.logger().Debug("authenticated", "listener", c.listener, "mechanism", c.saslMechanism, "principal", c.principal)
	}
	return answer, done, nil
}

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
// ApiVersions before it authenticated.
func (c *conn) checkAuthenticated(hdr wire.RequestHeader) error {
	if c.authenticated.Load() || preAuthAllowed(hdr.Key) {
		return nil
	}
	return fmt.Errorf("%w: %s from an unauthenticated client on listener %s", errNotAuthenticated, kmsg.NameForKey(hdr.Key), c.listener)
}
