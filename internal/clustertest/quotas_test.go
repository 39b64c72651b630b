package clustertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// quotaAlter is an AlterClientQuotas request of one entity (user/client-id/ip pairs, "" the
// default) and one op.
func quotaAlter(key string, value float64, remove bool, pairs ...string) *kmsg.AlterClientQuotasRequest {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	for i := 0; i < len(pairs); i += 2 {
		ed := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ed.Type = pairs[i]
		if pairs[i+1] != "" {
			ed.Name = kmsg.StringPtr(pairs[i+1])
		}
		e.Entity = append(e.Entity, ed)
	}
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Value, op.Remove = key, value, remove
	e.Ops = append(e.Ops, op)
	req.Entries = append(req.Entries, e)
	return req
}

// describeQuotasAt describes every quota at addr and renders them as "entity key=value" lines.
func describeQuotasAt(t *testing.T, addr string) string {
	t.Helper()
	resp := requestTo(t, addr, kmsg.NewPtrDescribeClientQuotasRequest()).(*kmsg.DescribeClientQuotasResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("DescribeClientQuotas at %s: error %d", addr, resp.ErrorCode)
	}
	var lines []string
	for _, e := range resp.Entries {
		var parts []string
		for _, d := range e.Entity {
			name := "<default>"
			if d.Name != nil {
				name = *d.Name
			}
			parts = append(parts, d.Type+"="+name)
		}
		for _, v := range e.Values {
			lines = append(lines, fmt.Sprintf("%s %s=%g", strings.Join(parts, ","), v.Key, v.Value))
		}
	}
	return strings.Join(lines, "; ")
}

func alterOK(t *testing.T, addr string, req *kmsg.AlterClientQuotasRequest) {
	t.Helper()
	resp := requestTo(t, addr, req).(*kmsg.AlterClientQuotasResponse)
	if len(resp.Entries) != 1 || resp.Entries[0].ErrorCode != 0 {
		t.Fatalf("AlterClientQuotas at %s: %+v", addr, resp.Entries)
	}
}

// TestClientQuotasForwarded: in three nodes, AlterClientQuotas sent to a broker that is not
// the active controller is forwarded to it, and the forwarding node answers once its own image
// has the change; another broker and another node's controller listener describe it; a
// removal through a controller listener of a node that is not the active controller is
// forwarded too; a refusal keeps Kafka's code and message across the forwarding.
func TestClientQuotasForwarded(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	leader := activeController(t, c)
	via, other := (leader+1)%3, (leader+2)%3

	alterOK(t, c.Nodes[via].Addr(), quotaAlter(quota.ProducerByteRate, 1048576, false, "user", "alice", "client-id", "app1"))
	alterOK(t, c.Nodes[via].Addr(), quotaAlter(quota.ConsumerByteRate, 2097152, false, "client-id", ""))
	if q := c.Server(via).Image().ClientQuotas().Quotas[quota.Entity{User: quota.Named("alice"), ClientID: quota.Named("app1")}]; q[quota.ProducerByteRate] != 1048576 {
		t.Fatalf("the forwarding node's image lacks the quota it altered: %+v", c.Server(via).Image().ClientQuotas().Quotas)
	}
	want := "client-id=<default> consumer_byte_rate=2.097152e+06; user=alice,client-id=app1 producer_byte_rate=1.048576e+06"
	for _, addr := range []string{c.Nodes[other].Addr(), c.ControllerAddr(other), c.Nodes[leader].Addr()} {
		testcluster.PollUntil(t, 10*time.Second, "quotas described at "+addr, func() (bool, string) {
			got := describeQuotasAt(t, addr)
			return got == want, got
		})
	}

	alterOK(t, c.ControllerAddr(other), quotaAlter(quota.ConsumerByteRate, 0, true, "client-id", ""))
	want = "user=alice,client-id=app1 producer_byte_rate=1.048576e+06"
	for _, addr := range []string{c.Nodes[via].Addr(), c.Nodes[leader].Addr()} {
		testcluster.PollUntil(t, 10*time.Second, "quotas after the removal at "+addr, func() (bool, string) {
			got := describeQuotasAt(t, addr)
			return got == want, got
		})
	}

	resp := requestTo(t, c.Nodes[via].Addr(), quotaAlter(quota.ConnectionCreationRate, 1.5, false, "ip", "10.0.0.1")).(*kmsg.AlterClientQuotasResponse)
	if len(resp.Entries) != 1 || resp.Entries[0].ErrorCode != kerr.InvalidRequest.Code || resp.Entries[0].ErrorMessage == nil ||
		*resp.Entries[0].ErrorMessage != "connection_creation_rate cannot be a fractional value." {
		t.Fatalf("a refused alteration through node %d: %+v", via+1, resp.Entries)
	}
}
