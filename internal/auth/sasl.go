package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/xdg-go/scram"

	"github.com/samsa-io/samsa/internal/config"
)

// Failure is a failed authentication: Message is what Kafka tells the client
// (SASL_AUTHENTICATION_FAILED's message), User the name the client gave, if any.
type Failure struct {
	Message string
	User    string
	Err     error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Message + ": " + f.Err.Error()
	}
	return f.Message
}

// Session is one SASL exchange on a connection.
type Session interface {
	// Step takes the client's next message and returns the answer; done says the client is
	// authenticated. A *Failure error ends the exchange.
	Step(msg []byte) (answer []byte, done bool, err error)
	// Principal is the authenticated principal (User:<name>) once done.
	Principal() string
}

// ScramCredential is one user's stored credential for one SCRAM mechanism, as Kafka stores it
// (UserScramCredentialRecord): never the password, only what verifies it.
type ScramCredential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// ScramLookup returns a user's credential for a SCRAM mechanism.
type ScramLookup func(user, mechanism string) (ScramCredential, bool)

// ScramMechanism reports whether m is a served SCRAM mechanism.
func ScramMechanism(m string) bool {
	return m == config.MechanismScramSHA256 || m == config.MechanismScramSHA512
}

// ScramMechanismCode is a SCRAM mechanism's number in the SCRAM credential APIs (1
// SCRAM-SHA-256, 2 SCRAM-SHA-512; 0 unknown).
func ScramMechanismCode(m string) int8 {
	switch m {
	case config.MechanismScramSHA256:
		return 1
	case config.MechanismScramSHA512:
		return 2
	}
	return 0
}

// ScramMechanismName is the mechanism of a number of the SCRAM credential APIs, or "".
func ScramMechanismName(code int8) string {
	switch code {
	case 1:
		return config.MechanismScramSHA256
	case 2:
		return config.MechanismScramSHA512
	}
	return ""
}

func scramHash(mechanism string) func() hash.Hash {
	if mechanism == config.MechanismScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// NewScramCredential derives the stored credential from a salted password (Hi(password, salt,
// iterations), what AlterUserScramCredentials carries): StoredKey = H(HMAC(salted, "Client
// Key")), ServerKey = HMAC(salted, "Server Key") (RFC 5802).
func NewScramCredential(mechanism string, salt, saltedPassword []byte, iterations int32) ScramCredential {
	h := scramHash(mechanism)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(saltedPassword, "Client Key")
	hh := h()
	hh.Write(clientKey)
	return ScramCredential{
		Salt:       slices.Clone(salt),
		StoredKey:  hh.Sum(nil),
		ServerKey:  mac(saltedPassword, "Server Key"),
		Iterations: iterations,
	}
}

// Server is the SASL side of one listener: its enabled mechanisms, the PLAIN users of its JAAS
// config, the SCRAM credentials of the metadata and the OAUTHBEARER token validator.
type Server struct {
	mechanisms []string
	plainUsers map[string]string
	scram      ScramLookup
	oauth      TokenValidator
	tokens     DelegationTokenLookup
}

// NewServer builds a listener's SASL server from the configuration. PLAIN needs the
// listener's plain.sasl.jaas.config with user_NAME="password" options; OAUTHBEARER's
// validator comes from its settings (oauth_config.go).
func NewServer(cfg *config.Server, listener string, lookup ScramLookup, log *slog.Logger) (*Server, error) {
	mechs, err := cfg.Mechanisms(listener)
	if err != nil {
		return nil, err
	}
	s := &Server{mechanisms: mechs, scram: lookup}
	if slices.Contains(mechs, config.MechanismPlain) {
		text := cfg.JAASConfig(listener, config.MechanismPlain)
		if text == "" {
			return nil, fmt.Errorf("listener %s: PLAIN is enabled but listener.name.%s.plain.sasl.jaas.config is not set", listener, strings.ToLower(listener))
		}
		j, err := ParseJAAS(text)
		if err != nil {
			return nil, fmt.Errorf("listener %s: plain.sasl.jaas.config: %w", listener, err)
		}
		s.plainUsers = j.PlainUsers()
	}
	if slices.Contains(mechs, config.MechanismOAuthBearer) {
		v, err := newTokenValidator(cfg, listener, log)
		if err != nil {
			return nil, err
		}
		s.oauth = v
	}
	return s, nil
}

// NewServerWith builds a SASL server from its parts (tests).
func NewServerWith(mechanisms []string, plainUsers map[string]string, lookup ScramLookup) *Server {
	return &Server{mechanisms: mechanisms, plainUsers: plainUsers, scram: lookup}
}

// WithTokenValidator sets the OAUTHBEARER validator (tests).
func (s *Server) WithTokenValidator(v TokenValidator) *Server {
	s.oauth = v
	return s
}

// WithDelegationTokens lets SCRAM logins with the tokenauth=true extension authenticate
// with delegation tokens (nil: refused, as an unknown user).
func (s *Server) WithDelegationTokens(l DelegationTokenLookup) *Server {
	s.tokens = l
	return s
}

// Mechanisms returns the enabled mechanisms.
func (s *Server) Mechanisms() []string { return s.mechanisms }

// Start begins an exchange with an enabled mechanism; ok is false for any other.
func (s *Server) Start(mechanism string) (Session, bool) {
	if !slices.Contains(s.mechanisms, mechanism) {
		return nil, false
	}
	switch mechanism {
	case config.MechanismPlain:
		return &plainSession{users: s.plainUsers}, true
	case config.MechanismOAuthBearer:
		return &oauthSession{validator: s.oauth}, true
	}
	return newScramSession(mechanism, s.scram, s.tokens), true
}

// plainSession is SASL/PLAIN (RFC 4616): one message, [authzid] NUL user NUL password.
type plainSession struct {
	users map[string]string
	user  string
}

func (p *plainSession) Principal() string { return "User:" + p.user }

func (p *plainSession) Step(msg []byte) ([]byte, bool, error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return nil, false, &Failure{Message: fmt.Sprintf("Invalid SASL/PLAIN response: expected 3 tokens, got %d", len(parts))}
	}
	authz, user, pass := string(parts[0]), string(parts[1]), parts[2]
	switch {
	case user == "":
		return nil, false, &Failure{Message: "Authentication failed: username not specified"}
	case len(pass) == 0:
		return nil, false, &Failure{Message: "Authentication failed: password not specified", User: user}
	case authz != "" && authz != user:
		return nil, false, &Failure{Message: "Authentication failed: Client requested an authorization id that is different from username", User: user}
	}
	want, ok := p.users[user]
	// Compare even for an unknown user, so the time taken does not tell which users exist.
	match := subtle.ConstantTimeCompare([]byte(want), pass) == 1
	if !ok || !match {
		return nil, false, &Failure{Message: "Authentication failed: Invalid username or password", User: user}
	}
	p.user = user
	return []byte{}, true, nil
}

