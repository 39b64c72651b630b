package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/xdg-go/scram"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

// The tls workload group (issue 14): the produce and consume workloads over a SASL_SSL
// listener with SCRAM-SHA-512 (and over PLAINTEXT in the same rounds, for comparison), and the
// rate at which N parallel clients open authenticated connections. Both brokers get the same
// listener: TLS at each broker's default protocol versions with an ECDSA P-256 certificate for
// 127.0.0.1 made by the runner (a PEM key store, ssl.keystore.type=PEM), SCRAM-SHA-512 as the
// only mechanism, the user created with AlterUserScramCredentials (4096 iterations) over the
// PLAINTEXT listener, which the runner keeps for its admin calls. Both load generators read one
// client properties file (kafka-producer-perf-test --producer.config, kafka-consumer-perf-test
// --consumer.config, samsa perf --command-config). It runs only when asked (--only tls).
const (
	tlsUser       = "bench"
	tlsPassword   = "bench-secret"
	tlsIterations = 4096
	// tlsConnectClients open connections in parallel for tlsConnectTime in the connection
	// setup workload.
	tlsConnectClients = 8
	tlsConnectTime    = 6 * time.Second
)

// tlsCases are the produce workloads run over SASL_SSL.
var tlsCases = []produceCase{{1024, "1", 16}, {1024, "all", 16}}

// tlsFiles are the certificates and the client properties of a run.
type tlsFiles struct {
	caPEM      []byte
	caFile     string // the CA certificate (the clients' PEM trust store)
	keyStore   string // the broker's certificate and PKCS#8 key, PEM
	clientProp string // the client properties file (SASL_SSL, SCRAM-SHA-512, PEM trust store)
}

