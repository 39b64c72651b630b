package controller

import (
	"context"
	"crypto/hmac"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/metadata"
)

// Delegation tokens (KIP-48) on the active controller, as Kafka's
// DelegationTokenControlManager: creation, renewal and expiry write DelegationToken records,
// removal RemoveDelegationToken; the expired tokens are removed every
// delegation.token.expiry.check.interval.ms (RunDelegationTokenExpiry). The broker checks the
// channel (not token-authenticated, not unauthenticated) and the authorization before it asks.

// DelegationTokenConfig is the controller's part of the delegation token settings.
type DelegationTokenConfig struct {
	// Secret is delegation.token.secret.key; "" disables the tokens
	// (DELEGATION_TOKEN_AUTH_DISABLED).
	Secret string
	// MaxLifetime is delegation.token.max.lifetime.ms, ExpiryTime delegation.token.expiry.time.ms,
	// CheckInterval delegation.token.expiry.check.interval.ms. Zero: Kafka's defaults.
	MaxLifetime, ExpiryTime, CheckInterval time.Duration
}

// Kafka's defaults of the delegation token durations.
const (
	defaultTokenMaxLifetime   = 7 * 24 * time.Hour
	defaultTokenExpiryTime    = 24 * time.Hour
	defaultTokenCheckInterval = time.Hour
)

func (d DelegationTokenConfig) withDefaults() DelegationTokenConfig {
	if d.MaxLifetime <= 0 {
		d.MaxLifetime = defaultTokenMaxLifetime
	}
	if d.ExpiryTime <= 0 {
		d.ExpiryTime = defaultTokenExpiryTime
	}
	if d.CheckInterval <= 0 {
		d.CheckInterval = defaultTokenCheckInterval
	}
	return d
}

// TokenCreation is one CreateDelegationToken: the owner (the requester unless KIP-373's owner
// was given), the requester, the renewers (principals, User:<name>) and the requested max
// lifetime (<= 0: delegation.token.max.lifetime.ms).
type TokenCreation struct {
	Owner, Requester string
	Renewers         []string
	MaxLifetimeMs    int64
}

var errTokensDisabled = kafkaErrorf(kerr.DelegationTokenAuthDisabled, "Delegation Token authentication is disabled")

func (c *Controller) nowMs() int64 { return c.now().UnixMilli() }

// CreateDelegationToken creates a token: its id random, issued now, its max timestamp now plus
// the requested lifetime capped by delegation.token.max.lifetime.ms, its expiry the earlier
// of that and now plus delegation.token.expiry.time.ms.
func (c *Controller) CreateDelegationToken(ctx context.Context, req TokenCreation) (metadata.DelegationToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfg.DelegationTokens
	if cfg.Secret == "" {
		return metadata.DelegationToken{}, errTokensDisabled
	}
	if err := c.beginLocked(ctx); err != nil {
		return metadata.DelegationToken{}, err
	}
	now := c.nowMs()
	lifetime := cfg.MaxLifetime.Milliseconds()
	if req.MaxLifetimeMs > 0 {
		lifetime = min(lifetime, req.MaxLifetimeMs)
	}
	tok := metadata.DelegationToken{
		TokenID: metadata.RandomUUID().String(), Owner: req.Owner, Requester: req.Requester, Renewers: req.Renewers,
		IssueTimestamp: now, MaxTimestamp: satAdd(now, lifetime),
	}
	tok.ExpirationTimestamp = min(tok.MaxTimestamp, satAdd(now, cfg.ExpiryTime.Milliseconds()))
	if _, err := c.proposeLocked(ctx, tok); err != nil {
		return metadata.DelegationToken{}, err
	}
	c.logger.Info("created delegation token", "token_id", tok.TokenID, "owner", tok.Owner, "requester", tok.Requester)
	return tok, nil
}

// tokenForHMACLocked finds the token whose HMAC is mac, as Kafka's DelegationTokenCache.
func (c *Controller) tokenForHMACLocked(mac []byte) (metadata.DelegationToken, bool) {
	for id, t := range c.Image().DelegationTokens {
		if hmac.Equal(auth.DelegationTokenHMAC(c.cfg.DelegationTokens.Secret, id), mac) {
			return t, true
		}
	}
	return metadata.DelegationToken{}, false
}

