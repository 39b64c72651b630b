package broker_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/auth/authtest"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// secNode is a node with a PLAINTEXT listener (for admin calls) and the secured listeners
// named in listeners, with a server certificate for 127.0.0.1 signed by ca.
type secNode struct {
	*testcluster.Node
	ca *authtest.CA
}

func startSecNode(t *testing.T, listeners string, settings ...string) *secNode {
	t.Helper()
	ca, err := authtest.NewCA("samsa test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("broker", "", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	caFile, ks, err := ca.WriteFiles(t.TempDir(), "broker", srv)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{
		"listeners=PLAINTEXT://127.0.0.1:0," + listeners + ",CONTROLLER://127.0.0.1:0",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + ks,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + caFile,
		"connection.failed.authentication.delay.ms=10",
	}
	return &secNode{Node: testcluster.Start(t, append(base, settings...)...), ca: ca}
}

func (n *secNode) clientTLS(t *testing.T, certCN string) *tls.Config {
	cfg := &tls.Config{RootCAs: n.ca.Pool(), ServerName: "127.0.0.1"}
	if certCN != "" {
		is, err := n.ca.Issue(certCN, "Samsa tests")
		if err != nil {
			t.Fatal(err)
		}
		kp, err := is.KeyPair()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg
}

func secClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(5 * time.Second), kgo.RequestRetries(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces n records to a new topic through cl and reads them back.
func roundTrip(t *testing.T, n *testcluster.Node, cl *kgo.Client, topic string, opts ...kgo.Opt) {
	t.Helper()
	createTopic(t, n, topic, 1, nil)
	ctx := ctxT(t)
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(strings.Repeat("v", i+1))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	cons := secClient(t, "", append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	got := 0
	for got < 10 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 10", got)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch: %v", e.Err)
		}
		got += len(fs.Records())
	}
}

func pingErr(t *testing.T, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestTLSProduceConsume(t *testing.T) {
	n := startSecNode(t, "SSL://127.0.0.1:0")
	addr := n.Server().ListenerAddr("SSL")
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTLSConfig(n.clientTLS(t, ""))}
	roundTrip(t, n.Node, secClient(t, addr, opts...), "tls-topic", opts...)

	// A plain client on the TLS listener does not get in.
	if err := pingErr(t, secClient(t, addr)); err == nil {
		t.Fatal("plaintext client on the SSL listener: ping succeeded")
	}
	// A client that does not trust the broker's CA refuses it.
	if err := pingErr(t, secClient(t, addr, kgo.DialTLSConfig(&tls.Config{ServerName: "127.0.0.1"}))); err == nil {
		t.Fatal("client without the CA: ping succeeded")
	}
	// TLS 1.1 is refused.
	if err := pingErr(t, secClient(t, addr, kgo.DialTLSConfig(&tls.Config{RootCAs: n.ca.Pool(), MaxVersion: tls.VersionTLS11}))); err == nil {
		t.Fatal("TLS 1.1 client: ping succeeded")
	}
}

func TestMutualTLSRequired(t *testing.T) {
	n := startSecNode(t, "SSL://127.0.0.1:0", "listener.name.ssl.ssl.client.auth=required")
	addr := n.Server().ListenerAddr("SSL")
	if err := pingErr(t, secClient(t, addr, kgo.DialTLSConfig(n.clientTLS(t, "")))); err == nil {
		t.Fatal("client without a certificate: ping succeeded under ssl.client.auth=required")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTLSConfig(n.clientTLS(t, "alice"))}
	roundTrip(t, n.Node, secClient(t, addr, opts...), "mtls-topic", opts...)
	// A certificate from another CA is refused.
	other, _ := authtest.NewCA("other")
	is, _ := other.Issue("mallory", "")
	kp, _ := is.KeyPair()
	if err := pingErr(t, secClient(t, addr, kgo.DialTLSConfig(&tls.Config{RootCAs: n.ca.Pool(), Certificates: []tls.Certificate{kp}}))); err == nil {
		t.Fatal("certificate of an unknown CA: ping succeeded")
	}
}

const plainJAAS = `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";`

func TestSASLPlain(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS)
	addr := n.Server().ListenerAddr("SASL_PLAINTEXT")
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())}
	roundTrip(t, n.Node, secClient(t, addr, opts...), "plain-topic", opts...)

	err := pingErr(t, secClient(t, addr, kgo.SASL(plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism())))
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if !strings.Contains(err.Error(), "Invalid username or password") {
		t.Errorf("wrong password: %v, want Kafka's message", err)
	}
	// SCRAM is not enabled on this listener.
	err = pingErr(t, secClient(t, addr, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())))
	if !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Fatalf("disabled mechanism: %v, want UNSUPPORTED_SASL_MECHANISM", err)
	}
	// DescribeConfigs never shows the JAAS config's passwords.
	described, err := kadm.NewClient(newClient(t, n.Node)).DescribeBrokerConfigs(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range described {
		for _, c := range rc.Configs {
			if c.Value != nil && strings.Contains(*c.Value, "secret") {
				t.Errorf("DescribeConfigs shows %s = %s", c.Key, *c.Value)
			}
		}
	}
	// No SASL at all: the client's first request after ApiVersions closes the connection.
	if err := pingErr(t, secClient(t, addr)); err == nil {
		t.Fatal("client without SASL: ping succeeded")
	}
}

