package broker

import (
	"context"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/wire"
)

// Delegation tokens (KIP-48, KIP-373), as Kafka 4's KafkaApis: CreateDelegationToken v1–3,
// RenewDelegationToken v1–2, ExpireDelegationToken v1–2 (through the controller, forwarded
// to the active one with the requester's principal in wire.RequesterPrincipalTag) and
// DescribeDelegationToken v1–3 from the image. None is served to a channel that is not
// authenticated (PLAINTEXT, SSL without a client certificate) or that authenticated with a
// token: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED. Creating a token for another owner needs
// CREATE_TOKENS on the owner's USER resource; a token is described to its owner, requester and
// renewers, and to principals with DESCRIBE on its DELEGATION_TOKEN resource or DESCRIBE_TOKENS
// on its owner's USER resource. Renewal and expiry are checked by the controller (owner,
// requester or renewer). A token authenticates SCRAM with tokenauth=true (tokenLogin).

func init() {
	register(kmsg.CreateDelegationToken.Int16(), 1, 3, handleCreateDelegationToken)
	register(kmsg.RenewDelegationToken.Int16(), 1, 2, handleRenewDelegationToken)
	register(kmsg.ExpireDelegationToken.Int16(), 1, 2, handleExpireDelegationToken)
	register(kmsg.DescribeDelegationToken.Int16(), 1, 3, handleDescribeDelegationToken)
}

// splitPrincipal splits User:alice into its type and name.
func splitPrincipal(p string) (typ, name string) {
	typ, name, _ = strings.Cut(p, ":")
	return typ, name
}

// tokenRequester is the principal a delegation token request is made for: on the controller
// listener the one a forwarding broker names (forwarded: its channel was checked there), else
// the connection's.
func tokenRequester(req *request) (principal string, forwarded bool) {
	if req.conn.controllerPort {
		if p, ok := wire.RequesterPrincipal(req.kreq); ok {
			return p, true
		}
	}
	return req.conn.authPrincipal(), false
}

// tokenRequestsAllowed is Kafka's allowTokenRequests: not on PLAINTEXT, not on SSL without a
// client certificate, not with a token.
func (c *conn) tokenRequestsAllowed() bool {
	protocol := "PLAINTEXT"
	if c.sec != nil {
		protocol = c.sec.protocol
	}
	return !c.tokenAuthenticated && protocol != "PLAINTEXT" && !(protocol == "SSL" && c.authPrincipal() == auth.Anonymous)
}

// tokenRefusal is the error of a token request refused before the controller is asked, or nil.
func (b *Broker) tokenRefusal(req *request, forwarded bool) *kerr.Error {
	switch {
	case !forwarded && !req.conn.tokenRequestsAllowed():
		return kerr.DelegationTokenRequestNotAllowed
	case b.cfg.DelegationTokenSecret() == "":
		return kerr.DelegationTokenAuthDisabled
	}
	return nil
}

func handleCreateDelegationToken(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.CreateDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.CreateDelegationTokenResponse)
	requester, forwarded := tokenRequester(req)
	owner := requester
	if r.OwnerPrincipalName != nil && *r.OwnerPrincipalName != "" {
		typ := "User"
		if r.OwnerPrincipalType != nil && *r.OwnerPrincipalType != "" {
			typ = *r.OwnerPrincipalType
		}
		owner = typ + ":" + *r.OwnerPrincipalName
	}
	resp.PrincipalType, resp.PrincipalName = splitPrincipal(owner)
	resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = splitPrincipal(requester)
	// Kafka's order: the channel, the authorization, tokens enabled, the renewers' type.
	var renewers []string
	badRenewer := false
	for _, rn := range r.Renewers {
		badRenewer = badRenewer || rn.PrincipalType != "User"
		renewers = append(renewers, rn.PrincipalType+":"+rn.PrincipalName)
	}
	switch {
	case !forwarded && !req.conn.tokenRequestsAllowed():
		resp.ErrorCode = kerr.DelegationTokenRequestNotAllowed.Code
	case owner != requester && !forwarded && !b.authorize(req, kmsg.ACLOperationCreateTokens, kmsg.ACLResourceTypeUser, owner):
		resp.ErrorCode = kerr.DelegationTokenAuthorizationFailed.Code
	case b.cfg.DelegationTokenSecret() == "":
		resp.ErrorCode = kerr.DelegationTokenAuthDisabled.Code
	case badRenewer:
		resp.ErrorCode = kerr.InvalidPrincipalType.Code
	}
	if resp.ErrorCode != 0 {
		return resp, nil
	}
	tok, err := b.ctrl.CreateDelegationToken(req.conn.ctx, controller.TokenCreation{Owner: owner, Requester: requester,
		Renewers: renewers, MaxLifetimeMs: r.MaxLifetimeMillis})
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = tok.IssueTimestamp, tok.ExpirationTimestamp, tok.MaxTimestamp
	resp.TokenID, resp.HMAC = tok.TokenID, auth.DelegationTokenHMAC(b.cfg.DelegationTokenSecret(), tok.TokenID)
	b.awaitMetadata(req)
	return resp, nil
}

