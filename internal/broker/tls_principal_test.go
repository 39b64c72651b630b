package broker_test

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSSLPrincipalMappingRules: over mutual TLS, ssl.principal.mapping.rules names the
// principal from the client certificate's distinguished name: CN=Alice,O=Samsa tests is
// User:alice (a super user: she creates a topic), CN=Carol,O=Samsa tests is User:carol (no
// ACL: TOPIC_AUTHORIZATION_FAILED), and a certificate no rule applies to is refused (the
// connection closes).
func TestSSLPrincipalMappingRules(t *testing.T) {
	n := startSecNode(t, "SSL://127.0.0.1:0",
		"listener.name.ssl.ssl.client.auth=required",
		`listener.name.ssl.ssl.principal.mapping.rules=RULE:^CN=(.*?),O=Samsa tests$/$1/L`,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:alice")
	addr := n.Server().ListenerAddr("SSL")
	for _, c := range []struct {
		cn, org string
		want    error // of CreateTopic; nil: created
		closed  bool
	}{
		{"Alice", "Samsa tests", nil, false},
		{"Carol", "Samsa tests", kerr.TopicAuthorizationFailed, false},
		{"Mallory", "Elsewhere", nil, true},
	} {
		is, err := n.ca.Issue(c.cn, c.org)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := is.KeyPair()
		if err != nil {
			t.Fatal(err)
		}
		cl := secClient(t, addr, kgo.DialTLSConfig(&tls.Config{RootCAs: n.ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{kp}}),
			kgo.RequestRetries(0))
		_, err = kadm.NewClient(cl).CreateTopic(ctxT(t), 1, 1, nil, "by-"+c.cn)
		switch {
		case c.closed && err == nil:
			t.Errorf("CN=%s,O=%s: no rule applies, yet CreateTopics was answered", c.cn, c.org)
		case c.closed:
			if errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Errorf("CN=%s,O=%s: %v, want the connection closed", c.cn, c.org, err)
			}
		case !errors.Is(err, c.want) && (c.want != nil || err != nil):
			t.Errorf("CN=%s,O=%s: CreateTopic %v, want %v", c.cn, c.org, err, c.want)
		}
	}
}
