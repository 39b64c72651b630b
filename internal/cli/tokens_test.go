package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestParsePrincipal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want kadm.Principal
		err  bool
	}{
		{in: "User:alice", want: kadm.Principal{Type: "User", Name: "alice"}},
		{in: " User:CN=a:b ", want: kadm.Principal{Type: "User", Name: "CN=a:b"}},
		{in: "alice", err: true},
		{in: ":alice", err: true},
		{in: "User:", err: true},
		{in: "", err: true},
	} {
		got, err := ParsePrincipal(tc.in)
		switch {
		case tc.err && (err == nil || !strings.Contains(err.Error(), "principalType:principalName")):
			t.Errorf("ParsePrincipal(%q) = %v, %v; want a format error", tc.in, got, err)
		case !tc.err && (err != nil || got != tc.want):
			t.Errorf("ParsePrincipal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParsePrincipals("renewer-principal", []string{"User:a", "b"}); err == nil || !strings.HasPrefix(err.Error(), "--renewer-principal: ") {
		t.Errorf("ParsePrincipals with a bad value: %v", err)
	}
}

func TestTokenPeriod(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want int64 // milliseconds kadm sends
		err  bool
	}{
		{ms: -1, want: -1},
		{ms: -5, want: -1},
		{ms: 0, want: 0},
		{ms: 3_600_000, want: 3_600_000},
		{ms: maxPeriodMillis, want: maxPeriodMillis},
		{ms: maxPeriodMillis + 1, err: true},
	} {
		got, err := TokenPeriod("renew-time-period", tc.ms)
		switch {
		case tc.err && err == nil:
			t.Errorf("TokenPeriod(%d) = %v; want an error", tc.ms, got)
		case !tc.err && (err != nil || got.Milliseconds() != tc.want):
			t.Errorf("TokenPeriod(%d) = %v (%d ms), %v; want %d ms", tc.ms, got, got.Milliseconds(), err, tc.want)
		}
	}
}

func TestParseHMAC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  string
	}{
		{in: "aGk=", want: []byte("hi")},
		{in: "aGk", want: []byte("hi")},
		{in: " aGk=\n", want: []byte("hi")},
		{in: "+/+/", want: []byte{0xfb, 0xff, 0xbf}},
		{in: "", err: "--hmac is required"},
		{in: "not base64!", err: "is not base64"},
		{in: "-_-_", err: "is not base64"},
		{in: "====", err: "is not base64"},
	} {
		got, err := ParseHMAC(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseHMAC(%q) = %x, %v; want %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || !bytes.Equal(got, tc.want)):
			t.Errorf("ParseHMAC(%q) = %x, %v; want %x", tc.in, got, err, tc.want)
		}
	}
}

func TestTokenRows(t *testing.T) {
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	alice, bob := kadm.Principal{Type: "User", Name: "alice"}, kadm.Principal{Type: "User", Name: "bob"}
	tokens := kadm.DelegationTokens{
		{TokenID: "t3", HMAC: []byte("hi"), Owner: bob, TokenRequesterPrincipal: alice,
			IssueTimestamp: at("2026-12-03T10:00:00Z"), ExpiryTimestamp: at("2026-12-04T10:00:00Z"), MaxTimestamp: at("2026-12-10T10:00:00Z")},
		{TokenID: "t2", HMAC: []byte{0xfb, 0xff}, Owner: alice, TokenRequesterPrincipal: alice, Renewers: []kadm.Principal{bob, {Type: "User", Name: "carol"}},
			IssueTimestamp: at("2026-12-03T11:00:00+01:00"), ExpiryTimestamp: at("2026-12-04T10:00:00Z"), MaxTimestamp: at("2026-12-10T10:00:00Z")},
		{TokenID: "t1", HMAC: []byte("x"), Owner: alice, TokenRequesterPrincipal: alice,
			IssueTimestamp: at("2026-12-03T10:00:00Z"), ExpiryTimestamp: at("2026-12-04T10:00:00Z"), MaxTimestamp: at("2026-12-10T10:00:00Z")},
	}
	want := []TokenRow{
		{TokenID: "t1", HMAC: "eA==", Owner: "User:alice", Requester: "User:alice", Renewers: "-",
			Issued: "2026-12-03T10:00:00Z", Expires: "2026-12-04T10:00:00Z", Max: "2026-12-10T10:00:00Z"},
		{TokenID: "t2", HMAC: "+/8=", Owner: "User:alice", Requester: "User:alice", Renewers: "User:bob,User:carol",
			Issued: "2026-12-03T10:00:00Z", Expires: "2026-12-04T10:00:00Z", Max: "2026-12-10T10:00:00Z"},
		{TokenID: "t3", HMAC: "aGk=", Owner: "User:bob", Requester: "User:alice", Renewers: "-",
			Issued: "2026-12-03T10:00:00Z", Expires: "2026-12-04T10:00:00Z", Max: "2026-12-10T10:00:00Z"},
	}
	if got := TokenRows(tokens); !reflect.DeepEqual(got, want) {
		t.Errorf("TokenRows:\n got %+v\nwant %+v", got, want)
	}
	if tokens[0].TokenID != "t3" {
		t.Error("TokenRows sorted its argument")
	}
	if got := TokenRows(nil); len(got) != 0 {
		t.Errorf("TokenRows(nil) = %v", got)
	}
}
