package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
//
// A failed request is retried as Kafka's HttpAccessTokenRetriever and Retry do it: I/O errors,
// an empty answer and every status but the ones Kafka knows will not change (400-407, 409-415,
// 501, 505: refused at once) are tried again after RetryBackoff, doubled each attempt, until
// RetryBackoffMax has passed since the first attempt (then the last error is returned).
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scope        string
	// RetryBackoff is sasl.login.retry.backoff.ms (0: its default, 100 ms).
	RetryBackoff time.Duration
	// RetryBackoffMax is sasl.login.retry.backoff.max.ms (0: its default, 10 s): the longest
	// wait and the time after which no attempt starts.
	RetryBackoffMax time.Duration
	// ConnectTimeout is sasl.login.connect.timeout.ms: the bound of connecting to the
	// endpoint (0: none of its own).
	ConnectTimeout time.Duration
	// ReadTimeout is sasl.login.read.timeout.ms: the bound of each read from the endpoint,
	// as Java's URLConnection read timeout (0: none of its own). With neither timeout set an
	// attempt is bounded by 30 s (Kafka's client leaves it to the JVM: unbounded).
	ReadTimeout time.Duration
	// HTTP is the client used; nil is one made from the timeouts.
	HTTP *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// sleep waits between attempts (sleepCtx when nil); tests record the backoffs.
	sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	token   string
	expires time.Time
	client  *http.Client // made from the timeouts on first use, when HTTP is nil
}

// Kafka's defaults of sasl.login.retry.backoff.ms and sasl.login.retry.backoff.max.ms.
const (
	defaultLoginRetryBackoff    = 100 * time.Millisecond
	defaultLoginRetryBackoffMax = 10 * time.Second
)

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
	tok, life, err := c.fetchLocked(ctx, now)
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

// fetchLocked gets a token, retrying as Kafka's Retry.execute: attempt n waits
// RetryBackoff·2^(n-1) before the next, never past RetryBackoffMax after the first.
func (c *ClientCredentials) fetchLocked(ctx context.Context, now func() time.Time) (string, time.Duration, error) {
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
	backoff, maxBackoff := c.RetryBackoff, c.RetryBackoffMax
	if backoff <= 0 {
		backoff = defaultLoginRetryBackoff
	}
	if maxBackoff <= 0 {
		maxBackoff = defaultLoginRetryBackoffMax
	}
	sleep := c.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	end := now().Add(maxBackoff)
	for attempt := 1; ; attempt++ {
		body, retry, err := c.post(ctx)
		if err == nil {
			return c.parseAnswer(body)
		}
		if !retry || ctx.Err() != nil {
			return "", 0, err
		}
		wait := min(backoff<<min(attempt-1, 30), end.Sub(now()))
		if wait <= 0 {
			return "", 0, fmt.Errorf("%w (%d attempts in sasl.login.retry.backoff.max.ms %d)", err, attempt, maxBackoff.Milliseconds())
		}
		if err := sleep(ctx, wait); err != nil {
			return "", 0, err
		}
	}
}

// unretryableStatus are the answers Kafka's HttpAccessTokenRetriever does not retry: the
// request itself is wrong and will be again.
func unretryableStatus(code int) bool {
	switch code {
	case 400, 401, 402, 403, 404, 405, 406, 407, 409, 410, 411, 412, 413, 414, 415, 501, 505:
		return true
	}
	return false
}

// post makes one token request: the answer's body on 200 or 201, else an error and whether
// it is worth another attempt.
func (c *ClientCredentials) post(ctx context.Context) ([]byte, bool, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.Scope != "" {
		form.Set("scope", c.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, false, fmt.Errorf("token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cache-Control", "no-cache")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, err := c.httpClientLocked().Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, true, fmt.Errorf("token endpoint %s: %w", c.TokenURL, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		if len(strings.TrimSpace(string(body))) == 0 {
			return nil, true, fmt.Errorf("token endpoint %s: the token endpoint response was unexpectedly empty despite response code %d", c.TokenURL, resp.StatusCode)
		}
		return body, false, nil
	case unretryableStatus(resp.StatusCode):
		return nil, false, fmt.Errorf("token endpoint %s: the response code %d and error response %s was encountered reading the token endpoint response; will not attempt further retries",
			c.TokenURL, resp.StatusCode, oauthErrorMessage(body))
	}
	return nil, true, fmt.Errorf("token endpoint %s: the unexpected response code %d and error message %s was encountered reading the token endpoint response",
		c.TokenURL, resp.StatusCode, oauthErrorMessage(body))
}

// oauthErrorMessage formats an error answer as Kafka does: RFC 6749's error and
// error_description (or Okta's errorCode and errorSummary) as {error - description}, else the
// body itself (at most 1,000 characters).
func oauthErrorMessage(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "{}"
	}
	var doc map[string]any
	if json.Unmarshal(body, &doc) == nil {
		field := func(k string) string { // as Jackson prints a node: JSON, a missing one empty
			if v, ok := doc[k]; ok {
				b, _ := json.Marshal(v)
				return string(b)
			}
			return ""
		}
		for _, k := range [][2]string{{"error", "error_description"}, {"errorCode", "errorSummary"}} {
			if _, ok := doc[k[0]]; ok {
				return fmt.Sprintf("{%s - %s}", field(k[0]), field(k[1]))
			}
		}
	}
	if len(s) > 1000 {
		s = s[:1000] + "..."
	}
	return "{" + s + "}"
}

// parseAnswer reads the access token and its lifetime from a token endpoint's answer.
func (c *ClientCredentials) parseAnswer(body []byte) (string, time.Duration, error) {
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

// httpClientLocked is HTTP, else a client with the connect and read timeouts.
func (c *ClientCredentials) httpClientLocked() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	if c.client == nil {
		c.client = loginHTTPClient(c.ConnectTimeout, c.ReadTimeout)
	}
	return c.client
}

// loginHTTPClient bounds connecting by connect and every read by read, as Java's
// URLConnection timeouts; with neither, the whole request by 30 s.
func loginHTTPClient(connect, read time.Duration) *http.Client {
	if connect <= 0 && read <= 0 {
		return &http.Client{Timeout: 30 * time.Second}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil || read <= 0 {
			return conn, err
		}
		return &readTimeoutConn{Conn: conn, timeout: read}, nil
	}
	if connect > 0 {
		tr.TLSHandshakeTimeout = connect
	}
	return &http.Client{Transport: tr}
}

// readTimeoutConn fails a read that waits longer than timeout.
type readTimeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *readTimeoutConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// sleepCtx waits d or until ctx ends (then its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	wait, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	<-wait.Done()
	return ctx.Err()
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
