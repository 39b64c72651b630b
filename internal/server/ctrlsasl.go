package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
)

// controllerSASL returns the SASL settings of a SASL controller listener (SASL_PLAINTEXT,
// SASL_SSL; config.checkControllerSASL): the Raft connections' (controller.RaftSASL: this
// node's login, the listener's PLAIN users, the authorizer that admits principals with
// CLUSTER_ACTION) and the controller client's login (registration, heartbeats, forwarding),
// both with sasl.mechanism.controller.protocol and the username and password of the
// listener's <mechanism>.sasl.jaas.config, as Kafka's nodes log in to their controllers. Nil
// and nil for PLAINTEXT and SSL. A broker-only node, whose Raft transport listens on a port of
// its own, accepts Raft connections with the same settings.
func controllerSASL(cfg *config.Server) (*controller.RaftSASL, sasl.Mechanism, error) {
	if !config.ProtocolSASL(cfg.ControllerProtocol) {
		return nil, nil, nil
	}
	l := cfg.ControllerListener
	mechs, err := cfg.Mechanisms(l)
	if err != nil {
		return nil, nil, err
	}
	mech, _ := cfg.Value("sasl.mechanism.controller.protocol")
	user, pass, err := listenerLogin(cfg, "controller listener", l, mech)
	if err != nil {
		return nil, nil, err
	}
	client, err := auth.ClientSASL(mech, user, pass)
	if err != nil {
		return nil, nil, fmt.Errorf("controller listener %s: %w", l, err)
	}
	rs := &controller.RaftSASL{
		Mechanisms: mechs, Mechanism: mech, Username: user, Password: pass,
		FailureDelay: time.Duration(cfg.Int64("connection.failed.authentication.delay.ms")) * time.Millisecond,
	}
	if text := cfg.JAASConfig(l, config.MechanismPlain); text != "" {
		j, err := auth.ParseJAAS(text)
		if err != nil {
			return nil, nil, fmt.Errorf("controller listener %s: plain.sasl.jaas.config: %w", l, err)
		}
		rs.PlainUsers = j.PlainUsers()
	}
	if auth.ScramMechanism(mech) {
		creds, err := readBootstrapScram(cfg)
		if err != nil {
			return nil, nil, err
		}
		if err := checkBootstrapLogin(cfg, creds, mech, user, pass); err != nil {
			return nil, nil, err
		}
	}
	if mech == config.MechanismPlain && rs.PlainUsers[user] != pass {
		return nil, nil, fmt.Errorf("controller listener %s: listener.name.%s.plain.sasl.jaas.config: the nodes log in as %q, which needs user_%s=\"<its password>\" among the listener's users",
			l, strings.ToLower(l), user, user)
	}
	if cfg.AuthorizerEnabled() {
		superUsers, _ := cfg.Value("super.users")
		rs.Authorizer = &acl.Authorizer{SuperUsers: acl.ParseSuperUsers(superUsers), AllowEveryoneIfNoACL: cfg.Bool("allow.everyone.if.no.acl.found")}
	}
	return rs, client, nil
}

// listenerLogin returns the username and password of the node's own login on a listener: the
// username and password options of its <mechanism>.sasl.jaas.config. what names the listener's
// role in errors.
func listenerLogin(cfg *config.Server, what, listener, mech string) (user, pass string, err error) {
	text := cfg.JAASConfig(listener, mech)
	if text == "" {
		return "", "", fmt.Errorf("%s %s: the broker logs in with %s: set username and password in listener.name.%s.%s.sasl.jaas.config",
			what, listener, mech, strings.ToLower(listener), strings.ToLower(mech))
	}
	j, err := auth.ParseJAAS(text)
	if err != nil {
		return "", "", fmt.Errorf("%s %s: %w", what, listener, err)
	}
	user, pass = j.Options["username"], j.Options["password"]
	if user == "" || pass == "" {
		return "", "", fmt.Errorf("%s %s: listener.name.%s.%s.sasl.jaas.config has no username and password for the broker's own login",
			what, listener, strings.ToLower(listener), strings.ToLower(mech))
	}
	return user, pass, nil
}
