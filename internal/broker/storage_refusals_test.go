package broker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// noFloorRoom is a free-space floor above any real volume's free space: with it every log
// directory is below its floor.
const noFloorRoom = "samsa.log.dir.min.free.bytes=9223372036854775807"

// TestFreeSpaceFloor: while the log directory's free space is below its floor
// (samsa.log.dir.min.free.bytes), Produce, CreateTopics, CreatePartitions and Metadata's
// auto-creation answer KAFKA_STORAGE_ERROR naming the directory, instead of taking the space
// or creating partitions that cannot open; reads go on; a node without the floor produces
// again.
func TestFreeSpaceFloor(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "data", 1, nil)
	cl := newClient(t, n)
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "data", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	n.Set(noFloorRoom)
	n.Restart()

	for _, tc := range []struct {
		name string
		// do sends the request and returns the answer's error code and message ("" when the
		// response has no message).
		do func(cl *kgo.Client) (int16, string)
	}{
		{"Produce", func(cl *kgo.Client) (int16, string) {
			p := produceRaw(t, cl, "data", rawBatch(-1, -1, -1, "refused"))
			return p.ErrorCode, deref(p.ErrorMessage)
		}},
		{"CreateTopics", func(cl *kgo.Client) (int16, string) {
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new", 1, 1
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctxT(t), cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].ErrorCode, deref(resp.Topics[0].ErrorMessage)
		}},
		{"CreatePartitions", func(cl *kgo.Client) (int16, string) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "data", 2
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctxT(t), cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].ErrorCode, deref(resp.Topics[0].ErrorMessage)
		}},
		{"Metadata auto-creation", func(cl *kgo.Client) (int16, string) {
			mt := metadataFor(t, cl, true, "auto")[0]
			return mt.ErrorCode, ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := tc.do(newClient(t, n))
			if code != kerr.KafkaStorageError.Code {
				t.Fatalf("error %v (%s), want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code), msg)
			}
			if tc.name != "Metadata auto-creation" && (!strings.Contains(msg, n.Dir) || !strings.Contains(msg, "samsa.log.dir.min.free.bytes")) {
				t.Fatalf("message %q does not name the log directory %s and the floor", msg, n.Dir)
			}
		})
	}
	for _, topic := range []string{"new", "auto"} {
		if mt := metadataFor(t, cl, false, topic)[0]; mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("topic %s: %v, want it not created", topic, kerr.ErrorForCode(mt.ErrorCode))
		}
	}
	if mt := metadataFor(t, cl, false, "data")[0]; len(mt.Partitions) != 1 {
		t.Fatalf("data has %d partitions, want 1", len(mt.Partitions))
	}
	if got := consumeAll(t, n, "data", 1); string(got[0].Value) != "before" {
		t.Fatalf("read %q below the floor, want before", got[0].Value)
	}

	n.Set("samsa.log.dir.min.free.bytes=0")
	n.Restart()
	if p := produceRaw(t, newClient(t, n), "data", rawBatch(-1, -1, -1, "after")); p.ErrorCode != 0 {
		t.Fatalf("produce with the floor disabled: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

// TestAutoCreationBeyondPartitionBudget: a Metadata request whose auto-created topics would
// place more partitions on the broker than samsa.max.partitions.per.broker gets
// POLICY_VIOLATION for the topics that do not fit, which are not created.
func TestAutoCreationBeyondPartitionBudget(t *testing.T) {
	n := testcluster.Start(t, "samsa.max.partitions.per.broker=3", "num.partitions=1")
	cl := newClient(t, n)
	topics := []string{"b1", "b2", "b3", "b4", "b5"}
	created := 0
	for _, mt := range metadataFor(t, cl, true, topics...) {
		switch mt.ErrorCode {
		case 0, kerr.LeaderNotAvailable.Code:
			created++
		case kerr.PolicyViolation.Code:
		default:
			t.Fatalf("topic %s: %v, want created or POLICY_VIOLATION", deref(mt.Topic), kerr.ErrorForCode(mt.ErrorCode))
		}
	}
	if created > 3 {
		t.Fatalf("%d topics of one partition created, the budget is 3", created)
	}
	var hosted int
	for _, mt := range metadataFor(t, cl, false) {
		hosted += len(mt.Partitions)
	}
	if hosted > 3 || hosted != created {
		t.Fatalf("the broker hosts %d partitions after creating %d topics, budget 3", hosted, created)
	}
}

// TestOfflinePartition: a partition whose log cannot be opened (its directory replaced by a
// regular file while the node was down) is offline from its first use: Produce and Fetch
// answer KAFKA_STORAGE_ERROR, and Metadata then shows no leader, LEADER_NOT_AVAILABLE and the
// broker in the offline replicas. Once the directory is back, the retry opens it and it serves its
// records again.
func TestOfflinePartition(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "off", 1, nil)
	if err := newClient(t, n).ProduceSync(ctxT(t), &kgo.Record{Topic: "off", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	dir, aside := filepath.Join(n.Dir, "off-0"), filepath.Join(n.Dir, "off-0.aside")
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Restart()
	cl := newClient(t, n)

	// Logs open on first use: the produce finds the partition unopenable and takes it offline.
	if pr := produceRaw(t, cl, "off", rawBatch(-1, -1, -1, "refused")); pr.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce to an offline partition: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(pr.ErrorCode))
	}
	if code := fetchCode(t, n, "off"); code != kerr.KafkaStorageError.Code {
		t.Fatalf("fetch from an offline partition: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}

	mt := metadataFor(t, cl, false, "off")[0]
	if len(mt.Partitions) != 1 {
		t.Fatalf("off has %d partitions, want 1", len(mt.Partitions))
	}
	p := mt.Partitions[0]
	if p.Leader != -1 || p.ErrorCode != kerr.LeaderNotAvailable.Code || len(p.OfflineReplicas) != 1 || p.OfflineReplicas[0] != 1 {
		t.Fatalf("offline partition: leader %d, %v, offline replicas %v; want -1, LEADER_NOT_AVAILABLE, [1]",
			p.Leader, kerr.ErrorForCode(p.ErrorCode), p.OfflineReplicas)
	}

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, dir); err != nil {
		t.Fatal(err)
	}
	// The manager retries with backoff (1 s, then doubling): poll until it is back.
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := metadataFor(t, cl, false, "off")[0].Partitions[0]
		if p.ErrorCode == 0 && p.Leader == 1 && len(p.OfflineReplicas) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition still offline 30 s after its directory came back: %v", kerr.ErrorForCode(p.ErrorCode))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "off", Value: []byte("back")}).FirstErr(); err != nil {
		t.Fatalf("produce once back: %v", err)
	}
	got := consumeAll(t, n, "off", 2)
	if string(got[0].Value) != "kept" || string(got[1].Value) != "back" {
		t.Fatalf("read %q, %q; want kept, back", got[0].Value, got[1].Value)
	}
}

// metadataFor asks for the topics (all with none), auto-creating them when create is set.
func metadataFor(t *testing.T, cl *kgo.Client, create bool, topics ...string) []kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = create
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics
}

// fetchCode fetches partition 0 of topic from offset 0 (Fetch v12, by name) and returns the
// partition's error code.
func fetchCode(t *testing.T, n *testcluster.Node, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes = -1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.Fetch, 12))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
