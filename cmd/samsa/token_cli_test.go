package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// startTokenNode starts a node with PLAINTEXT and SCRAM on SASL_PLAINTEXT, with settings added,
// and creates the SCRAM users named (password NAME-secret) with samsa user create.
func startTokenNode(t *testing.T, users []string, settings ...string) *testcluster.Node {
	t.Helper()
	node := testcluster.Start(t, append([]string{
		"listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
		"connection.failed.authentication.delay.ms=0"}, settings...)...)
	for _, u := range users {
		if _, stderr, err := runCLI(t, u+"-secret\n", "user", "create", u, "--password-stdin", "--iterations", "4096", "--brokers", node.Addr()); err != nil {
			t.Fatalf("user create %s: %v (stderr %q)", u, err, stderr)
		}
	}
	return node
}

// scramProps writes a --command-config file logging in with SCRAM-SHA-256 as user with
// password pass (a token's id and HMAC when token is true) and returns its path.
func scramProps(t *testing.T, user, pass string, token bool) string {
	t.Helper()
	tokenAuth := ""
	if token {
		tokenAuth = ` tokenauth="true"`
	}
	text := "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n" +
		fmt.Sprintf(`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s"%s;`, user, pass, tokenAuth) + "\n"
	path := filepath.Join(t.TempDir(), user+".properties")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tokenTable parses the table the token commands print into one field map per row, keyed by
// the column names.
func tokenTable(t *testing.T, out string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header := strings.Fields(lines[0])
	if strings.Join(header, " ") != "TOKENID HMAC OWNER REQUESTER RENEWERS ISSUEDATE EXPIRYDATE MAXDATE" {
		t.Fatalf("token table header: %q", lines[0])
	}
	var rows []map[string]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(header) {
			t.Fatalf("token table row %q: %d fields, want %d", l, len(f), len(header))
		}
		row := map[string]string{}
		for i, h := range header {
			row[h] = f[i]
		}
		rows = append(rows, row)
	}
	return rows
}

func tokenTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(cli.TokenTimeLayout, s)
	if err != nil {
		t.Fatalf("token timestamp %q: %v", s, err)
	}
	return ts
}

// expiryDate is the timestamp of renew's and expire's "new expiry date" line.
func expiryDate(t *testing.T, out string) time.Time {
	t.Helper()
	_, ts, ok := strings.Cut(strings.TrimSpace(out), "new expiry date ")
	if !ok {
		t.Fatalf("no new expiry date in %q", out)
	}
	return tokenTime(t, ts)
}

