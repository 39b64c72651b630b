package broker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

const aclJAAS = `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";`

// startACLNode starts a node with the standard authorizer and a SASL_PLAINTEXT PLAIN listener
// (admin a super user; the PLAINTEXT listener's User:ANONYMOUS too, for the test helpers).
func startACLNode(t *testing.T) *secNode {
	return startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+aclJAAS,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:admin;User:ANONYMOUS",
		"delegation.token.secret.key=acl-token-secret")
}

func saslUser(t *testing.T, n *secNode, user, pass string, opts ...kgo.Opt) *kgo.Client {
	addr := n.Server().ListenerAddr("SASL_PLAINTEXT")
	return secClient(t, addr, append([]kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())}, opts...)...)
}

// produceErr produces one record to topic and returns its error.
func produceErr(t *testing.T, cl *kgo.Client, topic string) error {
	return cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// rawProduceCode sends one Produce request (no records) for partition 0 of topic and returns
// its error code (the client's metadata does not get in the way).
func rawProduceCode(t *testing.T, cl *kgo.Client, topic string) int16 {
	t.Helper()
	return produceRaw(t, cl, topic, nil).ErrorCode
}

func listedTopics(t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	td, err := kadm.NewClient(cl).ListTopics(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return td.Names()
}

// describeAllACLs describes every ACL (a filter of ANY everything).
func describeAllACLs(t *testing.T, cl *kgo.Client) []kmsg.DescribeACLsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("DescribeAcls: %v, code %d", err, resp.ErrorCode)
	}
	return resp.Resources
}

func createACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(ctxT(t), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v %s", r, r.Err, r.ErrMessage)
		}
	}
}

// TestACLAuthorization: over a SASL PLAIN listener, a user without ACLs is refused produce
// and does not see the topic; an ALLOW lets her write, a DENY wins over it, a super user does
// everything, the ACLs survive a restart and DeleteAcls removes them.
func TestACLAuthorization(t *testing.T) {
	n := startACLNode(t)
	createTopic(t, n.Node, "t", 1, nil)
	alice := saslUser(t, n, "alice", "alice-secret")
	adminCl := saslUser(t, n, "admin", "admin-secret")
	adm := kadm.NewClient(adminCl)

	// No ACLs: alice sees no topic, is refused by name and cannot write.
	if got := listedTopics(t, alice); len(got) != 0 {
		t.Errorf("alice lists %v, want nothing", got)
	}
	if err := produceErr(t, alice, "t"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice's produce without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if code := rawProduceCode(t, alice, "t"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's raw produce: code %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}
	// Nor may she change ACLs.
	res, err := kadm.NewClient(alice).CreateACLs(ctxT(t), kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpWrite))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("alice's CreateAcls: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, res)
	}
	// The super user does everything: writes, lists, creates ACLs.
	if err := produceErr(t, adminCl, "t"); err != nil {
		t.Fatalf("admin's produce: %v", err)
	}
	if got := listedTopics(t, adminCl); !slices.Contains(got, "t") {
		t.Errorf("admin lists %v", got)
	}

	// ALLOW WRITE: alice writes, and sees the topic (WRITE implies DESCRIBE).
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpWrite))
	if err := produceErr(t, alice, "t"); err != nil {
		t.Fatalf("alice's produce with WRITE: %v", err)
	}
	if got := listedTopics(t, alice); !slices.Equal(got, []string{"t"}) {
		t.Errorf("alice lists %v, want [t]", got)
	}
	// A transactional produce needs WRITE on the transactional id too.
	txp := kmsg.NewPtrProduceRequest()
	txp.Acks, txp.TimeoutMillis, txp.TransactionID = -1, 5000, kmsg.StringPtr("tx-a")
	txt := kmsg.NewProduceRequestTopic()
	txt.Topic, txt.Partitions = "t", []kmsg.ProduceRequestTopicPartition{kmsg.NewProduceRequestTopicPartition()}
	txp.Topics = append(txp.Topics, txt)
	if r, err := txp.RequestWith(ctxT(t), alice); err != nil || r.Topics[0].Partitions[0].ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("alice's transactional produce: %v %+v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err, r)
	}
	// A DENY of WRITE from any host wins over the ALLOW (DESCRIBE stays allowed).
	createACLs(t, adm, kadm.NewACLs().Deny("User:alice").DenyHosts("*").Topics("t").Operations(kadm.OpWrite))
	if code := rawProduceCode(t, alice, "t"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's produce under DENY: code %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}

	// The ACLs are in the metadata log: a restart keeps them.
	n.Restart()
	alice = saslUser(t, n, "alice", "alice-secret")
	adminCl = saslUser(t, n, "admin", "admin-secret")
	adm = kadm.NewClient(adminCl)
	if got := describeAllACLs(t, adminCl); len(got) != 1 || len(got[0].ACLs) != 2 {
		t.Fatalf("DescribeAcls after restart: %+v", got)
	}
	if code := rawProduceCode(t, alice, "t"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's produce under DENY after restart: code %d", code)
	}

	// DeleteAcls removes the DENY, then the ALLOW.
	del, err := adm.DeleteACLs(ctxT(t), kadm.NewACLs().Deny("User:alice").DenyHosts("*").Topics("t").Operations(kadm.OpWrite))
	if err != nil || len(del) != 1 || del[0].Err != nil || len(del[0].Deleted) != 1 {
		t.Fatalf("DeleteAcls DENY: %v %+v", err, del)
	}
	if err := produceErr(t, alice, "t"); err != nil {
		t.Fatalf("alice's produce after the DENY's removal: %v", err)
	}
	if _, err := adm.DeleteACLs(ctxT(t), kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("t").Operations(kadm.OpWrite)); err != nil {
		t.Fatal(err)
	}
	if code := rawProduceCode(t, alice, "t"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's produce after the ALLOW's removal: code %d", code)
	}
}

