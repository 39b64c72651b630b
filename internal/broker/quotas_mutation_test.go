package broker_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// The controller mutation quota of these tests: 2 partitions a second over 2 samples of 1 s,
// a burst of 4 partitions.
const mutationRate = 2

// startWithMutationQuotas starts a node where each of clients has the mutation quota (set with
// AlterClientQuotas, startWithQuotas); other client ids have none.
func startWithMutationQuotas(t *testing.T, clients ...string) *testcluster.Node {
	t.Helper()
	tab := &quota.Table{Quotas: map[quota.Entity]quota.Values{}}
	for _, c := range clients {
		tab.Quotas[quota.Entity{ClientID: quota.Named(c)}] = quota.Values{quota.ControllerMutationRate: mutationRate}
	}
	return startWithQuotas(t, tab, "controller.quota.window.num=2")
}

// mutationClient is a client with clientID whose requests of key are at most version.
func mutationClient(t *testing.T, n *testcluster.Node, clientID string, key kmsg.Key, version int16) *kgo.Client {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(key.Int16(), version)
	return newClient(t, n, kgo.ClientID(clientID), kgo.MaxVersions(vs))
}

// mutate sends one request of key mutating three topics of three partitions each (the
// quota's burst is 4: the first two empty it) and returns the topics' error codes in order
// and the throttle time. With ids, DeleteTopics names the topics by id.
func mutate(t *testing.T, cl *kgo.Client, key kmsg.Key, topics []string, ids [][16]byte) ([]int16, int32) {
	t.Helper()
	var req kmsg.Request
	switch key {
	case kmsg.CreateTopics:
		r := kmsg.NewPtrCreateTopicsRequest()
		for _, name := range topics {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 3, 1
			r.Topics = append(r.Topics, rt)
		}
		req = r
	case kmsg.CreatePartitions:
		r := kmsg.NewPtrCreatePartitionsRequest()
		for _, name := range topics {
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = name, 4 // from 1: three new partitions
			r.Topics = append(r.Topics, rt)
		}
		req = r
	default:
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TopicNames = topics // up to v5
		for i, name := range topics {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			if ids != nil {
				rt.TopicID = ids[i]
			} else {
				rt.Topic = kmsg.StringPtr(name)
			}
			r.Topics = append(r.Topics, rt)
		}
		req = r
	}
	req.(kmsg.SetTimeoutRequest).SetTimeout(30000)
	resp, err := cl.Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	var codes []int16
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		for _, st := range r.Topics {
			codes = append(codes, st.ErrorCode)
		}
	case *kmsg.CreatePartitionsResponse:
		for _, st := range r.Topics {
			codes = append(codes, st.ErrorCode)
		}
	case *kmsg.DeleteTopicsResponse:
		for _, st := range r.Topics {
			codes = append(codes, st.ErrorCode)
		}
	}
	throttle, _ := resp.(kmsg.ThrottleResponse).Throttle()
	return codes, throttle
}

// TestControllerMutationQuota: each topic admin API, at a strict version and at a permissive
// one, by a client with the quota and by one without. A request of three topics of three
// partitions each against a burst of 4: the strict quota accepts the first two (the second
// finds tokens left, so it is accepted whole) and refuses the third with
// THROTTLING_QUOTA_EXCEEDED and a throttle; the permissive one accepts all three and
// throttles; a client without quota is neither refused nor throttled.
func TestControllerMutationQuota(t *testing.T) {
	throttled := kerr.ThrottlingQuotaExceeded.Code
	tests := []struct {
		key          kmsg.Key
		version      int16
		limited      bool
		byID         bool // DeleteTopics by topic id
		wantCodes    []int16
		wantThrottle bool
	}{
		{kmsg.CreateTopics, 7, true, false, []int16{0, 0, throttled}, true},
		{kmsg.CreateTopics, 6, true, false, []int16{0, 0, throttled}, true},
		{kmsg.CreateTopics, 5, true, false, []int16{0, 0, 0}, true},
		{kmsg.CreateTopics, 7, false, false, []int16{0, 0, 0}, false},
		{kmsg.CreatePartitions, 3, true, false, []int16{0, 0, throttled}, true},
		{kmsg.CreatePartitions, 2, true, false, []int16{0, 0, 0}, true},
		{kmsg.CreatePartitions, 3, false, false, []int16{0, 0, 0}, false},
		{kmsg.DeleteTopics, 6, true, false, []int16{0, 0, throttled}, true},
		{kmsg.DeleteTopics, 6, true, true, []int16{0, 0, throttled}, true},
		{kmsg.DeleteTopics, 5, true, false, []int16{0, 0, throttled}, true},
		{kmsg.DeleteTopics, 4, true, false, []int16{0, 0, 0}, true},
		{kmsg.DeleteTopics, 6, false, false, []int16{0, 0, 0}, false},
	}
	clientID := func(i int) string { return fmt.Sprintf("mutator-%d", i) }
	var limited []string
	for i, tt := range tests {
		if tt.limited {
			limited = append(limited, clientID(i))
		}
	}
	n := startWithMutationQuotas(t, limited...)
	for i, tt := range tests {
		name := fmt.Sprintf("%s-v%d-limited-%v-by-id-%v", tt.key.Name(), tt.version, tt.limited, tt.byID)
		t.Run(name, func(t *testing.T) {
			topics := []string{fmt.Sprintf("q%d-a", i), fmt.Sprintf("q%d-b", i), fmt.Sprintf("q%d-c", i)}
			switch tt.key {
			case kmsg.CreatePartitions, kmsg.DeleteTopics:
				// Set up by a client without quota.
				partitions := int32(3)
				if tt.key == kmsg.CreatePartitions {
					partitions = 1
				}
				for _, topic := range topics {
					createTopic(t, n, topic, partitions, nil)
				}
			}
			var ids [][16]byte
			for _, topic := range topics {
				if mt, ok := n.Server().Image().Topic(topic); ok && tt.byID {
					ids = append(ids, mt.ID)
				}
			}
			if tt.byID && len(ids) != len(topics) {
				t.Fatalf("ids of %d of %v", len(ids), topics)
			}
			cl := mutationClient(t, n, clientID(i), tt.key, tt.version)
			codes, throttle := mutate(t, cl, tt.key, topics, ids)
			if fmt.Sprint(codes) != fmt.Sprint(tt.wantCodes) {
				t.Fatalf("error codes %v, want %v", codes, tt.wantCodes)
			}
			if (throttle > 0) != tt.wantThrottle {
				t.Fatalf("throttle_time_ms %d, want throttled %v", throttle, tt.wantThrottle)
			}
		})
	}
}

