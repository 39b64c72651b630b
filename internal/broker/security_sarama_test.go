package broker_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// saramaSCRAM is sarama's SCRAM client over xdg-go/scram (as sarama's own example).
type saramaSCRAM struct {
	conv *scram.ClientConversation
	gen  scram.HashGeneratorFcn
}

func (s *saramaSCRAM) Begin(user, pass, authz string) error {
	c, err := s.gen.NewClient(user, pass, authz)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}
func (s *saramaSCRAM) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *saramaSCRAM) Done() bool                            { return s.conv.Done() }

func saramaRoundTrip(t *testing.T, addr string, cfg *sarama.Config, topic string) {
	t.Helper()
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for range 5 {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("v")}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for range 5 {
		select {
		case <-pc.Messages():
		case err := <-pc.Errors():
			t.Fatal(err)
		}
	}
}

// TestSaramaSASL: sarama creates a SCRAM-SHA-512 user (AlterUserScramCredentials), produces
// and consumes with it over SASL_SSL, and with PLAIN over SASL_PLAINTEXT using the v0
// handshake (raw SASL tokens after SaslHandshake v0); a wrong password is refused.
func TestSaramaSASL(t *testing.T) {
	n := startSecNode(t, "SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS,
		"listener.name.sasl_ssl.plain.sasl.jaas.config="+plainJAAS)
	adm, err := sarama.NewClusterAdmin([]string{n.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	saramaScramUser(t, adm, "sara", "sara-secret", sarama.SCRAM_MECHANISM_SHA_512)
	if err := adm.CreateTopic("sarama-sasl", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}

	scramCfg := func(pass string) *sarama.Config {
		cfg := saramaConfig()
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = n.clientTLS(t, "")
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.User, cfg.Net.SASL.Password = "sara", pass
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{gen: scram.HashGeneratorFcn(sha512.New)} }
		cfg.Metadata.Retry.Max = 0
		return cfg
	}
	saramaRoundTrip(t, n.Server().ListenerAddr("SASL_SSL"), scramCfg("sara-secret"), "sarama-sasl")
	_, err = sarama.NewClient([]string{n.Server().ListenerAddr("SASL_SSL")}, scramCfg("wrong"))
	if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) && !errors.Is(err, sarama.ErrOutOfBrokers) {
		t.Fatalf("wrong SCRAM password: %v", err)
	}
	if err == nil {
		t.Fatal("wrong SCRAM password: client created")
	}

	plainCfg := func(pass string) *sarama.Config {
		cfg := saramaConfig()
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		cfg.Net.SASL.Version = sarama.SASLHandshakeV0
		cfg.ApiVersionsRequest = false
		cfg.Version = sarama.V0_11_0_0
		cfg.Net.SASL.User, cfg.Net.SASL.Password = "alice", pass
		cfg.Metadata.Retry.Max = 0
		return cfg
	}
	saramaRoundTrip(t, n.Server().ListenerAddr("SASL_PLAINTEXT"), plainCfg("alice-secret"), "sarama-sasl")
	if cl, err := sarama.NewClient([]string{n.Server().ListenerAddr("SASL_PLAINTEXT")}, plainCfg("wrong")); err == nil {
		cl.Close()
		t.Fatal("wrong PLAIN password (v0 handshake): client created")
	}
}

