package clustertest

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/server"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestSASLControllerListener: three nodes whose controller listener is SASL_SSL with PLAIN
// (Raft's connections log in before they announce the cluster id; the brokers'
// registrations, heartbeats and forwarded requests log in too), the standard authorizer and
// the nodes' login a super user: the cluster forms, a topic created through a broker
// (forwarded) is replicated, a broker-only node joins (its registration and its Raft
// non-voter over SASL_SSL). On the controller listener a client without SASL is not served,
// one with a wrong password fails SASL_AUTHENTICATION_FAILED, a user without CLUSTER_ACTION
// is refused CLUSTER_AUTHORIZATION_FAILED, the nodes' login is served; the active controller
// killed, the others elect a leader over SASL and metadata changes go on.
func TestSASLControllerListener(t *testing.T) {
	ca, tlsSettings := tlsFiles(t)
	settings := append(tlsSettings,
		"listener.security.protocol.map=CONTROLLER:SASL_SSL,PLAINTEXT:PLAINTEXT",
		"listener.name.controller.sasl.enabled.mechanisms=PLAIN",
		"sasl.mechanism.controller.protocol=PLAIN",
		`listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="controller-secret" user_controller="controller-secret" user_mallory="mallory-secret";`,
		standardAuthorizer,
		// The nodes' login; User:ANONYMOUS for this test's PLAINTEXT clients.
		"super.users=User:controller;User:ANONYMOUS",
	)
	c := testcluster.StartCluster(t, 3, settings...)
	createReplicated(t, c, "over-sasl", 1)
	c.AddBroker(settings...)

	addr := c.ControllerAddr(0)
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	login := func(user, pass string) kgo.Opt { return kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()) }
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
		want error // nil: served; errAny: any failure
	}{
		{"no TLS, no SASL", nil, errAny},
		{"TLS without SASL", []kgo.Opt{tlsOpt}, errAny},
		{"wrong password", []kgo.Opt{tlsOpt, login("controller", "wrong")}, kerr.SaslAuthenticationFailed},
		{"no CLUSTER_ACTION", []kgo.Opt{tlsOpt, login("mallory", "mallory-secret")}, kerr.ClusterAuthorizationFailed},
		{"the nodes' login", []kgo.Opt{tlsOpt, login("controller", "controller-secret")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := describeQuorumOver(t, addr, tc.opts...)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("DescribeQuorum: %v", err)
			case tc.want == errAny && err == nil:
				t.Error("DescribeQuorum was answered")
			case tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Errorf("DescribeQuorum: %v, want %v", err, tc.want)
			}
		})
	}

	killControllerAndCreateTopic(t, c)
}

// TestSASLControllerListenerDynamicQuorum: a dynamic quorum (KIP-853) on a SASL_PLAINTEXT
// controller listener with the standard authorizer: a controller formatted
// --no-initial-controllers registers with the active controller (ControllerRegistration over
// SASL) and catches up as an observer (the leader's Raft connections to it log in, admitted by
// an observer whose image is still empty, so as a super user), then a topic created through it
// reaches every node.
func TestSASLControllerListenerDynamicQuorum(t *testing.T) {
	settings := []string{
		"listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"listener.name.controller.sasl.enabled.mechanisms=PLAIN",
		"sasl.mechanism.controller.protocol=PLAIN",
		`listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="controller-secret" user_controller="controller-secret";`,
		standardAuthorizer,
		"super.users=User:controller;User:ANONYMOUS",
	}
	c := testcluster.StartStandalone(t, settings...)
	added := c.AddController(settings...)
	if r, err := adminFor(t, c.Nodes[added].Addr()).CreateTopic(ctxT(t), 1, 2, nil, "dynamic-sasl"); err != nil || r.Err != nil {
		t.Fatalf("CreateTopic through the added controller: %v %v", err, r.Err)
	}
	waitTopicEverywhere(t, c, "dynamic-sasl", 1)
}

// TestSCRAMControllerListener: three nodes whose SASL_PLAINTEXT controller listener logs the
// nodes in with SCRAM-SHA-512, their credential bootstrapped at format time (--add-scram, as
// Kafka needs): the quorum forms on the bootstrapped credential, the first leader commits it
// (DescribeUserScramCredentials lists it), a client with the nodes' login is served on the
// controller listener and one with a wrong password is not; the active controller killed,
// metadata changes go on.
func TestSCRAMControllerListener(t *testing.T) {
	settings := []string{
		"listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"listener.name.controller.sasl.enabled.mechanisms=SCRAM-SHA-512",
		"sasl.mechanism.controller.protocol=SCRAM-SHA-512",
		`listener.name.controller.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="controller" password="controller-secret";`,
		standardAuthorizer,
		"super.users=User:controller;User:ANONYMOUS",
	}
	opts := server.FormatOptions{AddScram: []string{"SCRAM-SHA-512=[name=controller,password=controller-secret]"}}
	c := testcluster.StartClusterFormatted(t, 3, opts, nil, settings...)
	described, err := adminFor(t, c.Addrs()[0]).DescribeUserSCRAMs(ctxT(t), "controller")
	if err != nil || described.Sorted()[0].Err != nil || len(described.Sorted()[0].CredInfos) != 1 {
		t.Fatalf("DescribeUserScramCredentials of the bootstrapped user: %v %+v", err, described)
	}

	addr := c.ControllerAddr(0)
	login := func(pass string) kgo.Opt {
		return kgo.SASL(scram.Auth{User: "controller", Pass: pass}.AsSha512Mechanism())
	}
	if err := describeQuorumOver(t, addr, login("controller-secret")); err != nil {
		t.Errorf("DescribeQuorum with the nodes' SCRAM login: %v", err)
	}
	if err := describeQuorumOver(t, addr, login("wrong")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("DescribeQuorum with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}

	killControllerAndCreateTopic(t, c)
}

// killControllerAndCreateTopic kills the active controller, waits for another to lead, and
// creates a topic through a broker (forwarded to the new leader) that every node then has.
func killControllerAndCreateTopic(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	c.KillNode(activeController(t, c))
	waitQuorumLeader(t, c)
	if r, err := adminFor(t, c.Addrs()[0]).CreateTopic(ctxT(t), 1, 2, nil, "after-kill"); err != nil || r.Err != nil {
		t.Fatalf("CreateTopic after the active controller's death: %v %v", err, r.Err)
	}
	waitTopicEverywhere(t, c, "after-kill", 1)
}

// errAny stands for any error in test tables.
var errAny = errors.New("any error")
