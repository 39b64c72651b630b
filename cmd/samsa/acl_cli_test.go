package main

import (
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestACLCommands: samsa acl create makes the ACLs kafka-acls --add would, list shows them
// (filtered by resource), delete removes those matching and prints them.
func TestACLCommands(t *testing.T) {
	node := testcluster.Start(t,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:ANONYMOUS")
	brokers := "--brokers=" + node.Addr()
	run := func(args ...string) string {
		t.Helper()
		return mustRunCLI(t, append(args, brokers)...)
	}
	run("acl", "create", "--allow-principal", "User:alice", "--operation", "Read,Describe", "--topic", "t")
	run("acl", "create", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "Write", "--topic", "orders-", "--resource-pattern-type", "prefixed")
	run("acl", "create", "--allow-principal", "User:alice", "--operation", "Read", "--group", "g")
	out := run("acl", "list")
	for _, want := range []string{
		"TOPIC  t        LITERAL   User:alice  *         READ       ALLOW",
		"TOPIC  t        LITERAL   User:alice  *         DESCRIBE   ALLOW",
		"TOPIC  orders-  PREFIXED  User:bob    10.0.0.1  WRITE      DENY",
		"GROUP  g        LITERAL   User:alice  *         READ       ALLOW",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("acl list: no %q in\n%s", want, out)
		}
	}
	if out := run("acl", "list", "--group", "g"); strings.Contains(out, "TOPIC") || !strings.Contains(out, "GROUP") {
		t.Errorf("acl list --group g:\n%s", out)
	}
	out = run("acl", "delete", "--topic", "t", "--resource-pattern-type", "literal")
	if strings.Count(out, "User:alice") != 2 {
		t.Errorf("acl delete --topic t:\n%s", out)
	}
	if out := run("acl", "list"); strings.Contains(out, "TOPIC  t ") || !strings.Contains(out, "orders-") {
		t.Errorf("acl list after delete:\n%s", out)
	}
	if _, _, err := runCLI(t, "", "acl", "create", "--operation", "Read", "--topic", "t", brokers); err == nil || !strings.Contains(err.Error(), "principal") {
		t.Errorf("acl create without a principal: %v", err)
	}
}