// writeTLSFiles makes a CA and a broker certificate for 127.0.0.1 and localhost, signed by it
// (authtest: ECDSA P-256, the key in PKCS#8 as Kafka's PEM key store wants it), and the client
// properties, in dir.
func writeTLSFiles(dir string) (*tlsFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ca, err := authtest.NewCA("samsa bench CA")
	if err != nil {
		return nil, err
	}
	is, err := ca.Issue("broker", "", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	caFile, keyStore, err := ca.WriteFiles(dir, "broker", is)
	if err != nil {
		return nil, err
	}
	f := &tlsFiles{caPEM: ca.CertPEM, caFile: caFile, keyStore: keyStore, clientProp: filepath.Join(dir, "client.properties")}
	props := strings.Join([]string{
		"security.protocol=SASL_SSL",
		"sasl.mechanism=SCRAM-SHA-512",
		fmt.Sprintf(`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";`, tlsUser, tlsPassword),
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + f.caFile,
	}, "\n") + "\n"
	return f, os.WriteFile(f.clientProp, []byte(props), 0o600)
}

// tlsBrokerSettings are the SASL_SSL listener's settings, the same on both brokers but for
// Kafka's JAAS line (Kafka wants a login module per enabled mechanism; Samsa needs none for
// SCRAM). The listener itself is added to listeners by kafkaProperties and startSamsa.
func (e *env) tlsBrokerSettings(kind string) []string {
	if e.tls == nil {
		return nil
	}
	s := []string{
		"sasl.enabled.mechanisms=SCRAM-SHA-512",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + e.tls.keyStore,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + e.tls.caFile,
	}
	if kind == "kafka" {
		s = append(s, "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;")
	}
	return s
}

// tlsAddr is the broker's SASL_SSL listener.
func (t *target) tlsAddr() string { return fmt.Sprintf("127.0.0.1:%d", t.r.kind.tlsPort) }

// listener is one of the two listeners the tls group runs its produce and consume workloads
// on: SASL_SSL, and PLAINTEXT in the same rounds for what TLS and SASL cost each broker.
type listener struct{ secure bool }

var tlsListeners = []listener{{secure: false}, {secure: true}}

func (l listener) String() string {
	if l.secure {
		return "SASL_SSL"
	}
	return "PLAINTEXT"
}

// addr is the broker's address on the listener.
func (l listener) addr(t *target) string {
	if l.secure {
		return t.tlsAddr()
	}
	return t.r.addr
}

// toolArgs are a tool's arguments for the listener's security: flag and the client properties
// file over SASL_SSL, none over PLAINTEXT.
func (l listener) toolArgs(t *target, flag string) []string {
	if !l.secure {
		return nil
	}
	return []string{flag, t.e.tls.clientProp}
}

// tlsFigure is a figure of the tls group over SASL_SSL.
func tlsFigure(what, label, unit string, higher bool) figure {
	return listener{secure: true}.figure(what, label, unit, higher)
}

// figure is a figure of the tls group on the listener.
func (l listener) figure(what, label, unit string, higher bool) figure {
	if !l.secure {
		return figure{"tls/plaintext/" + what, label + " (PLAINTEXT, same rounds)", unit, higher}
	}
	return figure{"tls/" + what, label + " (SASL_SSL, SCRAM-SHA-512)", unit, higher}
}

// scramSHA512 is a SCRAM-SHA-512 client for franz-go on xdg-go/scram, whose client keeps the
// salted password of a salt and iteration count: the connection workload measures the
// brokers' handshakes, not the client's PBKDF2 (4096 HMAC-SHA-512 rounds per login otherwise).
type scramSHA512 struct{ client *scram.Client }

func (m scramSHA512) Name() string { return "SCRAM-SHA-512" }

func (m scramSHA512) Authenticate(context.Context, string) (sasl.Session, []byte, error) {
	conv := m.client.NewConversation()
	first, err := conv.Step("")
	return scramSession{conv}, []byte(first), err
}

type scramSession struct{ conv *scram.ClientConversation }

func (s scramSession) Challenge(resp []byte) (bool, []byte, error) {
	msg, err := s.conv.Step(string(resp))
	if err != nil {
		return false, nil, err
	}
	return s.conv.Done(), []byte(msg), nil
}

// tlsOpts are the franz-go options of a client of the SASL_SSL listener.
func (t *target) tlsOpts(mech sasl.Mechanism) []kgo.Opt {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(t.e.tls.caPEM)
	return []kgo.Opt{kgo.SeedBrokers(t.tlsAddr()), kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(mech), kgo.DialTimeout(10 * time.Second)}
}

// tlsRun runs the tls group: the user, then produce, consume and connection setup.
func (t *target) tlsRun(ctx context.Context) error {
	sc, err := scram.SHA512.NewClient(tlsUser, tlsPassword, "")
	if err != nil {
		return err
	}
	mech := scramSHA512{sc}
	if err := t.tlsUserReady(ctx, mech); err != nil {
		return err
	}
	if err := t.tlsWarmUp(ctx); err != nil {
		return err
	}
	for _, c := range tlsCases {
		for _, tool := range []string{toolKafkaProducer, toolSamsaProduce} {
			for _, l := range tlsListeners {
				if err := t.tlsProduce(ctx, l, c, tool); err != nil {
					return err
				}
			}
		}
	}
	if err := t.tlsConsume(ctx); err != nil {
		return err
	}
	return t.tlsConnect(ctx, mech)
}

// tlsWarmUp produces and consumes over SASL_SSL, unmeasured, so that the first measured run
// does not pay for compiling the brokers' TLS paths (Kafka's JIT; the plaintext warm-up does
// not reach them).
func (t *target) tlsWarmUp(ctx context.Context) error {
	topic := "bench-tls-warmup"
	if err := t.createTopic(ctx, topic, 16); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	n := itoa(t.e.count(150_000))
	for _, verb := range []string{"produce", "consume"} {
		args := []string{"perf", verb, "--brokers", t.tlsAddr(), "--command-config", t.e.tls.clientProp,
			"--topic", topic, "--records", n, "--report-interval", "1h"}
		if verb == "produce" {
			args = append(args, "--record-size", "1024", "--acks", "all")
		}
		if _, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, args...); err != nil {
			return fmt.Errorf("warm-up over SASL_SSL: %w", err)
		}
	}
	return nil
}

