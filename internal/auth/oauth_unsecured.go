package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// UnsecuredValidator accepts unsigned tokens ("alg":"none", an empty signature) as Kafka's
// OAuthBearerUnsecuredValidatorCallbackHandler, the OAUTHBEARER default when no server callback
// handler is configured: anyone can make such a token, so it is for development only (the
// broker logs a warning at start). Its options are the JAAS options of that handler.
type UnsecuredValidator struct {
	// PrincipalClaim names the principal (unsecuredValidatorPrincipalClaimName, default sub).
	PrincipalClaim string
	// ScopeClaim holds the scopes (unsecuredValidatorScopeClaimName, default scope).
	ScopeClaim string
	// RequiredScope lists scopes every token must have (unsecuredValidatorRequiredScope).
	RequiredScope []string
	// ClockSkew is allowed when exp and iat are checked (unsecuredValidatorAllowableClockSkewMs).
	ClockSkew time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// NewUnsecuredValidator builds the unsecured validator from the JAAS options of the
// listener's OAuthBearerLoginModule.
func NewUnsecuredValidator(options map[string]string) (*UnsecuredValidator, error) {
	v := &UnsecuredValidator{PrincipalClaim: "sub", ScopeClaim: "scope"}
	if s := strings.TrimSpace(options["unsecuredValidatorPrincipalClaimName"]); s != "" {
		v.PrincipalClaim = s
	}
	if s := strings.TrimSpace(options["unsecuredValidatorScopeClaimName"]); s != "" {
		v.ScopeClaim = s
	}
	v.RequiredScope = strings.FieldsFunc(options["unsecuredValidatorRequiredScope"], func(r rune) bool { return r == ' ' || r == ',' })
	if s := options["unsecuredValidatorAllowableClockSkewMs"]; s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < 0 {
			return nil, errors.New("unsecuredValidatorAllowableClockSkewMs must be a non-negative number of milliseconds")
		}
		v.ClockSkew = time.Duration(ms) * time.Millisecond
	}
	return v, nil
}

func (v *UnsecuredValidator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Validate checks an unsecured JWS: three dot-separated parts, the last empty.
func (v *UnsecuredValidator) Validate(token string) (Token, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Token{}, invalidToken("an unsecured JWS has 3 dot-separated parts, got %d", len(parts))
	}
	if parts[2] != "" {
		return Token{}, invalidToken("an unsecured JWS has an empty signature")
	}
	header, err := decodeJSONPart(parts[0])
	if err != nil {
		return Token{}, invalidToken("header: %v", err)
	}
	if alg, ok := header["alg"].(string); !ok || alg != "none" {
		return Token{}, invalidToken(`header: "alg" must be "none" in an unsecured JWS`)
	}
	claims, err := decodeJSONPart(parts[1])
	if err != nil {
		return Token{}, invalidToken("claims: %v", err)
	}
	return checkClaims(claims, claimRules{principal: v.PrincipalClaim, scope: v.ScopeClaim, skew: v.ClockSkew,
		requiredScope: v.RequiredScope, now: v.now()})
}

// decodeJSONPart decodes one base64url part of a compact JWS holding a JSON object.
func decodeJSONPart(part string) (map[string]any, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err != nil {
		return nil, errors.New("not base64url")
	}
	return decodeJSON(raw)
}

// decodeJSON decodes a JSON object, its numbers as json.Number.
func decodeJSON(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil || d.More() {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// claimRules are the checks of a token's claims shared by both validators.
type claimRules struct {
	principal, scope string
	skew             time.Duration
	requiredScope    []string
	now              time.Time
	// requireIssuedAt: iat must be present (the validating handler, as Kafka's).
	requireIssuedAt bool
}

// checkClaims checks exp (required, not past), nbf and iat (not in the future), the principal
// claim (a non-empty string) and the required scopes.
func checkClaims(claims map[string]any, r claimRules) (Token, error) {
	exp, ok, err := numericDate(claims, "exp")
	switch {
	case err != nil:
		return Token{}, invalidToken("%v", err)
	case !ok:
		return Token{}, invalidToken(`no "exp" claim`)
	case !r.now.Add(-r.skew).Before(exp):
		return Token{}, invalidToken("the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	iat, ok, err := numericDate(claims, "iat")
	switch {
	case err != nil:
		return Token{}, invalidToken("%v", err)
	case !ok && r.requireIssuedAt:
		return Token{}, invalidToken(`no "iat" claim`)
	case ok && iat.After(r.now.Add(r.skew)):
		return Token{}, invalidToken("the token is issued in the future (%s)", iat.UTC().Format(time.RFC3339))
	case ok && !iat.Before(exp):
		return Token{}, invalidToken("the token expires before it is issued")
	}
	if nbf, ok, err := numericDate(claims, "nbf"); err != nil {
		return Token{}, invalidToken("%v", err)
	} else if ok && nbf.After(r.now.Add(r.skew)) {
		return Token{}, invalidToken("the token is not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	name, _ := claims[r.principal].(string)
	if strings.TrimSpace(name) == "" {
		return Token{}, invalidToken("no principal name in claim %q", r.principal)
	}
	scope, err := scopeClaim(claims[r.scope])
	if err != nil {
		return Token{}, invalidToken("claim %q: %v", r.scope, err)
	}
	for _, s := range r.requiredScope {
		if !slices.Contains(scope, s) {
			return Token{}, &TokenError{Status: "insufficient_scope", Scope: strings.Join(r.requiredScope, " "),
				Err: errors.New("the token lacks the required scope " + s)}
		}
	}
	return Token{Principal: name, Expiry: exp, Scope: scope}, nil
}

// numericDate reads a NumericDate claim (seconds since the epoch, maybe fractional).
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, false, errors.New(`claim "` + name + `" is not a number`)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, false, errors.New(`claim "` + name + `" is not a date`)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// scopeClaim reads a scope claim: a space-separated string or a list of strings.
func scopeClaim(v any) ([]string, error) {
	switch s := v.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(s), nil
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			str, ok := e.(string)
			if !ok {
				return nil, errors.New("not a list of strings")
			}
			out = append(out, str)
		}
		return out, nil
	}
	return nil, errors.New("not a string or a list of strings")
}
