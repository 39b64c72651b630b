package auth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OAUTHBEARER (RFC 7628, Kafka's KIP-255): the client's one message carries a bearer token,
// which a TokenValidator checks. A refused token is answered with an error document
// ({"status":"invalid_token"}) rather than a failure; the client acknowledges it with a single
// 0x01 byte and only then does the exchange fail, with that document as Kafka's message.

// maxTokenSize bounds a bearer token. Real access tokens are a few kilobytes; the frame of an
// unauthenticated client is already bounded by sasl.server.max.receive.size (512 KiB).
const maxTokenSize = 64 << 10

// Token is a validated bearer token.
type Token struct {
	// Principal is the token's principal name (its sub claim, or the configured claim).
	Principal string
	// Expiry is when the token expires (its exp claim).
	Expiry time.Time
	// Scope holds the token's scopes.
	Scope []string
}

// TokenError is a refused token: Status and Scope go into the error document sent to the
// client (Kafka's OAuthBearerValidatorCallback.error); Err says why, for the broker's log.
type TokenError struct {
	Status string // "invalid_token", "insufficient_scope"
	Scope  string
	Err    error
}

func (e *TokenError) Error() string { return e.Status + ": " + e.Err.Error() }

func invalidToken(format string, args ...any) *TokenError {
	return &TokenError{Status: "invalid_token", Err: fmt.Errorf(format, args...)}
}

// TokenValidator checks a bearer token: a Token, or a *TokenError.
type TokenValidator interface {
	Validate(token string) (Token, error)
}

// ExpiringSession is a Session whose credential expires (OAUTHBEARER's token): the broker
// ends the SASL session no later than that (KIP-368).
type ExpiringSession interface {
	Session
	// CredentialExpiry is when the credential expires, once the exchange is done.
	CredentialExpiry() time.Time
}

// oauthSession is the server side of OAUTHBEARER (Kafka's OAuthBearerSaslServer).
type oauthSession struct {
	validator TokenValidator
	token     Token
	// errDoc is the error document sent for a refused token, and refused why; the client's
	// next message must be 0x01.
	errDoc  string
	refused error
	done    bool
}

func (s *oauthSession) Principal() string { return "User:" + s.token.Principal }

func (s *oauthSession) CredentialExpiry() time.Time { return s.token.Expiry }

// oauthMalformed is Kafka's answer to a message it cannot parse (a SaslException).
const oauthMalformed = "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"

func (s *oauthSession) Step(msg []byte) ([]byte, bool, error) {
	switch {
	case s.done:
		return nil, false, &Failure{Message: "Authentication failed: unexpected SASL message after the exchange ended"}
	case s.errDoc != "":
		doc := s.errDoc
		if len(msg) == 1 && msg[0] == 0x01 {
			return nil, false, &Failure{Message: doc, User: s.token.Principal, Err: s.refused}
		}
		return nil, false, &Failure{Message: oauthMalformed, Err: errors.New("expected 0x01 after the error document")}
	}
	authzid, token, err := ParseOAuthBearerInitial(msg)
	if err != nil {
		return nil, false, &Failure{Message: oauthMalformed, Err: err}
	}
	t, err := s.validator.Validate(token)
	if err != nil {
		var te *TokenError
		if !errors.As(err, &te) {
			te = &TokenError{Status: "invalid_token", Err: err}
		}
		s.errDoc, s.refused = oauthErrorDocument(te), err
		return []byte(s.errDoc), false, nil
	}
	if authzid != "" && authzid != t.Principal {
		return nil, false, &Failure{Message: fmt.Sprintf("Authentication failed: Client requested an authorization id (%s) that is different from the token's principal name (%s)", authzid, t.Principal), User: t.Principal}
	}
	s.token, s.done = t, true
	return []byte{}, true, nil
}

// oauthErrorDocument is the JSON error Kafka sends for a refused token.
func oauthErrorDocument(te *TokenError) string {
	doc := `{"status":"` + jsonEscape(te.Status) + `"`
	if te.Scope != "" {
		doc += `, "scope":"` + jsonEscape(te.Scope) + `"`
	}
	return doc + "}"
}

func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ParseOAuthBearerInitial parses an OAUTHBEARER client's first message as Kafka's
// OAuthBearerClientInitialResponse does: the GS2 header "n,[a=<authzid>],", then 0x01, then
// key=value pairs each ended by 0x01 (one of them auth=Bearer <token>), then 0x01. Keys are
// letters; values printable ASCII, space, tab, CR or LF; the token is base64url characters and
// dots. Extensions are accepted and not used.
func ParseOAuthBearerInitial(msg []byte) (authzid, token string, err error) {
	rest, ok := bytes.CutPrefix(msg, []byte("n,"))
	if !ok {
		return "", "", errors.New("invalid OAUTHBEARER client first message: no GS2 header")
	}
	gs2, rest, ok := bytes.Cut(rest, []byte(","))
	if !ok {
		return "", "", errors.New("invalid OAUTHBEARER client first message: unterminated GS2 header")
	}
	if len(gs2) > 0 {
		a, ok := bytes.CutPrefix(gs2, []byte("a="))
		if !ok || !validSASLName(a) {
			return "", "", errors.New("invalid OAUTHBEARER client first message: bad authzid")
		}
		authzid = string(a)
	}
	rest, ok = bytes.CutPrefix(rest, []byte{0x01})
	if !ok || len(rest) == 0 || rest[len(rest)-1] != 0x01 {
		return "", "", errors.New("invalid OAUTHBEARER client first message: bad separators")
	}
	rest = rest[:len(rest)-1] // the final 0x01
	auth := ""
	found := false
	for len(rest) > 0 {
		var kv []byte
		kv, rest, ok = bytes.Cut(rest, []byte{0x01})
		if !ok {
			return "", "", errors.New("invalid OAUTHBEARER client first message: unterminated key=value pair")
		}
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok || !validOAuthKey(k) || !validOAuthValue(v) {
			return "", "", errors.New("invalid OAUTHBEARER client first message: bad key=value pair")
		}
		if string(k) == "auth" {
			auth, found = string(v), true
		}
	}
	if !found {
		return "", "", errors.New("invalid OAUTHBEARER client first message: 'auth' not specified")
	}
	scheme, tok, ok := strings.Cut(auth, " ")
	tok = strings.TrimLeft(tok, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || !validScheme(scheme) {
		return "", "", fmt.Errorf("invalid scheme in OAUTHBEARER client first message: %.20q", scheme)
	}
	if tok == "" || len(tok) > maxTokenSize || strings.Trim(tok, "-_.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		return "", "", errors.New("invalid OAUTHBEARER client first message: invalid 'auth' format")
	}
	return authzid, tok, nil
}

// validSASLName: 0x01-0x7F but '=' and ',', with =2C and =3D escapes (RFC 5801's saslname).
func validSASLName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '=':
			if i+2 >= len(b) || (string(b[i+1:i+3]) != "2C" && string(b[i+1:i+3]) != "3D") {
				return false
			}
			i += 2
		case c == 0 || c >= 0x80 || c == ',':
			return false
		}
	}
	return true
}

func validOAuthKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func validOAuthValue(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if !(0x21 <= c && c <= 0x7E || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			return false
		}
	}
	return true
}

// validScheme: word characters, as Kafka's pattern.
func validScheme(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}