// tlsUserReady creates the SCRAM user over the PLAINTEXT listener and waits until it can log
// in on the SASL_SSL listener (Kafka applies the credential when its metadata log does).
func (t *target) tlsUserReady(ctx context.Context, mech sasl.Mechanism) error {
	res, err := t.adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: tlsUser, Mechanism: kadm.ScramSha512, Iterations: tlsIterations, Password: tlsPassword,
	}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("creating the SCRAM user: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := t.tlsLogin(ctx, mech)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no SCRAM-SHA-512 login on %s within 30 s: %w (log: %s)", t.tlsAddr(), err, t.r.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tlsLogin opens one connection to the SASL_SSL listener: TCP, TLS, ApiVersions, SaslHandshake,
// the SCRAM exchange (two SaslAuthenticate), Metadata; then closes it.
func (t *target) tlsLogin(ctx context.Context, mech sasl.Mechanism) error {
	cl, err := kgo.NewClient(t.tlsOpts(mech)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.Ping(ctx)
}

// tlsProduce runs one produce workload on the listener.
func (t *target) tlsProduce(ctx context.Context, l listener, c produceCase, tool string) error {
	topic := fmt.Sprintf("bench-tls-produce-%d-acks%s-%dp", c.size, c.acks, c.parts)
	if err := t.createTopic(ctx, topic, c.parts); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	n := t.e.produceRecords(tool, c.size)
	res, cpu, rss, err := t.measured(func() (toolResult, error) {
		if tool == toolKafkaProducer {
			args := append(t.e.javaToolOpts(), "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
				"--num-records", itoa(n), "--record-size", itoa(int64(c.size)), "--throughput", "-1")
			args = append(append(args, l.toolArgs(t, "--producer.config")...),
				"--producer-props", "bootstrap.servers="+l.addr(t), "acks="+c.acks, "batch.size=16384", "linger.ms=5")
			out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.java, args...)
			if err != nil {
				return toolResult{}, err
			}
			return parseProducerPerformance(out)
		}
		out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, append([]string{"perf", "produce", "--brokers", l.addr(t),
			"--topic", topic, "--records", itoa(n), "--record-size", itoa(int64(c.size)), "--throughput", "-1",
			"--acks", c.acks, "--batch-max-bytes", "16384", "--linger", "5ms", "--report-interval", "1h", "--json"},
			l.toolArgs(t, "--command-config")...)...)
		if err != nil {
			return toolResult{}, err
		}
		return parseSamsaPerf(out)
	})
	if err != nil {
		return fmt.Errorf("produce %v over %v with %s: %w", c, l, tool, err)
	}
	logf("  %-9v produce %-14s %-26s %10.0f rec/s %8.1f MB/s  p99 %7.2f ms  broker CPU %5.1f s", l, c, tool, res.RecordsPerSec, res.MBPerSec, res.P99Ms, cpu)
	r := t.e.results
	r.addRun(t.round, t.r.kind.name, fmt.Sprintf("tls group: produce %v over %v", c, l), tool, res, cpu, rss)
	id := fmt.Sprintf("produce/%d/acks=%s/%dp/%s", c.size, c.acks, c.parts, tool)
	r.add(t.round, t.r.kind.name, l.figure(id+"/rate", fmt.Sprintf("produce %v, %s", c, tool), "rec/s", true), res.RecordsPerSec)
	r.add(t.round, t.r.kind.name, l.figure(id+"/cpu", fmt.Sprintf("broker CPU per 100k records, produce %v, %s", c, tool), "s", false),
		cpu/float64(max(res.Records, 1))*100_000)
	return nil
}

// tlsConsume fills a 16-partition topic over the PLAINTEXT listener and reads it with both
// tools over each listener, as the consume group does in plain text.
func (t *target) tlsConsume(ctx context.Context) error {
	topic := "bench-tls-consume"
	n := t.e.consumeRecords()
	if err := t.fillConsumeTopic(ctx, topic, n); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	for _, tool := range []string{toolKafkaConsumer, toolSamsaConsume} {
		for _, l := range tlsListeners {
			if err := t.tlsConsumeRun(ctx, l, topic, n, tool); err != nil {
				return err
			}
		}
	}
	return nil
}

