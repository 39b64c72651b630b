package broker_test

import (
	"crypto/sha512"
	"errors"
	"testing"

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
	res, err := adm.UpsertUserScramCredentials([]sarama.AlterUserScramCredentialsUpsert{{
		Name: "sara", Mechanism: sarama.SCRAM_MECHANISM_SHA_512, Iterations: 4096, Password: []byte("sara-secret"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
		msg := ""
		if len(res) == 1 && res[0].ErrorMessage != nil {
			msg = *res[0].ErrorMessage
		}
		t.Fatalf("sarama upsert: %+v %s", res, msg)
	}
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
