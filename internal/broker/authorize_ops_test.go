package broker_test

import (
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// opsBits encodes operations as Kafka's authorized-operations bitfield.
func opsBits(ops ...kadm.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		bits |= 1 << uint(op)
	}
	return bits
}

// TestAuthorizedOperations: the "authorized operations" fields as Kafka fills them, read
// through kadm (Metadata with WithAuthorizedOps, DescribeGroups, DescribeConsumerGroups) and
// raw requests (Metadata v10's cluster operations, DescribeCluster, DescribeTopicPartitions):
// the operations the principal is allowed, implied ones included (READ implies DESCRIBE);
// every operation of the resource type for a super user; the cluster's are 0 without
// DESCRIBE on it; -2147483648 when not asked for.
func TestAuthorizedOperations(t *testing.T) {
	n, adm := startACLNodeWithGroup(t)
	coordinate(t, n.Node, "g848")
	joinConsumerGroup(t, n.Node, "g848", "member-1", "t")
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("t").Groups("g848").Operations(kadm.OpRead))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpDescribe))
	alice := saslUser(t, n, "alice", "alice-secret")
	admin := saslUser(t, n, "admin", "admin-secret")
	// The same principals with Metadata at v10, the last with the cluster's operations.
	v10 := kversion.Stable()
	v10.SetMaxKeyVersion(kmsg.Metadata.Int16(), 10)
	metadataV10 := map[*kgo.Client]*kgo.Client{
		alice: saslUser(t, n, "alice", "alice-secret", kgo.MaxVersions(v10)),
		admin: saslUser(t, n, "admin", "admin-secret", kgo.MaxVersions(v10)),
	}

	topicOps := func(cl *kgo.Client) int32 {
		m, err := kadm.NewClient(cl).Metadata(kadm.WithAuthorizedOps(ctxT(t)), "t")
		if err != nil || m.Topics["t"].Err != nil {
			t.Fatalf("Metadata: %v %v", err, m.Topics["t"].Err)
		}
		return opsBits(m.Topics["t"].AuthorizedOperations...)
	}
	dtpOps := func(cl *kgo.Client) int32 {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit = 10
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = "t"
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("DescribeTopicPartitions: %v %+v", err, resp)
		}
		return resp.Topics[0].AuthorizedOperations
	}
	groupOps := func(cl *kgo.Client) int32 {
		d, err := kadm.NewClient(cl).DescribeGroups(ctxT(t), "g")
		if err != nil || d["g"].Err != nil {
			t.Fatalf("DescribeGroups: %v %v", err, d["g"].Err)
		}
		return opsBits(d["g"].AuthorizedOperations...)
	}
	consumerGroupOps := func(cl *kgo.Client) int32 {
		var d kadm.DescribedConsumerGroups
		waitUntil(t, 30*time.Second, "g848 described with its member", func() bool {
			var err error
			d, err = kadm.NewClient(cl).DescribeConsumerGroups(ctxT(t), "g848")
			return err == nil && d["g848"].Err == nil && len(d["g848"].Members) == 1
		})
		return opsBits(d["g848"].AuthorizedOperations...)
	}
	clusterOps := func(include bool) func(cl *kgo.Client) int32 {
		return func(cl *kgo.Client) int32 {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.IncludeClusterAuthorizedOperations = include
			resp, err := req.RequestWith(ctxT(t), cl)
			if err != nil || resp.ErrorCode != 0 {
				t.Fatalf("DescribeCluster: %v %+v", err, resp)
			}
			// Metadata v10 answers the same.
			m := kmsg.NewPtrMetadataRequest()
			m.IncludeClusterAuthorizedOperations = include
			mr, err := m.RequestWith(ctxT(t), metadataV10[cl])
			if err != nil || mr.Version != 10 {
				t.Fatalf("Metadata: %v, version %d", err, mr.Version)
			}
			if got := mr.AuthorizedOperations; got != resp.ClusterAuthorizedOperations {
				t.Errorf("Metadata v10's cluster operations %d, DescribeCluster's %d", got, resp.ClusterAuthorizedOperations)
			}
			return resp.ClusterAuthorizedOperations
		}
	}

	allTopic := opsBits(kadm.OpRead, kadm.OpWrite, kadm.OpCreate, kadm.OpDescribe, kadm.OpDelete, kadm.OpAlter, kadm.OpDescribeConfigs, kadm.OpAlterConfigs)
	allGroup := opsBits(kadm.OpRead, kadm.OpDescribe, kadm.OpDelete, kadm.OpDescribeConfigs, kadm.OpAlterConfigs)
	allCluster := opsBits(kadm.OpCreate, kadm.OpClusterAction, kadm.OpDescribeConfigs, kadm.OpAlterConfigs, kadm.OpIdempotentWrite, kadm.OpAlter, kadm.OpDescribe)
	cases := []struct {
		name string
		acls *kadm.ACLBuilder // created before the case
		ops  func(cl *kgo.Client) int32
		cl   *kgo.Client
		want int32
	}{
		{"topic, alice (READ)", nil, topicOps, alice, opsBits(kadm.OpRead, kadm.OpDescribe)},
		{"topic, super user", nil, topicOps, admin, allTopic},
		{"DescribeTopicPartitions, alice", nil, dtpOps, alice, opsBits(kadm.OpRead, kadm.OpDescribe)},
		{"DescribeTopicPartitions, super user", nil, dtpOps, admin, allTopic},
		{"group, alice (DESCRIBE)", nil, groupOps, alice, opsBits(kadm.OpDescribe)},
		{"group, super user", nil, groupOps, admin, allGroup},
		{"consumer group, alice (READ)", nil, consumerGroupOps, alice, opsBits(kadm.OpRead, kadm.OpDescribe)},
		{"consumer group, super user", nil, consumerGroupOps, admin, allGroup},
		{"cluster not asked for", nil, clusterOps(false), admin, math.MinInt32},
		{"cluster, super user", nil, clusterOps(true), admin, allCluster},
		{"cluster, alice without DESCRIBE", kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpIdempotentWrite), clusterOps(true), alice, 0},
		{"cluster, alice with DESCRIBE", kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpDescribe), clusterOps(true), alice, opsBits(kadm.OpIdempotentWrite, kadm.OpDescribe)},
	}
	for _, c := range cases {
		if c.acls != nil {
			createACLs(t, adm, c.acls)
		}
		if got := c.ops(c.cl); got != c.want {
			t.Errorf("%s: authorized operations %v (%d), want %v (%d)", c.name, kadm.DecodeACLOperations(got), got, kadm.DecodeACLOperations(c.want), c.want)
		}
	}
}
