package server

import (
	"os"
	"path/filepath"
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

// TestAddScram parses --add-scram values as kafka-storage takes them, and checks the start
// errors of a SCRAM controller listener: no bootstrapped credential for the nodes' login, or
// another password than the bootstrapped one.
func TestAddScram(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		wantErr string
	}{
		{"SCRAM-SHA-256=[name=alice,password=alice-secret]", ""},
		{`SCRAM-SHA-512=[name=alice,password="alice-secret",iterations=8192]`, ""},
		{"SCRAM-SHA-256=[name=alice,salt=c2FsdA==,saltedpassword=AAAA,iterations=4096]", ""},
		{"SCRAM-SHA-1=[name=alice,password=x]", "want SCRAM-SHA-256"},
		{"SCRAM-SHA-256=name=alice,password=x", "[...]"},
		{"SCRAM-SHA-256=[password=x]", "name is required"},
		{"SCRAM-SHA-256=[name=alice]", "password is required"},
		{"SCRAM-SHA-256=[name=alice,password=x,iterations=100]", "iterations must be between 4096 and 16384"},
		{"SCRAM-SHA-256=[name=alice,saltedpassword=AAAA]", "needs its salt"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			c, err := ParseAddScram(tc.arg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Name != "alice" || len(c.StoredKey) == 0 || len(c.Salt) == 0 || c.Iterations < 4096 {
				t.Fatalf("%+v, %v", c, err)
			}
		})
	}

	dir := t.TempDir()
	cfg, err := config.LoadServer(map[string]string{
		"listeners":                      "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
		"listener.name.controller.sasl.enabled.mechanisms":        "SCRAM-SHA-256",
		"sasl.mechanism.controller.protocol":                      "SCRAM-SHA-256",
		"listener.name.controller.scram-sha-256.sasl.jaas.config": `org.apache.kafka.common.security.scram.ScramLoginModule required username="controller" password="s3cret";`,
		"log.dirs": dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		addScram []string // nil: not formatted with any
		wantErr  string
	}{
		{"not bootstrapped", nil, "--add-scram 'SCRAM-SHA-256=[name=controller,password=...]'"},
		{"another mechanism bootstrapped", []string{"SCRAM-SHA-512=[name=controller,password=s3cret]"}, "must be bootstrapped"},
		{"another password bootstrapped", []string{"SCRAM-SHA-256=[name=controller,password=other]"}, "is not the one bootstrapped"},
		{"bootstrapped", []string{"SCRAM-SHA-256=[name=alice,password=a]", "SCRAM-SHA-256=[name=controller,password=s3cret]"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, bootstrapScramFile))
			for _, f := range []string{MetaPropertiesFile} {
				os.Remove(filepath.Join(dir, f))
			}
			if tc.addScram != nil {
				if _, err := FormatWith(cfg, FormatOptions{ClusterID: RandomUUID(), AddScram: tc.addScram}); err != nil {
					t.Fatal(err)
				}
			}
			_, client, err := controllerSASL(cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || client.Name() != "SCRAM-SHA-256" {
				t.Fatalf("%v, %v", client, err)
			}
		})
	}
}
