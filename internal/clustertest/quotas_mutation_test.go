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

// TestControllerMutationQuotaForwarded: in three nodes, a client with a controller mutation
// quota creating topics through a broker that is not the active controller is held to it by
// that broker: of three topics of three partitions against a burst of 4 (2 a second over 2
// samples), two are created (forwarded to the controller, whose listener does not charge the
// forwarding broker) and the third is refused with THROTTLING_QUOTA_EXCEEDED and a throttle;
// a client without quota creating the same through the same broker is not refused.
func TestControllerMutationQuotaForwarded(t *testing.T) {
	c := testcluster.StartCluster(t, 3, "controller.quota.window.num=2")
	leader := activeController(t, c)
	via := (leader + 1) % 3
	alterOK(t, c.Nodes[via].Addr(), quotaAlter(quota.ControllerMutationRate, 2, false, "client-id", "mutator"))
	for i := range 3 {
		testcluster.PollUntil(t, 10*time.Second, fmt.Sprintf("node %d's image has the quota", i), func() (bool, string) {
			q := c.Server(i).Image().ClientQuotas().Quotas[quota.Entity{ClientID: quota.Named("mutator")}]
			return q[quota.ControllerMutationRate] == 2, fmt.Sprint(q)
		})
	}
	tests := []struct {
		clientID  string
		wantCodes string
	}{
		{"mutator", fmt.Sprint([]int16{0, 0, kerr.ThrottlingQuotaExceeded.Code})},
		{"free", fmt.Sprint([]int16{0, 0, 0})},
	}
	for _, tt := range tests {
		t.Run(tt.clientID, func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.Nodes[via].Addr()), kgo.ClientID(tt.clientID), kgo.RequestRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 30000
			for _, s := range []string{"a", "b", "c"} {
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tt.clientID+"-"+s, 3, 3
				req.Topics = append(req.Topics, rt)
			}
			// To the broker itself, not to the controller kgo would route it to.
			resp, err := cl.SeedBrokers()[0].Request(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			r := resp.(*kmsg.CreateTopicsResponse)
			var codes []int16
			for _, st := range r.Topics {
				codes = append(codes, st.ErrorCode)
			}
			if fmt.Sprint(codes) != tt.wantCodes {
				t.Fatalf("error codes %v, want %s", codes, tt.wantCodes)
			}
			if throttled := tt.clientID == "mutator"; (r.ThrottleMillis > 0) != throttled {
				t.Fatalf("throttle_time_ms %d, want throttled %v", r.ThrottleMillis, throttled)
			}
		})
	}
}
