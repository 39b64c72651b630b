package config

import (
	"os"
	"strings"
	"testing"
)

func TestParseProperties(t *testing.T) {
	in := `# comment
! other comment
node.id=3
listeners = PLAINTEXT://:9092
log.dirs: /tmp/a
num.partitions 4
long.value=a,\
  b
`
	got, err := ParseProperties(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"node.id": "3", "listeners": "PLAINTEXT://:9092", "log.dirs": "/tmp/a", "num.partitions": "4", "long.value": "a,b"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
}

func TestLoadServer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		props   map[string]string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"unknown setting", map[string]string{"log.retention.hourz": "1"}, `unknown setting "log.retention.hourz"; did you mean "log.retention.hours"?`},
		{"unknown setting far from any", map[string]string{"no.such.thing": "1"}, `unknown setting "no.such.thing"`},
		{"removed zookeeper setting", map[string]string{"zookeeper.connect": "zk:2181"}, `unknown setting "zookeeper.connect"`},
		{"per-listener setting", map[string]string{"listener.name.internal.ssl.cipher.suites": "x"}, "not supported in Samsa"},
		{"BKS key store", map[string]string{"ssl.keystore.type": "BKS"}, "ssl.keystore.type"},
		{"GSSAPI", map[string]string{"listeners": "SASL_PLAINTEXT://:9092,CONTROLLER://:9093"}, "GSSAPI is not supported"},
		{"SSL controller listener without mutual TLS", map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"}, "needs ssl.client.auth=required"},
		{"SASL controller listener with GSSAPI", map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"}, "GSSAPI is not supported"},
		{"SASL controller listener, default controller mechanism", map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL", "listener.name.controller.sasl.enabled.mechanisms": "PLAIN"}, "sasl.mechanism.controller.protocol=GSSAPI"},
		{"SASL controller listener over SCRAM", map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT", "listener.name.controller.sasl.enabled.mechanisms": "SCRAM-SHA-256", "sasl.mechanism.controller.protocol": "SCRAM-SHA-256"}, ""},
		{"SASL controller listener over OAUTHBEARER", map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT", "listener.name.controller.sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.mechanism.controller.protocol": "OAUTHBEARER"}, "username and password"},
		{"SASL controller mechanism not enabled", map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT", "listener.name.controller.sasl.enabled.mechanisms": "SCRAM-SHA-512", "sasl.mechanism.controller.protocol": "PLAIN"}, "enables SCRAM-SHA-512"},
		{"SASL controller listener over PLAIN", map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT", "listener.name.controller.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512", "sasl.mechanism.controller.protocol": "PLAIN"}, ""},
		{"inter-broker GSSAPI", map[string]string{"listeners": "SASL_PLAINTEXT://:9092,CONTROLLER://:9093", "sasl.enabled.mechanisms": "PLAIN", "inter.broker.listener.name": "SASL_PLAINTEXT"}, "sasl.mechanism.inter.broker.protocol"},
		{"inter-broker OAUTHBEARER", map[string]string{"listeners": "SASL_PLAINTEXT://:9092,CONTROLLER://:9093", "sasl.enabled.mechanisms": "OAUTHBEARER", "inter.broker.listener.name": "SASL_PLAINTEXT", "sasl.mechanism.inter.broker.protocol": "OAUTHBEARER"}, "username and password"},
		{"unknown OAUTHBEARER handler", map[string]string{"listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class": "com.example.MyHandler"}, "sasl.server.callback.handler.class"},
		{"per-mechanism reauth", map[string]string{"listener.name.sasl_ssl.oauthbearer.connections.max.reauth.ms": "1000", "listener.name.sasl_ssl.plain.connections.max.reauth.ms": "0"}, ""},
		{"negative reauth", map[string]string{"connections.max.reauth.ms": "-1"}, "connections.max.reauth.ms"},
		{"unserved mechanism-scoped setting", map[string]string{"listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.token.endpoint.url": "https://idp"}, "not supported in Samsa"},
		{"bad bool of unsupported setting", map[string]string{"log.cleaner.enable": "maybe"}, "log.cleaner.enable"},
		{"bad double of unsupported setting", map[string]string{"log.cleaner.io.buffer.load.factor": "x"}, "expected a number"},
		{"bad int", map[string]string{"num.partitions": "many"}, "num.partitions"},
		{"below min", map[string]string{"num.partitions": "0"}, "num.partitions"},
		{"bad bool", map[string]string{"auto.create.topics.enable": "yes"}, "auto.create.topics.enable"},
		{"bad enum", map[string]string{"log.message.timestamp.type": "Now"}, "log.message.timestamp.type"},
		{"bad listener", map[string]string{"listeners": "PLAINTEXT:9092"}, "listeners"},
		{"unmapped listener", map[string]string{"listeners": "FOO://:1,CONTROLLER://:2"}, "FOO"},
		{"no controller listener", map[string]string{"listeners": "PLAINTEXT://:9092"}, "controller.listener.names"},
		{"ignored jvm setting", map[string]string{"num.network.threads": "3"}, ""},
		{"unknown assignor", map[string]string{"group.consumer.assignors": "uniform,sticky"}, "group.consumer.assignors"},
		{"kafka assignor class", map[string]string{"group.consumer.assignors": "org.apache.kafka.coordinator.group.assignor.RangeAssignor"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadServer(tc.props)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want mention of %q", err, tc.wantErr)
			}
		})
	}
	s, err := LoadServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.ClientListeners()[0].Addr() != "localhost:9092" || s.LogDirs[0] != "./data" || s.NumPartitions != 1 {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestTopicDefaults(t *testing.T) {
	s, err := LoadServer(map[string]string{"log.retention.hours": "24", "log.segment.bytes": "1000", "log.roll.ms": "5000"})
	if err != nil {
		t.Fatal(err)
	}
	td := s.TopicDefaults()
	for name, want := range map[string]TopicDefault{
		"retention.ms":      {"86400000", "log.retention.hours"},
		"segment.bytes":     {"1000", "log.segment.bytes"},
		"segment.ms":        {"5000", "log.roll.ms"},
		"max.message.bytes": {"1048588", ""},
	} {
		if td[name] != want {
			t.Errorf("%s = %+v, want %+v", name, td[name], want)
		}
	}
}

func TestValidateTopicConfig(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"retention.ms", "-1", true},
		{"retention.ms", "-2", false},
		{"cleanup.policy", "compact,delete", true},
		{"cleanup.policy", "shred", false},
		{"compression.type", "zstd", true},
		{"segment.bytes", "10", false},
		{"no.such.config", "1", false},
		{"leader.replication.throttled.replicas", "*", true},
		{"leader.replication.throttled.replicas", "", true},
		{"leader.replication.throttled.replicas", "0:1,0:2, 1:3", true},
		{"follower.replication.throttled.replicas", "0:1", true},
		{"follower.replication.throttled.replicas", "0", false},
		{"follower.replication.throttled.replicas", "0:x", false},
		{"leader.replication.throttled.replicas", "*,0:1", false},
		{"leader.replication.throttled.replicas", "-1:1", false},
	} {
		err := ValidateTopicConfig(tc.name, tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("%s=%s: err %v", tc.name, tc.value, err)
		}
	}
}

// TestServerDefsAreKafkaSettings: every setting Samsa serves has Kafka's name (a typo in
// ServerDefs would invent a setting) or is one of Samsa's own, named samsa.*, and Kafka's list
// was read.
func TestServerDefsAreKafkaSettings(t *testing.T) {
	kafka, _ := parseKafkaBrokerSettings(kafkaBrokerSettingsText)
	if len(kafka) < 300 {
		t.Fatalf("kafka_broker_settings.txt: %d settings, want Kafka's 300+", len(kafka))
	}
	inKafka := func(name string) bool { // in Kafka's list itself (the parsed map adds ServerDefs)
		return strings.HasPrefix(kafkaBrokerSettingsText, name+"\t") || strings.Contains(kafkaBrokerSettingsText, "\n"+name+"\t")
	}
	for _, d := range ServerDefs {
		own := strings.HasPrefix(d.Name, SamsaPrefix)
		if !inKafka(d.Name) && !own {
			t.Errorf("served setting %s is not a Kafka 4.1 broker setting", d.Name)
		}
		if own && (inKafka(d.Name) || !strings.HasPrefix(d.Doc, "Samsa setting: ")) {
			t.Errorf("Samsa's own setting %s: not a Kafka name, and its doc starts with \"Samsa setting: \"", d.Name)
		}
	}
}

func TestLookupBrokerSetting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		support Support
		mode    string
		dflt    string
	}{
		{"log.retention.ms", Served, ModeClusterWide, ""},
		{"node.id", Served, ModeReadOnly, "1"},
		{"log.cleaner.threads", Served, ModeClusterWide, "1"},
		{"log.cleaner.io.buffer.size", NoEffect, ModeClusterWide, "524288"},
		{"auto.leader.rebalance.enable", Served, ModeReadOnly, "true"},
		{"samsa.leader.imbalance.per.broker.percentage", Served, ModeReadOnly, "0"},
		{"leader.replication.throttled.rate", Served, ModeClusterWide, "9223372036854775807"},
		{"ssl.keystore.password", Served, ModePerBroker, ""},
		{"ssl.key.password", Served, ModePerBroker, ""},
		{"ssl.endpoint.identification.algorithm", Served, ModePerBroker, "https"},
		{"sasl.mechanism.inter.broker.protocol", Served, ModePerBroker, "GSSAPI"},
		{"ssl.keystore.location", Served, ModePerBroker, ""},
		{"listener.name.sasl_ssl.ssl.keystore.location", Served, ModeReadOnly, ""},
		{"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config", Served, ModeReadOnly, ""},
		{"listener.name.sasl_ssl.ssl.keystore.password", Served, ModeReadOnly, ""},
		{"listener.name.sasl_ssl.ssl.key.password", Served, ModeReadOnly, ""},
		{"create.topic.policy.class.name", Refused, ModeReadOnly, ""},
		{"connections.max.reauth.ms", Served, ModeReadOnly, "0"},
		{"sasl.oauthbearer.clock.skew.seconds", Served, ModeReadOnly, "30"},
		{"listener.name.sasl_ssl.oauthbearer.connections.max.reauth.ms", Served, ModeReadOnly, "0"},
		{"listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.jwks.endpoint.url", Served, ModeReadOnly, ""},
		{"listener.name.sasl_ssl.oauthbearer.sasl.jaas.config", Served, ModeReadOnly, ""},
		{"sasl.oauthbearer.token.endpoint.url", Refused, ModeReadOnly, ""},
	} {
		s, ok := LookupBrokerSetting(tc.name)
		if !ok {
			t.Errorf("%s: not known", tc.name)
			continue
		}
		if s.Support != tc.support || s.Mode != tc.mode || s.Def.Default != tc.dflt {
			t.Errorf("%s: support %d mode %s default %q, want %d %s %q", tc.name, s.Support, s.Mode, s.Def.Default, tc.support, tc.mode, tc.dflt)
		}
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"log.retention.hour":       "log.retention.hours",
		"log.retentoin.ms":         "log.retention.ms",
		"num.partition":            "num.partitions",
		"auto.create.topic.enable": "auto.create.topics.enable",
		"log.dir.s":                "log.dirs",
		"foo":                      "",
		"completely.unrelated.key": "",
	} {
		if got := Suggest(in); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// Kafka 4.1's own config/server.properties (KRaft, combined roles) loads unchanged, with the
// settings Samsa serves taken from it.
func TestKafkaServerPropertiesLoad(t *testing.T) {
	f, err := os.Open("testdata/kafka-4.1-server.properties")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props, err := ParseProperties(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadServer(props)
	if err != nil {
		t.Fatalf("Kafka's server.properties: %v", err)
	}
	if len(s.LogDirs) != 1 || s.LogDirs[0] != "/tmp/kraft-combined-logs" || s.NodeID != 1 || !s.Broker || !s.Controller {
		t.Errorf("loaded %+v", s)
	}
}