// TestTokenCommands: alice, a SCRAM user, creates a delegation token with bob as its renewer;
// describe lists it; a franz-go client and the CLI (--command-config with tokenauth) log in
// with it; bob renews it; a stranger may not; alice expires it and it no longer logs in; alice
// creates a token owned by carol.
func TestTokenCommands(t *testing.T) {
	node := startTokenNode(t, []string{"alice", "bob", "carol"}, "delegation.token.secret.key=cli-token-secret")
	sasl := "--brokers=" + node.Server().ListenerAddr("SASL_PLAINTEXT")
	as := func(user string) []string {
		return []string{sasl, "--command-config", scramProps(t, user, user+"-secret", false)}
	}
	run := func(args ...string) string {
		t.Helper()
		return mustRunCLI(t, args...)
	}

	created := tokenTable(t, run(append([]string{"token", "create", "--renewer-principal", "User:bob"}, as("alice")...)...))
	if len(created) != 1 {
		t.Fatalf("token create printed %d rows", len(created))
	}
	tok := created[0]
	issued, expires, max := tokenTime(t, tok["ISSUEDATE"]), tokenTime(t, tok["EXPIRYDATE"]), tokenTime(t, tok["MAXDATE"])
	if tok["OWNER"] != "User:alice" || tok["REQUESTER"] != "User:alice" || tok["RENEWERS"] != "User:bob" ||
		expires.Sub(issued) != 24*time.Hour || max.Sub(issued) != 7*24*time.Hour {
		t.Fatalf("created %v", tok)
	}
	id, hmac := tok["TOKENID"], tok["HMAC"]

	described := tokenTable(t, run(append([]string{"token", "describe"}, as("alice")...)...))
	if len(described) != 1 || described[0]["TOKENID"] != id || described[0]["HMAC"] != hmac || described[0]["RENEWERS"] != "User:bob" {
		t.Fatalf("describe as alice: %v", described)
	}
	if rows := tokenTable(t, run(append([]string{"token", "describe", "--owner-principal", "User:bob"}, as("alice")...)...)); len(rows) != 0 {
		t.Fatalf("describe of bob's tokens: %v", rows)
	}

	login := func() error {
		return saslLogin(t, node.Server().ListenerAddr("SASL_PLAINTEXT"), scram.Auth{User: id, Pass: hmac, IsToken: true}.AsSha256Mechanism())
	}
	if err := login(); err != nil {
		t.Fatalf("login with the token: %v", err)
	}
	byToken := []string{sasl, "--command-config", scramProps(t, id, hmac, true)}
	run(append([]string{"topic", "create", "by-token"}, byToken...)...)

	renewed := expiryDate(t, run(append([]string{"token", "renew", "--hmac", hmac, "--renew-time-period", "3600000"}, as("bob")...)...))
	if !renewed.Before(expires) || renewed.Before(issued) {
		t.Fatalf("renewed for an hour: new expiry %v, was %v (issued %v)", renewed, expires, issued)
	}
	if rows := tokenTable(t, run(append([]string{"token", "describe"}, as("alice")...)...)); len(rows) != 1 || rows[0]["EXPIRYDATE"] != cli.TokenTime(renewed) {
		t.Fatalf("describe after renew to %v: %v", renewed, rows)
	}
	// Without --renew-time-period: the broker's delegation.token.expiry.time.ms (a day), not 0.
	if again := expiryDate(t, run(append([]string{"token", "renew", "--hmac", hmac}, as("alice")...)...)); !again.After(renewed) || again.After(max) {
		t.Fatalf("renewed by default: new expiry %v, want after %v and by %v", again, renewed, max)
	}

	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"create on PLAINTEXT", []string{"token", "create", "--brokers", node.Addr()},
			"create delegation token: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels"},
		{"describe on PLAINTEXT", []string{"token", "describe", "--brokers", node.Addr()},
			"describe delegation tokens: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"},
		{"describe by the token", append([]string{"token", "describe"}, byToken...),
			"describe delegation tokens: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"},
		{"renew by a stranger", append([]string{"token", "renew", "--hmac", hmac}, as("carol")...),
			"renew delegation token: DELEGATION_TOKEN_OWNER_MISMATCH"},
		{"expire by a stranger", append([]string{"token", "expire", "--hmac", hmac}, as("carol")...),
			"expire delegation token: DELEGATION_TOKEN_OWNER_MISMATCH"},
		{"renew an unknown token", append([]string{"token", "renew", "--hmac", "bm9wZQ=="}, as("alice")...),
			"renew delegation token: DELEGATION_TOKEN_NOT_FOUND"},
		{"a renewer of another principal type", append([]string{"token", "create", "--renewer-principal", "Group:g"}, as("alice")...),
			"create delegation token: INVALID_PRINCIPAL_TYPE"},
	}
	for _, r := range refusals {
		if _, _, err := runCLI(t, "", r.args...); err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s: %v; want %q", r.name, err, r.want)
		}
	}

	expired := expiryDate(t, run(append([]string{"token", "expire", "--hmac", hmac}, as("alice")...)...))
	if expired.After(renewed) {
		t.Errorf("expired now: new expiry %v after the renewed one %v", expired, renewed)
	}
	waitFor(t, 10*time.Second, "the expired token's login to fail", func() bool {
		return errors.Is(login(), kerr.SaslAuthenticationFailed)
	})
	if rows := tokenTable(t, run(append([]string{"token", "describe"}, as("alice")...)...)); len(rows) != 0 {
		t.Fatalf("describe after expire: %v", rows)
	}
	if _, _, err := runCLI(t, "", append([]string{"token", "renew", "--hmac", hmac}, as("alice")...)...); err == nil ||
		!strings.Contains(err.Error(), "DELEGATION_TOKEN_NOT_FOUND") {
		t.Errorf("renew of the expired token: %v", err)
	}

	// KIP-373: alice creates carol's token (no authorizer: no CREATE_TOKENS needed); it is
	// described to alice, its requester, under its owner.
	forCarol := tokenTable(t, run(append([]string{"token", "create", "--owner-principal", "User:carol", "--max-life-time-period", "3600000"}, as("alice")...)...))
	if len(forCarol) != 1 || forCarol[0]["OWNER"] != "User:carol" || forCarol[0]["REQUESTER"] != "User:alice" || forCarol[0]["RENEWERS"] != "-" ||
		tokenTime(t, forCarol[0]["MAXDATE"]).Sub(tokenTime(t, forCarol[0]["ISSUEDATE"])) != time.Hour {
		t.Fatalf("carol's token: %v", forCarol)
	}
	if rows := tokenTable(t, run(append([]string{"token", "describe", "--owner-principal", "User:carol"}, as("alice")...)...)); len(rows) != 1 || rows[0]["TOKENID"] != forCarol[0]["TOKENID"] {
		t.Fatalf("describe of carol's tokens: %v", rows)
	}
}

