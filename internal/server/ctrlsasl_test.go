package server

import (
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/config"
)

// TestControllerSASLSettings: the start errors of a SASL controller listener's logins, and
// what a good one builds (the Raft login, the listener's users, the authorizer).
func TestControllerSASLSettings(t *testing.T) {
	const jaas = `org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="s3cret" user_controller="s3cret" user_alice="a";`
	base := map[string]string{
		"listeners":                      "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
		"listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
		"sasl.mechanism.controller.protocol":               "PLAIN",
	}
	for _, tc := range []struct {
		name    string
		props   map[string]string
		wantErr string
	}{
		{"no JAAS", nil, "set username and password in listener.name.controller.plain.sasl.jaas.config"},
		{"no login", map[string]string{"listener.name.controller.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required user_controller="s3cret";`}, "no username and password"},
		{"login not among the users", map[string]string{"listener.name.controller.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="s3cret" user_alice="a";`}, `needs user_controller="<its password>"`},
		{"password differs from the user's", map[string]string{"listener.name.controller.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="other" user_controller="s3cret";`}, "user_controller"},
		{"good", map[string]string{"listener.name.controller.plain.sasl.jaas.config": jaas}, ""},
		{"good, with an authorizer", map[string]string{"listener.name.controller.plain.sasl.jaas.config": jaas,
			"authorizer.class.name": config.StandardAuthorizer, "super.users": "User:controller"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			props := map[string]string{}
			for k, v := range base {
				props[k] = v
			}
			for k, v := range tc.props {
				props[k] = v
			}
			cfg, err := config.LoadServer(props)
			if err != nil {
				t.Fatal(err)
			}
			rs, client, err := controllerSASL(cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if client == nil || client.Name() != config.MechanismPlain {
				t.Errorf("controller client's mechanism %v, want PLAIN", client)
			}
			if rs.Username != "controller" || rs.Password != "s3cret" || rs.PlainUsers["alice"] != "a" {
				t.Errorf("Raft login %q/%q, users %v", rs.Username, rs.Password, rs.PlainUsers)
			}
			if wantAuthz := tc.props["authorizer.class.name"] != ""; (rs.Authorizer != nil) != wantAuthz ||
				(wantAuthz && !rs.Authorizer.SuperUsers["User:controller"]) {
				t.Errorf("authorizer %+v, want one: %v", rs.Authorizer, wantAuthz)
			}
		})
	}
}
