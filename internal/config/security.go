package config

import (
	"fmt"
	"slices"
	"strings"
)

// SecurityDefs are the TLS and SASL settings Samsa serves, with Kafka's names. Each may be
// given broker-wide or for one listener as listener.name.<listener>.<setting> (the listener
// name in lower case, as Kafka writes it), which overrides the broker-wide value. They are read
// at start; a PEM file named by a location is read again when it changes (internal/auth).
var SecurityDefs = []Def{
	{Name: "ssl.keystore.type", Type: TypeString, Default: "PEM", OneOf: []string{"PEM", "PKCS12", "JKS"}, Doc: "format of the key store: PEM (Samsa's default; a JKS file left at it is read as JKS, Kafka's default), PKCS12 or JKS (its first private key entry, the key protected by ssl.keystore.password)"},
	{Name: "ssl.keystore.location", Type: TypeString, NoDefault: true, Doc: "the key store file: PEM with the listener's certificate chain and its private key (PKCS#8, PKCS#1 or EC; an encrypted PKCS#8 key with ssl.key.password), PKCS12 or JKS"},
	{Name: "ssl.keystore.password", Type: TypePassword, NoDefault: true, Doc: "password of a PKCS12 or JKS key store (and of its key, unless ssl.key.password is set)"},
	{Name: "ssl.key.password", Type: TypePassword, NoDefault: true, Doc: "password of the private key: an encrypted PKCS#8 PEM key (BEGIN ENCRYPTED PRIVATE KEY, in ssl.keystore.location or ssl.keystore.key), or a JKS key entry with a password of its own; a PKCS12 store's key has the store's password (keytool allows no other)"},
	{Name: "ssl.keystore.certificate.chain", Type: TypePassword, NoDefault: true, Doc: "the certificate chain in PEM, instead of ssl.keystore.location"},
	{Name: "ssl.keystore.key", Type: TypePassword, NoDefault: true, Doc: "the private key in PEM (encrypted PKCS#8 with ssl.key.password, or unencrypted), with ssl.keystore.certificate.chain"},
	{Name: "ssl.truststore.type", Type: TypeString, Default: "PEM", OneOf: []string{"PEM", "PKCS12", "JKS"}, Doc: "format of the trust store: PEM (Samsa's default; a JKS file left at it is read as JKS, Kafka's default), PKCS12 or JKS (trusted certificate entries, as keytool writes them)"},
	{Name: "ssl.truststore.location", Type: TypeString, NoDefault: true, Doc: "the trust store file (PEM, PKCS12 or JKS) of the CA certificates that client certificates are checked against"},
	{Name: "ssl.truststore.password", Type: TypePassword, NoDefault: true, Doc: "password of a PKCS12 or JKS trust store"},
	{Name: "ssl.truststore.certificates", Type: TypePassword, NoDefault: true, Doc: "the trusted CA certificates in PEM, instead of ssl.truststore.location"},
	{Name: "ssl.client.auth", Type: TypeString, Default: "none", OneOf: []string{"none", "requested", "required"}, Doc: "whether clients must present a certificate (mutual TLS); the principal is then User:<the certificate's subject> (see ssl.principal.mapping.rules)"},
	{Name: "ssl.principal.mapping.rules", Type: TypeString, Default: "DEFAULT", Doc: "how the principal of a client certificate is named from its subject's distinguished name (RFC 2253, as Java writes it): rules separated by commas, DEFAULT (the name itself) or RULE:pattern/replacement/[LU], the first that applies wins; no rule applying fails the authentication"},
	{Name: "ssl.enabled.protocols", Type: TypeList, Default: "TLSv1.2,TLSv1.3", OneOf: []string{"TLSv1.2", "TLSv1.3"}, Doc: "TLS versions accepted (TLS 1.2 and 1.3 only)"},
	{Name: "ssl.protocol", Type: TypeString, Default: "TLSv1.3", OneOf: []string{"TLS", "TLSv1.2", "TLSv1.3"}, Doc: "accepted for Kafka compatibility; the versions served are ssl.enabled.protocols"},
	{Name: "sasl.enabled.mechanisms", Type: TypeList, Default: "GSSAPI", Doc: "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (Kafka's default GSSAPI is not supported and must be replaced)"},
	{Name: "connections.max.reauth.ms", Type: TypeLong, Default: "0", Min: 0, MinSet: true, Doc: "the longest a SASL session lasts before the client must re-authenticate (KIP-368), also as listener.name.<l>.<mechanism>.connections.max.reauth.ms; 0: sessions do not expire, but an OAUTHBEARER session still ends with its token"},
	{Name: "sasl.server.callback.handler.class", Type: TypeString, Default: "", OneOf: []string{"", OAuthBearerValidatorClass, OAuthBearerSecuredValidatorClass, OAuthBearerUnsecuredValidatorClass}, Doc: "as listener.name.<l>.oauthbearer.sasl.server.callback.handler.class: " + OAuthBearerValidatorClass + " validates signed JWTs against sasl.oauthbearer.jwks.endpoint.url; unset (or the unsecured handler) accepts unsigned tokens as Kafka's OAuthBearerUnsecuredValidatorCallbackHandler"},
	{Name: "sasl.oauthbearer.jwks.endpoint.url", Type: TypeString, NoDefault: true, Doc: "the JWKS (https://, http:// or file:) whose keys verify OAUTHBEARER tokens"},
	{Name: "sasl.oauthbearer.jwks.endpoint.refresh.ms", Type: TypeLong, Default: "3600000", Min: 1, MinSet: true, Doc: "how often the JWKS is fetched again (also at once, with backoff, for a token signed by an unknown key id)"},
	{Name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", Type: TypeLong, Default: "100", Min: 0, MinSet: true, Doc: "the first wait between JWKS fetches caused by unknown key ids"},
	{Name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", Type: TypeLong, Default: "10000", Min: 0, MinSet: true, Doc: "the longest wait between JWKS fetches caused by unknown key ids"},
	{Name: "sasl.oauthbearer.expected.audience", Type: TypeList, NoDefault: true, Doc: "audiences of which a token's aud must name one (unset: not checked)"},
	{Name: "sasl.oauthbearer.expected.issuer", Type: TypeString, NoDefault: true, Doc: "the iss a token must have (unset: not checked)"},
	{Name: "sasl.oauthbearer.sub.claim.name", Type: TypeString, Default: "sub", Doc: "the claim that names the token's principal (User:<value>)"},
	{Name: "sasl.oauthbearer.scope.claim.name", Type: TypeString, Default: "scope", Doc: "the claim that holds the token's scopes"},
	{Name: "sasl.oauthbearer.clock.skew.seconds", Type: TypeInt, Default: "30", Min: 0, MinSet: true, Doc: "how far the broker's clock and the issuer's may differ when exp, nbf and iat are checked"},
	{Name: "connection.failed.authentication.delay.ms", Type: TypeInt, Default: "100", Min: 0, MinSet: true, Doc: "delay of the answer to a failed authentication, against brute force"},
	{Name: "sasl.mechanism.inter.broker.protocol", Type: TypeString, Default: "GSSAPI", Doc: "SASL mechanism of the broker's own clients on a SASL inter-broker listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), logging in with the username and password of that listener's <mechanism>.sasl.jaas.config"},
	{Name: "sasl.mechanism.controller.protocol", Type: TypeString, Default: "GSSAPI", Doc: "SASL mechanism of a SASL controller listener's clients (the Raft connections between nodes, the brokers' registrations, heartbeats and forwarded requests): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (its credentials bootstrapped with samsa storage format --add-scram, as Kafka needs), logging in with the username and password of the controller listener's <mechanism>.sasl.jaas.config"},
	{Name: "authorizer.class.name", Type: TypeString, Default: "", OneOf: []string{"", StandardAuthorizer}, Doc: "turns authorization with ACLs on: Kafka's " + StandardAuthorizer + " (the only authorizer served; its rules in internal/acl); empty, every principal may do everything"},
	{Name: "super.users", Type: TypeString, Default: "", Doc: "principals separated by semicolons (User:admin;User:CN=broker) allowed everything by the authorizer"},
	{Name: "allow.everyone.if.no.acl.found", Type: TypeBoolean, Default: "false", Doc: "with an authorizer, whether a resource without any ACL is open to every principal"},
	{Name: "delegation.token.secret.key", Type: TypePassword, NoDefault: true, Doc: "the secret key of delegation tokens (KIP-48): a token's HMAC, its SCRAM password, is HMAC-SHA512 of its id keyed by it; the same on every node. Unset: delegation tokens are disabled (their APIs answer DELEGATION_TOKEN_AUTH_DISABLED)"},
	{Name: "delegation.token.master.key", Type: TypePassword, NoDefault: true, Doc: "deprecated alias of delegation.token.secret.key, used when that is unset"},
	{Name: "delegation.token.max.lifetime.ms", Type: TypeLong, Default: "604800000", Min: 1, MinSet: true, Doc: "the longest a delegation token lives, renewals included; a token's requested max lifetime is capped by it"},
	{Name: "delegation.token.expiry.time.ms", Type: TypeLong, Default: "86400000", Min: 1, MinSet: true, Doc: "how long a new or renewed delegation token lives before it must be renewed (when the renewal asks for no period)"},
	{Name: "delegation.token.expiry.check.interval.ms", Type: TypeLong, Default: "3600000", Min: 1, MinSet: true, Doc: "how often the active controller removes expired delegation tokens"},
	{Name: "ssl.endpoint.identification.algorithm", Type: TypeString, Default: "https", Doc: "the broker's own TLS clients (inter-broker) check the host name of the certificates they are shown (https), or only their chain (empty)"},
}

// brokerWideOnly are the SecurityDefs that are not given per listener.
var brokerWideOnly = map[string]bool{
	"connection.failed.authentication.delay.ms": true,
	"sasl.mechanism.inter.broker.protocol":      true,
	"sasl.mechanism.controller.protocol":        true,
	"authorizer.class.name":                     true,
	"super.users":                               true,
	"allow.everyone.if.no.acl.found":            true,

	"delegation.token.secret.key":               true,
	"delegation.token.master.key":               true,
	"delegation.token.max.lifetime.ms":          true,
	"delegation.token.expiry.time.ms":           true,
	"delegation.token.expiry.check.interval.ms": true,
}

// mechanismScoped are the SecurityDefs that may also be given for one mechanism of a listener,
// as Kafka names them: listener.name.<listener>.<mechanism>.<setting>.
var mechanismScoped = map[string]bool{
	"connections.max.reauth.ms":                           true,
	"sasl.server.callback.handler.class":                  true,
	"sasl.oauthbearer.jwks.endpoint.url":                  true,
	"sasl.oauthbearer.jwks.endpoint.refresh.ms":           true,
	"sasl.oauthbearer.jwks.endpoint.retry.backoff.ms":     true,
	"sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": true,
	"sasl.oauthbearer.expected.audience":                  true,
	"sasl.oauthbearer.expected.issuer":                    true,
	"sasl.oauthbearer.sub.claim.name":                     true,
	"sasl.oauthbearer.scope.claim.name":                   true,
	"sasl.oauthbearer.clock.skew.seconds":                 true,
}

// Kafka's server callback handlers of OAUTHBEARER: the validating one (JWTs signed by a key of
// the JWKS; its older name before Kafka 3.4 was in the secured package) and the unsecured one
// (unsigned tokens, Kafka's default).
const (
	OAuthBearerValidatorClass          = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
	OAuthBearerSecuredValidatorClass   = "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler"
	OAuthBearerUnsecuredValidatorClass = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
)

// StandardAuthorizer is the authorizer.class.name Samsa serves: Kafka's KRaft standard
// authorizer, whose rules internal/acl follows.
const StandardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

// AuthorizerEnabled reports whether authorizer.class.name turns authorization on.
func (s *Server) AuthorizerEnabled() bool {
	v, _ := s.Value("authorizer.class.name")
	return v == StandardAuthorizer
}

// DelegationTokenSecret is the secret key of delegation tokens: delegation.token.secret.key,
// else its deprecated alias delegation.token.master.key; "" when tokens are disabled.
func (s *Server) DelegationTokenSecret() string {
	if v, _ := s.Value("delegation.token.secret.key"); v != "" {
		return v
	}
	v, _ := s.Value("delegation.token.master.key")
	return v
}

// SASL mechanisms Samsa serves.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

// ServedMechanisms are the SASL mechanisms Samsa serves.
var ServedMechanisms = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512, MechanismOAuthBearer}

// Security protocols of listener.security.protocol.map.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// ProtocolTLS reports whether a security protocol runs over TLS.
func ProtocolTLS(p string) bool { return p == ProtocolSSL || p == ProtocolSASLSSL }

// ProtocolSASL reports whether a security protocol authenticates with SASL.
func ProtocolSASL(p string) bool { return p == ProtocolSASLPlaintext || p == ProtocolSASLSSL }

const listenerPrefix = "listener.name."

// lookupListenerSetting resolves listener.name.<listener>.<setting> for the settings that may
// be given per listener: the SecurityDefs (but connection.failed.authentication.delay.ms) and
// <mechanism>.sasl.jaas.config of a served mechanism.
func lookupListenerSetting(name string) (*BrokerSetting, bool) {
	rest, ok := strings.CutPrefix(name, listenerPrefix)
	if !ok {
		return nil, false
	}
	_, setting, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, false
	}
	if mech, ok := strings.CutSuffix(setting, ".sasl.jaas.config"); ok {
		for _, m := range ServedMechanisms {
			if strings.EqualFold(mech, m) {
				d := &Def{Name: name, Type: TypePassword, NoDefault: true, Doc: "JAAS configuration of the " + m + " mechanism on this listener (PlainLoginModule user_NAME=\"password\" options for PLAIN; username/password of the broker's own login)"}
				return &BrokerSetting{Def: d, Support: Served, Mode: ModeReadOnly}, true
			}
		}
		return nil, false
	}
	for _, m := range ServedMechanisms {
		if scoped, ok := strings.CutPrefix(setting, strings.ToLower(m)+"."); ok && mechanismScoped[scoped] {
			setting = scoped
			break
		}
	}
	if brokerWideOnly[setting] {
		return nil, false
	}
	if listenerConnectionSettings[setting] {
		d := *ServerDef(setting)
		d.Name = name
		d.Default, d.NoDefault = "", true // the listener has no bound of its own unless given
		d.Min = 1                         // Kafka's ListenerConnectionQuota: > 0
		return &BrokerSetting{Def: &d, Support: Served, Mode: ModeReadOnly}, true
	}
	for i := range SecurityDefs {
		if SecurityDefs[i].Name == setting {
			d := SecurityDefs[i]
			d.Name = name
			return &BrokerSetting{Def: &d, Support: Served, Mode: ModeReadOnly}, true
		}
	}
	return nil, false
}

