package broker_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/auth"
)

const tokenSecret = "token-secret-key"

// startTokenNode starts a node with SCRAM on SASL_PLAINTEXT, an SSL listener and a PLAINTEXT
// one, delegation tokens enabled, and SCRAM users alice, bob and carol.
func startTokenNode(t *testing.T, settings ...string) *secNode {
	t.Helper()
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", append([]string{
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
		"delegation.token.secret.key=" + tokenSecret,
	}, settings...)...)
	var ups []kadm.UpsertSCRAM
	for _, u := range []string{"alice", "bob", "carol"} {
		ups = append(ups, kadm.UpsertSCRAM{User: u, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: u + "-secret"})
	}
	if _, err := newAdmin(t, n.Node).AlterUserSCRAMs(ctxT(t), nil, ups); err != nil {
		t.Fatal(err)
	}
	return n
}

func scramClient(t *testing.T, n *secNode, user string, opts ...kgo.Opt) *kgo.Client {
	return secClient(t, n.Server().ListenerAddr("SASL_PLAINTEXT"),
		append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: user + "-secret"}.AsSha256Mechanism())}, opts...)...)
}

func tokenClient(t *testing.T, n *secNode, id string, mac []byte, sha512 bool, opts ...kgo.Opt) *kgo.Client {
	a := scram.Auth{User: id, Pass: base64.StdEncoding.EncodeToString(mac), IsToken: true}
	mech := a.AsSha256Mechanism()
	if sha512 {
		mech = a.AsSha512Mechanism()
	}
	return secClient(t, n.Server().ListenerAddr("SASL_PLAINTEXT"), append([]kgo.Opt{kgo.SASL(mech)}, opts...)...)
}

func createToken(t *testing.T, cl *kgo.Client, owner string, renewers ...string) *kmsg.CreateDelegationTokenResponse {
	t.Helper()
	req := kmsg.NewPtrCreateDelegationTokenRequest()
	if owner != "" {
		req.OwnerPrincipalType, req.OwnerPrincipalName = kmsg.StringPtr("User"), kmsg.StringPtr(owner)
	}
	for _, r := range renewers {
		rn := kmsg.NewCreateDelegationTokenRequestRenewer()
		rn.PrincipalType, rn.PrincipalName, _ = strings.Cut(r, ":")
		req.Renewers = append(req.Renewers, rn)
	}
	req.MaxLifetimeMillis = -1
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatalf("CreateDelegationToken: %v", err)
	}
	return resp
}

func describeTokens(t *testing.T, cl *kgo.Client) (int16, []string) {
	t.Helper()
	resp, err := kmsg.NewPtrDescribeDelegationTokenRequest().RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatalf("DescribeDelegationToken: %v", err)
	}
	var ids []string
	for _, d := range resp.TokenDetails {
		ids = append(ids, d.TokenID)
	}
	return resp.ErrorCode, ids
}

func changeExpiry(t *testing.T, cl *kgo.Client, expire bool, mac []byte, period int64) (int16, int64) {
	t.Helper()
	if expire {
		req := kmsg.NewPtrExpireDelegationTokenRequest()
		req.HMAC, req.ExpiryPeriodMillis = mac, period
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode, resp.ExpiryTimestamp
	}
	req := kmsg.NewPtrRenewDelegationTokenRequest()
	req.HMAC, req.RenewTimeMillis = mac, period
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ErrorCode, resp.ExpiryTimestamp
}

