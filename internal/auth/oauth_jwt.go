package auth

import (
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwtAlgorithms are the signature algorithms a token may use: RSA, ECDSA and RSA-PSS, as
// Kafka's validator allows (never none, nor HMAC: the keys are public).
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512,
}

// JWTValidator validates signed JWTs as Kafka's OAuthBearerValidatorCallbackHandler (its
// BrokerJwtValidator): the signature by a key of the JWKS (the token's kid, or any key
// without one), exp and iat required, nbf honoured, all within the clock skew; iss and aud
// when expected; the principal from the sub claim (or the configured one).
type JWTValidator struct {
	Keys *JWKS
	// Audience lists the audiences of which the token's aud must name one (none: unchecked).
	Audience []string
	// Issuer is the iss the token must have ("": unchecked).
	Issuer string
	// SubClaim and ScopeClaim name the principal and scope claims.
	SubClaim, ScopeClaim string
	// ClockSkew is allowed when exp, nbf and iat are checked.
	ClockSkew time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Validate checks a compact JWS.
func (v *JWTValidator) Validate(token string) (Token, error) {
	jws, err := jose.ParseSignedCompact(token, jwtAlgorithms)
	if err != nil {
		return Token{}, invalidToken("malformed JWT: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return Token{}, invalidToken("a JWT has one signature")
	}
	hdr := jws.Signatures[0].Header
	keys := v.Keys.Keys(hdr.KeyID)
	if len(keys) == 0 {
		return Token{}, invalidToken("no key in the JWKS for key id %q", hdr.KeyID)
	}
	var payload []byte
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		pub := k.Public()
		if !pub.Valid() {
			continue
		}
		if payload, err = jws.Verify(pub); err == nil {
			break
		}
	}
	if payload == nil {
		return Token{}, invalidToken("the signature does not verify with the key of key id %q", hdr.KeyID)
	}
	claims, err := decodeJSON(payload)
	if err != nil {
		return Token{}, invalidToken("claims: %v", err)
	}
	if v.Issuer != "" {
		if iss, _ := claims["iss"].(string); iss != v.Issuer {
			return Token{}, invalidToken("issuer %q, expected %q", iss, v.Issuer)
		}
	}
	if len(v.Audience) > 0 {
		aud, err := scopeClaim(claims["aud"]) // a list of strings, or one
		if s, ok := claims["aud"].(string); ok {
			aud = []string{s}
		}
		if err != nil || !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.Audience, a) }) {
			return Token{}, invalidToken("audience %v is none of the expected %v", claims["aud"], v.Audience)
		}
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	return checkClaims(claims, claimRules{principal: v.SubClaim, scope: v.ScopeClaim, skew: v.ClockSkew,
		now: now, requireIssuedAt: true})
}