// scramSession is the server side of SCRAM (RFC 5802, 7677). The client-first message goes
// through xdg-go/scram (parsing, saslname decoding, the credential lookup, the server-first
// message); the client-final one is checked here as Kafka's ScramSaslServer does: the nonce
// must end with the server's (librdkafka 2.0.x sends the client's nonce twice, which Kafka
// accepts and xdg-go's exact comparison would not), then the proof.
type scramSession struct {
	mechanism string
	conv      *scram.ServerConversation
	unknown   bool // the client named a user without a credential for this mechanism
	user      string
	cred      ScramCredential
	// clientFirst and serverFirst are the first exchange, for the auth message.
	clientFirst, serverFirst string
	done                     bool
	// token: the client-first message had tokenauth=true; the user is a delegation token id,
	// tokenLogin what the broker knows of it (the owner is the principal).
	token      bool
	tokenLogin DelegationTokenLogin
}

var errUnknownUser = errors.New("unknown user")

func newScramSession(mechanism string, lookup ScramLookup, tokens DelegationTokenLookup) *scramSession {
	ss := &scramSession{mechanism: mechanism}
	gen := scram.SHA256
	if mechanism == config.MechanismScramSHA512 {
		gen = scram.SHA512
	}
	srv, _ := gen.NewServer(func(user string) (scram.StoredCredentials, error) {
		ss.user = user
		var c ScramCredential
		var ok bool
		if ss.token {
			if tokens != nil {
				ss.tokenLogin, ok = tokens(user, mechanism)
			}
			c = ss.tokenLogin.Credential
		} else {
			c, ok = lookup(user, mechanism)
		}
		if !ok {
			ss.unknown = true
			return scram.StoredCredentials{}, errUnknownUser
		}
		ss.cred = c
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
			StoredKey:  c.StoredKey,
			ServerKey:  c.ServerKey,
		}, nil
	})
	ss.conv = srv.WithNonceGenerator(scramNonce).NewConversation()
	return ss
}

// scramNonce is the server's part of a SCRAM nonce: alphanumeric, as Kafka's (base 36 of
// random bits), rather than xdg-go's base64.
func scramNonce() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *scramSession) Principal() string {
	if s.token {
		return s.tokenLogin.Owner
	}
	return "User:" + s.user
}