// RenewDelegationToken extends a token's expiry to now plus the period, at most
// delegation.token.expiry.time.ms (which a period not above 0 asks for) and capped by its max
// timestamp, and returns the new expiry. Kafka's checks in its order: DELEGATION_TOKEN_NOT_FOUND,
// DELEGATION_TOKEN_EXPIRED, DELEGATION_TOKEN_OWNER_MISMATCH (neither the owner nor a renewer).
func (c *Controller) RenewDelegationToken(ctx context.Context, mac []byte, principal string, periodMs int64) (int64, error) {
	return c.changeTokenExpiry(ctx, mac, principal, periodMs, true)
}

// ExpireDelegationToken sets a token's expiry to now plus the period, capped by its max
// timestamp; a negative period expires it now: the token is removed and now returned. Kafka's
// checks in its order: DELEGATION_TOKEN_NOT_FOUND, DELEGATION_TOKEN_OWNER_MISMATCH, then (a
// period of 0 or more) DELEGATION_TOKEN_EXPIRED.
func (c *Controller) ExpireDelegationToken(ctx context.Context, mac []byte, principal string, periodMs int64) (int64, error) {
	return c.changeTokenExpiry(ctx, mac, principal, periodMs, false)
}

// satAdd is a+b, saturated at the largest int64 (Kafka's sum of timestamps).
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// changeTokenExpiry is RenewDelegationToken (renew) or ExpireDelegationToken.
func (c *Controller) changeTokenExpiry(ctx context.Context, mac []byte, principal string, periodMs int64, renew bool) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.DelegationTokens.Secret == "" {
		return 0, errTokensDisabled
	}
	if err := c.beginLocked(ctx); err != nil {
		return 0, err
	}
	tok, ok := c.tokenForHMACLocked(mac)
	now := c.nowMs()
	expired := kafkaErrorf(kerr.DelegationTokenExpired, "Delegation Token is expired")
	mismatch := kafkaErrorf(kerr.DelegationTokenOwnerMismatch, "Specified Principal is not valid Owner/Renewer")
	switch {
	case !ok:
		return 0, kafkaErrorf(kerr.DelegationTokenNotFound, "Delegation Token not found")
	case renew && tok.Expired(now):
		return 0, expired
	case !tok.MayRenew(principal):
		return 0, mismatch
	case !renew && periodMs >= 0 && tok.Expired(now):
		return 0, expired
	}
	var rec metadata.Record = metadata.RemoveDelegationToken{TokenID: tok.TokenID}
	at := now
	if renew {
		lifetime := c.cfg.DelegationTokens.ExpiryTime.Milliseconds()
		if periodMs > 0 {
			lifetime = min(lifetime, periodMs)
		}
		periodMs = lifetime
	}
	if periodMs >= 0 {
		at = min(tok.MaxTimestamp, satAdd(now, periodMs))
		tok.ExpirationTimestamp = at
		rec = tok
	}
	if _, err := c.proposeLocked(ctx, rec); err != nil {
		return 0, err
	}
	if _, removed := rec.(metadata.RemoveDelegationToken); removed {
		c.logger.Info("expired delegation token", "token_id", tok.TokenID, "owner", tok.Owner)
	}
	return at, nil
}

// RemoveExpiredDelegationTokens removes every expired token in one proposal and returns how
// many. Only the active controller does this (else NOT_CONTROLLER).
func (c *Controller) RemoveExpiredDelegationTokens(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return 0, err
	}
	img, now := c.Image(), c.nowMs()
	var recs []metadata.Record
	for _, id := range img.DelegationTokenIDs() {
		if img.DelegationTokens[id].Expired(now) {
			recs = append(recs, metadata.RemoveDelegationToken{TokenID: id})
		}
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if _, err := c.proposeLocked(ctx, recs...); err != nil {
		return 0, err
	}
	c.logger.Info("removed expired delegation tokens", "tokens", len(recs))
	return len(recs), nil
}

// RunDelegationTokenExpiry removes expired tokens every
// delegation.token.expiry.check.interval.ms until ctx ends, while this node is the active
// controller. It returns at once when tokens are disabled.
func (c *Controller) RunDelegationTokenExpiry(ctx context.Context) {
	if c.cfg.DelegationTokens.Secret == "" {
		return
	}
	c.runWhileLeader(ctx, c.cfg.DelegationTokens.CheckInterval, func() {
		if _, err := c.RemoveExpiredDelegationTokens(ctx); err != nil && ctx.Err() == nil {
			c.logger.Warn("delegation token expiry check failed", "err", err)
		}
	})
}