// TestControllerMutationQuotaKadmRetry: kadm's CreateTopics of more partitions than the burst
// allows creates the topics up to it and reports THROTTLING_QUOTA_EXCEEDED for the others;
// created again after the throttle, they succeed.
func TestControllerMutationQuotaKadmRetry(t *testing.T) {
	n := startWithMutationQuotas(t, "kadm-mutator")
	var hook throttleHook
	adm := kadm.NewClient(newClient(t, n, kgo.ClientID("kadm-mutator"), kgo.WithHooks(&hook)))
	topics := []string{"kadm-a", "kadm-b", "kadm-c", "kadm-d"}
	resp, err := adm.CreateTopics(ctxT(t), 2, 1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, topic := range topics {
		switch err := resp[topic].Err; {
		case errors.Is(err, kerr.ThrottlingQuotaExceeded):
			refused = append(refused, topic)
		case err != nil:
			t.Fatalf("%s: %v", topic, err)
		}
	}
	// A burst of 4: two topics of 2 empty it, a third (not below zero yet) takes it to -2,
	// the fourth finds it below zero.
	if len(refused) != 1 {
		t.Fatalf("refused %v, want one of %v", refused, topics)
	}
	if hook.maxMs.Load() <= 0 {
		t.Fatal("the refusal carried no throttle time")
	}
	testcluster.PollUntil(t, 30*time.Second, "the refused topics created", func() (bool, string) {
		resp, err := adm.CreateTopics(ctxT(t), 2, 1, nil, refused...)
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, topic := range refused {
			switch err := resp[topic].Err; {
			case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
			case errors.Is(err, kerr.ThrottlingQuotaExceeded):
				left = append(left, topic)
			default:
				t.Fatalf("%s: %v", topic, err)
			}
		}
		refused = left
		return len(left) == 0, fmt.Sprintf("%v still refused", left)
	})
	md, err := adm.ListTopics(ctxT(t), topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if d, ok := md[topic]; !ok || d.Err != nil || len(d.Partitions) != 2 {
			t.Fatalf("%s: %+v", topic, d)
		}
	}
}

// TestAutoCreatedTopicsChargeMutationQuota: the partitions of topics a Metadata request
// auto-creates are charged to the client's controller mutation quota as Kafka charges them
// (a permissive quota): every topic is created, also once the bucket is empty, and the
// client's next strict CreateTopics is refused with THROTTLING_QUOTA_EXCEEDED. A client with
// the same quota that auto-created nothing creates its topic.
func TestAutoCreatedTopicsChargeMutationQuota(t *testing.T) {
	tab := &quota.Table{Quotas: map[quota.Entity]quota.Values{
		{ClientID: quota.Named("auto-creator")}: {quota.ControllerMutationRate: mutationRate},
		{ClientID: quota.Named("creator")}:      {quota.ControllerMutationRate: mutationRate},
	}}
	// 10 partitions a topic: three auto-created topics take the burst of 4 to -26, 13 s of
	// refill, so the next CreateTopics finds it below zero however slow the machine.
	n := startWithQuotas(t, tab, "controller.quota.window.num=2", "num.partitions=10", "auto.create.topics.enable=true")
	auto := mutationClient(t, n, "auto-creator", kmsg.CreateTopics, 7)
	for _, batch := range [][]string{{"auto-a", "auto-b"}, {"auto-c"}} { // the second finds the bucket empty
		for _, mt := range metadataFor(t, auto, true, batch...) {
			if err := kerr.ErrorForCode(mt.ErrorCode); err != nil && !errors.Is(err, kerr.LeaderNotAvailable) {
				t.Fatalf("auto-creating %s: %v", *mt.Topic, err)
			}
		}
		for _, topic := range batch {
			if mt, ok := n.Server().Image().Topic(topic); !ok || len(mt.Partitions) != 10 {
				t.Fatalf("%s not auto-created with 10 partitions", topic)
			}
		}
	}
	codes, throttle := mutate(t, auto, kmsg.CreateTopics, []string{"after-auto"}, nil)
	if len(codes) != 1 || codes[0] != kerr.ThrottlingQuotaExceeded.Code || throttle <= 0 {
		t.Fatalf("CreateTopics after auto-creating 30 partitions: codes %v, throttle %d ms; want THROTTLING_QUOTA_EXCEEDED and a throttle", codes, throttle)
	}
	other := mutationClient(t, n, "creator", kmsg.CreateTopics, 7)
	if codes, throttle := mutate(t, other, kmsg.CreateTopics, []string{"fresh"}, nil); len(codes) != 1 || codes[0] != 0 || throttle != 0 {
		t.Fatalf("CreateTopics of a client that auto-created nothing: codes %v, throttle %d ms", codes, throttle)
	}
}
