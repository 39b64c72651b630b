package controller

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

// dynamicQuorum is a dynamic quorum of in-process controllers: node 1 formatted as its only
// voter (--standalone), the others observers (--no-initial-controllers).
type dynamicQuorum struct {
	*quorum
	dirs []metadata.UUID
}

func startDynamicQuorum(t *testing.T, n int) *dynamicQuorum {
	t.Helper()
	addrs := freeAddrs(t, n)
	q := &dynamicQuorum{quorum: &quorum{t: t, ctrls: make([]*Controller, n)}}
	base := t.TempDir()
	for i := range n {
		q.dirs = append(q.dirs, metadata.UUID{byte(i + 1), 0xd1})
		cfg := testConfig(t, filepath.Join(base, strconv.Itoa(i+1)))
		cfg.NodeID = int32(i + 1)
		cfg.BindAddr = addrs[i]
		cfg.Bootstrap = false
		cfg.Dynamic = true
		cfg.ClusterID = "MkU3OEVBNTcwNTJENDM2Qk"
		if i == 0 {
			cfg.Voters = []Voter{{ID: 1, Addr: addrs[0], DirectoryID: q.dirs[0]}}
		} else {
			cfg.NonVoter, cfg.Advertise = true, addrs[i]
		}
		q.cfgs = append(q.cfgs, cfg)
	}
	for i := range n {
		if err := q.start(i); err != nil {
			t.Fatalf("controller %d: %v", i+1, err)
		}
	}
	if err := q.ctrls[0].WaitReady(testCtx(t)); err != nil {
		t.Fatalf("the standalone voter: %v", err)
	}
	t.Cleanup(func() {
		for i := range n {
			q.stop(i)
		}
	})
	return q
}

// endpoints describes controller i's controller listener.
func (q *dynamicQuorum) endpoints(i int) []metadata.Endpoint {
	host, port, _ := net.SplitHostPort(q.cfgs[i].BindAddr)
	p, _ := strconv.Atoi(port)
	return []metadata.Endpoint{{Listener: "CONTROLLER", Host: host, Port: int32(p), SecurityProtocol: "PLAINTEXT"}}
}

// join has the leader replicate to observer i (its ControllerRegistration) and waits until
// it caught up.
func (q *dynamicQuorum) join(leader, i int) {
	q.t.Helper()
	if err := q.ctrls[leader].RegisterController(testCtx(q.t), int32(i+1), q.endpoints(i)); err != nil {
		q.t.Fatalf("RegisterController(%d): %v", i+1, err)
	}
	if err := q.ctrls[i].WaitReady(testCtx(q.t)); err != nil {
		q.t.Fatalf("observer %d: %v", i+1, err)
	}
}

func voterIDs(vs []Voter) []int32 {
	var ids []int32
	for _, v := range vs {
		ids = append(ids, v.ID)
	}
	return ids
}

