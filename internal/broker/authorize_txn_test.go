package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Transactions of a client before transaction.version 2 under ACLs, as Kafka checks them:
// AddPartitionsToTxn needs WRITE on the transactional id, then WRITE on each topic (the
// others OPERATION_NOT_ATTEMPTED); TxnOffsetCommit needs WRITE on the transactional id, READ
// on the group and READ on the topics; WriteTxnMarkers needs CLUSTER_ACTION. With the ACLs a
// franz-go producer capped at the pre-TV2 versions commits a transaction with offsets.
func TestACLTransactionsBeforeTV2(t *testing.T) {
	n := startACLNode(t)
	createTopic(t, n.Node, "t", 1, nil)
	adm := kadm.NewClient(saslUser(t, n, "admin", "admin-secret"))
	// kgo sends the highest version both sides know: cap the client at the clients' versions.
	old := kversion.Stable()
	old.SetMaxKeyVersion(kmsg.AddPartitionsToTxn.Int16(), 3)
	old.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 3)
	alice := saslUser(t, n, "alice", "alice-secret", kgo.MaxVersions(old))

	addPartitions := func() int16 {
		t.Helper()
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = "tx", 1, 0
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := alice.Broker(1).Request(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
	}
	txnOffsetCommit := func() int16 {
		t.Helper()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = "tx", "g", 1, 0, -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset, rp.LeaderEpoch = 1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := alice.Broker(1).Request(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	want := func(what string, got int16, err *kerr.Error) {
		t.Helper()
		if got != err.Code {
			t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), err)
		}
	}
	want("AddPartitionsToTxn without ACLs", addPartitions(), kerr.TransactionalIDAuthorizationFailed)
	want("TxnOffsetCommit without ACLs", txnOffsetCommit(), kerr.TransactionalIDAuthorizationFailed)
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").TransactionalIDs("tx").Operations(kadm.OpWrite, kadm.OpDescribe))
	want("AddPartitionsToTxn without WRITE on the topic", addPartitions(), kerr.TopicAuthorizationFailed)
	want("TxnOffsetCommit without READ on the group", txnOffsetCommit(), kerr.GroupAuthorizationFailed)
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpRead))
	want("TxnOffsetCommit without READ on the topic", txnOffsetCommit(), kerr.TopicAuthorizationFailed)

	// WriteTxnMarkers is for the coordinator: CLUSTER_ACTION, else each partition is
	// CLUSTER_AUTHORIZATION_FAILED (Kafka's error response) and no marker is written.
	m := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = 1, 0, true
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = "t", []int32{0}
	mk.Topics = append(mk.Topics, mt)
	m.Markers = append(m.Markers, mk)
	if r, err := alice.Broker(1).Request(ctxT(t), m); err != nil ||
		r.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice's WriteTxnMarkers: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, r)
	}

	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpWrite, kadm.OpRead, kadm.OpDescribe))
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.Produce.Int16(), 11)
	v.SetMaxKeyVersion(kmsg.EndTxn.Int16(), 4)
	v.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 4)
	p := saslUser(t, n, "alice", "alice-secret", kgo.MaxVersions(v), kgo.TransactionalID("tx"),
		kgo.DefaultProduceTopic("t"), kgo.TransactionTimeout(20*time.Second))
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	if err := runTxn(ctx, p, true, "a", "b"); err != nil {
		t.Fatalf("alice's transaction with the ACLs: %v", err)
	}
}

// The transaction tools' APIs under ACLs: DescribeTransactions answers
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED for an id the principal may not DESCRIBE,
// ListTransactions leaves such ids out, DescribeProducers needs READ on the topic, and
// AlterUserScramCredentials ALTER on the cluster.
func TestACLTransactionTools(t *testing.T) {
	n := startACLNode(t)
	createTopic(t, n.Node, "t", 1, nil)
	admin := saslUser(t, n, "admin", "admin-secret", kgo.TransactionalID("tx-tools"), kgo.DefaultProduceTopic("t"))
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	if err := runTxn(ctx, admin, true, "a"); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(saslUser(t, n, "admin", "admin-secret"))
	check := func(when string, wantVisible bool) {
		t.Helper()
		// A new client each time: kgo keeps a refused topic's metadata error a while.
		alice := kadm.NewClient(saslUser(t, n, "alice", "alice-secret"))
		// kadm finds the coordinator first (FindCoordinator, DESCRIBE on the id too), so the
		// refusal may come from there, as from Kafka.
		d, got := alice.DescribeTransactions(ctxT(t), "tx-tools")
		if got == nil {
			got = d["tx-tools"].Err
		}
		if wantVisible && got != nil || !wantVisible && !errors.Is(got, kerr.TransactionalIDAuthorizationFailed) {
			t.Errorf("%s: DescribeTransactions: %v", when, got)
		}
		l, err := alice.ListTransactions(ctxT(t), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, listed := l["tx-tools"]; listed != wantVisible {
			t.Errorf("%s: ListTransactions lists tx-tools: %v, want %v", when, listed, wantVisible)
		}
		// kadm looks the leader up first (Metadata, which refuses the topic too).
		p, perr := alice.DescribeProducers(ctxT(t), kadm.TopicsSet{"t": {0: {}}})
		if perr == nil {
			perr = p["t"].Partitions[0].Err
		}
		if wantVisible && perr != nil || !wantVisible && !errors.Is(perr, kerr.TopicAuthorizationFailed) {
			t.Errorf("%s: DescribeProducers: %v", when, perr)
		}
	}
	check("without ACLs", false)
	// DESCRIBE on the topic (Metadata answers) is not enough for DescribeProducers: READ is.
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpDescribe))
	dp := kmsg.NewPtrDescribeProducersRequest()
	dpt := kmsg.NewDescribeProducersRequestTopic()
	dpt.Topic, dpt.Partitions = "t", []int32{0}
	dp.Topics = append(dp.Topics, dpt)
	raw, err := saslUser(t, n, "alice", "alice-secret").Broker(1).Request(ctxT(t), dp)
	if err != nil {
		t.Fatal(err)
	}
	if c := raw.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode; c != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("DescribeProducers with DESCRIBE only: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(c))
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").TransactionalIDs("tx-tools").Operations(kadm.OpDescribe))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead))
	check("with DESCRIBE on the id and READ on the topic", true)

	// Its response has no top-level error code: the refusal closes the connection.
	alice := kadm.NewClient(saslUser(t, n, "alice", "alice-secret"))
	res, err := alice.AlterUserSCRAMs(ctxT(t), nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-secret"}})
	if err == nil && !res.AllFailed() {
		t.Errorf("alice's AlterUserScramCredentials succeeded, want it refused")
	}
	if d, err := adm.DescribeUserSCRAMs(ctxT(t), "bob"); err == nil && d["bob"].Err == nil {
		t.Errorf("bob has SCRAM credentials after alice's refused AlterUserScramCredentials: %+v", d["bob"])
	}
}
