package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSSize bounds a JWKS document (a few keys take a few kilobytes).
const maxJWKSSize = 1 << 20

// jwksFetchTimeout bounds one fetch of the JWKS endpoint.
const jwksFetchTimeout = 10 * time.Second

// JWKSConfig is where the keys that verify tokens come from (Kafka's
// sasl.oauthbearer.jwks.endpoint.* settings).
type JWKSConfig struct {
	// URL is https://, http:// or file:.
	URL string
	// Refresh is how old the keys may get before they are fetched again
	// (sasl.oauthbearer.jwks.endpoint.refresh.ms).
	Refresh time.Duration
	// Backoff and MaxBackoff space the fetches caused by unknown key ids
	// (sasl.oauthbearer.jwks.endpoint.retry.backoff.ms and .max.ms).
	Backoff, MaxBackoff time.Duration
}

// JWKS holds a key set and fetches it again as Kafka's RefreshingHttpsJwks does: when the
// keys are older than Refresh (in the background: the token is checked against the keys held),
// and at once for a token whose key id the set lacks (a key rotation), at most once per
// backoff, which doubles from Backoff to MaxBackoff while such fetches find nothing new and
// starts again once one does. A fetch runs at most once at a time; no goroutine outlives it.
type JWKS struct {
	cfg    JWKSConfig
	fetch  func(ctx context.Context) (*jose.JSONWebKeySet, error)
	log    *slog.Logger
	now    func() time.Time
	single sync.Mutex // one fetch at a time
	mu     struct {
		sync.Mutex
		keys      *jose.JSONWebKeySet
		fetchedAt time.Time // the last successful fetch
		triedAt   time.Time // the last fetch caused by an unknown key id
		backoff   time.Duration
		fetching  bool // a background refresh runs
	}
}

// NewJWKS makes the key source and fetches the keys once. A failed first fetch is logged
// and tried again at the first token, so that a broker starts while its identity provider is
// down; a malformed URL is an error.
func NewJWKS(cfg JWKSConfig, log *slog.Logger) (*JWKS, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("sasl.oauthbearer.jwks.endpoint.url: %w", err)
	}
	j := &JWKS{cfg: cfg, log: log, now: time.Now}
	switch u.Scheme {
	case "https", "http":
		client := &http.Client{Timeout: jwksFetchTimeout}
		j.fetch = func(ctx context.Context) (*jose.JSONWebKeySet, error) { return fetchJWKS(ctx, client, cfg.URL) }
	case "file":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		j.fetch = func(context.Context) (*jose.JSONWebKeySet, error) { return readJWKSFile(path) }
	default:
		return nil, fmt.Errorf("sasl.oauthbearer.jwks.endpoint.url %q: the scheme must be https, http or file", cfg.URL)
	}
	j.mu.backoff = cfg.Backoff
	if err := j.refresh(); err != nil {
		log.Warn("OAUTHBEARER: could not fetch the JWKS; tokens are refused until it can be fetched", "url", cfg.URL, "err", err)
	}
	return j, nil
}

// refresh fetches the keys now (one fetch at a time: a caller that waited for another's
// fetch does not fetch again).
func (j *JWKS) refresh() error {
	j.mu.Lock()
	before := j.mu.fetchedAt
	j.mu.Unlock()
	j.single.Lock()
	defer j.single.Unlock()
	j.mu.Lock()
	done := j.mu.fetchedAt != before
	j.mu.Unlock()
	if done {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	defer cancel()
	keys, err := j.fetch(ctx)
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.mu.keys, j.mu.fetchedAt = keys, j.now()
	j.mu.Unlock()
	j.log.Debug("OAUTHBEARER: JWKS fetched", "url", j.cfg.URL, "keys", len(keys.Keys))
	return nil
}

// Keys returns the keys of kid ("": every key), fetching the set again when it is stale or
// lacks kid.
func (j *JWKS) Keys(kid string) []jose.JSONWebKey {
	j.mu.Lock()
	keys, stale := j.mu.keys, j.now().Sub(j.mu.fetchedAt) >= j.cfg.Refresh
	if stale && keys != nil && !j.mu.fetching {
		j.mu.fetching = true
		go func() {
			if err := j.refresh(); err != nil {
				j.log.Warn("OAUTHBEARER: JWKS refresh failed; keeping the keys held", "url", j.cfg.URL, "err", err)
			}
			j.mu.Lock()
			j.mu.fetching = false
			j.mu.Unlock()
		}()
	}
	j.mu.Unlock()
	if found := selectKeys(keys, kid); len(found) > 0 {
		return found
	}
	// An unknown key id (or no keys yet): fetch now, unless the last such fetch was too
	// recent.
	j.mu.Lock()
	now := j.now()
	if !j.mu.triedAt.IsZero() && now.Sub(j.mu.triedAt) < j.mu.backoff {
		j.mu.Unlock()
		return nil
	}
	j.mu.triedAt = now
	j.mu.Unlock()
	if err := j.refresh(); err != nil {
		j.log.Warn("OAUTHBEARER: JWKS fetch for an unknown key id failed", "url", j.cfg.URL, "kid", kid, "err", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	found := selectKeys(j.mu.keys, kid)
	if len(found) > 0 {
		j.mu.backoff = j.cfg.Backoff
	} else {
		j.mu.backoff = min(max(2*j.mu.backoff, time.Millisecond), max(j.cfg.MaxBackoff, j.cfg.Backoff))
	}
	return found
}

// selectKeys returns the signing keys of kid, or every signing key for "".
func selectKeys(set *jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if set == nil {
		return nil
	}
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if (kid == "" || k.KeyID == kid) && (k.Use == "" || k.Use == "sig") {
			out = append(out, k)
		}
	}
	return out
}

func fetchJWKS(ctx context.Context, client *http.Client, u string) (*jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return parseJWKS(io.LimitReader(resp.Body, maxJWKSSize+1))
}

func readJWKSFile(path string) (*jose.JSONWebKeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseJWKS(io.LimitReader(f, maxJWKSSize+1))
}

// parseJWKS reads a JWKS document of at most maxJWKSSize bytes (r yields one more byte when
// the document is larger).
func parseJWKS(r io.Reader) (*jose.JSONWebKeySet, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSSize {
		return nil, fmt.Errorf("the JWKS is larger than %d bytes", maxJWKSSize)
	}
	return ParseJWKS(b)
}

// ParseJWKS parses a JWKS document: keys of a type go-jose does not know are an error, as a
// set with no key is.
func ParseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("the JWKS is not valid: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the JWKS has no keys")
	}
	return &set, nil
}
