package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
		cl, err := kgo.NewClient(kgo.SeedBrokers(node.Server().ListenerAddr("SASL_PLAINTEXT")), kgo.RequestRetries(0),
			kgo.SASL(scram.Auth{User: "alice", Pass: "s3cret"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Ping(ctx)
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
