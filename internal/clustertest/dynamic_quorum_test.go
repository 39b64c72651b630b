package clustertest

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// requestTo sends req to addr itself (a controller listener serves no Metadata, so a kgo
// client must not route it) and returns the answer.
func requestTo(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := cl.SeedBrokers()[0].Request(ctxT(t), req)
	if err != nil {
		t.Fatalf("%s to %s: %v", kmsg.NameForKey(req.Key()), addr, err)
	}
	return resp
}

func addRaftVoter(t *testing.T, c *testcluster.Cluster, addr string, node int) *kmsg.AddRaftVoterResponse {
	t.Helper()
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.ClusterID = kmsg.StringPtr(c.ClusterID)
	req.TimeoutMillis = 30000
	req.VoterID, req.VoterDirectoryID = int32(node+1), c.DirectoryID(node)
	host, port, _ := net.SplitHostPort(c.ControllerAddr(node))
	p, _ := strconv.Atoi(port)
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = "CONTROLLER", host, uint16(p)
	req.Listeners = append(req.Listeners, l)
	return requestTo(t, addr, req).(*kmsg.AddRaftVoterResponse)
}

func removeRaftVoter(t *testing.T, addr string, id int32, dir metadata.UUID) *kmsg.RemoveRaftVoterResponse {
	t.Helper()
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	req.VoterID, req.VoterDirectoryID = id, dir
	return requestTo(t, addr, req).(*kmsg.RemoveRaftVoterResponse)
}

// msgOf returns *m, or "" for nil.
func msgOf(m *string) string {
	if m == nil {
		return ""
	}
	return *m
}

// describeQuorum asks addr for DescribeQuorum v2 of the metadata partition.
func describeQuorum(t *testing.T, addr string) *kmsg.DescribeQuorumResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp := requestTo(t, addr, req).(*kmsg.DescribeQuorumResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeQuorum from %s: error %d, %d topics", addr, resp.ErrorCode, len(resp.Topics))
	}
	return resp
}

// quorumMembers returns the voters (with directory ids) and observers DescribeQuorum shows.
func quorumMembers(resp *kmsg.DescribeQuorumResponse) (voters map[int32]metadata.UUID, observers []int32) {
	p := resp.Topics[0].Partitions[0]
	voters = map[int32]metadata.UUID{}
	for _, v := range p.CurrentVoters {
		voters[v.ReplicaID] = v.ReplicaDirectoryID
	}
	for _, o := range p.Observers {
		observers = append(observers, o.ReplicaID)
	}
	slices.Sort(observers)
	return voters, observers
}