// tlsConsumeRun reads the n records of topic from the start with tool over the listener.
func (t *target) tlsConsumeRun(ctx context.Context, l listener, topic string, n int64, tool string) error {
	res, cpu, rss, err := t.measured(func() (toolResult, error) {
		if tool == toolKafkaConsumer {
			args := append(t.e.javaToolOpts(), "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", l.addr(t),
				"--topic", topic, "--messages", itoa(n), "--timeout", "30000",
				"--group", fmt.Sprintf("bench-tls-consumer-perf-%d-%v", t.round, l))
			out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.java, append(args, l.toolArgs(t, "--consumer.config")...)...)
			if err != nil {
				return toolResult{}, err
			}
			fetch, _, err := parseConsumerPerformance(out)
			return fetch, err
		}
		out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, append([]string{"perf", "consume", "--brokers", l.addr(t),
			"--topic", topic, "--records", itoa(n), "--report-interval", "1h", "--json"}, l.toolArgs(t, "--command-config")...)...)
		if err != nil {
			return toolResult{}, err
		}
		return parseSamsaPerf(out)
	})
	if err != nil {
		return fmt.Errorf("consume over %v with %s: %w", l, tool, err)
	}
	logf("  %-9v consume %-26s %10.0f rec/s %8.1f MB/s  broker CPU %5.1f s", l, tool, res.RecordsPerSec, res.MBPerSec, cpu)
	r := t.e.results
	r.addRun(t.round, t.r.kind.name, fmt.Sprintf("tls group: consume over %v", l), tool, res, cpu, rss)
	label := fmt.Sprintf("consume 1 KiB %dp, %s", consumeParts, tool)
	r.add(t.round, t.r.kind.name, l.figure("consume/"+tool+"/rate", label, "rec/s", true), res.RecordsPerSec)
	r.add(t.round, t.r.kind.name, l.figure("consume/"+tool+"/cpu", "broker CPU per 100k records, "+label, "s", false),
		cpu/float64(max(res.Records, 1))*100_000)
	return nil
}

// tlsConnect measures connection setup: tlsConnectClients goroutines each open connections one
// after another for tlsConnectTime (a new franz-go client each: TCP, a full TLS handshake, no
// session resumption, ApiVersions, SaslHandshake, SCRAM-SHA-512, Metadata, close). The figure
// is the connections completed per second and the broker's CPU per 1000 of them.
func (t *target) tlsConnect(ctx context.Context, mech sasl.Mechanism) error {
	var done, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var seconds float64
	_, cpu, rss, _ := t.measured(func() (toolResult, error) {
		start := time.Now()
		var wg sync.WaitGroup
		for range tlsConnectClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < tlsConnectTime && ctx.Err() == nil {
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					err := t.tlsLogin(cctx, mech)
					cancel()
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, &err)
						continue
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		seconds = time.Since(start).Seconds()
		return toolResult{}, nil
	})
	if err := firstErr.Load(); err != nil {
		return fmt.Errorf("connection setup: %d of %d logins failed, the first: %w", failed.Load(), failed.Load()+done.Load(), *err)
	}
	if done.Load() == 0 {
		return errors.New("connection setup: no connection completed")
	}
	rate := float64(done.Load()) / seconds
	logf("  tls connect: %d connections by %d clients in %.1f s: %.0f conn/s  broker CPU %5.1f s", done.Load(), tlsConnectClients, seconds, rate, cpu)
	r := t.e.results
	r.addRun(t.round, t.r.kind.name, "tls connection setup", fmt.Sprintf("%d franz-go clients", tlsConnectClients),
		toolResult{Records: done.Load(), RecordsPerSec: rate}, cpu, rss)
	r.add(t.round, t.r.kind.name, tlsFigure("connect/rate",
		fmt.Sprintf("authenticated connections per second, %d parallel clients (TLS, SCRAM, ApiVersions, Metadata, close)", tlsConnectClients),
		"conn/s", true), rate)
	r.add(t.round, t.r.kind.name, tlsFigure("connect/cpu", "broker CPU per 1000 connections", "s", false), cpu/float64(done.Load())*1000)
	return nil
}
