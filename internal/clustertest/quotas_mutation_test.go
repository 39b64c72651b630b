package clustertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// createTopicsAt sends one CreateTopics request of topics (partitions each, RF 3) to the
// broker at addr itself (not to the controller kgo would route it to), as clientID, and
// returns the topics' error codes and the response's throttle.
func createTopicsAt(t *testing.T, addr, clientID string, partitions int32, topics ...string) (codes []int16, throttleMs int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(clientID), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, name := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 3
		req.Topics = append(req.Topics, rt)
	}
	resp, err := cl.SeedBrokers()[0].Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.CreateTopicsResponse)
	for _, st := range r.Topics {
		codes = append(codes, st.ErrorCode)
	}
	return codes, r.ThrottleMillis
}

// TestControllerMutationQuotaForwarded: in three nodes, the controller mutation quota is
// charged by the active controller, one bucket per client in the cluster, as in Kafka. A
// quota of 0.5 partitions a second over 8 one-second samples is a burst of 4 (refilling
// slowly enough that the steps below take seconds to matter):
//   - "mutator", through a broker that is not the active controller, creates three topics of
//     three partitions in one request: two are created, the third is refused with
//     THROTTLING_QUOTA_EXCEEDED and a throttle; a client without a quota is not refused;
//   - "spreader" creates 4 partitions through one broker, 4 through the other broker that is
//     not the controller (accepted: the bucket was not below zero), and then one more through
//     the first broker and one through the active controller's node are both refused: the
//     three brokers charged one bucket. (With a bucket per receiving broker, the third and
//     fourth would be accepted.)
func TestControllerMutationQuotaForwarded(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "controller.quota.window.num=8")
	leader := activeController(t, c)
	via, other := (leader+1)%3, (leader+2)%3
	for _, client := range []string{"mutator", "spreader"} {
		alterOK(t, c.Nodes[via].Addr(), quotaAlter(quota.ControllerMutationRate, 0.5, false, "client-id", client))
	}
	for i := range 3 {
		testcluster.PollUntil(t, 10*time.Second, fmt.Sprintf("node %d's image has the quotas", i), func() (bool, string) {
			qs := c.Server(i).Image().ClientQuotas().Quotas
			m, s := qs[quota.Entity{ClientID: quota.Named("mutator")}], qs[quota.Entity{ClientID: quota.Named("spreader")}]
			return m[quota.ControllerMutationRate] == 0.5 && s[quota.ControllerMutationRate] == 0.5, fmt.Sprint(qs)
		})
	}
	throttled := fmt.Sprint([]int16{kerr.ThrottlingQuotaExceeded.Code})
	tests := []struct {
		name, clientID string
		node           int
		partitions     int32
		topics         []string
		wantCodes      string
		wantThrottle   bool
	}{
		{"one request over the burst", "mutator", via, 3, []string{"m-a", "m-b", "m-c"},
			fmt.Sprint([]int16{0, 0, kerr.ThrottlingQuotaExceeded.Code}), true},
		{"no quota", "free", via, 3, []string{"f-a", "f-b", "f-c"}, fmt.Sprint([]int16{0, 0, 0}), false},
		{"first broker", "spreader", via, 4, []string{"s-1"}, fmt.Sprint([]int16{0}), false},
		{"second broker", "spreader", other, 4, []string{"s-2"}, fmt.Sprint([]int16{0}), false},
		{"first broker again", "spreader", via, 1, []string{"s-3"}, throttled, true},
		{"the active controller", "spreader", leader, 1, []string{"s-4"}, throttled, true},
	}
	for _, tt := range tests {
		codes, throttleMs := createTopicsAt(t, c.Nodes[tt.node].Addr(), tt.clientID, tt.partitions, tt.topics...)
		if fmt.Sprint(codes) != tt.wantCodes {
			t.Fatalf("%s (node %d): error codes %v, want %s", tt.name, tt.node+1, codes, tt.wantCodes)
		}
		if (throttleMs > 0) != tt.wantThrottle {
			t.Fatalf("%s (node %d): throttle_time_ms %d, want throttled %v", tt.name, tt.node+1, throttleMs, tt.wantThrottle)
		}
	}
}