// waitQuorum waits until DescribeQuorum through addr shows exactly the voters want (by id and
// directory id) and returns the answer.
func waitQuorum(t *testing.T, c *testcluster.Cluster, addr string, want ...int) *kmsg.DescribeQuorumResponse {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		resp := describeQuorum(t, addr)
		voters, _ := quorumMembers(resp)
		ok := len(voters) == len(want)
		for _, i := range want {
			ok = ok && voters[int32(i+1)] == c.DirectoryID(i)
		}
		if ok {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("DescribeQuorum shows voters %v, want nodes %v with their directory ids", voters, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDynamicQuorum grows a dynamic quorum (KIP-853) from one standalone controller to three
// and shrinks it again, the way kafka-metadata-quorum add-controller and remove-controller do:
// node 1 is formatted --standalone (ApiVersions finalizes kraft.version 1); nodes 2 and 3,
// formatted --no-initial-controllers, join as observers; AddRaftVoter promotes node 2 through
// node 1's controller listener and node 3 through a broker listener (forwarded); DescribeQuorum
// v2 shows three voters with their directory ids and endpoints. A broker-only node 4 joins
// through the bootstrap servers. With node 1 killed the other two elect a controller and
// metadata changes commit (node 4 follows them); RemoveRaftVoter (refused for a wrong
// directory id) takes node 1 out; restarted, node 1 rejoins as an observer.
func TestDynamicQuorum(t *testing.T) {
	c := testcluster.StartStandalone(t)
	api := requestTo(t, c.Nodes[0].Addr(), kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if !slices.ContainsFunc(api.FinalizedFeatures, func(f kmsg.ApiVersionsResponseFinalizedFeature) bool {
		return f.Name == "kraft.version" && f.MaxVersionLevel == 1
	}) {
		t.Fatalf("ApiVersions of a dynamic quorum: finalized %+v, want kraft.version 1", api.FinalizedFeatures)
	}
	n2, n3 := c.AddController(), c.AddController()
	voters, observers := quorumMembers(describeQuorum(t, c.ControllerAddr(0)))
	if len(voters) != 1 || voters[1] != c.DirectoryID(0) || !slices.Equal(observers, []int32{2, 3}) {
		t.Fatalf("before AddRaftVoter: voters %v observers %v, want node 1 and observers 2 3", voters, observers)
	}

	if r := addRaftVoter(t, c, c.ControllerAddr(0), n2); r.ErrorCode != 0 {
		t.Fatalf("AddRaftVoter(2) on the controller listener: %v %s", kerr.ErrorForCode(r.ErrorCode), msgOf(r.ErrorMessage))
	}
	if r := addRaftVoter(t, c, c.Nodes[n2].Addr(), n3); r.ErrorCode != 0 {
		t.Fatalf("AddRaftVoter(3) through node 2's broker listener: %v %s", kerr.ErrorForCode(r.ErrorCode), msgOf(r.ErrorMessage))
	}
	if r := addRaftVoter(t, c, c.ControllerAddr(0), n3); r.ErrorCode != kerr.DuplicateVoter.Code {
		t.Fatalf("AddRaftVoter(3) again: error %d, want DUPLICATE_VOTER", r.ErrorCode)
	}
	resp := waitQuorum(t, c, c.ControllerAddr(0), 0, n2, n3)
	if len(resp.Nodes) != 3 || len(resp.Nodes[2].Listeners) != 1 || resp.Nodes[2].Listeners[0].Name != "CONTROLLER" {
		t.Fatalf("DescribeQuorum nodes %+v, want the three voters' controller listeners", resp.Nodes)
	}
	// A broker-only node finds the active controller through the bootstrap servers and
	// follows the metadata log as an observer.
	b := c.AddDynamicBroker()
	if _, observers := quorumMembers(describeQuorum(t, c.ControllerAddr(0))); !slices.Contains(observers, int32(b+1)) {
		t.Fatalf("the broker-only node is not an observer: %v", observers)
	}

	c.KillNode(0)
	adm := adminFor(t, c.Nodes[n2].Addr())
	res, err := adm.CreateTopic(ctxT(t), 1, 2, nil, "after-kill")
	if err = cmp.Or(err, res.Err); err != nil && !strings.Contains(err.Error(), kerr.TopicAlreadyExists.Message) {
		t.Fatalf("CreateTopic with node 1 killed: %v", err)
	}
	waitTopicEverywhere(t, c, "after-kill", 1)

	if r := removeRaftVoter(t, c.ControllerAddr(n3), 1, metadata.UUID{1}); r.ErrorCode != kerr.VoterNotFound.Code {
		t.Fatalf("RemoveRaftVoter with another directory id: error %d, want VOTER_NOT_FOUND", r.ErrorCode)
	}
	if r := removeRaftVoter(t, c.ControllerAddr(n3), 1, c.DirectoryID(0)); r.ErrorCode != 0 {
		t.Fatalf("RemoveRaftVoter(1): %v %s", kerr.ErrorForCode(r.ErrorCode), msgOf(r.ErrorMessage))
	}
	waitQuorum(t, c, c.ControllerAddr(n2), n2, n3)
	res, err = adm.CreateTopic(ctxT(t), 1, 2, nil, "after-remove")
	if err = cmp.Or(err, res.Err); err != nil {
		t.Fatalf("CreateTopic after RemoveRaftVoter: %v", err)
	}

	// The leader stops replicating to a removed server in the background; a restart within
	// that time may still hear from it and learn the leader that way. Let it stop, so the
	// restarted node must find the leader itself: its bootstrap servers name only its own
	// controller listener, its log the voters it last knew (there is no condition to poll).
	time.Sleep(time.Second)
	c.StartNode(0)
	c.WaitBrokers(4)
	waitTopicEverywhere(t, c, "after-remove", 1)
	voters, observers = quorumMembers(describeQuorum(t, c.ControllerAddr(n2)))
	if len(voters) != 2 || !slices.Contains(observers, 1) {
		t.Fatalf("after node 1 restarted: voters %v observers %v, want 2 voters and node 1 an observer", voters, observers)
	}
}

// TestStaticQuorumRefusesRaftVoterChanges: with controller.quorum.voters (kraft.version 0,
// left out of ApiVersions' finalized features) AddRaftVoter and RemoveRaftVoter answer
// UNSUPPORTED_VERSION with Kafka's messages, on the controller listener and through a broker.
func TestStaticQuorumRefusesRaftVoterChanges(t *testing.T) {
	c := testcluster.StartCluster(t, 1)
	api := requestTo(t, c.Nodes[0].Addr(), kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if slices.ContainsFunc(api.FinalizedFeatures, func(f kmsg.ApiVersionsResponseFinalizedFeature) bool { return f.Name == "kraft.version" }) {
		t.Fatalf("a static quorum finalizes kraft.version: %+v", api.FinalizedFeatures)
	}
	for _, addr := range []string{c.ControllerAddr(0), c.Nodes[0].Addr()} {
		add := addRaftVoter(t, c, addr, 0)
		if add.ErrorCode != kerr.UnsupportedVersion.Code || add.ErrorMessage == nil ||
			*add.ErrorMessage != "Cluster doesn't support adding voter because the kraft.version feature is 0" {
			t.Errorf("AddRaftVoter via %s: %d %v", addr, add.ErrorCode, add.ErrorMessage)
		}
		rm := removeRaftVoter(t, addr, 1, c.DirectoryID(0))
		if rm.ErrorCode != kerr.UnsupportedVersion.Code || rm.ErrorMessage == nil ||
			*rm.ErrorMessage != "Cluster doesn't support removing voter because the kraft.version feature is 0" {
			t.Errorf("RemoveRaftVoter via %s: %d %v", addr, rm.ErrorCode, rm.ErrorMessage)
		}
	}
}

// TestDynamicQuorumInitialControllers: three nodes formatted with the same
// --initial-controllers list bootstrap a dynamic quorum of three voters, each with the
// directory id the list gave it; metadata changes commit and the quorum survives a voter's
// stop and restart.
func TestDynamicQuorumInitialControllers(t *testing.T) {
	c := testcluster.StartInitialControllers(t, 3)
	waitQuorum(t, c, c.ControllerAddr(0), 0, 1, 2)
	leader := activeController(t, c)
	c.StopNode(leader)
	other := (leader + 1) % 3
	res, err := adminFor(t, c.Nodes[other].Addr()).CreateTopic(ctxT(t), 1, 2, nil, "initial")
	if err = cmp.Or(err, res.Err); err != nil && !strings.Contains(err.Error(), kerr.TopicAlreadyExists.Message) {
		t.Fatalf("CreateTopic with a voter stopped: %v", err)
	}
	c.StartNode(leader)
	waitTopicEverywhere(t, c, "initial", 1)
	waitQuorum(t, c, c.ControllerAddr(leader), 0, 1, 2)
}
