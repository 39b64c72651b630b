package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startACLNodeWithGroup is startACLNode with topic t and group g, which committed offset 1 on
// t-0; it returns the node and a super user's admin client (User:ANONYMOUS on PLAINTEXT).
func startACLNodeWithGroup(t *testing.T) (*secNode, *kadm.Client) {
	t.Helper()
	n := startACLNode(t)
	createTopic(t, n.Node, "t", 1, nil)
	adm := newAdmin(t, n.Node)
	if _, err := adm.CommitOffsets(ctxT(t), "g", kadmOffsets("t", 0, 1)); err != nil {
		t.Fatal(err)
	}
	return n, adm
}

// TestACLOffsetDelete: OffsetDelete needs DELETE on the group (else the top-level
// GROUP_AUTHORIZATION_FAILED) and READ on each topic (else each of its partitions
// TOPIC_AUTHORIZATION_FAILED, and the offset stays); with both the offset is deleted. Each step
// adds ACLs to the ones before.
func TestACLOffsetDelete(t *testing.T) {
	n, adm := startACLNodeWithGroup(t)
	alice := saslUser(t, n, "alice", "alice-secret")
	steps := []struct {
		name      string
		acls      *kadm.ACLBuilder
		groupCode int16
		partCode  int16
		kept      bool // the committed offset is still there afterwards
	}{
		{"no ACLs", nil, kerr.GroupAuthorizationFailed.Code, 0, true},
		{"DELETE on the group", kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpDelete), 0, kerr.TopicAuthorizationFailed.Code, true},
		{"and READ on the topic", kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead), 0, 0, false},
	}
	for _, s := range steps {
		if s.acls != nil {
			createACLs(t, adm, s.acls)
		}
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "g"
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = "t"
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), alice.Broker(1)) // the coordinator, without FindCoordinator
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		partCode := int16(-1)
		if len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			partCode = resp.Topics[0].Partitions[0].ErrorCode
		}
		if resp.ErrorCode != s.groupCode || (s.groupCode == 0 && partCode != s.partCode) {
			t.Errorf("%s: group code %d, partition code %d; want %d, %d", s.name, resp.ErrorCode, partCode, s.groupCode, s.partCode)
		}
		offs, err := adm.FetchOffsets(ctxT(t), "g")
		if err != nil {
			t.Fatal(err)
		}
		if _, kept := offs.Lookup("t", 0); kept != s.kept {
			t.Errorf("%s: committed offset kept %v, want %v", s.name, kept, s.kept)
		}
	}
}

// TestACLConsumerGroupDescribe: ConsumerGroupDescribe needs DESCRIBE on each group (else
// the group's GROUP_AUTHORIZATION_FAILED); a group whose member is assigned a topic the
// principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED with no members, as in Kafka.
func TestACLConsumerGroupDescribe(t *testing.T) {
	n := startACLNode(t)
	createTopic(t, n.Node, "t", 1, nil)
	coordinate(t, n.Node, "g")
	joinConsumerGroup(t, n.Node, "g", "member-1", "t") // over PLAINTEXT, a super user
	super := newClient(t, n.Node)
	describe := func(cl *kgo.Client) kmsg.ConsumerGroupDescribeResponseGroup {
		t.Helper()
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{"g"}
		resp, err := req.RequestWith(ctxT(t), cl.Broker(1)) // the coordinator

		if err != nil || len(resp.Groups) != 1 {
			t.Fatalf("ConsumerGroupDescribe: %v %+v", err, resp)
		}
		return resp.Groups[0]
	}
	waitUntil(t, 30*time.Second, "the member is assigned t", func() bool {
		g := describe(super)
		return g.ErrorCode == 0 && len(g.Members) == 1 && len(g.Members[0].TargetAssignment.TopicPartitions) == 1
	})

	adm := newAdmin(t, n.Node)
	alice := saslUser(t, n, "alice", "alice-secret")
	steps := []struct {
		name    string
		acls    *kadm.ACLBuilder
		code    int16
		members int
	}{
		{"no ACLs", nil, kerr.GroupAuthorizationFailed.Code, 0},
		{"DESCRIBE on the group", kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpDescribe), kerr.TopicAuthorizationFailed.Code, 0},
		{"and DESCRIBE on the topic", kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpDescribe), 0, 1},
	}
	for _, s := range steps {
		if s.acls != nil {
			createACLs(t, adm, s.acls)
		}
		g := describe(alice)
		if g.Group != "g" || g.ErrorCode != s.code || len(g.Members) != s.members {
			t.Errorf("%s: group %q code %d with %d members, want code %d and %d members", s.name, g.Group, g.ErrorCode, len(g.Members), s.code, s.members)
		}
	}
}
