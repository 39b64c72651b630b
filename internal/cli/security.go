package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
)

// CommandConfigUsage documents --command-config.
const CommandConfigUsage = "a Kafka client properties file for secured listeners, as Kafka's tools take it: security.protocol, sasl.mechanism, sasl.jaas.config (username/password, tokenauth=\"true\" for a delegation token's SCRAM login; OAUTHBEARER's unsecured claims or clientId/clientSecret/scope), sasl.login.callback.handler.class and sasl.oauthbearer.token.endpoint.url (OAUTHBEARER client credentials; sasl.login.retry.backoff.ms, .retry.backoff.max.ms, .connect.timeout.ms, .read.timeout.ms), ssl.truststore.location and ssl.keystore.location (PEM, or PKCS12 or JKS with ssl.*.type and ssl.*.password)"

// commandConfigKeys are the client properties ClientSecurity knows.
var commandConfigKeys = []string{"security.protocol", "sasl.mechanism", "sasl.jaas.config",
	"sasl.login.callback.handler.class", "sasl.oauthbearer.token.endpoint.url", "sasl.oauthbearer.scope",
	"sasl.oauthbearer.client.credentials.client.id", "sasl.oauthbearer.client.credentials.client.secret",
	"sasl.login.retry.backoff.ms", "sasl.login.retry.backoff.max.ms", "sasl.login.connect.timeout.ms", "sasl.login.read.timeout.ms",
	"ssl.truststore.location", "ssl.truststore.type", "ssl.truststore.password",
	"ssl.keystore.location", "ssl.keystore.type", "ssl.keystore.password", "ssl.endpoint.identification.algorithm"}

// ClientSecurity turns the client properties of Kafka's tools (--command-config) into franz-go
// options: security.protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); for TLS,
// ssl.truststore.location (CAs; the system's when absent), ssl.keystore.location (a
// certificate and key, for mutual TLS), each PEM or, with ssl.truststore.type /
// ssl.keystore.type PKCS12 or JKS, a store opened with ssl.truststore.password /
// ssl.keystore.password, and ssl.endpoint.identification.algorithm (empty: the
// chain is checked but not the host name); for SASL, sasl.mechanism (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512 with the username and password of sasl.jaas.config, a delegation token's login
// with its tokenauth="true"; OAUTHBEARER, see
// oauthLogin). Settings it does not know are errors, so a typo does not silently connect in
// plain text.
func ClientSecurity(props map[string]string) ([]kgo.Opt, error) {
	for k, v := range props {
		if !slices.Contains(commandConfigKeys, k) {
			return nil, fmt.Errorf("command config: %s is not supported (known: %s)", k, strings.Join(commandConfigKeys, ", "))
		}
		if (k == "ssl.truststore.type" || k == "ssl.keystore.type") && !slices.ContainsFunc([]string{auth.StoreTypePEM, auth.StoreTypePKCS12, auth.StoreTypeJKS},
			func(t string) bool { return strings.EqualFold(v, t) }) {
			return nil, fmt.Errorf("command config: %s=%s: only PEM, PKCS12 and JKS are supported", k, v)
		}
	}
	proto := strings.ToUpper(props["security.protocol"])
	var opts []kgo.Opt
	switch proto {
	case "", "PLAINTEXT":
		return nil, nil
	case "SSL", "SASL_SSL":
		cfg, err := clientTLS(props)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	case "SASL_PLAINTEXT":
	default:
		return nil, fmt.Errorf("command config: unknown security.protocol %q", props["security.protocol"])
	}
	if !strings.HasPrefix(proto, "SASL_") {
		return opts, nil
	}
	j, err := auth.ParseJAAS(props["sasl.jaas.config"])
	if err != nil {
		return nil, fmt.Errorf("command config: sasl.jaas.config: %w", err)
	}
	mechanism := strings.ToUpper(props["sasl.mechanism"])
	if mechanism == config.MechanismOAuthBearer {
		m, err := oauthLogin(props, j)
		if err != nil {
			return nil, fmt.Errorf("command config: OAUTHBEARER: %w", err)
		}
		return append(opts, kgo.SASL(m)), nil
	}
	user, pass := j.Options["username"], j.Options["password"]
	if user == "" {
		return nil, errors.New("command config: sasl.jaas.config has no username")
	}
	if strings.EqualFold(j.Options["tokenauth"], "true") {
		m, err := tokenLogin(mechanism, user, pass)
		if err != nil {
			return nil, fmt.Errorf("command config: %w", err)
		}
		return append(opts, kgo.SASL(m)), nil
	}
	m, err := auth.ClientSASL(mechanism, user, pass)
	if err != nil {
		return nil, fmt.Errorf("command config: sasl.mechanism: %w", err)
	}
	opts = append(opts, kgo.SASL(m))
	return opts, nil
}

