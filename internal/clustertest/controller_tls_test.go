package clustertest

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// describeQuorumOver sends DescribeQuorum to the controller listener at addr with the client
// options and returns its top-level error (or the request's).
func describeQuorumOver(t *testing.T, addr string, opts ...kgo.Opt) error {
	t.Helper()
	cl := newTestClient(t, append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0)}, opts...)...)
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctxT(t), req) // the listener itself (no Metadata there)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.(*kmsg.DescribeQuorumResponse).ErrorCode)
}

// TestSSLControllerListener: three nodes whose controller listener is SSL with mutual TLS
// (Raft, the brokers' registrations and heartbeats, forwarded requests), the standard
// authorizer and the nodes' certificate principal a super user: the cluster forms, a topic
// created through a broker (forwarded) is replicated, a broker-only node joins; on the
// controller listener a client
// without TLS is not served, one with another principal of the same CA is refused
// CLUSTER_AUTHORIZATION_FAILED, the nodes' own is served; the active controller killed, the
// others elect a leader over TLS and metadata changes go on.
func TestSSLControllerListener(t *testing.T) {
	ca, tlsSettings := tlsFiles(t)
	settings := append(tlsSettings,
		"listener.security.protocol.map=CONTROLLER:SSL,PLAINTEXT:PLAINTEXT",
		"listener.name.controller.ssl.client.auth=required",
		standardAuthorizer,
		// The nodes' certificate; User:ANONYMOUS for this test's PLAINTEXT clients.
		"super.users=User:CN=broker;User:ANONYMOUS",
	)
	c := testcluster.StartCluster(t, 3, settings...)
	createReplicated(t, c, "over-tls", 1)
	// A broker-only node joins: it registers over TLS, and its Raft non-voter (on a port of
	// its own, with the controller listener's TLS) follows the metadata log (AddBroker waits
	// until every node's image lists every broker).
	c.AddBroker(settings...)

	addr := c.ControllerAddr(0)
	if err := describeQuorumOver(t, addr); err == nil {
		t.Error("DescribeQuorum without TLS on the SSL controller listener was answered")
	}
	certFor := func(cn string) kgo.Opt {
		is, err := ca.Issue(cn, "")
		if err != nil {
			t.Fatal(err)
		}
		kp, err := is.KeyPair()
		if err != nil {
			t.Fatal(err)
		}
		return kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{kp}})
	}
	if err := describeQuorumOver(t, addr, certFor("mallory")); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("DescribeQuorum as User:CN=mallory: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	if err := describeQuorumOver(t, addr, certFor("broker")); err != nil {
		t.Errorf("DescribeQuorum as the nodes' User:CN=broker: %v", err)
	}

	killControllerAndCreateTopic(t, c)
}
