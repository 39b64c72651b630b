package clustertest

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/auth/authtest"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// tlsFiles writes a CA and a server certificate for 127.0.0.1 (shared by the nodes) and
// returns the settings that point every listener at them.
func tlsFiles(t *testing.T) (*authtest.CA, []string) {
	t.Helper()
	ca, err := authtest.NewCA("samsa test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("broker", "", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	caFile, ks, err := ca.WriteFiles(t.TempDir(), "broker", srv)
	if err != nil {
		t.Fatal(err)
	}
	return ca, []string{"ssl.keystore.type=PEM", "ssl.keystore.location=" + ks,
		"ssl.truststore.type=PEM", "ssl.truststore.location=" + caFile}
}

const standardAuthorizer = "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"

// listenerAddrs returns the addresses of listener name on the running nodes.
func listenerAddrs(c *testcluster.Cluster, name string) []string {
	var out []string
	for i := range c.Nodes {
		if c.Running(i) {
			out = append(out, c.Server(i).ListenerAddr(name))
		}
	}
	return out
}

// newTestClient is a kgo client that the test closes.
func newTestClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.RetryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func scramLogin(user, pass string) kgo.Opt {
	return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
}

func mustACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(ctxT(t), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("CreateAcls %+v: %v", r, r.Err)
		}
	}
}

