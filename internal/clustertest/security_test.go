package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