// TestACLAPIsWithoutAuthorizer: without authorizer.class.name the ACL APIs answer
// SECURITY_DISABLED, as Kafka's, and everything else is served as before.
func TestACLAPIsWithoutAuthorizer(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+aclJAAS)
	createTopic(t, n.Node, "t", 1, nil)
	alice := saslUser(t, n, "alice", "alice-secret")
	if err := produceErr(t, alice, "t"); err != nil {
		t.Fatalf("produce: %v", err)
	}
	res, err := kadm.NewClient(alice).CreateACLs(ctxT(t), kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpWrite))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.SecurityDisabled) {
		t.Errorf("CreateAcls: %v %+v, want SECURITY_DISABLED", err, res)
	}
}

// TestACLConsumerGroup: a group consumer needs READ on the topic and on the group (FindCoordinator,
// JoinGroup... OffsetCommit); without the group's ACL it gets GROUP_AUTHORIZATION_FAILED.
// An API checked on the cluster (DescribeUserScramCredentials: DESCRIBE) answers CLUSTER_AUTHORIZATION_FAILED.
func TestACLConsumerGroup(t *testing.T) {
	n := startACLNode(t)
	createTopic(t, n.Node, "t", 1, nil)
	adminCl := saslUser(t, n, "admin", "admin-secret")
	if err := produceErr(t, adminCl, "t"); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(adminCl)
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead))

	consume := func() error {
		cl := saslUser(t, n, "alice", "alice-secret", kgo.ConsumeTopics("t"), kgo.ConsumerGroup("g"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer cl.Close() // a refused member must not join once the group is allowed
		ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
		defer cancel()
		for {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				return err
			}
			if fs.NumRecords() > 0 {
				return cl.CommitUncommittedOffsets(ctx)
			}
		}
	}
	if err := consume(); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Errorf("consume without the group's ACL: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpRead))
	if err := consume(); err != nil {
		t.Errorf("consume with READ on the topic and the group: %v", err)
	}
	offsets, err := kadm.NewClient(saslUser(t, n, "alice", "alice-secret")).FetchOffsets(ctxT(t), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup("t", 0); !ok || o.At != 1 {
		t.Errorf("alice's committed offset %+v, want 1", o)
	}

	// The group admin APIs: DESCRIBE (implied by READ) and DELETE on the group.
	aliceAdm := kadm.NewClient(saslUser(t, n, "alice", "alice-secret"))
	if listed, err := aliceAdm.ListGroups(ctxT(t)); err != nil || !slices.Equal(listed.Groups(), []string{"g"}) {
		t.Errorf("alice's ListGroups: %v %v, want [g]", err, listed.Groups())
	}
	if described, err := aliceAdm.DescribeGroups(ctxT(t), "g"); err != nil || described["g"].Err != nil {
		t.Errorf("alice's DescribeGroups g: %v; %v", err, described["g"].Err)
	}
	// (sent to the broker itself: kgo would ask FindCoordinator, refused first.)
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"other"}
	if dr, err := saslUser(t, n, "alice", "alice-secret").Broker(1).Request(ctxT(t), dg); err != nil || dr.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("alice's DescribeGroups other: %v %+v, want GROUP_AUTHORIZATION_FAILED", err, dr)
	}
	if res, err := aliceAdm.DeleteGroup(ctxT(t), "g"); !errors.Is(err, kerr.GroupAuthorizationFailed) && !errors.Is(res.Err, kerr.GroupAuthorizationFailed) {
		t.Errorf("alice's DeleteGroups without DELETE: %v %v", err, res.Err)
	}

	// Each group API on its own, for a group alice has no ACL on.
	aliceCl := saslUser(t, n, "alice", "alice-secret")
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "other", "m", 1
	// Sent to the broker itself: kgo would route it through FindCoordinator.
	if hr, err := aliceCl.Broker(1).Request(ctxT(t), hb); err != nil || hr.(*kmsg.HeartbeatResponse).ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("alice's Heartbeat: %v %+v, want GROUP_AUTHORIZATION_FAILED", err, hr)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "other"
	if fr, err := fc.RequestWith(ctxT(t), aliceCl); !errors.Is(err, kerr.GroupAuthorizationFailed) && (err != nil || fr.ErrorCode != kerr.GroupAuthorizationFailed.Code) {
		t.Errorf("alice's FindCoordinator: %v %+v, want GROUP_AUTHORIZATION_FAILED", err, fr)
	}

	// EndTxn and AddOffsetsToTxn need WRITE on the transactional id (then READ on the group).
	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID = "tx"
	if r, err := aliceCl.Broker(1).Request(ctxT(t), et); err != nil || r.(*kmsg.EndTxnResponse).ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("alice's EndTxn: %v %+v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err, r)
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").TransactionalIDs("tx").Operations(kadm.OpWrite))
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.Group = "tx", "other"
	if r, err := aliceCl.Broker(1).Request(ctxT(t), ao); err != nil || r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("alice's AddOffsetsToTxn to a group she may not read: %v %+v, want GROUP_AUTHORIZATION_FAILED", err, r)
	}

	req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	resp, err := req.RequestWith(ctxT(t), saslUser(t, n, "alice", "alice-secret"))
	if err != nil || resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice's DescribeUserScramCredentials: %v, code %d, want CLUSTER_AUTHORIZATION_FAILED", err, resp.ErrorCode)
	}
}