// TestSecuredCluster is issue 14's "done when": three nodes whose client and inter-broker
// listener is SASL_SSL, the brokers replicating with SCRAM-SHA-512 as User:broker (a super
// user), SCRAM users and ACLs created through the cluster (the ACLs through one broker only).
// alice produces to her RF=3 topic with acks=all and consumes it in her group through every
// broker; bob is refused everywhere (produce, fetch, his group lookup, and Metadata hides the
// topic); a client that does not authenticate is closed; after the leader is killed every
// record alice wrote is still there.
func TestSecuredCluster(t *testing.T) {
	ca, tlsSettings := tlsFiles(t)
	c := testcluster.StartClusterListeners(t, 3, []string{"SASL_SSL"}, append(tlsSettings,
		"inter.broker.listener.name=SASL_SSL",
		"sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
		// The brokers' own login; admin (PLAIN) bootstraps the SCRAM users.
		`listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";`,
		`listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";`,
		standardAuthorizer,
		"super.users=User:broker;User:admin",
		"min.insync.replicas=2",
		"offsets.topic.replication.factor=3",
	)...)
	tlsCfg := kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	addrs := listenerAddrs(c, "SASL_SSL")
	ctx := ctxT(t)

	// The PLAINTEXT listener's User:ANONYMOUS has no rights.
	if _, err := adminFor(t, c.Addrs()[0]).CreateTopic(ctx, 1, 3, nil, "anonymous"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("CreateTopics as User:ANONYMOUS: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	admin := kadm.NewClient(newTestClient(t, kgo.SeedBrokers(addrs[0]), tlsCfg,
		kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())))
	ups := []kadm.UpsertSCRAM{}
	for _, u := range []string{"broker", "alice", "bob"} {
		ups = append(ups, kadm.UpsertSCRAM{User: u, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: u + "-secret"})
	}
	res, err := admin.AlterUserSCRAMs(ctx, nil, ups)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("AlterUserScramCredentials %s: %v", r.User, r.Err)
		}
	}
	// ACLs through the second broker alone.
	adminB := kadm.NewClient(newTestClient(t, kgo.SeedBrokers(addrs[1]), tlsCfg,
		kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())))
	mustACLs(t, adminB, kadm.NewACLs().Allow("User:alice").Topics("alice-t").Operations(kadm.OpWrite, kadm.OpRead))
	mustACLs(t, adminB, kadm.NewACLs().Allow("User:alice").Groups("alice-g").Operations(kadm.OpRead))
	if r, err := admin.CreateTopic(ctx, 1, 3, nil, "alice-t"); err != nil || r.Err != nil {
		t.Fatalf("CreateTopic alice-t: %v %v", err, r.Err)
	}
	waitTopicEverywhere(t, c, "alice-t", 1)

	// alice through every broker: acks=all (idempotent, kgo's default), then her group,
	// through the same broker, reads the records just written from its committed offset and
	// commits.
	const perBroker = 20
	for i, addr := range addrs {
		p := newTestClient(t, kgo.SeedBrokers(addr), tlsCfg, scramLogin("alice", "alice-secret"),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20))
		if err := produceN(t, p, "alice-t", "via"+strconv.Itoa(i), perBroker); err != nil {
			t.Fatalf("alice's acks=all produce through node %d: %v", i+1, err)
		}
		g := newTestClient(t, kgo.SeedBrokers(addr), tlsCfg, scramLogin("alice", "alice-secret"),
			kgo.ConsumerGroup("alice-g"), kgo.ConsumeTopics("alice-t"), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := 0
		for got < perBroker {
			fs := g.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("alice's group read %d records through node %d, want %d", got, i+1, perBroker)
			}
			fs.EachError(func(topic string, p int32, err error) {
				t.Fatalf("alice's group consumer through node %d: %s-%d: %v", i+1, topic, p, err)
			})
			got += fs.NumRecords()
		}
		if err := g.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("alice's commit through node %d: %v", i+1, err)
		}
		g.Close()
	}
	want := perBroker * len(addrs)
	aliceAdm := kadm.NewClient(newTestClient(t, kgo.SeedBrokers(addrs...), tlsCfg, scramLogin("alice", "alice-secret")))
	if offs, err := aliceAdm.FetchOffsets(ctx, "alice-g"); err != nil {
		t.Fatal(err)
	} else if o, _ := offs.Lookup("alice-t", 0); o.At != int64(want) {
		t.Fatalf("alice-g's committed offset %d, want %d", o.At, want)
	}

	// bob is refused on every broker.
	for i, addr := range addrs {
		bob := newTestClient(t, kgo.SeedBrokers(addr), tlsCfg, scramLogin("bob", "bob-secret"))
		id := int32(i + 1)
		if code := rawCode(t, bob, id, produceTo("alice-t")); code != kerr.TopicAuthorizationFailed.Code {
			t.Errorf("bob's produce through node %d: code %d, want TOPIC_AUTHORIZATION_FAILED", id, code)
		}
		if code := rawCode(t, bob, id, fetchFrom(c, "alice-t")); code != kerr.TopicAuthorizationFailed.Code {
			t.Errorf("bob's fetch through node %d: code %d, want TOPIC_AUTHORIZATION_FAILED", id, code)
		}
		if code := rawCode(t, bob, id, findGroup("alice-g")); code != kerr.GroupAuthorizationFailed.Code {
			t.Errorf("bob's FindCoordinator alice-g through node %d: code %d, want GROUP_AUTHORIZATION_FAILED", id, code)
		}
		if topics, err := kadm.NewClient(bob).ListTopics(ctx); err != nil || len(topics) != 0 {
			t.Errorf("bob's Metadata through node %d: %v %v, want no topic", id, err, topics.Names())
		}
	}
	// Without authenticating (TLS alone) a request closes the connection, on every broker;
	// with a wrong password nothing is served.
	for _, addr := range addrs {
		if err := unauthenticatedMetadata(t, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}); !errors.Is(err, io.EOF) {
			t.Errorf("Metadata to %s over TLS without SASL: %v, want the connection closed (EOF)", addr, err)
		}
	}
	wrong := newTestClient(t, kgo.SeedBrokers(addrs...), tlsCfg, scramLogin("alice", "wrong"), kgo.RequestRetries(0))
	if _, err := kadm.NewClient(wrong).ListTopics(ctx); err == nil {
		t.Errorf("a client with a wrong password listed topics")
	}

	// The leader dies; alice's records are all on the new leader.
	mp := waitISR(t, c, "alice-t", 3)
	c.KillNode(int(mp.Leader) - 1)
	survivors := listenerAddrs(c, "SASL_SSL")
	reader := newTestClient(t, kgo.SeedBrokers(survivors...), tlsCfg, scramLogin("alice", "alice-secret"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"alice-t": {0: kgo.NewOffset().AtStart()}}))
	var values []string
	for len(values) < want && ctx.Err() == nil {
		reader.PollFetches(ctx).EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	for i := range addrs {
		for j := range perBroker {
			if v := fmt.Sprintf("via%d-%d", i, j); !slices.Contains(values, v) {
				t.Fatalf("after the leader's death %s is missing (read %d records)", v, len(values))
			}
		}
	}
}

// unauthenticatedMetadata sends a Metadata request over TLS without SASL and returns the
// error reading its answer (io.EOF: the broker closed the connection).
func unauthenticatedMetadata(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	send := func(req kmsg.Request, version int16) error {
		req.SetVersion(version)
		// request header v2: key, version, correlation id 1, client id "t", no tagged fields
		frame := []byte{0, 0, 0, 0, byte(req.Key() >> 8), byte(req.Key()), byte(req.GetVersion() >> 8), byte(req.GetVersion()), 0, 0, 0, 1, 0, 1, 't', 0}
		frame = req.AppendTo(frame)
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(size[:])))
		return err
	}
	// ApiVersions is answered before authentication: the framing is right.
	if err := send(kmsg.NewPtrApiVersionsRequest(), 3); err != nil {
		t.Fatalf("ApiVersions before authentication: %v", err)
	}
	return send(kmsg.NewPtrMetadataRequest(), 12) // a version the broker serves
}

