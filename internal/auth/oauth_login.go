package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The client side of OAUTHBEARER: how a client gets the token it sends, as Kafka's login
// callback handlers do it.

// Kafka's login callback handler classes (sasl.login.callback.handler.class).
const (
	// LoginHandlerClientCredentials fetches tokens from sasl.oauthbearer.token.endpoint.url
	// (the OAuth client-credentials grant).
	LoginHandlerClientCredentials = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
	// loginHandlerClientCredentialsOld is the same class under its pre-3.4 package.
	loginHandlerClientCredentialsOld = "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler"
)

// IsClientCredentialsLoginHandler reports whether class names Kafka's client-credentials
// login callback handler (either package).
func IsClientCredentialsLoginHandler(class string) bool {
	return class == LoginHandlerClientCredentials || class == loginHandlerClientCredentialsOld
}

// UnsecuredLoginToken builds the unsigned token ({"alg":"none"}, an empty signature) of
// Kafka's OAuthBearerUnsecuredLoginCallbackHandler, the OAUTHBEARER client default, from the
// JAAS options of its OAuthBearerLoginModule: unsecuredLoginStringClaim_<name>,
// unsecuredLoginNumberClaim_<name>, unsecuredLoginListClaim_<name> (the value's first
// character is the separator), unsecuredLoginLifetimeSeconds (default 3600) and
// unsecuredLoginPrincipalClaimName (default sub), which must name a non-empty string claim.
// iat is now and exp now plus the lifetime, in seconds; neither may be set.
func UnsecuredLoginToken(options map[string]string, now time.Time) (string, error) {
	const prefix = "unsecuredLogin"
	life := int64(3600)
	if s, ok := options[prefix+"LifetimeSeconds"]; ok {
		var err error
		if life, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64); err != nil {
			return "", fmt.Errorf("%sLifetimeSeconds: %q is not a number of seconds", prefix, s)
		}
	}
	principal := strings.TrimSpace(options[prefix+"PrincipalClaimName"])
	if principal == "" {
		principal = "sub"
	}
	issued := float64(now.UnixMilli()) / 1000
	claims := map[string]any{"iat": issued, "exp": issued + float64(life)}
	for k, v := range options {
		var name string
		var value any
		switch {
		case strings.HasPrefix(k, prefix+"StringClaim_"):
			name, value = strings.TrimPrefix(k, prefix+"StringClaim_"), v
		case strings.HasPrefix(k, prefix+"NumberClaim_"):
			name = strings.TrimPrefix(k, prefix+"NumberClaim_")
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return "", fmt.Errorf("%s: %q is not a number", k, v)
			}
			value = f
		case strings.HasPrefix(k, prefix+"ListClaim_"):
			name, value = strings.TrimPrefix(k, prefix+"ListClaim_"), listClaim(v)
		default:
			continue
		}
		if name == "" {
			continue
		}
		if name == "iat" || name == "exp" {
			return "", fmt.Errorf("Cannot explicitly set the '%s' claim", name)
		}
		claims[name] = value
	}
	if s, _ := claims[principal].(string); strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("the unsecured token has no principal: set unsecuredLoginStringClaim_%s in sasl.jaas.config", principal)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(payload) + ".", nil
}

// listClaim splits an unsecuredLoginListClaim_ value on its first character, as Kafka does
// (an empty element where two separators meet or one ends the list).
func listClaim(v string) []string {
	if len(v) <= 1 {
		return []string{}
	}
	return strings.Split(v[1:], v[:1])
}

// loginExtensionName and loginExtensionValue are RFC 7628's key and value syntax, as Kafka
// checks SASL extensions.
var (
	loginExtensionName  = regexp.MustCompile(`^[A-Za-z]+$`)
	loginExtensionValue = regexp.MustCompile(`^[\x21-\x7E \t\r\n]+$`)
)

// LoginExtensions are the SASL extensions of a login module's JAAS options: those named
// prefix+<name> (unsecuredLoginExtension_ for the unsecured login, extension_ for the
// client-credentials one), checked as Kafka checks them.
func LoginExtensions(options map[string]string, prefix string) (map[string]string, error) {
	var out map[string]string
	for k, v := range options {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if !loginExtensionName.MatchString(name) || name == "auth" {
			return nil, fmt.Errorf("Extension name %s is invalid", name)
		}
		if !loginExtensionValue.MatchString(v) {
			return nil, fmt.Errorf("Extension value (%s) for extension %s is invalid", v, name)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out, nil
}

// ClientCredentials gets access tokens with the OAuth client-credentials grant, as Kafka's
// OAuthBearerLoginCallbackHandler does: a POST of grant_type=client_credentials (and scope,
// when set) to TokenURL with the client id and secret in HTTP basic authentication, the
// answer's access_token the token. A token is kept until shortly before it expires (the
// answer's expires_in, else the token's exp claim). A file: URL is read as the token itself.
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scope        string
	// HTTP is the client used; nil is one with a 30 s timeout.
	HTTP *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// Token returns a valid access token, fetching one when none is kept.
func (c *ClientCredentials) Token(ctx context.Context) (string, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && now().Before(c.expires) {
		return c.token, nil
	}
	tok, life, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	if life <= 0 {
		if exp, ok := tokenExpiry(tok); ok {
			life = exp.Sub(now())
		}
	}
	// Refresh at 80% of the lifetime, as sasl.login.refresh.window.factor's default.
	c.token, c.expires = tok, now().Add(life*8/10)
	return tok, nil
}

func (c *ClientCredentials) fetch(ctx context.Context) (string, time.Duration, error) {
	u, err := url.Parse(c.TokenURL)
	if err != nil {
		return "", 0, fmt.Errorf("sasl.oauthbearer.token.endpoint.url: %w", err)
	}
	if u.Scheme == "file" {
		b, err := os.ReadFile(u.Path)
		if err != nil {
			return "", 0, fmt.Errorf("sasl.oauthbearer.token.endpoint.url: %w", err)
		}
		return strings.TrimSpace(string(b)), 0, nil
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return "", 0, errors.New("the client-credentials login needs a client id and secret (sasl.oauthbearer.client.credentials.client.id and .client.secret, or the clientId and clientSecret options of sasl.jaas.config)")
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.Scope != "" {
		form.Set("scope", c.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint %s: %w", c.TokenURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("token endpoint %s answered %s: %s", c.TokenURL, resp.Status, strings.TrimSpace(string(body)))
	}
	var answer struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", 0, fmt.Errorf("token endpoint %s: the answer is not JSON: %w", c.TokenURL, err)
	}
	if answer.AccessToken == "" {
		return "", 0, fmt.Errorf("token endpoint %s: the answer has no access_token", c.TokenURL)
	}
	secs, _ := strconv.ParseFloat(strings.Trim(string(answer.ExpiresIn), `"`), 64)
	return answer.AccessToken, time.Duration(secs * float64(time.Second)), nil
}

// tokenExpiry reads the exp claim (seconds) of a JWS, without checking it.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(claims.Exp * 1000)), true
}
