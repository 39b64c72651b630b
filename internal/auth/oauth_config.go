package auth

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/internal/config"
)

// newTokenValidator builds a listener's OAUTHBEARER validator from Kafka's settings: with
// listener.name.<l>.oauthbearer.sasl.server.callback.handler.class set to Kafka's
// OAuthBearerValidatorCallbackHandler, signed JWTs checked against
// sasl.oauthbearer.jwks.endpoint.url; otherwise Kafka's default, the unsecured validator,
// configured by the JAAS options of the listener's oauthbearer.sasl.jaas.config, and a warning
// in the log.
func newTokenValidator(cfg *config.Server, listener string, log *slog.Logger) (TokenValidator, error) {
	mech := config.MechanismOAuthBearer
	get := func(name string) string { return cfg.MechanismValue(listener, mech, name) }
	// The numbers were checked when the configuration was loaded.
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(get(name), 10, 64)
		return n
	}
	ms := func(name string) time.Duration { return time.Duration(num(name)) * time.Millisecond }
	switch get("sasl.server.callback.handler.class") {
	case config.OAuthBearerValidatorClass, config.OAuthBearerSecuredValidatorClass:
		url := get("sasl.oauthbearer.jwks.endpoint.url")
		if url == "" {
			return nil, fmt.Errorf("listener %s: OAUTHBEARER with %s needs sasl.oauthbearer.jwks.endpoint.url", listener, config.OAuthBearerValidatorClass)
		}
		jwks, err := NewJWKS(JWKSConfig{
			URL:        url,
			Refresh:    ms("sasl.oauthbearer.jwks.endpoint.refresh.ms"),
			Backoff:    ms("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms"),
			MaxBackoff: ms("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms"),
		}, log.With("listener", listener))
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", listener, err)
		}
		v := &JWTValidator{
			Keys:       jwks,
			Issuer:     get("sasl.oauthbearer.expected.issuer"),
			SubClaim:   get("sasl.oauthbearer.sub.claim.name"),
			ScopeClaim: get("sasl.oauthbearer.scope.claim.name"),
			ClockSkew:  time.Duration(num("sasl.oauthbearer.clock.skew.seconds")) * time.Second,
		}
		for _, a := range strings.Split(get("sasl.oauthbearer.expected.audience"), ",") {
			if a = strings.TrimSpace(a); a != "" {
				v.Audience = append(v.Audience, a)
			}
		}
		return v, nil
	}
	options := map[string]string{}
	if text := cfg.JAASConfig(listener, mech); text != "" {
		j, err := ParseJAAS(text)
		if err != nil {
			return nil, fmt.Errorf("listener %s: oauthbearer.sasl.jaas.config: %w", listener, err)
		}
		options = j.Options
	}
	v, err := NewUnsecuredValidator(options)
	if err != nil {
		return nil, fmt.Errorf("listener %s: oauthbearer.sasl.jaas.config: %w", listener, err)
	}
	log.Warn("OAUTHBEARER accepts unsigned tokens on this listener (Kafka's default, OAuthBearerUnsecuredValidatorCallbackHandler): anyone can log in as any principal; set listener.name.<listener>.oauthbearer.sasl.server.callback.handler.class="+config.OAuthBearerValidatorClass+" and sasl.oauthbearer.jwks.endpoint.url in production",
		"listener", listener)
	return v, nil
}