// rawCode sends req to node id and returns the answer's error code for its first resource.
func rawCode(t *testing.T, cl *kgo.Client, id int32, req kmsg.Request) int16 {
	t.Helper()
	resp, err := cl.Broker(int(id)).Request(ctxT(t), req)
	if err != nil {
		t.Fatalf("%s to node %d: %v", kmsg.NameForKey(req.Key()), id, err)
	}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		return r.Topics[0].Partitions[0].ErrorCode
	case *kmsg.FetchResponse:
		return r.Topics[0].Partitions[0].ErrorCode
	case *kmsg.FindCoordinatorResponse:
		return r.Coordinators[0].ErrorCode
	}
	t.Fatalf("no error code for %T", resp)
	return 0
}

func produceTo(topic string) kmsg.Request {
	r := kmsg.NewPtrProduceRequest()
	r.Acks, r.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.Partitions = topic, []kmsg.ProduceRequestTopicPartition{kmsg.NewProduceRequestTopicPartition()}
	r.Topics = append(r.Topics, rt)
	return r
}

func fetchFrom(c *testcluster.Cluster, topic string) kmsg.Request {
	tp, _ := c.Server(runningNode(c, -1)).Image().Topic(topic)
	r := kmsg.NewPtrFetchRequest()
	r.ReplicaID, r.MaxBytes = -1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, tp.ID
	p := kmsg.NewFetchRequestTopicPartition()
	p.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, p)
	r.Topics = append(r.Topics, rt)
	return r
}

func findGroup(group string) kmsg.Request {
	r := kmsg.NewPtrFindCoordinatorRequest()
	r.CoordinatorKeys = []string{group}
	return r
}

// TestPlaintextInterBrokerNeedsClusterAction: with the standard authorizer, brokers whose
// inter-broker listener is PLAINTEXT replicate as User:ANONYMOUS, as in Kafka, whose
// authorizer does not tell listeners apart: until User:ANONYMOUS may CLUSTER_ACTION on the
// cluster (here from 127.0.0.1 only, the brokers' host) a follower's fetches are refused and
// an acks=all write is not acknowledged; once granted, it is.
func TestPlaintextInterBrokerNeedsClusterAction(t *testing.T) {
	c := testcluster.StartClusterListeners(t, 2, []string{"SASL_PLAINTEXT"},
		"sasl.enabled.mechanisms=PLAIN",
		`listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";`,
		standardAuthorizer,
		"super.users=User:admin",
		"min.insync.replicas=2",
	)
	ctx := ctxT(t)
	admin := newTestClient(t, kgo.SeedBrokers(listenerAddrs(c, "SASL_PLAINTEXT")...),
		kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()))
	adm := kadm.NewClient(admin)
	if r, err := adm.CreateTopic(ctx, 1, 2, nil, "plain-ib"); err != nil || r.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, r.Err)
	}
	waitTopicEverywhere(t, c, "plain-ib", 1)
	mp, _ := partitionState(c, 0, "plain-ib", 0)
	produce := func() int16 {
		req := produceTo("plain-ib").(*kmsg.ProduceRequest)
		req.TimeoutMillis = 2000
		req.Topics[0].Partitions[0].Records = encodeBatch(&kgo.Record{Value: []byte("v")})
		resp, err := req.RequestWith(ctx, admin.Broker(int(mp.Leader)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(); code != kerr.RequestTimedOut.Code && code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all write while the follower, User:ANONYMOUS, may not fetch: code %d, want REQUEST_TIMED_OUT or NOT_ENOUGH_REPLICAS", code)
	}
	follower := 2 - int(mp.Leader) // the other node's index
	if end := c.Server(follower).Replicas().Partition("plain-ib", 0).Log().LogEndOffset(); end != 0 {
		t.Fatalf("the follower replicated up to %d without CLUSTER_ACTION", end)
	}
	mustACLs(t, adm, kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("127.0.0.1").Clusters().Operations(kadm.OpClusterAction))
	deadline := time.Now().Add(testTimeout)
	for code := produce(); code != 0; code = produce() {
		if time.Now().After(deadline) {
			t.Fatalf("acks=all write after granting CLUSTER_ACTION: code %d", code)
		}
	}
}