// tokenLogin is ScramLoginModule's login with tokenauth="true": a delegation token (KIP-48),
// its id as the user name and its HMAC (base64) as the password, over SCRAM only.
func tokenLogin(mechanism, tokenID, hmac string) (sasl.Mechanism, error) {
	a := scram.Auth{User: tokenID, Pass: hmac, IsToken: true}
	switch mechanism {
	case config.MechanismScramSHA256:
		return a.AsSha256Mechanism(), nil
	case config.MechanismScramSHA512:
		return a.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl.jaas.config: tokenauth=\"true\" needs sasl.mechanism SCRAM-SHA-256 or SCRAM-SHA-512, not %q", mechanism)
}

// oauthLogin is the OAUTHBEARER login of Kafka's clients. With no
// sasl.login.callback.handler.class it is the unsecured login (OAuthBearerUnsecuredLoginCallbackHandler):
// an unsigned token made from the unsecuredLogin* options of sasl.jaas.config, fresh for each
// authentication, with its unsecuredLoginExtension_* SASL extensions. With Kafka's
// OAuthBearerLoginCallbackHandler it gets tokens from sasl.oauthbearer.token.endpoint.url
// with the client-credentials grant: the client id, secret and scope from
// sasl.oauthbearer.client.credentials.client.id / .client.secret and sasl.oauthbearer.scope
// (KIP-1139), else the clientId, clientSecret and scope options of sasl.jaas.config; its
// extension_* options are the SASL extensions. A failed token request is retried with
// sasl.login.retry.backoff.ms and sasl.login.retry.backoff.max.ms, and bounded by
// sasl.login.connect.timeout.ms and sasl.login.read.timeout.ms (auth.ClientCredentials).
func oauthLogin(props map[string]string, j auth.JAAS) (sasl.Mechanism, error) {
	handler := strings.TrimSpace(props["sasl.login.callback.handler.class"])
	switch {
	case handler == "":
		if _, err := auth.UnsecuredLoginToken(j.Options, time.Now()); err != nil {
			return nil, err
		}
		ext, err := auth.LoginExtensions(j.Options, "unsecuredLoginExtension_")
		if err != nil {
			return nil, err
		}
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := auth.UnsecuredLoginToken(j.Options, time.Now())
			return oauth.Auth{Token: tok, Extensions: ext}, err
		}), nil
	case auth.IsClientCredentialsLoginHandler(handler):
		ext, err := auth.LoginExtensions(j.Options, "extension_")
		if err != nil {
			return nil, err
		}
		first := func(prop, option string) string {
			if v := props[prop]; v != "" {
				return v
			}
			return j.Options[option]
		}
		cc := &auth.ClientCredentials{
			TokenURL:     props["sasl.oauthbearer.token.endpoint.url"],
			ClientID:     first("sasl.oauthbearer.client.credentials.client.id", "clientId"),
			ClientSecret: first("sasl.oauthbearer.client.credentials.client.secret", "clientSecret"),
			Scope:        first("sasl.oauthbearer.scope", "scope"),
		}
		for prop, d := range map[string]*time.Duration{"sasl.login.retry.backoff.ms": &cc.RetryBackoff,
			"sasl.login.retry.backoff.max.ms": &cc.RetryBackoffMax, "sasl.login.connect.timeout.ms": &cc.ConnectTimeout,
			"sasl.login.read.timeout.ms": &cc.ReadTimeout} {
			v, ok := props[prop]
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s=%s: not a number of milliseconds", prop, v)
			}
			*d = time.Duration(n) * time.Millisecond
		}
		if cc.TokenURL == "" {
			return nil, errors.New("sasl.login.callback.handler.class " + handler + " needs sasl.oauthbearer.token.endpoint.url")
		}
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			tok, err := cc.Token(ctx)
			return oauth.Auth{Token: tok, Extensions: ext}, err
		}), nil
	}
	return nil, fmt.Errorf("sasl.login.callback.handler.class %s is not supported (none: the unsecured login; %s: client credentials)",
		handler, auth.LoginHandlerClientCredentials)
}

func clientTLS(props map[string]string) (*tls.Config, error) {
	alg, set := props["ssl.endpoint.identification.algorithm"]
	cfg, err := auth.ListenerClientTLS(auth.TLSSettings{
		KeystoreType: props["ssl.keystore.type"], KeystoreLocation: props["ssl.keystore.location"], KeystorePassword: props["ssl.keystore.password"],
		KeyPassword:    props["ssl.key.password"],
		TruststoreType: props["ssl.truststore.type"], TruststoreLocation: props["ssl.truststore.location"], TruststorePassword: props["ssl.truststore.password"],
	}, !set || alg != "")
	if err != nil {
		return nil, fmt.Errorf("command config: %w", err)
	}
	return cfg, nil
}