// TokenAuthenticated reports whether the session authenticated with a delegation token.
func (s *scramSession) TokenAuthenticated() bool { return s.token && s.done }

// CredentialExpiry is a delegation token's expiry (the session ends with it, as Kafka's);
// zero for a user's password.
func (s *scramSession) CredentialExpiry() time.Time {
	if !s.token {
		return time.Time{}
	}
	return time.UnixMilli(s.tokenLogin.ExpiryMs)
}

// TokenSession is a Session that may authenticate with a delegation token.
type TokenSession interface {
	Session
	TokenAuthenticated() bool
}

// scramExtensions returns the extensions of a client-first message (the key=value fields
// after the nonce, RFC 5802's reserved extensions as Kafka's ScramExtensions uses them); ok is
// false when one is not key=value.
func scramExtensions(clientFirst string) (map[string]string, bool) {
	fields := strings.Split(clientFirst, ",")
	if len(fields) <= 4 {
		return nil, true
	}
	ext := make(map[string]string, len(fields)-4)
	for _, f := range fields[4:] {
		k, v, found := strings.Cut(f, "=")
		if !found || k == "" || v == "" {
			return nil, false
		}
		ext[k] = v
	}
	return ext, true
}

func (s *scramSession) fail(err error) *Failure {
	return &Failure{Message: "Authentication failed during authentication due to invalid credentials with SASL mechanism " + s.mechanism, User: s.user, Err: err}
}

func (s *scramSession) Step(msg []byte) ([]byte, bool, error) {
	switch {
	case s.done:
		return nil, false, &Failure{Message: "Authentication failed: unexpected SASL message after the exchange ended", User: s.user}
	case s.serverFirst != "":
		answer, err := s.final(string(msg))
		if err != nil {
			return nil, false, s.fail(err)
		}
		s.done = true
		return answer, true, nil
	}
	ext, ok := scramExtensions(string(msg))
	if !ok {
		return nil, false, s.fail(errors.New("invalid SCRAM extensions in the client first message"))
	}
	s.token = ext["tokenauth"] == "true"
	answer, err := s.conv.Step(string(msg))
	if err != nil {
		if s.unknown && s.token {
			return nil, false, s.fail(fmt.Errorf("token authentication failed: invalid tokenId: %s", s.user))
		}
		if s.unknown {
			return nil, false, &Failure{Message: "Authentication failed: Invalid user credentials", User: s.user, Err: err}
		}
		return nil, false, s.fail(err)
	}
	s.clientFirst, s.serverFirst = string(msg), answer
	return []byte(answer), false, nil
}

// final checks the client-final message (c=<gs2 header>,r=<nonce>[,extensions],p=<proof>)
// and returns the server-final one (v=<server signature>).
func (s *scramSession) final(msg string) ([]byte, error) {
	fields := strings.Split(msg, ",")
	if len(fields) < 3 || !strings.HasPrefix(fields[0], "c=") || !strings.HasPrefix(fields[1], "r=") ||
		!strings.HasPrefix(fields[len(fields)-1], "p=") {
		return nil, errors.New("invalid client final message")
	}
	// The client-first message is the GS2 header (two comma-ended fields), then the bare
	// message.
	first, rest, ok1 := strings.Cut(s.clientFirst, ",")
	authz, bare, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return nil, errors.New("invalid client first message")
	}
	gs2 := first + "," + authz + ","
	if cb, err := base64.StdEncoding.DecodeString(fields[0][2:]); err != nil || string(cb) != gs2 {
		return nil, errors.New("channel binding does not match the GS2 header")
	}
	serverNonce := ""
	for _, f := range strings.Split(s.serverFirst, ",") {
		if v, ok := strings.CutPrefix(f, "r="); ok {
			serverNonce = v
		}
	}
	if serverNonce == "" || !strings.HasSuffix(fields[1][2:], serverNonce) {
		return nil, errors.New("invalid client nonce in the final client message")
	}
	proof, err := base64.StdEncoding.DecodeString(fields[len(fields)-1][2:])
	if err != nil {
		return nil, errors.New("invalid client proof encoding")
	}
	h := scramHash(s.mechanism)
	authMsg := bare + "," + s.serverFirst + "," + msg[:strings.LastIndex(msg, ",")]
	mac := func(key []byte) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(authMsg))
		return m.Sum(nil)
	}
	sig := mac(s.cred.StoredKey)
	if len(proof) != len(sig) {
		return nil, errors.New("invalid client proof length")
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	hh := h()
	hh.Write(clientKey)
	if !hmac.Equal(hh.Sum(nil), s.cred.StoredKey) {
		return nil, errors.New("invalid client credentials")
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac(s.cred.ServerKey))), nil
}
