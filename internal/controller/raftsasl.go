package controller

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/wire"
)

// RaftSASL authenticates the Raft connections of a SASL controller listener (SASL_PLAINTEXT,
// SASL_SSL), as Kafka's controllers authenticate their quorum's connections: the dialling
// node logs in with sasl.mechanism.controller.protocol and the username and password of the
// listener's JAAS config; the accepting node checks the login with the listener's SASL server
// and, with an authorizer, admits only principals that may CLUSTER_ACTION on the cluster
// (super users included).
//
// On the wire, after the TLS handshake if any, a Raft connection on a SASL listener is:
// raftPreamble (which sorts it from Kafka clients), then Kafka's SaslHandshake v1 and
// SaslAuthenticate v1 requests and their responses (size-prefixed frames with request header
// v1 and response header v0), then the cluster id announcement (a length byte and the id).
// The acceptor answers a refused principal's last SaslAuthenticate with
// CLUSTER_AUTHORIZATION_FAILED, and a failed login with SASL_AUTHENTICATION_FAILED after
// connection.failed.authentication.delay.ms, then closes the connection.
type RaftSASL struct {
	// Mechanisms are the listener's enabled mechanisms the acceptor serves Raft connections
	// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; others are ignored).
	Mechanisms []string
	// PlainUsers are the listener's PLAIN users (user_NAME="password" of its
	// plain.sasl.jaas.config). SCRAM credentials come from this node's metadata image.
	PlainUsers map[string]string
	// Mechanism, Username and Password are this node's own login when it dials.
	Mechanism, Username, Password string
	// Authorizer, when set, admits only principals with CLUSTER_ACTION on the cluster, with
	// the ACLs of this node's metadata image (until it has them, super users only, as Kafka's
	// authorizer before its first metadata load).
	Authorizer *acl.Authorizer
	// FailureDelay delays the answer to a failed login
	// (connection.failed.authentication.delay.ms).
	FailureDelay time.Duration

	// bootstrapScram are Config.BootstrapScram: the SCRAM credentials checked while the image
	// has no cluster id yet.
	bootstrapScram []metadata.UserScramCredential
}

// raftSASLMaxFrame bounds a SASL frame of a Raft connection (Kafka's
// sasl.server.max.receive.size).
const raftSASLMaxFrame = 524288

// raftSASLClientID is the client id of the dialler's SASL requests.
const raftSASLClientID = "samsa-raft"

// raftSASLAcceptor is the accepting side of RaftSASL on one listener.
type raftSASLAcceptor struct {
	cfg    *RaftSASL
	server *auth.Server
	// image is this node's current metadata image (SCRAM credentials, ACLs).
	image func() *metadata.Image
}

func newRaftSASLAcceptor(cfg *RaftSASL, image func() *metadata.Image) *raftSASLAcceptor {
	var mechs []string
	for _, m := range cfg.Mechanisms {
		if m == config.MechanismPlain || auth.ScramMechanism(m) {
			mechs = append(mechs, m)
		}
	}
	a := &raftSASLAcceptor{cfg: cfg, image: image}
	a.server = auth.NewServerWith(mechs, cfg.PlainUsers, a.scramCredential)
	return a
}

// scramCredential looks a user's credential up in the image, or, while the image has no
// cluster id (the quorum forming, the log not replayed yet), in the bootstrapped credentials.
func (a *raftSASLAcceptor) scramCredential(user, mechanism string) (auth.ScramCredential, bool) {
	img := a.image()
	c, ok := img.ScramCredential(user, mechanism)
	if !ok && img.ClusterID == "" {
		for _, b := range a.cfg.bootstrapScram {
			if b.Name == user && b.Mechanism == mechanism {
				c, ok = metadata.ScramCredential{Salt: b.Salt, StoredKey: b.StoredKey, ServerKey: b.ServerKey, Iterations: b.Iterations}, true
			}
		}
	}
	if !ok {
		return auth.ScramCredential{}, false
	}
	return auth.ScramCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}, true
}

// admitted reports whether principal, connecting from host, may speak Raft.
func (a *raftSASLAcceptor) admitted(principal, host string) bool {
	if a.cfg.Authorizer == nil {
		return true
	}
	return a.cfg.Authorizer.Authorize(a.image().ACLBindings(), acl.Request{Principal: principal, Host: host,
		Operation: kmsg.ACLOperationClusterAction, ResourceType: kmsg.ACLResourceTypeCluster, ResourceName: acl.ClusterName})
}

// raftAuthError is a refused Raft login, with the principal (or user) it named, for the log.
type raftAuthError struct {
	principal string
	err       error
}

func (e *raftAuthError) Error() string { return e.err.Error() }