func handleRenewDelegationToken(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.RenewDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.RenewDelegationTokenResponse)
	resp.ErrorCode, resp.ExpiryTimestamp = b.changeTokenExpiry(req, r.HMAC, r.RenewTimeMillis, b.ctrl.RenewDelegationToken)
	return resp, nil
}

func handleExpireDelegationToken(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ExpireDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.ExpireDelegationTokenResponse)
	resp.ErrorCode, resp.ExpiryTimestamp = b.changeTokenExpiry(req, r.HMAC, r.ExpiryPeriodMillis, b.ctrl.ExpireDelegationToken)
	return resp, nil
}

// tokenExpiryChange is the controller's RenewDelegationToken or ExpireDelegationToken.
type tokenExpiryChange = func(ctx context.Context, mac []byte, principal string, periodMs int64) (int64, error)

// changeTokenExpiry runs a renewal or an expiry and returns the answer's error code and
// expiry timestamp.
func (b *Broker) changeTokenExpiry(req *request, mac []byte, periodMs int64, op tokenExpiryChange) (int16, int64) {
	requester, forwarded := tokenRequester(req)
	if e := b.tokenRefusal(req, forwarded); e != nil {
		return e.Code, -1
	}
	expiry, err := op(req.conn.ctx, mac, requester, periodMs)
	if err != nil {
		return errCode(err), -1
	}
	b.awaitMetadata(req)
	return 0, expiry
}

func handleDescribeDelegationToken(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.DescribeDelegationTokenResponse)
	if e := b.tokenRefusal(req, false); e != nil {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	if r.Owners != nil && len(r.Owners) == 0 {
		return resp, nil // an empty list of owners describes nothing; null describes all
	}
	owners := map[string]bool{}
	for _, o := range r.Owners {
		owners[o.PrincipalType+":"+o.PrincipalName] = true
	}
	principal := req.conn.authPrincipal()
	img := b.ctrl.Image()
	secret := b.cfg.DelegationTokenSecret()
	for _, id := range img.DelegationTokenIDs() {
		t := img.DelegationTokens[id]
		if r.Owners != nil && !owners[t.Owner] {
			continue
		}
		if !t.OwnerOrRenewer(principal) && !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeDelegationToken, id) &&
			!b.authorize(req, kmsg.ACLOperationDescribeTokens, kmsg.ACLResourceTypeUser, t.Owner) {
			continue
		}
		d := kmsg.NewDescribeDelegationTokenResponseTokenDetail()
		d.PrincipalType, d.PrincipalName = splitPrincipal(t.Owner)
		d.TokenRequesterPrincipalType, d.TokenRequesterPrincipalName = splitPrincipal(t.Requester)
		d.IssueTimestamp, d.ExpiryTimestamp, d.MaxTimestamp = t.IssueTimestamp, t.ExpirationTimestamp, t.MaxTimestamp
		d.TokenID, d.HMAC = id, auth.DelegationTokenHMAC(secret, id)
		for _, rn := range t.Renewers {
			dr := kmsg.NewDescribeDelegationTokenResponseTokenDetailRenewer()
			dr.PrincipalType, dr.PrincipalName = splitPrincipal(rn)
			d.Renewers = append(d.Renewers, dr)
		}
		resp.TokenDetails = append(resp.TokenDetails, d)
	}
	return resp, nil
}

// tokenCredentials caches the SCRAM credentials this broker derived for delegation tokens
// (PBKDF2 of the token's password, once per token and mechanism), as Kafka's
// DelegationTokenCache; entries of tokens no longer in the image are dropped when the cache
// outgrows the image's tokens.
type tokenCredentials struct {
	mu    sync.Mutex
	creds map[[2]string]auth.ScramCredential
}

// tokenLogin is the auth.DelegationTokenLookup of the broker's SASL servers: a token of the
// current image that has not expired, its owner, its credential for the mechanism.
func (b *Broker) tokenLogin(tokenID, mechanism string) (auth.DelegationTokenLogin, bool) {
	secret := b.cfg.DelegationTokenSecret()
	img := b.ctrl.Image()
	t, ok := img.DelegationTokens[tokenID]
	if secret == "" || !ok || t.Expired(b.now().UnixMilli()) {
		return auth.DelegationTokenLogin{}, false
	}
	tc := &b.tokenCreds
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.creds == nil || len(tc.creds) > 2*len(img.DelegationTokens)+64 {
		tc.pruneLocked(img)
	}
	key := [2]string{tokenID, mechanism}
	cred, ok := tc.creds[key]
	if !ok {
		cred = auth.NewDelegationTokenCredential(mechanism, auth.DelegationTokenPassword(secret, tokenID))
		tc.creds[key] = cred
	}
	return auth.DelegationTokenLogin{Owner: t.Owner, Credential: cred, ExpiryMs: t.ExpirationTimestamp}, true
}

func (tc *tokenCredentials) pruneLocked(img *metadata.Image) {
	next := make(map[[2]string]auth.ScramCredential, len(img.DelegationTokens))
	for k, v := range tc.creds {
		if _, ok := img.DelegationTokens[k[0]]; ok {
			next[k] = v
		}
	}
	tc.creds = next
}
