package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestUserCommands: samsa user create (password from stdin) makes SCRAM credentials a client
// logs in with on a SASL listener; list shows them; delete removes them and the login fails.
func TestUserCommands(t *testing.T) {
	node := testcluster.Start(t,
		"listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
		"connection.failed.authentication.delay.ms=0")
	brokers := "--brokers=" + node.Addr()
	run := func(stdin string, args ...string) string {
		t.Helper()
		stdout, stderr, err := runCLI(t, stdin, append(args, brokers)...)
		if err != nil {
			t.Fatalf("samsa %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
		}
		return stdout
	}
	login := func() error {
		return saslLogin(t, node.Server().ListenerAddr("SASL_PLAINTEXT"), scram.Auth{User: "alice", Pass: "s3cret"}.AsSha512Mechanism())
	}
	out := run("s3cret\n", "user", "create", "alice", "--password-stdin", "--iterations", "4096")
	if !strings.Contains(out, "SCRAM-SHA-512 credential set") {
		t.Fatalf("user create:\n%s", out)
	}
	out = run("", "user", "list")
	if !strings.Contains(out, "alice  SCRAM-SHA-256  4096") || !strings.Contains(out, "alice  SCRAM-SHA-512  4096") {
		t.Fatalf("user list:\n%s", out)
	}
	if err := login(); err != nil {
		t.Fatalf("login after create: %v", err)
	}
	// The CLI itself on the SASL listener, with Kafka's client properties (--command-config).
	props := filepath.Join(t.TempDir(), "client.properties")
	writeProps := func(pass string) {
		text := "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n" +
			`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="` + pass + `";` + "\n"
		if err := os.WriteFile(props, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sasl := "--brokers=" + node.Server().ListenerAddr("SASL_PLAINTEXT")
	writeProps("s3cret")
	if out, stderr, err := runCLI(t, "", "user", "list", sasl, "--command-config", props); err != nil || !strings.Contains(out, "alice") {
		t.Fatalf("user list over SASL: %v %q %q", err, out, stderr)
	}
	writeProps("wrong")
	if _, _, err := runCLI(t, "", "user", "list", sasl, "--command-config", props); err == nil {
		t.Fatal("user list over SASL with a wrong password succeeded")
	}
	run("", "user", "delete", "alice")
	if err := login(); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("login after delete: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if _, stderr, err := runCLI(t, "", "user", "list", "alice", brokers); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("list of a deleted user: %v %q", err, stderr)
	}
	if _, stderr, err := runCLI(t, "", "user", "create", "bob", "--password", "x", "--iterations", "10", brokers); err == nil {
		t.Fatalf("10 iterations accepted (stderr %q)", stderr)
	}
}
