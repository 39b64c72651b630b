package clustertest

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/server"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestBootstrapScramUsers: three nodes formatted with the same --add-scram credentials and no
// PLAIN or anonymous way in (the only SASL mechanisms are SCRAM, the PLAINTEXT listener's
// User:ANONYMOUS has no rights) start as a secured cluster: the brokers replicate over SASL_SSL
// as their bootstrapped user, admin (given as a salted password) creates an RF=3 topic and
// writes with acks=all, and alice (SCRAM-SHA-256) logs in on every broker with her first
// request; a wrong password is refused.
func TestBootstrapScramUsers(t *testing.T) {
	ca, tlsSettings := tlsFiles(t)
	salt := []byte("admin-salt-bytes")
	salted, err := pbkdf2.Key(sha512.New, "admin-secret", salt, 8192, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	format := server.FormatOptions{AddScram: []string{
		"SCRAM-SHA-512=[name=broker,password=broker-secret]",
		"SCRAM-SHA-512=[name=admin,iterations=8192,salt=" + base64.StdEncoding.EncodeToString(salt) +
			",saltedpassword=" + base64.StdEncoding.EncodeToString(salted) + "]",
		`SCRAM-SHA-256=[name=alice,password="alice-secret"]`,
	}}
	c := testcluster.StartClusterFormatted(t, 3, format, []string{"SASL_SSL"}, append(tlsSettings,
		"inter.broker.listener.name=SASL_SSL",
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
		`listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";`,
		standardAuthorizer,
		"super.users=User:broker;User:admin",
		"min.insync.replicas=2",
	)...)
	tlsCfg := kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	addrs := listenerAddrs(c, "SASL_SSL")
	ctx := ctxT(t)

	if _, err := adminFor(t, c.Addrs()[0]).CreateTopic(ctx, 1, 3, nil, "anonymous"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("CreateTopics as User:ANONYMOUS: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// alice's first request on each broker, with no retry, is answered.
	for _, addr := range addrs {
		cl := newTestClient(t, kgo.SeedBrokers(addr), tlsCfg, kgo.RequestRetries(0),
			kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()))
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
			t.Fatalf("alice (SCRAM-SHA-256) on %s: %v", addr, err)
		}
	}
	wrong := newTestClient(t, kgo.SeedBrokers(addrs[0]), tlsCfg, kgo.RequestRetries(0),
		kgo.SASL(scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism()))
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, wrong); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("alice with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}

	// admin's salted password: an RF=3 topic written with acks=all replicates through the
	// brokers' SCRAM logins.
	adminCl := newTestClient(t, kgo.SeedBrokers(addrs...), tlsCfg, scramLogin("admin", "admin-secret"),
		kgo.DefaultProduceTopic("boot-t"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if _, err := kadm.NewClient(adminCl).CreateTopic(ctx, 1, 3, nil, "boot-t"); err != nil {
		t.Fatalf("admin creates boot-t: %v", err)
	}
	if err := adminCl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("admin produces with acks=all: %v", err)
	}
}