// TestACLControllerListener: the brokers' own requests on the controller listener (PLAINTEXT,
// User:ANONYMOUS) are not authorized, so a node whose super users are only the admin starts,
// registers and serves.
func TestACLControllerListener(t *testing.T) {
	n := startSecNode(t, "SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config="+aclJAAS,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:admin")
	adminCl := saslUser(t, n, "admin", "admin-secret")
	if _, err := kadm.NewClient(adminCl).CreateTopic(ctxT(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := produceErr(t, adminCl, "t"); err != nil {
		t.Fatalf("admin's produce: %v", err)
	}
	// The PLAINTEXT client listener's User:ANONYMOUS is an ordinary principal.
	if err := produceErr(t, newClient(t, n.Node), "t"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("anonymous produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// TestACLTopicAdmin: CreateTopics needs CREATE on the cluster or the topic, DeleteTopics DELETE
// on the topic; refused, each topic gets TOPIC_AUTHORIZATION_FAILED.
func TestACLTopicAdmin(t *testing.T) {
	n := startACLNode(t)
	adm := kadm.NewClient(saslUser(t, n, "admin", "admin-secret"))
	alice := kadm.NewClient(saslUser(t, n, "alice", "alice-secret"))
	create := func() error {
		res, err := alice.CreateTopic(ctxT(t), 1, 1, nil, "team-a")
		if err != nil {
			return err
		}
		return res.Err
	}
	del := func() error {
		res, err := alice.DeleteTopics(ctxT(t), "team-a")
		if err != nil {
			return err
		}
		return res["team-a"].Err
	}
	if err := create(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice's CreateTopics without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("team-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate))
	if err := create(); err != nil {
		t.Fatalf("alice's CreateTopics with CREATE on team-*: %v", err)
	}
	// Configs: DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, on the cluster for a broker.
	describe := func() error {
		rcs, err := alice.DescribeTopicConfigs(ctxT(t), "team-a")
		if err != nil {
			return err
		}
		return rcs[0].Err
	}
	if err := describe(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice's DescribeConfigs without DESCRIBE_CONFIGS: %v", err)
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("team-a").Operations(kadm.OpAlterConfigs))
	if err := describe(); err != nil {
		t.Errorf("alice's DescribeConfigs with ALTER_CONFIGS (implying DESCRIBE_CONFIGS): %v", err)
	}
	v := "3600000"
	if res, err := alice.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Name: "log.retention.ms", Value: &v}}, 1); err != nil || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("alice's IncrementalAlterConfigs of a broker: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, res)
	}

	// Sent to the broker itself (kadm asks Metadata first): CreatePartitions needs ALTER on the
	// topic (ALTER_CONFIGS is not ALTER); OffsetForLeaderEpoch DESCRIBE and DeleteRecords DELETE,
	// on a topic alice has no ACL on.
	aliceBroker := saslUser(t, n, "alice", "alice-secret").Broker(1)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "team-a", 2
	cp.Topics = append(cp.Topics, cpt)
	if r, err := aliceBroker.Request(ctxT(t), cp); err != nil || r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's CreatePartitions without ALTER: %v %+v", err, r)
	}
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.ReplicaID = -1
	oet := kmsg.NewOffsetForLeaderEpochRequestTopic()
	oet.Topic, oet.Partitions = "secret", []kmsg.OffsetForLeaderEpochRequestTopicPartition{kmsg.NewOffsetForLeaderEpochRequestTopicPartition()}
	oe.Topics = append(oe.Topics, oet)
	if r, err := aliceBroker.Request(ctxT(t), oe); err != nil || r.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's OffsetForLeaderEpoch: %v %+v", err, r)
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic, drt.Partitions = "secret", []kmsg.DeleteRecordsRequestTopicPartition{kmsg.NewDeleteRecordsRequestTopicPartition()}
	dr.Topics = append(dr.Topics, drt)
	if r, err := aliceBroker.Request(ctxT(t), dr); err != nil || r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's DeleteRecords: %v %+v", err, r)
	}

	// DescribeTopicPartitions (kafka-topics --describe): a named topic alice may not describe
	// is refused, a listing of all leaves it out.
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtpt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	dtpt.Topic = "team-a"
	dtp.Topics = append(dtp.Topics, dtpt)
	if r, err := aliceBroker.Request(ctxT(t), dtp); err != nil || r.(*kmsg.DescribeTopicPartitionsResponse).Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice's DescribeTopicPartitions team-a: %v %+v", err, r)
	}
	dtp.Topics = nil
	if r, err := aliceBroker.Request(ctxT(t), dtp); err != nil || len(r.(*kmsg.DescribeTopicPartitionsResponse).Topics) != 0 {
		t.Errorf("alice's DescribeTopicPartitions of all topics: %v %+v, want none", err, r)
	}

	if err := del(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice's DeleteTopics without DELETE: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("team-a").Operations(kadm.OpDelete))
	if err := del(); err != nil {
		t.Errorf("alice's DeleteTopics with DELETE: %v", err)
	}
}