// ListenerValue returns a security setting's value for one listener: its
// listener.name.<listener>.<name> override, else the broker-wide value (else the default).
func (s *Server) ListenerValue(listener, name string) string {
	if v, ok := s.Explicit[listenerPrefix+strings.ToLower(listener)+"."+name]; ok {
		return v
	}
	v, _ := s.Value(name)
	return v
}

// ListenerHas reports whether a setting is given for the listener or broker-wide.
func (s *Server) ListenerHas(listener, name string) bool {
	if _, ok := s.Explicit[listenerPrefix+strings.ToLower(listener)+"."+name]; ok {
		return true
	}
	_, ok := s.Explicit[name]
	return ok
}

// MechanismValue returns a setting's value for one mechanism of a listener:
// listener.name.<listener>.<mechanism>.<name>, else ListenerValue.
func (s *Server) MechanismValue(listener, mechanism, name string) string {
	if v, ok := s.Explicit[listenerPrefix+strings.ToLower(listener)+"."+strings.ToLower(mechanism)+"."+name]; ok {
		return v
	}
	return s.ListenerValue(listener, name)
}

// JAASConfig returns the listener's <mechanism>.sasl.jaas.config, or "".
func (s *Server) JAASConfig(listener, mechanism string) string {
	return s.Explicit[listenerPrefix+strings.ToLower(listener)+"."+strings.ToLower(mechanism)+".sasl.jaas.config"]
}