// TestTokenCommandsDisabled: without delegation.token.secret.key the token commands fail with
// DELEGATION_TOKEN_AUTH_DISABLED.
func TestTokenCommandsDisabled(t *testing.T) {
	node := startTokenNode(t, []string{"alice"})
	alice := []string{"--brokers=" + node.Server().ListenerAddr("SASL_PLAINTEXT"), "--command-config", scramProps(t, "alice", "alice-secret", false)}
	for _, args := range [][]string{
		{"token", "create"},
		{"token", "describe"},
		{"token", "renew", "--hmac", "eA=="},
		{"token", "expire", "--hmac", "eA=="},
	} {
		want := "DELEGATION_TOKEN_AUTH_DISABLED: Delegation Token feature is not enabled."
		if _, _, err := runCLI(t, "", append(args, alice...)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", strings.Join(args, " "), err, want)
		}
	}
}

// TestTokenCommandErrors: bad flags fail with a one-line message before any broker is asked.
func TestTokenCommandErrors(t *testing.T) {
	down := "--brokers=" + closedAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", "--renewer-principal", "bob"}, "--renewer-principal: expected a string in format principalType:principalName"},
		{[]string{"token", "create", "--owner-principal", "User:"}, "--owner-principal: expected a string in format principalType:principalName"},
		{[]string{"token", "create", "--max-life-time-period", "9223372036854775807"}, "--max-life-time-period 9223372036854775807: at most"},
		{[]string{"token", "create", "--max-life-time-period", "soon"}, `invalid argument "soon"`},
		{[]string{"token", "describe", "--owner-principal", "alice"}, "--owner-principal: expected a string"},
		{[]string{"token", "renew"}, "--hmac is required"},
		{[]string{"token", "renew", "--hmac", "not base64!"}, `--hmac "not base64!" is not base64`},
		{[]string{"token", "expire", "--hmac", "eA==", "--expiry-time-period", "9223372036854775807"}, "--expiry-time-period 9223372036854775807: at most"},
		{[]string{"token", "create", "extra"}, "unknown command"},
		{[]string{"token", "describe"}, "cannot reach broker"},
	} {
		_, _, err := runCLI(t, "", append(tc.args, down)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