func replicaIDs(rs []QuorumReplica) []int32 {
	var ids []int32
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// wantKafkaError fails unless err is a *KafkaError with the code and a message containing msg.
func wantKafkaError(t *testing.T, what string, err error, code *kerr.Error, msg string) {
	t.Helper()
	var ke *KafkaError
	if !errors.As(err, &ke) || !errors.Is(err, code) || !strings.Contains(ke.Message, msg) {
		t.Fatalf("%s: %v, want %s containing %q", what, err, code.Message, msg)
	}
}

// TestDynamicQuorumMembership: a standalone voter commits kraft.version 1 and its own
// description; two observers join, are promoted with AddVoter once caught up and show in
// QuorumInfo with their directory ids; AddVoter refuses a voter twice and a node that does
// not replicate; when the first voter stops the other two elect a leader, which takes
// metadata changes and removes the stopped voter (RemoveVoter refuses a wrong directory id);
// a running voter removed stays an observer that replicates; the last voter stays.
func TestDynamicQuorumMembership(t *testing.T) {
	q := startDynamicQuorum(t, 3)
	l := q.ctrls[0]
	img := l.Image()
	if img.FeatureLevel(FeatureKRaftVersion) != 1 || img.Controllers[1].DirectoryID != q.dirs[0] {
		t.Fatalf("new dynamic quorum: kraft.version %d, controller 1 %+v", img.FeatureLevel(FeatureKRaftVersion), img.Controllers[1])
	}
	q.join(0, 1)
	q.join(0, 2)
	info, err := l.QuorumInfo()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(replicaIDs(info.Voters), []int32{1}) || !slices.Equal(replicaIDs(info.Observers), []int32{2, 3}) {
		t.Fatalf("before AddVoter: voters %v observers %v, want [1] [2 3]", replicaIDs(info.Voters), replicaIDs(info.Observers))
	}

	wantKafkaError(t, "AddVoter of a node that does not replicate", l.AddVoter(testCtx(t), 4, metadata.UUID{4}, q.endpoints(2)),
		kerr.RequestTimedOut, "is not replicating the metadata log")
	wantKafkaError(t, "AddVoter without a controller endpoint", l.AddVoter(testCtx(t), 2, q.dirs[1], nil),
		kerr.InvalidRequest, "do not contain a listener for CONTROLLER")
	for i := 1; i <= 2; i++ {
		if err := l.AddVoter(testCtx(t), int32(i+1), q.dirs[i], q.endpoints(i)); err != nil {
			t.Fatalf("AddVoter(%d): %v", i+1, err)
		}
	}
	wantKafkaError(t, "AddVoter twice", l.AddVoter(testCtx(t), 2, q.dirs[1], q.endpoints(1)),
		kerr.DuplicateVoter, "is already part of the set of voters")
	if got := voterIDs(l.Voters()); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("voters %v, want [1 2 3]", got)
	}
	info, _ = l.QuorumInfo()
	for i, v := range info.Voters {
		if v.DirectoryID != q.dirs[i] || v.LogEndOffset <= 0 || len(v.Endpoints) != 1 {
			t.Errorf("voter %d: %+v, want directory id %s, a log end offset and an endpoint", v.ID, v, q.dirs[i])
		}
	}
	if len(info.Observers) != 0 {
		t.Errorf("observers %v after promotion", replicaIDs(info.Observers))
	}

	q.stop(0)
	nl := q.leader()
	registerBrokers(t, q.ctrls[nl], 2, 3)
	if res := q.ctrls[nl].CreateTopics(testCtx(t), []CreateTopic{{Name: "after", NumPartitions: 1, ReplicationFactor: 1}}, false); res[0].Err != nil {
		t.Fatalf("CreateTopics after the first voter stopped: %v", res[0].Err)
	}
	wantKafkaError(t, "RemoveVoter with another directory id", q.ctrls[nl].RemoveVoter(testCtx(t), 1, metadata.UUID{9}),
		kerr.VoterNotFound, "Cannot remove voter ReplicaKey(id=1")
	if err := q.ctrls[nl].RemoveVoter(testCtx(t), 1, q.dirs[0]); err != nil {
		t.Fatalf("RemoveVoter(1): %v", err)
	}
	if got := voterIDs(q.ctrls[nl].Voters()); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("voters after RemoveVoter %v, want [2 3]", got)
	}
	if res := q.ctrls[nl].CreateTopics(testCtx(t), []CreateTopic{{Name: "after-remove", NumPartitions: 1, ReplicationFactor: 1}}, false); res[0].Err != nil {
		t.Fatalf("CreateTopics after RemoveVoter: %v", res[0].Err)
	}

	// A voter that is still running stays as an observer (Raft non-voter) and keeps
	// replicating; the last voter cannot be removed.
	other := 3 - nl // the follower among indexes 1 and 2
	if err := q.ctrls[nl].RemoveVoter(testCtx(t), int32(other+1), q.dirs[other]); err != nil {
		t.Fatalf("RemoveVoter(%d): %v", other+1, err)
	}
	info, _ = q.ctrls[nl].QuorumInfo()
	if !slices.Equal(replicaIDs(info.Voters), []int32{int32(nl + 1)}) || !slices.Equal(replicaIDs(info.Observers), []int32{int32(other + 1)}) {
		t.Fatalf("after removing a running voter: voters %v observers %v", replicaIDs(info.Voters), replicaIDs(info.Observers))
	}
	if res := q.ctrls[nl].CreateTopics(testCtx(t), []CreateTopic{{Name: "observed", NumPartitions: 1, ReplicationFactor: 1}}, false); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	q.waitTopic("observed")
	wantKafkaError(t, "RemoveVoter of the last voter", q.ctrls[nl].RemoveVoter(testCtx(t), int32(nl+1), q.dirs[nl]),
		kerr.InvalidRequest, "it is the only voter")
}