// authenticate runs the server side of the exchange on c, whose preamble was read; it returns
// the principal admitted. Any error means c must close.
func (a *raftSASLAcceptor) authenticate(c net.Conn) (string, error) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	corr, err := readRaftSASLRequest(c, hs)
	if err != nil {
		return "", err
	}
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	hsResp.Version = 1
	hsResp.SupportedMechanisms = a.server.Mechanisms()
	session, ok := a.server.Start(hs.Mechanism)
	if !ok {
		hsResp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	if _, err := c.Write(wire.AppendResponse(nil, corr, hsResp)); err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("SASL mechanism %q is not enabled for Raft connections", hs.Mechanism)
	}
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		corr, err := readRaftSASLRequest(c, req)
		if err != nil {
			return "", err
		}
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		resp.Version = 1
		answer, done, stepErr := session.Step(req.SASLAuthBytes)
		var refusal error
		switch {
		case stepErr != nil:
			msg := stepErr.Error()
			var f *auth.Failure
			if errors.As(stepErr, &f) {
				msg = f.Message
				refusal = &raftAuthError{principal: "User:" + f.User, err: stepErr}
			} else {
				refusal = &raftAuthError{err: stepErr}
			}
			resp.ErrorCode, resp.ErrorMessage = kerr.SaslAuthenticationFailed.Code, &msg
			time.Sleep(a.cfg.FailureDelay)
		case done && !a.admitted(session.Principal(), remoteHost(c)):
			msg := session.Principal() + " may not CLUSTER_ACTION on the cluster: Raft connections refused"
			resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, &msg
			refusal = &raftAuthError{principal: session.Principal(), err: errors.New(msg)}
		default:
			resp.SASLAuthBytes = answer
		}
		if _, err := c.Write(wire.AppendResponse(nil, corr, resp)); err != nil && refusal == nil {
			return "", err
		}
		if refusal != nil {
			return "", refusal
		}
		if done {
			return session.Principal(), nil
		}
	}
}

// readRaftSASLRequest reads the next request of the exchange into req, which must be its
// API at version 1, and returns its correlation id.
func readRaftSASLRequest(c net.Conn, req kmsg.Request) (int32, error) {
	frame, err := wire.ReadFrame(c, raftSASLMaxFrame, nil, nil)
	if err != nil {
		return 0, err
	}
	hdr, body, err := wire.ParseRequestHeader(frame)
	if err != nil || hdr.Key != req.Key() || hdr.Version != 1 {
		return 0, fmt.Errorf("expected %s v1, got API %d v%d (%v)", kmsg.NameForKey(req.Key()), hdr.Key, hdr.Version, err)
	}
	req.SetVersion(1)
	if err := req.ReadFrom(body); err != nil {
		return 0, fmt.Errorf("%s: %w", kmsg.NameForKey(req.Key()), err)
	}
	return hdr.CorrelationID, nil
}

// remoteHost is the ip of a connection's peer (the ACLs' host).
func remoteHost(c net.Conn) string {
	h, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return h
}

// dialRaftSASL runs the client side of the exchange on c (after the preamble): this node logs
// in with its mechanism and credentials. The caller bounds it with c's deadline.
func dialRaftSASL(c net.Conn, cfg *RaftSASL, address string) error {
	mech, err := auth.ClientSASL(cfg.Mechanism, cfg.Username, cfg.Password)
	if err != nil {
		return err
	}
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(raftSASLClientID))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, mech.Name()
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := raftRoundTrip(c, f, hs, hsResp, 1); err != nil {
		return err
	}
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return fmt.Errorf("SaslHandshake %s with %s: %w (enabled: %v)", mech.Name(), address, err, hsResp.SupportedMechanisms)
	}
	session, msg, err := mech.Authenticate(context.Background(), address)
	if err != nil {
		return err
	}
	for i := int32(2); ; i++ {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 1, msg
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := raftRoundTrip(c, f, req, resp, i); err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			text := ""
			if resp.ErrorMessage != nil {
				text = ": " + *resp.ErrorMessage
			}
			return fmt.Errorf("logging in to %s as %s with %s: %w%s", address, cfg.Username, mech.Name(), err, text)
		}
		done, next, err := session.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("logging in to %s with %s: %w", address, mech.Name(), err)
		}
		if done {
			return nil
		}
		msg = next
	}
}

// raftRoundTrip writes req with correlation id corr and reads its answer into resp.
func raftRoundTrip(c net.Conn, f *kmsg.RequestFormatter, req kmsg.Request, resp kmsg.Response, corr int32) error {
	name := kmsg.NameForKey(req.Key())
	if _, err := c.Write(f.AppendRequest(nil, req, corr)); err != nil {
		return err
	}
	frame, err := wire.ReadFrame(c, raftSASLMaxFrame, nil, nil)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("the listener closed the connection: %w", err)
		}
		return fmt.Errorf("reading the answer to %s: %w", name, err)
	}
	if len(frame) < 4 || int32(binary.BigEndian.Uint32(frame)) != corr {
		return fmt.Errorf("answer to %s: bad correlation id", name)
	}
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(frame[4:]); err != nil {
		return fmt.Errorf("%s response: %w", name, err)
	}
	return nil
}
