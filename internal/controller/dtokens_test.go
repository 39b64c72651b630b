package controller

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/metadata"
)

// TestDelegationTokens: creation (lifetimes capped), renewal and expiry with Kafka's checks and
// error codes, removal of expired tokens, and the tokens restored from a snapshot and from the
// log after a restart.
func TestDelegationTokens(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	cfg := testConfig(t, dir)
	cfg.Now = clock.Now
	cfg.DelegationTokens = DelegationTokenConfig{Secret: "s3cret", MaxLifetime: time.Hour, ExpiryTime: 10 * time.Minute}
	c, err := Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := testCtx(t)
	now := int64(1_000_000)

	tok, err := c.CreateDelegationToken(ctx, TokenCreation{Owner: "User:alice", Requester: "User:admin", Renewers: []string{"User:bob"}, MaxLifetimeMs: -1})
	if err != nil {
		t.Fatal(err)
	}
	if tok.IssueTimestamp != now || tok.MaxTimestamp != now+3_600_000 || tok.ExpirationTimestamp != now+600_000 || tok.TokenID == "" {
		t.Fatalf("created %+v", tok)
	}
	short, err := c.CreateDelegationToken(ctx, TokenCreation{Owner: "User:carol", Requester: "User:carol", MaxLifetimeMs: 60_000})
	if err != nil || short.MaxTimestamp != now+60_000 || short.ExpirationTimestamp != now+60_000 {
		t.Fatalf("short token %+v %v", short, err)
	}
	if got := c.Image().DelegationTokens[tok.TokenID]; !got.OwnerOrRenewer("User:bob") || got.Requester != "User:admin" {
		t.Fatalf("image %+v", got)
	}
	mac := auth.DelegationTokenHMAC("s3cret", tok.TokenID)

	cases := []struct {
		name      string
		expire    bool
		mac       []byte
		principal string
		period    int64
		code      *kerr.Error
		expiry    int64
	}{
		{"renew unknown hmac", false, []byte("nope"), "User:alice", -1, kerr.DelegationTokenNotFound, 0},
		{"renew by a stranger", false, mac, "User:mallory", -1, kerr.DelegationTokenOwnerMismatch, 0},
		{"renew by the requester (not a renewer)", false, mac, "User:admin", -1, kerr.DelegationTokenOwnerMismatch, 0},
		{"renew by a renewer, default period", false, mac, "User:bob", -1, nil, now + 600_000},
		{"renew by the owner", false, mac, "User:alice", 60_000, nil, now + 60_000},
		{"renew for longer than the expiry time", false, mac, "User:alice", 7_200_000, nil, now + 600_000},
		{"expire by a stranger", true, mac, "User:mallory", 1000, kerr.DelegationTokenOwnerMismatch, 0},
		{"expire unknown hmac", true, []byte("nope"), "User:alice", 1000, kerr.DelegationTokenNotFound, 0},
		{"expire later, capped by the max", true, mac, "User:bob", 7_200_000, nil, now + 3_600_000},
		{"expire soon", true, mac, "User:bob", 5000, nil, now + 5000},
	}
	for _, tc := range cases {
		op := c.RenewDelegationToken
		if tc.expire {
			op = c.ExpireDelegationToken
		}
		expiry, err := op(ctx, tc.mac, tc.principal, tc.period)
		switch {
		case tc.code != nil && !errors.Is(err, tc.code):
			t.Errorf("%s: %v; want %v", tc.name, err, tc.code)
		case tc.code == nil && (err != nil || expiry != tc.expiry):
			t.Errorf("%s: expiry %d, %v; want %d", tc.name, expiry, err, tc.expiry)
		}
	}

	// The tokens survive a restart, from a snapshot and from the log after it.
	if err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	third, err := c.CreateDelegationToken(ctx, TokenCreation{Owner: "User:dave", Requester: "User:dave"})
	if err != nil {
		t.Fatal(err)
	}
	before := c.Image()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = startController(t, cfg)
	if !metadata.Equal(before, c.Image()) || len(c.Image().DelegationTokens) != 3 {
		t.Fatalf("restart: %+v", c.Image().DelegationTokens)
	}

	// Past the first token's expiry: renewal and expiry are DELEGATION_TOKEN_EXPIRED, and the
	// expiry check removes it and the short one (expired too), not the third.
	clock.Advance(61 * time.Second)
	for _, tc := range []struct {
		name      string
		expire    bool
		principal string
		code      *kerr.Error
	}{
		{"renew", false, "User:alice", kerr.DelegationTokenExpired},
		{"renew by a stranger (expiry checked first)", false, "User:mallory", kerr.DelegationTokenExpired},
		{"expire later", true, "User:alice", kerr.DelegationTokenExpired},
		{"expire by a stranger (ownership checked first)", true, "User:mallory", kerr.DelegationTokenOwnerMismatch},
	} {
		op := c.RenewDelegationToken
		if tc.expire {
			op = c.ExpireDelegationToken
		}
		if _, err := op(ctx, mac, tc.principal, 1000); !errors.Is(err, tc.code) {
			t.Errorf("expired token, %s: %v; want %v", tc.name, err, tc.code)
		}
	}
	if n, err := c.RemoveExpiredDelegationTokens(ctx); err != nil || n != 2 {
		t.Fatalf("RemoveExpiredDelegationTokens = %d, %v; want 2", n, err)
	}
	if ids := c.Image().DelegationTokenIDs(); len(ids) != 1 || ids[0] != third.TokenID {
		t.Fatalf("left %v", ids)
	}
	// A negative expiry period removes the token at once.
	if at, err := c.ExpireDelegationToken(ctx, auth.DelegationTokenHMAC("s3cret", third.TokenID), "User:dave", -1); err != nil || at != clock.Now().UnixMilli() {
		t.Fatalf("expire now: %d %v", at, err)
	}
	if len(c.Image().DelegationTokens) != 0 {
		t.Fatalf("left %v", c.Image().DelegationTokenIDs())
	}
}

func TestDelegationTokensDisabled(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	if _, err := c.CreateDelegationToken(testCtx(t), TokenCreation{Owner: "User:a", Requester: "User:a"}); !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		t.Errorf("create: %v", err)
	}
	if _, err := c.RenewDelegationToken(testCtx(t), []byte("x"), "User:a", -1); !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		t.Errorf("renew: %v", err)
	}
}
