package server

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/wire"
)

// Delegation token changes forwarded to the active controller (Kafka forwards them in an
// EnvelopeRequest with the client's principal): the Kafka request at the version the
// controller serves, the requester's principal in wire.RequesterPrincipalTag. The broker has
// checked the channel and the authorization before.

func (c *clusterController) CreateDelegationToken(ctx context.Context, tc controller.TokenCreation) (metadata.DelegationToken, error) {
	if c.local.IsLeader() {
		return c.local.CreateDelegationToken(ctx, tc)
	}
	req := kmsg.NewPtrCreateDelegationTokenRequest()
	typ, name := splitPrincipal(tc.Owner)
	req.OwnerPrincipalType, req.OwnerPrincipalName = &typ, &name
	for _, rn := range tc.Renewers {
		r := kmsg.NewCreateDelegationTokenRequestRenewer()
		r.PrincipalType, r.PrincipalName = splitPrincipal(rn)
		req.Renewers = append(req.Renewers, r)
	}
	req.MaxLifetimeMillis = tc.MaxLifetimeMs
	wire.SetRequesterPrincipal(req, tc.Requester)
	before := c.local.Image().Index
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		return metadata.DelegationToken{}, err
	}
	r := resp.(*kmsg.CreateDelegationTokenResponse)
	if err := kafkaErr(r.ErrorCode, nil); err != nil {
		return metadata.DelegationToken{}, err
	}
	c.waitCaughtUp(ctx, before, resp)
	return metadata.DelegationToken{TokenID: r.TokenID, Owner: tc.Owner, Requester: tc.Requester, Renewers: tc.Renewers,
		IssueTimestamp: r.IssueTimestamp, MaxTimestamp: r.MaxTimestamp, ExpirationTimestamp: r.ExpiryTimestamp}, nil
}

func (c *clusterController) RenewDelegationToken(ctx context.Context, mac []byte, principal string, periodMs int64) (int64, error) {
	if c.local.IsLeader() {
		return c.local.RenewDelegationToken(ctx, mac, principal, periodMs)
	}
	req := kmsg.NewPtrRenewDelegationTokenRequest()
	req.HMAC, req.RenewTimeMillis = mac, periodMs
	return c.forwardTokenExpiry(ctx, req, principal)
}

func (c *clusterController) ExpireDelegationToken(ctx context.Context, mac []byte, principal string, periodMs int64) (int64, error) {
	if c.local.IsLeader() {
		return c.local.ExpireDelegationToken(ctx, mac, principal, periodMs)
	}
	req := kmsg.NewPtrExpireDelegationTokenRequest()
	req.HMAC, req.ExpiryPeriodMillis = mac, periodMs
	return c.forwardTokenExpiry(ctx, req, principal)
}

// forwardTokenExpiry sends a RenewDelegationToken or ExpireDelegationToken request for
// principal and returns the answer's expiry timestamp.
func (c *clusterController) forwardTokenExpiry(ctx context.Context, req kmsg.Request, principal string) (int64, error) {
	wire.SetRequesterPrincipal(req, principal)
	before := c.local.Image().Index
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		return 0, err
	}
	var code int16
	var expiry int64
	switch r := resp.(type) {
	case *kmsg.RenewDelegationTokenResponse:
		code, expiry = r.ErrorCode, r.ExpiryTimestamp
	case *kmsg.ExpireDelegationTokenResponse:
		code, expiry = r.ErrorCode, r.ExpiryTimestamp
	}
	if err := kafkaErr(code, nil); err != nil {
		return 0, err
	}
	c.waitCaughtUp(ctx, before, resp)
	return expiry, nil
}

// splitPrincipal splits User:alice into its type and name.
func splitPrincipal(p string) (typ, name string) {
	typ, name, _ = strings.Cut(p, ":")
	return typ, name
}