// Mechanisms returns the SASL mechanisms enabled on a listener; anything but the served ones
// is an error.
func (s *Server) Mechanisms(listener string) ([]string, error) {
	var out []string
	for _, m := range splitList(s.ListenerValue(listener, "sasl.enabled.mechanisms")) {
		served := false
		for _, sm := range ServedMechanisms {
			served = served || m == sm
		}
		if !served {
			return nil, fmt.Errorf("listener %s: sasl.enabled.mechanisms: %s is not supported in Samsa (supported: %s)",
				listener, m, strings.Join(ServedMechanisms, ", "))
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("listener %s: sasl.enabled.mechanisms is empty", listener)
	}
	return out, nil
}

// checkSecurity checks the listeners' security protocols: the controller listener's
// (checkControllerSecurity), a SASL listener names
// mechanisms Samsa serves, and a SASL inter-broker listener enables
// sasl.mechanism.inter.broker.protocol.
func (s *Server) checkSecurity() error {
	for _, l := range s.Listeners {
		switch l.Protocol {
		case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
		default:
			return fmt.Errorf("listeners: %s uses security protocol %s, which Kafka does not define (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)", l.Name, l.Protocol)
		}
		if l.Protocol == ProtocolPlaintext || l.Name == s.ControllerListener {
			continue
		}
		if ProtocolSASL(l.Protocol) {
			if _, err := s.Mechanisms(l.Name); err != nil {
				return err
			}
		}
	}
	if err := s.checkControllerSecurity(); err != nil {
		return err
	}
	if l, ok := s.InterBrokerListener(); ok && ProtocolSASL(l.Protocol) {
		m, _ := s.Value("sasl.mechanism.inter.broker.protocol")
		if m == MechanismOAuthBearer {
			return fmt.Errorf("sasl.mechanism.inter.broker.protocol=%s: the broker's own clients log in with a username and password (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", m)
		}
		mechs, _ := s.Mechanisms(l.Name)
		if !slices.Contains(mechs, m) {
			return fmt.Errorf("sasl.mechanism.inter.broker.protocol=%s: the inter-broker listener %s enables %s; name one of them", m, l.Name, strings.Join(mechs, ","))
		}
	}
	return nil
}

// checkControllerSecurity accepts a PLAINTEXT controller listener; SSL with mutual TLS
// (ssl.client.auth=required): the Raft connections on it are authenticated by their
// certificates alone, so a controller listener that let any TLS client in would let it speak
// Raft; or SASL_PLAINTEXT / SASL_SSL whose sasl.mechanism.controller.protocol the listener
// enables (PLAIN, or SCRAM, whose credentials must be bootstrapped at format time as Kafka
// needs them: internal/server checks that at start).
func (s *Server) checkControllerSecurity() error {
	switch s.ControllerProtocol {
	case ProtocolPlaintext:
		return nil
	case ProtocolSSL:
		if ca := s.ListenerValue(s.ControllerListener, "ssl.client.auth"); ca != "required" {
			return fmt.Errorf("listener.name.%s.ssl.client.auth=%s: an SSL controller listener needs ssl.client.auth=required (the nodes' Raft connections are authenticated by their certificates)",
				strings.ToLower(s.ControllerListener), ca)
		}
		return nil
	case ProtocolSASLPlaintext, ProtocolSASLSSL:
		return s.checkControllerSASL()
	}
	return fmt.Errorf("the controller listener %s uses %s; Kafka defines PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL", s.ControllerListener, s.ControllerProtocol)
}

// checkControllerSASL checks a SASL controller listener: its enabled mechanisms, and the
// nodes' own mechanism (sasl.mechanism.controller.protocol), which it must enable.
func (s *Server) checkControllerSASL() error {
	mechs, err := s.Mechanisms(s.ControllerListener)
	if err != nil {
		return err
	}
	m, _ := s.Value("sasl.mechanism.controller.protocol")
	switch m {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
	default:
		return fmt.Errorf("sasl.mechanism.controller.protocol=%s: the controller listener %s is %s; the nodes log in to it with a username and password (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
			m, s.ControllerListener, s.ControllerProtocol)
	}
	if !slices.Contains(mechs, m) {
		return fmt.Errorf("sasl.mechanism.controller.protocol=%s: the controller listener %s enables %s; name one of them", m, s.ControllerListener, strings.Join(mechs, ","))
	}
	return nil
}

// InterBrokerListener returns the listener brokers use to reach each other:
// inter.broker.listener.name; else, as Kafka's default security.inter.broker.protocol=PLAINTEXT
// names it, the listener called PLAINTEXT; else the first client listener.
func (s *Server) InterBrokerListener() (Listener, bool) {
	cl := s.ClientListeners()
	name := strings.ToUpper(s.Explicit["inter.broker.listener.name"])
	if name == "" {
		name = ProtocolPlaintext
		if !slices.ContainsFunc(cl, func(l Listener) bool { return l.Name == name }) && len(cl) > 0 {
			name = cl[0].Name
		}
	}
	for _, l := range cl {
		if l.Name == name {
			return l, true
		}
	}
	return Listener{}, false
}