// TestDelegationTokensTCP: alice creates a token (bob its renewer) over SASL; the token logs
// in with SCRAM-SHA-256 and -512 (tokenauth=true) as User:alice and produces, but may not ask
// for tokens; renewals and expiries with Kafka's error codes; once expired the token no longer
// logs in.
func TestDelegationTokensTCP(t *testing.T) {
	n := startTokenNode(t)
	alice, bob, carol := scramClient(t, n, "alice"), scramClient(t, n, "bob"), scramClient(t, n, "carol")

	// Refused channels: PLAINTEXT, SSL without a client certificate.
	ssl := secClient(t, n.Server().ListenerAddr("SSL"), kgo.DialTLSConfig(n.clientTLS(t, "")))
	for name, cl := range map[string]*kgo.Client{"PLAINTEXT": newClient(t, n.Node), "SSL": ssl} {
		if r := createToken(t, cl, ""); r.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code {
			t.Errorf("create over %s: %v; want DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", name, kerr.ErrorForCode(r.ErrorCode))
		}
		if code, _ := describeTokens(t, cl); code != kerr.DelegationTokenRequestNotAllowed.Code {
			t.Errorf("describe over %s: %v", name, kerr.ErrorForCode(code))
		}
	}
	if r := createToken(t, alice, "", "Group:g"); r.ErrorCode != kerr.InvalidPrincipalType.Code {
		t.Errorf("renewer of type Group: %v; want INVALID_PRINCIPAL_TYPE", kerr.ErrorForCode(r.ErrorCode))
	}

	tok := createToken(t, alice, "", "User:bob")
	if tok.ErrorCode != 0 || tok.PrincipalName != "alice" || tok.TokenRequesterPrincipalName != "alice" ||
		!bytes.Equal(tok.HMAC, auth.DelegationTokenHMAC(tokenSecret, tok.TokenID)) || tok.ExpiryTimestamp-tok.IssueTimestamp != 86_400_000 ||
		tok.MaxTimestamp-tok.IssueTimestamp != 604_800_000 {
		t.Fatalf("created %+v", tok)
	}
	for name, cl := range map[string]*kgo.Client{"owner": alice, "renewer": bob} {
		if code, ids := describeTokens(t, cl); code != 0 || !slices.Equal(ids, []string{tok.TokenID}) {
			t.Errorf("describe as the %s: %v %v", name, kerr.ErrorForCode(code), ids)
		}
	}

	// The token logs in as alice, produces, and may not ask for tokens.
	createTopic(t, n.Node, "by-token", 1, nil)
	for _, sha512 := range []bool{false, true} {
		tc := tokenClient(t, n, tok.TokenID, tok.HMAC, sha512)
		if err := produceErr(t, tc, "by-token"); err != nil {
			t.Fatalf("produce with the token (SHA-512 %v): %v", sha512, err)
		}
		r := createToken(t, tc, "")
		if r.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code || r.PrincipalName != "alice" {
			t.Errorf("create with a token: %v as %s; want DELEGATION_TOKEN_REQUEST_NOT_ALLOWED as alice", kerr.ErrorForCode(r.ErrorCode), r.PrincipalName)
		}
		if code, _ := changeExpiry(t, tc, false, tok.HMAC, -1); code != kerr.DelegationTokenRequestNotAllowed.Code {
			t.Errorf("renew with a token: %v", kerr.ErrorForCode(code))
		}
	}
	for name, cl := range map[string]*kgo.Client{
		"a wrong HMAC":          tokenClient(t, n, tok.TokenID, []byte("wrong"), false),
		"the id as a user name": secClient(t, n.Server().ListenerAddr("SASL_PLAINTEXT"), kgo.SASL(scram.Auth{User: tok.TokenID, Pass: base64.StdEncoding.EncodeToString(tok.HMAC)}.AsSha256Mechanism())),
		"an unknown token":      tokenClient(t, n, "nope", tok.HMAC, false),
	} {
		if err := pingErr(t, cl); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("login with %s: %v; want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}

	cases := []struct {
		name   string
		cl     *kgo.Client
		expire bool
		mac    []byte
		period int64
		code   *kerr.Error
	}{
		{"renew an unknown HMAC", alice, false, []byte("nope"), -1, kerr.DelegationTokenNotFound},
		{"renew by a stranger", carol, false, tok.HMAC, -1, kerr.DelegationTokenOwnerMismatch},
		{"expire by a stranger", carol, true, tok.HMAC, -1, kerr.DelegationTokenOwnerMismatch},
		{"expire an unknown HMAC", bob, true, []byte("nope"), -1, kerr.DelegationTokenNotFound},
		{"renew by the renewer", bob, false, tok.HMAC, 60_000, nil},
		{"renew by the owner", alice, false, tok.HMAC, -1, nil},
		{"expire later by the renewer", bob, true, tok.HMAC, 3_600_000, nil},
		{"expire now by the owner", alice, true, tok.HMAC, -1, nil},
		{"renew once expired", alice, false, tok.HMAC, -1, kerr.DelegationTokenNotFound},
	}
	for _, c := range cases {
		code, expiry := changeExpiry(t, c.cl, c.expire, c.mac, c.period)
		switch {
		case c.code != nil && code != c.code.Code:
			t.Errorf("%s: %v; want %v", c.name, kerr.ErrorForCode(code), c.code)
		case c.code == nil && (code != 0 || expiry <= tok.IssueTimestamp || expiry > tok.MaxTimestamp):
			t.Errorf("%s: %v, expiry %d", c.name, kerr.ErrorForCode(code), expiry)
		}
	}
	if err := pingErr(t, tokenClient(t, n, tok.TokenID, tok.HMAC, false)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("login with the expired token: %v; want SASL_AUTHENTICATION_FAILED", err)
	}
}

// TestDelegationTokensDisabled: without delegation.token.secret.key every token API answers
// DELEGATION_TOKEN_AUTH_DISABLED.
func TestDelegationTokensDisabled(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms=SCRAM-SHA-256")
	if _, err := newAdmin(t, n.Node).AlterUserSCRAMs(ctxT(t), nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-secret"}}); err != nil {
		t.Fatal(err)
	}
	alice := scramClient(t, n, "alice")
	if r := createToken(t, alice, ""); r.ErrorCode != kerr.DelegationTokenAuthDisabled.Code {
		t.Errorf("create: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if code, _ := describeTokens(t, alice); code != kerr.DelegationTokenAuthDisabled.Code {
		t.Errorf("describe: %v", kerr.ErrorForCode(code))
	}
	for _, expire := range []bool{false, true} {
		if code, _ := changeExpiry(t, alice, expire, []byte("x"), -1); code != kerr.DelegationTokenAuthDisabled.Code {
			t.Errorf("expire %v: %v", expire, kerr.ErrorForCode(code))
		}
	}
}

// allowACL creates one literal ALLOW binding for principal (from any host).
func allowACL(t *testing.T, cl *kgo.Client, principal string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) {
	t.Helper()
	req := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = rt, name, kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host, c.Operation, c.PermissionType = principal, "*", op, kmsg.ACLPermissionTypeAllow
	req.Creations = append(req.Creations, c)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil || resp.Results[0].ErrorCode != 0 {
		t.Fatalf("CreateACLs %s %v %v %s: %v %+v", principal, op, rt, name, err, resp)
	}
}

// TestDelegationTokenACLs: with the standard authorizer, a token for another owner needs
// CREATE_TOKENS on that owner's USER resource; the token is described to its requester, to
// principals with DESCRIBE_TOKENS on its owner or DESCRIBE on the token, and to no one else;
// its requester may not renew it (only the owner and renewers may).
func TestDelegationTokenACLs(t *testing.T) {
	jaas := `org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret" user_dave="dave-secret";`
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+jaas,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:admin;User:ANONYMOUS",
		"delegation.token.secret.key="+tokenSecret)
	admin := newClient(t, n.Node)
	alice, bob, dave := saslUser(t, n, "alice", "alice-secret"), saslUser(t, n, "bob", "bob-secret"), saslUser(t, n, "dave", "dave-secret")

	if r := createToken(t, alice, "carol"); r.ErrorCode != kerr.DelegationTokenAuthorizationFailed.Code || r.PrincipalName != "carol" || r.TokenRequesterPrincipalName != "alice" {
		t.Fatalf("alice creating carol's token without CREATE_TOKENS: %v %+v", kerr.ErrorForCode(r.ErrorCode), r)
	}
	allowACL(t, admin, "User:alice", kmsg.ACLOperationCreateTokens, kmsg.ACLResourceTypeUser, "User:carol")
	tok := createToken(t, alice, "carol")
	if tok.ErrorCode != 0 || tok.PrincipalName != "carol" || tok.TokenRequesterPrincipalName != "alice" {
		t.Fatalf("alice creating carol's token with CREATE_TOKENS: %v %+v", kerr.ErrorForCode(tok.ErrorCode), tok)
	}
	// His own token needs no ACL.
	if r := createToken(t, bob, ""); r.ErrorCode != 0 {
		t.Fatalf("bob's own token: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	sees := func(cl *kgo.Client) bool {
		_, ids := describeTokens(t, cl)
		return slices.Contains(ids, tok.TokenID)
	}
	steps := []struct {
		name string
		cl   *kgo.Client
		acl  func()
	}{
		{"bob, DESCRIBE_TOKENS on User:carol", bob, func() {
			allowACL(t, admin, "User:bob", kmsg.ACLOperationDescribeTokens, kmsg.ACLResourceTypeUser, "User:carol")
		}},
		{"dave, DESCRIBE on the token", dave, func() {
			allowACL(t, admin, "User:dave", kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeDelegationToken, tok.TokenID)
		}},
	}
	for _, s := range steps {
		if sees(s.cl) {
			t.Errorf("%s: described before the ACL", s.name)
		}
		s.acl()
		if !sees(s.cl) {
			t.Errorf("%s: not described with the ACL", s.name)
		}
	}
	if !sees(alice) {
		t.Error("the requester does not see the token")
	}
	if code, _ := changeExpiry(t, alice, false, tok.HMAC, -1); code != kerr.DelegationTokenOwnerMismatch.Code {
		t.Errorf("renew by the requester: %v; want DELEGATION_TOKEN_OWNER_MISMATCH", kerr.ErrorForCode(code))
	}
}
