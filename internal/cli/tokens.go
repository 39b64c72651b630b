package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ParsePrincipal parses a Kafka principal in principalType:principalName form (User:alice), as
// Kafka's SecurityUtils.parseKafkaPrincipal, except that neither part may be empty.
func ParsePrincipal(s string) (kadm.Principal, error) {
	s = strings.TrimSpace(s)
	typ, name, ok := strings.Cut(s, ":")
	if !ok || typ == "" || name == "" {
		return kadm.Principal{}, fmt.Errorf("expected a string in format principalType:principalName but got %q", s)
	}
	return kadm.Principal{Type: typ, Name: name}, nil
}

// ParsePrincipals parses the values of a repeatable principal flag (named flag in errors).
func ParsePrincipals(flag string, values []string) ([]kadm.Principal, error) {
	var out []kadm.Principal
	for _, v := range values {
		p, err := ParsePrincipal(v)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// PrincipalString is p as Kafka prints a principal: User:alice.
func PrincipalString(p kadm.Principal) string { return p.Type + ":" + p.Name }

// maxPeriodMillis is the longest period a time.Duration holds, in milliseconds (292 years).
const maxPeriodMillis = math.MaxInt64 / int64(time.Millisecond)

// TokenPeriod turns a delegation token period flag in milliseconds into the duration kadm
// sends back as milliseconds. A negative value is kept as -1 ms, which the broker reads as
// its default (create, renew) or "now" (expire).
func TokenPeriod(flag string, ms int64) (time.Duration, error) {
	switch {
	case ms < 0:
		return -time.Millisecond, nil
	case ms > maxPeriodMillis:
		return 0, fmt.Errorf("--%s %d: at most %d ms", flag, ms, maxPeriodMillis)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// ParseHMAC decodes a delegation token's HMAC as Kafka's tools print it: standard base64,
// the trailing padding optional (as Java's Base64 decoder reads it).
func ParseHMAC(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("--hmac is required: the token's HMAC (base64), as token create prints it")
	}
	mac, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(mac) == 0 {
		return nil, fmt.Errorf("--hmac %q is not base64", s)
	}
	return mac, nil
}

// TokenTimeLayout is how the token commands print timestamps: UTC, to the second.
const TokenTimeLayout = "2006-01-02T15:04:05Z"

// TokenTime formats a token timestamp in TokenTimeLayout.
func TokenTime(t time.Time) string { return t.UTC().Format(TokenTimeLayout) }

// TokenRow is one line of the token commands' table, with kafka-delegation-tokens' columns.
type TokenRow struct {
	TokenID, HMAC, Owner, Requester, Renewers string
	Issued, Expires, Max                      string
}

// TokenRows turns tokens into rows, sorted by owner, then issue time, then id; the HMAC in
// base64 and the renewers comma-separated (or "-" for none).
func TokenRows(tokens kadm.DelegationTokens) []TokenRow {
	sorted := slices.Clone(tokens)
	slices.SortStableFunc(sorted, func(a, b kadm.DelegationToken) int {
		if c := strings.Compare(PrincipalString(a.Owner), PrincipalString(b.Owner)); c != 0 {
			return c
		}
		if c := a.IssueTimestamp.Compare(b.IssueTimestamp); c != 0 {
			return c
		}
		return strings.Compare(a.TokenID, b.TokenID)
	})
	rows := make([]TokenRow, 0, len(sorted))
	for _, t := range sorted {
		renewers := make([]string, 0, len(t.Renewers))
		for _, r := range t.Renewers {
			renewers = append(renewers, PrincipalString(r))
		}
		rn := strings.Join(renewers, ",")
		if rn == "" {
			rn = "-"
		}
		rows = append(rows, TokenRow{
			TokenID:   t.TokenID,
			HMAC:      base64.StdEncoding.EncodeToString(t.HMAC),
			Owner:     PrincipalString(t.Owner),
			Requester: PrincipalString(t.TokenRequesterPrincipal),
			Renewers:  rn,
			Issued:    TokenTime(t.IssueTimestamp),
			Expires:   TokenTime(t.ExpiryTimestamp),
			Max:       TokenTime(t.MaxTimestamp),
		})
	}
	return rows
}
