package broker_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// Creating or altering a topic to cleanup.policy=compact (either order with delete) succeeds
// with no message now that the cleaner compacts.
func TestCompactPolicyAccepted(t *testing.T) {
	n := testcluster.Start(t)
	adm := newAdmin(t, n)
	ctx := ctxT(t)
	created, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": strPtr("compact")}, "compacted")
	if err != nil || created.Err != nil || created.ErrMessage != "" {
		t.Fatalf("create compacted: %v %v %q", err, created.Err, created.ErrMessage)
	}
	for _, v := range []string{"compact,delete", "delete,compact", "delete"} {
		resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: strPtr(v)}}, "compacted")
		if err != nil || len(resps) != 1 || resps[0].Err != nil || resps[0].ErrMessage != "" {
			t.Fatalf("alter to %s: %v %+v", v, err, resps)
		}
	}
}

// Error messages in responses say the specific thing once, as Kafka's do: not prefixed by the
// error code's name and generic description, which clients print themselves from the code.
func TestErrorMessagesSayOneThingOnce(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "five", 5, nil)
	cl := newClient(t, n)

	createTopics := func(name string, partitions int32, configs map[string]string) (int16, *string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10_000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage
	}
	createPartitions := func(name string, count int32) (int16, *string) {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = 10_000
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage
	}

	for _, tc := range []struct {
		name     string
		call     func() (int16, *string)
		want     *kerr.Error
		contains string
	}{
		{"fewer partitions", func() (int16, *string) { return createPartitions("five", 2) },
			kerr.InvalidPartitions, "five"},
		{"existing topic", func() (int16, *string) { return createTopics("five", 1, nil) },
			kerr.TopicAlreadyExists, "five"},
		{"invalid name", func() (int16, *string) { return createTopics("bad/name", 1, nil) },
			kerr.InvalidTopicException, "bad/name"},
		{"invalid config value", func() (int16, *string) {
			return createTopics("cfg", 1, map[string]string{"retention.ms": "soon"})
		}, kerr.InvalidConfig, "retention.ms"},
	} {
		code, msg := tc.call()
		if code != tc.want.Code {
			t.Errorf("%s: error %v, want %v", tc.name, kerr.ErrorForCode(code), tc.want)
			continue
		}
		if msg == nil {
			t.Errorf("%s: no message", tc.name)
			continue
		}
		if strings.Contains(*msg, tc.want.Message) || strings.Contains(*msg, tc.want.Description) ||
			!strings.Contains(*msg, tc.contains) {
			t.Errorf("%s: message %q: want only the specific message (naming %q)", tc.name, *msg, tc.contains)
		}
	}
}
