package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestQuotaCommands: samsa quota set of a user, the default client id, a user's client id and
// an ip; list shows them (all, or filtered, strict); the broker's refusal is the command's
// error; delete of one key and of every key; the commands over SASL with --command-config.
func TestQuotaCommands(t *testing.T) {
	node := testcluster.Start(t,
		"listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"sasl.enabled.mechanisms=SCRAM-SHA-512")
	brokers := "--brokers=" + node.Addr()
	run := func(args ...string) string { t.Helper(); return mustRunCLI(t, append(args, brokers)...) }

	out := run("quota", "set", "--user", "alice", "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")
	if !strings.Contains(out, "quota producer_byte_rate of user=alice set to 1048576") {
		t.Fatalf("quota set:\n%s", out)
	}
	run("quota", "set", "--client-id-default", "--add-config", "request_percentage=12.5")
	run("quota", "set", "--user", "alice", "--client-id", "app1", "--add-config", "producer_byte_rate=10")
	run("quota", "set", "--ip", "127.0.0.1", "--add-config", "connection_creation_rate=10")
	lines := func(out string) string {
		var ls []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			ls = append(ls, strings.Join(strings.Fields(l), " "))
		}
		return strings.Join(ls, "; ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "client-id=<default> request_percentage 12.5; ip=127.0.0.1 connection_creation_rate 10; " +
			"user=alice consumer_byte_rate 2097152; user=alice producer_byte_rate 1048576; user=alice,client-id=app1 producer_byte_rate 10"},
		{[]string{"--user", "alice"}, "user=alice consumer_byte_rate 2097152; user=alice producer_byte_rate 1048576; user=alice,client-id=app1 producer_byte_rate 10"},
		{[]string{"--user", "alice", "--strict"}, "user=alice consumer_byte_rate 2097152; user=alice producer_byte_rate 1048576"},
		{[]string{"--client-id-default"}, "client-id=<default> request_percentage 12.5"},
	} {
		if got := lines(run(append([]string{"quota", "list"}, tc.args...)...)); got != tc.want {
			t.Errorf("quota list %v:\n got %s\nwant %s", tc.args, got, tc.want)
		}
	}
	_, _, err := runCLI(t, "", "quota", "set", "--user", "bob", "--add-config", "producer_byte_rate=1.5", brokers)
	if err == nil || !strings.Contains(err.Error(), "producer_byte_rate cannot be a fractional value.") {
		t.Errorf("a fractional byte rate: %v", err)
	}
	if _, _, err := runCLI(t, "", "quota", "set", "--add-config", "producer_byte_rate=1", brokers); err == nil {
		t.Errorf("quota set without an entity succeeded")
	}

	out = run("quota", "delete", "--user", "alice", "--delete-config", "producer_byte_rate")
	if !strings.Contains(out, "quota producer_byte_rate of user=alice deleted") {
		t.Fatalf("quota delete:\n%s", out)
	}
	run("quota", "delete", "--user", "alice", "--client-id", "app1")
	if got := lines(run("quota", "list", "--user", "alice")); got != "user=alice consumer_byte_rate 2097152" {
		t.Errorf("after the deletions: %s", got)
	}
	if _, _, err := runCLI(t, "", "quota", "delete", "--user", "nobody", brokers); err == nil || !strings.Contains(err.Error(), "has none") {
		t.Errorf("delete of an entity without quotas: %v", err)
	}

	// Over SASL with Kafka's client properties.
	mustRunCLI(t, "user", "create", "admin", "--password", "admin-secret", "--mechanism", "SCRAM-SHA-512", brokers)
	props := filepath.Join(t.TempDir(), "client.properties")
	text := "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n" +
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";` + "\n"
	if err := os.WriteFile(props, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	sasl := "--brokers=" + node.Server().ListenerAddr("SASL_PLAINTEXT")
	mustRunCLI(t, "quota", "set", "--ip-default", "--add-config", "connection_creation_rate=100", sasl, "--command-config", props)
	if out := mustRunCLI(t, "quota", "list", "--ip-default", sasl, "--command-config", props); !strings.Contains(out, "ip=<default>") {
		t.Errorf("quota list over SASL:\n%s", out)
	}
}
