package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestKafkaBrokerSettingNames checks Kafka 4.x broker setting names through both ways a
// setting arrives: server.properties (config.LoadServer) and IncrementalAlterConfigs on the
// broker resource. Each row states one behaviour: served, accepted with no effect, read-only at
// run time, refused as not supported, or unknown with a suggestion.
func TestKafkaBrokerSettingNames(t *testing.T) {
	ctx := ctxT(t)
	n := testcluster.Start(t)
	adm := newAdmin(t, n)
	const node = 1 // testcluster's node.id
	const notDynamic = "Cannot update these configs dynamically: Set("
	for _, tc := range []struct {
		name, value string
		// startErr is "" when LoadServer accepts the setting, else part of its error.
		startErr string
		// ignored says LoadServer reports the setting as having no effect.
		ignored bool
		// alterErr is nil when IncrementalAlterConfigs (broker 1) succeeds; alterMsg is part
		// of the error message.
		alterErr *kerr.Error
		alterMsg string
	}{
		// Served by Samsa, dynamic in Kafka and Samsa.
		{name: "log.retention.ms", value: "3600000"},
		{name: "log.cleaner.threads", value: "2"},
		// Kafka's read-only settings named in issue 9: accepted with no effect at start,
		// refused at run time as Kafka does.
		{name: "controlled.shutdown.enable", value: "false", ignored: true, alterErr: kerr.InvalidRequest, alterMsg: notDynamic + "controlled.shutdown.enable)"},
		{name: "transaction.max.timeout.ms", value: "600000", alterErr: kerr.InvalidRequest, alterMsg: notDynamic + "transaction.max.timeout.ms)"},
		{name: "transactional.id.expiration.ms", value: "3600000", ignored: true, alterErr: kerr.InvalidRequest, alterMsg: notDynamic},
		{name: "metadata.log.max.record.bytes.between.snapshots", value: "1000000", ignored: true, alterErr: kerr.InvalidRequest, alterMsg: notDynamic},
		// Dynamic in Kafka, no effect in Samsa: accepted in both places.
		{name: "log.cleaner.io.buffer.size", value: "1048576", ignored: true},
		{name: "num.io.threads", value: "4", ignored: true},
		// Accepted settings are still type-checked.
		{name: "log.cleaner.io.buffer.size", value: "two", startErr: "expected an integer", alterErr: kerr.InvalidConfig, alterMsg: "expected an integer"},
		// Read-only settings Samsa serves.
		{name: "auto.leader.rebalance.enable", value: "false", alterErr: kerr.InvalidRequest, alterMsg: notDynamic + "auto.leader.rebalance.enable)"},
		{name: "log.dirs", value: "/tmp/samsa-elsewhere", alterErr: kerr.InvalidRequest, alterMsg: notDynamic + "log.dirs)"},
		{name: "node.id", value: "1", alterErr: kerr.InvalidRequest, alterMsg: notDynamic + "node.id)"},
		// Served, dynamic in Kafka, read only at start by Samsa.
		{name: "listeners", value: "PLAINTEXT://:9092,CONTROLLER://:9093", alterErr: kerr.InvalidRequest, alterMsg: "Samsa does not support updating these configs dynamically yet"},
		// TLS and SASL settings Samsa serves, read at start (the files are read again when
		// they change, not on AlterConfigs).
		{name: "ssl.keystore.location", value: "/etc/kafka/broker.pem", alterErr: kerr.InvalidRequest, alterMsg: "Samsa does not support updating these configs dynamically yet"},
		{name: "sasl.enabled.mechanisms", value: "PLAIN", alterErr: kerr.InvalidRequest, alterMsg: "Samsa does not support updating these configs dynamically yet"},
		// Security Samsa lacks: refused in both places.
		{name: "ssl.keymanager.algorithm", value: "SunX509", startErr: "not supported in Samsa", alterErr: kerr.InvalidConfig, alterMsg: "not supported in Samsa"},
		{name: "ssl.cipher.suites", value: "TLS_AES_128_GCM_SHA256", startErr: "not supported in Samsa", alterErr: kerr.InvalidConfig, alterMsg: "not supported in Samsa"},
		// The standard authorizer is served, read at start; other authorizers are refused.
		{name: "authorizer.class.name", value: "org.apache.kafka.metadata.authorizer.StandardAuthorizer", alterErr: kerr.InvalidRequest, alterMsg: notDynamic + "authorizer.class.name)"},
		{name: "authorizer.class.name", value: "kafka.security.authorizer.AclAuthorizer", startErr: "expected one of org.apache.kafka.metadata.authorizer.StandardAuthorizer (or empty)", alterErr: kerr.InvalidConfig, alterMsg: "expected one of"},
		{name: "super.users", value: "User:admin;User:CN=broker", alterErr: kerr.InvalidRequest, alterMsg: notDynamic + "super.users)"},
		// A typo: unknown, with the closest name suggested.
		{name: "log.retention.hour", value: "1", startErr: `unknown setting "log.retention.hour"; did you mean "log.retention.hours"?`, alterErr: kerr.InvalidConfig, alterMsg: `did you mean "log.retention.hours"?`},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			cfg, err := config.LoadServer(map[string]string{tc.name: tc.value})
			switch {
			case tc.startErr == "" && err != nil:
				t.Errorf("LoadServer: %v", err)
			case tc.startErr != "" && (err == nil || !strings.Contains(err.Error(), tc.startErr)):
				t.Errorf("LoadServer: got %v, want an error containing %q", err, tc.startErr)
			case err == nil:
				ignored := len(cfg.Ignored) == 1 && cfg.Ignored[0] == tc.name
				if ignored != tc.ignored {
					t.Errorf("LoadServer: Ignored = %v, want %s reported: %v", cfg.Ignored, tc.name, tc.ignored)
				}
			}

			resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: tc.name, Value: &tc.value}}, node)
			if err != nil {
				t.Fatal(err)
			}
			r := resps[0]
			if tc.alterErr == nil {
				if r.Err != nil {
					t.Fatalf("IncrementalAlterConfigs: %v: %s", r.Err, r.ErrMessage)
				}
				if c := describeBrokerConfig(t, n, tc.name); c.Value == nil || *c.Value != tc.value {
					t.Errorf("described %s = %v, want %q", tc.name, c.Value, tc.value)
				}
				return
			}
			if !errors.Is(r.Err, tc.alterErr) || !strings.Contains(r.ErrMessage, tc.alterMsg) {
				t.Errorf("IncrementalAlterConfigs: got %v %q, want %v with %q", r.Err, r.ErrMessage, tc.alterErr, tc.alterMsg)
			}
		})
	}
}

// TestDescribeUnsupportedBrokerConfig: a setting Samsa accepts with no effect is described
// with Kafka's default and documented as not supported yet.
func TestDescribeUnsupportedBrokerConfig(t *testing.T) {
	n := testcluster.Start(t)
	c := describeBrokerConfig(t, n, "controlled.shutdown.enable")
	if c.Value == nil || *c.Value != "true" || c.Source != kmsg.ConfigSourceDefaultConfig || !c.ReadOnly {
		t.Errorf("controlled.shutdown.enable = %v (source %v, read-only %v), want Kafka's default true, read-only", c.Value, c.Source, c.ReadOnly)
	}
	if c.Documentation == nil || !strings.Contains(*c.Documentation, "not supported yet") {
		t.Errorf("documentation %v does not say the setting is not supported yet", c.Documentation)
	}
}

// describeBrokerConfig describes one config of broker 1 with its documentation.
func describeBrokerConfig(t *testing.T, n *testcluster.Node, name string) kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeDocumentation = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeBroker, "1", []string{name}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctxT(t), newClient(t, n))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Configs {
			if c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("broker config %s not described", name)
	return kmsg.DescribeConfigsResponseResourceConfig{}
}