// TestStaticQuorumRefusesMembershipChanges: with controller.quorum.voters (kraft.version 0)
// AddVoter and RemoveVoter answer UNSUPPORTED_VERSION with Kafka's messages; a voter's
// registration changes nothing and another controller's is refused.
func TestStaticQuorumRefusesMembershipChanges(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	ep := []metadata.Endpoint{{Listener: "CONTROLLER", Host: "127.0.0.1", Port: 1}}
	wantKafkaError(t, "AddVoter", c.AddVoter(testCtx(t), 2, metadata.UUID{2}, ep),
		kerr.UnsupportedVersion, "Cluster doesn't support adding voter because the kraft.version feature is 0")
	wantKafkaError(t, "RemoveVoter", c.RemoveVoter(testCtx(t), 1, metadata.UUID{1}),
		kerr.UnsupportedVersion, "Cluster doesn't support removing voter because the kraft.version feature is 0")
	before := c.Image().Index
	if err := c.RegisterController(testCtx(t), 1, ep); err != nil || c.Image().Index != before {
		t.Fatalf("RegisterController of the voter of a static quorum: %v, index %d -> %d", err, before, c.Image().Index)
	}
	wantKafkaError(t, "RegisterController of an observer", c.RegisterController(testCtx(t), 2, ep),
		kerr.UnsupportedVersion, "the metadata quorum is static")
}

// TestAddVoterWaitsForCatchUp: AddVoter gives up with REQUEST_TIMED_OUT when the observer has
// not caught up by the deadline (here: it stopped after joining, and the log moved on).
func TestAddVoterWaitsForCatchUp(t *testing.T) {
	q := startDynamicQuorum(t, 2)
	q.join(0, 1)
	q.stop(1)
	registerBrokers(t, q.ctrls[0], 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	wantKafkaError(t, "AddVoter of a stopped observer", q.ctrls[0].AddVoter(ctx, 2, q.dirs[1], q.endpoints(1)),
		kerr.RequestTimedOut, "since it is lagging behind")
	if got := voterIDs(q.ctrls[0].Voters()); !slices.Equal(got, []int32{1}) {
		t.Fatalf("voters %v, want [1]", got)
	}
}

// TestWritesWaitForAppliedLog: a leader that has not yet applied the log of its term's start
// (its barrier) runs one before it decides anything against its image: a membership request
// and a quota change made then are served (not refused), and a barrier entry was appended
// before the validate-only quota change, which proposes nothing itself.
func TestWritesWaitForAppliedLog(t *testing.T) {
	q := startDynamicQuorum(t, 2)
	l := q.ctrls[0]
	term := l.appliedTerm.Swap(0)
	before := l.raft.LastIndex()
	alice := "alice"
	for _, r := range l.AlterClientQuotas(testCtx(t), []QuotaAlteration{{
		Entity: []metadata.QuotaEntityData{{EntityType: metadata.QuotaEntityUser, EntityName: &alice}},
		Ops:    []QuotaOp{{Key: quota.ProducerByteRate, Value: 1024}},
	}}, true) {
		if r.Err != nil {
			t.Fatalf("a validate-only quota change before the barrier: %v", r.Err)
		}
	}
	if got := l.appliedTerm.Load(); got != term {
		t.Fatalf("applied term %d after the first write, want %d", got, term)
	}
	if after := l.raft.LastIndex(); after <= before {
		t.Fatalf("last index %d, was %d: no barrier was appended", after, before)
	}
	l.appliedTerm.Store(0)
	q.join(0, 1) // RegisterController and AddVoter, each with their barrier check
	if got := l.appliedTerm.Load(); got != term {
		t.Fatalf("applied term %d after the membership change, want %d", got, term)
	}
}