// sendRaw writes one request frame on c and reads the answer's frame (with its size prefix).
func sendRaw(t *testing.T, c net.Conn, corr int32, req kmsg.Request) ([]byte, error) {
	t.Helper()
	if _, err := c.Write(rawRequest(req, corr)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return readFrame(c)
}

func TestSASLUnauthenticatedRequestCloses(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS)
	addr := n.Server().ListenerAddr("SASL_PLAINTEXT")
	for _, req := range []kmsg.Request{
		&kmsg.MetadataRequest{Version: 9},
		&kmsg.ProduceRequest{Version: 7, Acks: 1, TimeoutMillis: 1000},
		&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00alice-secret")},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// ApiVersions is answered before authentication.
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 3
		av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
		if _, err := sendRaw(t, c, 1, av); err != nil {
			t.Fatalf("ApiVersions before authentication: %v", err)
		}
		b, err := sendRaw(t, c, 2, req)
		if k := req.Key(); k == kmsg.SASLAuthenticate.Int16() {
			// Without a handshake: ILLEGAL_SASL_STATE, then the connection closes.
			if err != nil {
				t.Fatalf("SaslAuthenticate without a handshake: %v, want ILLEGAL_SASL_STATE", err)
			}
			resp := kmsg.NewPtrSASLAuthenticateResponse()
			resp.Version = 1
			if err := resp.ReadFrom(b[8:]); err != nil || resp.ErrorCode != kerr.IllegalSaslState.Code {
				t.Fatalf("SaslAuthenticate without a handshake: %v code %d", err, resp.ErrorCode)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = readFrame(c)
		}
		if err == nil {
			t.Fatalf("%s before authentication answered", kmsg.NameForKey(req.Key()))
		}
		c.Close()
	}
}

// TestSASLFrameBound: before authentication a frame larger than Kafka's
// sasl.server.max.receive.size (512 KiB) closes the connection; after it the usual
// socket.request.max.bytes applies.
func TestSASLFrameBound(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS)
	addr := n.Server().ListenerAddr("SASL_PLAINTEXT")
	big := &kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: strings.Repeat("x", 600<<10), ClientSoftwareVersion: "1"}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := sendRaw(t, c, 1, big); err == nil {
		t.Fatal("a 600 KiB frame before authentication was answered")
	}
	// On the PLAINTEXT listener (authenticated at once) the same frame is answered.
	p, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := sendRaw(t, p, 1, big); err != nil {
		t.Fatalf("a 600 KiB frame on PLAINTEXT: %v", err)
	}
}

func TestSCRAMUsers(t *testing.T) {
	n := startSecNode(t, "SASL_SSL://127.0.0.1:0",
		"listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512")
	adm := kadm.NewClient(newClient(t, n.Node))
	ctx := ctxT(t)
	_, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-secret"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "bob-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := described["bob"]; len(d.CredInfos) != 1 || d.CredInfos[0].Mechanism != kadm.ScramSha512 || d.CredInfos[0].Iterations != 8192 {
		t.Fatalf("describe bob: %+v", d)
	}
	// Kafka's checks: too few iterations.
	// Kafka's checks, with raw requests (kadm checks some itself).
	upsert := func(name string, mech int8, iterations int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = name, mech, iterations, []byte("salt"), []byte("salted")
		return up
	}
	for name, tc := range map[string]struct {
		ups  []kmsg.AlterUserSCRAMCredentialsRequestUpsertion
		user string
		want *kerr.Error
	}{
		"too few iterations":  {[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("carol", 1, 100)}, "carol", kerr.UnacceptableCredential},
		"too many iterations": {[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("carol", 1, 20000)}, "carol", kerr.UnacceptableCredential},
		"unknown mechanism":   {[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("carol", 3, 4096)}, "carol", kerr.UnsupportedSaslMechanism},
		"empty name":          {[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("", 1, 4096)}, "", kerr.UnacceptableCredential},
		"twice":               {[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("carol", 1, 4096), upsert("carol", 1, 8192)}, "carol", kerr.DuplicateResource},
	} {
		raw := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		raw.Upsertions = tc.ups
		resp, err := raw.RequestWith(ctx, newClient(t, n.Node))
		if err != nil || len(resp.Results) != 1 || resp.Results[0].User != tc.user || resp.Results[0].ErrorCode != tc.want.Code {
			t.Errorf("%s: %v %+v, want %s", name, err, resp, tc.want.Message)
		}
	}
	if d, _ := adm.DescribeUserSCRAMs(ctx, "carol"); d["carol"].Err == nil {
		t.Fatalf("carol exists after refused upsertions: %+v", d)
	}

	login := func(m sasl.Mechanism) error {
		addr := n.Server().ListenerAddr("SASL_SSL")
		return pingErr(t, secClient(t, addr, kgo.DialTLSConfig(n.clientTLS(t, "")), kgo.SASL(m)))
	}
	addr := n.Server().ListenerAddr("SASL_SSL")
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTLSConfig(n.clientTLS(t, "")), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())}
	roundTrip(t, n.Node, secClient(t, addr, opts...), "scram-topic", opts...)
	if err := login(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism()); err != nil {
		t.Fatalf("bob SCRAM-SHA-512: %v", err)
	}
	for name, m := range map[string]sasl.Mechanism{
		"wrong password":  scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism(),
		"wrong mechanism": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
		"unknown user":    scram.Auth{User: "nobody", Pass: "x"}.AsSha256Mechanism(),
	} {
		if err := login(m); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}

	// Credentials survive a restart (they are metadata records).
	n.Restart()
	if err := login(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()); err != nil {
		t.Fatalf("alice after a restart: %v", err)
	}
	adm = kadm.NewClient(newClient(t, n.Node))
	if _, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := login(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("alice after deletion: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	res, _ := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err := res["alice"].Err; !errors.Is(err, kerr.ResourceNotFound) {
		t.Fatalf("deleting a missing credential: %v, want RESOURCE_NOT_FOUND", err)
	}
}
