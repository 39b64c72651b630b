package clustertest

import (
	"context"
	"crypto/tls"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/auth/authtest"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestSecuredInterBrokerListener: two nodes whose inter-broker listener is SASL_SSL with
// mutual TLS (ssl.client.auth=required) and PLAIN: an acks=all write to an RF=2 topic with
// min.insync.replicas=2 is acknowledged only once the follower has fetched it, which its
// replica fetcher does over TLS with the broker's certificate and its PLAIN login.
func TestSecuredInterBrokerListener(t *testing.T) {
	_, tlsSettings := tlsFiles(t)
	c := testcluster.StartClusterListeners(t, 2, []string{"SASL_SSL"}, append(tlsSettings,
		"inter.broker.listener.name=SASL_SSL",
		"listener.name.sasl_ssl.ssl.client.auth=required",
		"sasl.enabled.mechanisms=PLAIN",
		"sasl.mechanism.inter.broker.protocol=PLAIN",
		`listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret";`,
		"min.insync.replicas=2",
	)...)
	ctx := ctxT(t)
	adm := adminFor(t, c.Addrs()[0])
	if _, err := adm.CreateTopic(ctx, 2, 2, nil, "secured"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("secured"), kgo.RecordRetries(20), kgo.ProduceRequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range 20 {
		if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d with min.insync.replicas=2: %v", i, err)
		}
	}
}

// TestPKCS12InterBrokerListener: two nodes whose listeners' key and trust stores are PKCS12
// files with passwords (written by openssl and keytool, as Kafka's users make them; by
// go-pkcs12 where the tools are missing), mutual TLS required on the SSL inter-broker
// listener: acks=all with min.insync.replicas=2 is acknowledged, so the follower fetched over
// TLS presenting the PKCS12 key store's certificate.
func TestPKCS12InterBrokerListener(t *testing.T) {
	ca, err := authtest.NewCA("samsa test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := ca.Issue("broker", "", "127.0.0.1")
	ks, ts, err := ca.WritePKCS12WithTools(t.TempDir(), "broker", srv, "store-secret")
	if errors.Is(err, exec.ErrNotFound) {
		ks, ts, err = ca.WritePKCS12(t.TempDir(), "broker", srv, "store-secret")
	}
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.StartClusterListeners(t, 2, []string{"SSL"},
		"inter.broker.listener.name=SSL",
		"ssl.keystore.type=PKCS12", "ssl.keystore.location="+ks, "ssl.keystore.password=store-secret",
		"ssl.truststore.type=PKCS12", "ssl.truststore.location="+ts, "ssl.truststore.password=store-secret",
		"listener.name.ssl.ssl.client.auth=required",
		"min.insync.replicas=2",
	)
	ctx := ctxT(t)
	if _, err := adminFor(t, c.Addrs()[0]).CreateTopic(ctx, 1, 2, nil, "p12"); err != nil {
		t.Fatal(err)
	}
	alice, _ := ca.Issue("alice", "")
	kp, _ := alice.KeyPair()
	cl := newTestClient(t, kgo.SeedBrokers(listenerAddrs(c, "SSL")...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20),
		kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{kp}}))
	if err := produceN(t, cl, "p12", "v", 10); err != nil {
		t.Fatalf("acks=all produce with min.insync.replicas=2 over PKCS12-configured TLS: %v", err)
	}
}
