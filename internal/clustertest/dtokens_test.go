package clustertest

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestDelegationTokensForwarded: in three nodes, a token created, renewed and expired through
// a broker that is not the active controller (forwarded with the requester's principal) is
// the requester's, logs in on every node at once, and no longer logs in anywhere once expired;
// a token with a short max lifetime is removed by the active controller's expiry check.
func TestDelegationTokensForwarded(t *testing.T) {
	c := testcluster.StartClusterListeners(t, 3, []string{"SASL_PLAINTEXT"},
		"sasl.enabled.mechanisms=SCRAM-SHA-256",
		"delegation.token.secret.key=cluster-token-secret",
		"delegation.token.expiry.check.interval.ms=100")
	leader := activeController(t, c)
	via := (leader + 1) % 3
	ctx := ctxT(t)
	if _, err := kadm.NewClient(newTestClient(t, kgo.SeedBrokers(c.Addrs()[via]))).AlterUserSCRAMs(ctx, nil,
		[]kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-secret"}}); err != nil {
		t.Fatal(err)
	}
	sasl := listenerAddrs(c, "SASL_PLAINTEXT")
	alice := newTestClient(t, kgo.SeedBrokers(sasl[via]), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()))
	create := kmsg.NewPtrCreateDelegationTokenRequest()
	create.MaxLifetimeMillis = -1
	tok, err := create.RequestWith(ctx, alice)
	if err != nil || tok.ErrorCode != 0 || tok.PrincipalName != "alice" || tok.TokenRequesterPrincipalName != "alice" {
		t.Fatalf("CreateDelegationToken through node %d: %v %+v", via+1, err, tok)
	}
	login := func(i int) error {
		cl := newTestClient(t, kgo.SeedBrokers(sasl[i]), kgo.SASL(scram.Auth{User: tok.TokenID,
			Pass: base64.StdEncoding.EncodeToString(tok.HMAC), IsToken: true}.AsSha256Mechanism()))
		defer cl.Close()
		return cl.Ping(ctx)
	}
	for i := range 3 {
		if err := login(i); err != nil {
			t.Errorf("token login on node %d: %v", i+1, err)
		}
	}
	renew := kmsg.NewPtrRenewDelegationTokenRequest()
	renew.HMAC, renew.RenewTimeMillis = tok.HMAC, 60_000
	if r, err := renew.RequestWith(ctx, alice); err != nil || r.ErrorCode != 0 || r.ExpiryTimestamp <= tok.IssueTimestamp {
		t.Fatalf("renew: %v %+v", err, r)
	}
	expire := kmsg.NewPtrExpireDelegationTokenRequest()
	expire.HMAC, expire.ExpiryPeriodMillis = tok.HMAC, -1
	if r, err := expire.RequestWith(ctx, alice); err != nil || r.ErrorCode != 0 {
		t.Fatalf("expire: %v %+v", err, r)
	}
	for i := range 3 {
		if err := login(i); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("expired token login on node %d: %v; want SASL_AUTHENTICATION_FAILED", i+1, err)
		}
	}
	if r, err := expire.RequestWith(ctx, alice); err != nil || r.ErrorCode != kerr.DelegationTokenNotFound.Code {
		t.Errorf("expire again: %v %+v", err, r)
	}

	// A token living 1 s is removed from every node's image by the expiry check.
	create.MaxLifetimeMillis = 1000
	short, err := create.RequestWith(ctx, alice)
	if err != nil || short.ErrorCode != 0 {
		t.Fatalf("short token: %v %+v", err, short)
	}
	for i := range 3 {
		for {
			if _, ok := c.Server(i).Image().DelegationTokens[short.TokenID]; !ok {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d still has the expired token", i+1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