// saramaScramUser creates (or replaces) a user's SCRAM credential with sarama's
// AlterUserScramCredentials.
func saramaScramUser(t *testing.T, adm sarama.ClusterAdmin, name, pass string, mech sarama.ScramMechanismType) {
	t.Helper()
	res, err := adm.UpsertUserScramCredentials([]sarama.AlterUserScramCredentialsUpsert{{
		Name: name, Mechanism: mech, Iterations: 4096, Password: []byte(pass),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
		msg := ""
		if len(res) == 1 && res[0].ErrorMessage != nil {
			msg = *res[0].ErrorMessage
		}
		t.Fatalf("sarama upsert %s %s: %+v %s", name, mech, res, msg)
	}
}

// saramaSecurityProtocols maps the extra listener MTLS (ssl.client.auth=required) to SSL.
const saramaSecurityProtocols = "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"

// TestSaramaSecurity: sarama produces and consumes over each kind of secured listener (TLS,
// mutual TLS with ssl.client.auth=required, SCRAM-SHA-256 and -512, PLAIN with the v1
// handshake), and the same client with a wrong password, or without a certificate, is refused.
func TestSaramaSecurity(t *testing.T) {
	n := startSecNode(t, "SSL://127.0.0.1:0,MTLS://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		saramaSecurityProtocols,
		"listener.name.mtls.ssl.client.auth=required",
		"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"listener.name.sasl_ssl.plain.sasl.jaas.config="+plainJAAS,
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plainJAAS)
	adm, err := sarama.NewClusterAdmin([]string{n.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	saramaScramUser(t, adm, "sam256", "sam256-secret", sarama.SCRAM_MECHANISM_SHA_256)
	saramaScramUser(t, adm, "sam512", "sam512-secret", sarama.SCRAM_MECHANISM_SHA_512)

	tlsTo := func(cfg *sarama.Config, tc *tls.Config) {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = tc
	}
	sasl := func(cfg *sarama.Config, mech sarama.SASLMechanism, user, pass string) {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Mechanism = mech
		cfg.Net.SASL.User, cfg.Net.SASL.Password = user, pass
		switch mech {
		case sarama.SASLTypeSCRAMSHA256:
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{gen: scram.HashGeneratorFcn(sha256.New)} }
		case sarama.SASLTypeSCRAMSHA512:
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{gen: scram.HashGeneratorFcn(sha512.New)} }
		}
	}
	for _, tc := range []struct {
		name     string
		listener string
		// setup configures the client; good says whether with the right credentials.
		setup func(cfg *sarama.Config, good bool)
		// refused says whether the error of a refused client is the expected one.
		refused func(err error) bool
	}{
		{"tls", "SSL", func(cfg *sarama.Config, good bool) {
			if good { // the bad client speaks plaintext to the TLS listener
				tlsTo(cfg, n.clientTLS(t, ""))
			}
		}, func(err error) bool { return err != nil }},
		{"mtls", "MTLS", func(cfg *sarama.Config, good bool) {
			if good {
				tlsTo(cfg, n.clientTLS(t, "sarama-client"))
			} else {
				tlsTo(cfg, n.clientTLS(t, ""))
			}
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "certificate required") }},
		{"scram-sha-256", "SASL_SSL", func(cfg *sarama.Config, good bool) {
			tlsTo(cfg, n.clientTLS(t, ""))
			sasl(cfg, sarama.SASLTypeSCRAMSHA256, "sam256", map[bool]string{true: "sam256-secret", false: "wrong"}[good])
		}, func(err error) bool { return errors.Is(err, sarama.ErrSASLAuthenticationFailed) }},
		{"scram-sha-512", "SASL_PLAINTEXT", func(cfg *sarama.Config, good bool) {
			sasl(cfg, sarama.SASLTypeSCRAMSHA512, "sam512", map[bool]string{true: "sam512-secret", false: "wrong"}[good])
		}, func(err error) bool { return errors.Is(err, sarama.ErrSASLAuthenticationFailed) }},
		{"plain-v1", "SASL_SSL", func(cfg *sarama.Config, good bool) {
			tlsTo(cfg, n.clientTLS(t, ""))
			sasl(cfg, sarama.SASLTypePlaintext, "alice", map[bool]string{true: "alice-secret", false: "wrong"}[good])
			cfg.Net.SASL.Version = sarama.SASLHandshakeV1
		}, func(err error) bool { return errors.Is(err, sarama.ErrSASLAuthenticationFailed) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := n.Server().ListenerAddr(tc.listener)
			topic := "sarama-sec-" + tc.name
			if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
				t.Fatal(err)
			}
			client := func(good bool) *sarama.Config {
				cfg := saramaConfig()
				cfg.Metadata.Retry.Max = 0
				cfg.Net.ReadTimeout = 10 * time.Second
				tc.setup(cfg, good)
				return cfg
			}
			saramaRoundTrip(t, addr, client(true), topic)
			cl, err := sarama.NewClient([]string{addr}, client(false))
			if err == nil {
				cl.Close()
				t.Fatal("a client with the wrong credentials was let in")
			}
			if !tc.refused(err) {
				t.Fatalf("refused with an unexpected error: %v", err)
			}
		})
	}
}
