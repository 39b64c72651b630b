package broker_test

// The newest versions of the group APIs, pinned with raw requests: OffsetCommit and
// OffsetFetch v10 (topics by id), DescribeGroups v6 (KIP-1043) and FindCoordinator v6
// (KIP-932 share keys). The expected answers are Apache Kafka 4.1's.

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// topicIDOf returns the id of an existing topic.
func topicIDOf(t *testing.T, n *testcluster.Node, topic string) [16]byte {
	t.Helper()
	td, err := newAdmin(t, n).ListTopics(ctxT(t), topic)
	if err != nil || td[topic].Err != nil || td[topic].ID == [16]byte{} {
		t.Fatalf("topic id of %s: %+v %v", topic, td[topic], err)
	}
	return td[topic].ID
}

// randomTopicID returns an id no topic has.
func randomTopicID() [16]byte {
	var id [16]byte
	rand.Read(id[:])
	return id
}

// pinnedBroker returns the node's broker (the coordinator of every group) on a client that
// sends key at version v at most: kgo sends the highest version both sides support, so a
// response of another version means the broker does not serve v.
func pinnedBroker(t *testing.T, n *testcluster.Node, key kmsg.Key, v int16) *kgo.Broker {
	return newClient(t, n, kgo.MaxVersions(maxVersion(key, v))).Broker(1)
}

// coordinate asks for the groups' coordinator (v4), which creates __consumer_offsets and waits
// until the groups' partitions are loaded, so that raw group requests sent to the node next
// are answered.
func coordinate(t *testing.T, n *testcluster.Node, groups ...string) {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKeys = groups
	resp, err := req.RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.FindCoordinator, 4))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Coordinators {
		if c.ErrorCode != 0 || c.NodeID != 1 {
			t.Fatalf("coordinator of %s: %+v", c.Key, c)
		}
	}
}

// commitPart is one partition of an OffsetCommit request.
type commitPart struct {
	partition int32
	offset    int64
}

type commitTopic struct {
	name  string // up to v9
	id    [16]byte
	parts []commitPart
}

func commitRequest(group string, topics ...commitTopic) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	for _, ct := range topics {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = ct.name, ct.id
		for _, p := range ct.parts {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p.partition, p.offset
			rp.LeaderEpoch = 3
			rp.Metadata = kmsg.StringPtr("md")
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func sendCommit(t *testing.T, n *testcluster.Node, version int16, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	t.Helper()
	resp, err := req.RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.OffsetCommit, version))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != version {
		t.Fatalf("OffsetCommit answered at v%d, want v%d", resp.Version, version)
	}
	return resp
}

// commitResult is a topic of an OffsetCommit response: its id (v10) or name, and each
// partition's error code, in the response's order.
type commitResult struct {
	name  string
	id    [16]byte
	codes [][2]int32 // partition, error code
}

func commitResults(resp *kmsg.OffsetCommitResponse) []commitResult {
	var out []commitResult
	for _, rt := range resp.Topics {
		r := commitResult{name: rt.Topic, id: rt.TopicID}
		for _, p := range rt.Partitions {
			r.codes = append(r.codes, [2]int32{p.Partition, int32(p.ErrorCode)})
		}
		out = append(out, r)
	}
	return out
}

func checkCommitResults(t *testing.T, what string, resp *kmsg.OffsetCommitResponse, want []commitResult) {
	t.Helper()
	got := commitResults(resp)
	if !slices.EqualFunc(got, want, func(a, b commitResult) bool {
		return a.name == b.name && a.id == b.id && slices.Equal(a.codes, b.codes)
	}) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// fetchTopic is one topic of an OffsetFetch v8+ request or response.
type fetchTopic struct {
	name  string
	id    [16]byte
	parts []fetchPart
}

// fetchPart is a partition of an OffsetFetch response (offset, leader epoch, metadata and
// error) or of a request (partition only).
type fetchPart struct {
	partition int32
	offset    int64
	epoch     int32
	metadata  string
	code      int16
}

// sendFetch fetches one group's offsets at version (topics nil: all of them).
func sendFetch(t *testing.T, n *testcluster.Node, version int16, group string, topics []fetchTopic) kmsg.OffsetFetchResponseGroup {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	if topics != nil {
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
	}
	for _, ft := range topics {
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.TopicID = ft.name, ft.id
		for _, p := range ft.parts {
			rt.Partitions = append(rt.Partitions, p.partition)
		}
		rg.Topics = append(rg.Topics, rt)
	}
	req.Groups = append(req.Groups, rg)
	return sendFetchRequest(t, n, version, req)
}

func sendFetchRequest(t *testing.T, n *testcluster.Node, version int16, req *kmsg.OffsetFetchRequest) kmsg.OffsetFetchResponseGroup {
	t.Helper()
	resp, err := req.RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.OffsetFetch, version))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != version || len(resp.Groups) != 1 {
		t.Fatalf("OffsetFetch answered at v%d with %d groups, want v%d with 1", resp.Version, len(resp.Groups), version)
	}
	return resp.Groups[0]
}

func fetchResults(g kmsg.OffsetFetchResponseGroup) []fetchTopic {
	var out []fetchTopic
	for _, rt := range g.Topics {
		ft := fetchTopic{name: rt.Topic, id: rt.TopicID}
		for _, p := range rt.Partitions {
			md := "<null>"
			if p.Metadata != nil {
				md = *p.Metadata
			}
			ft.parts = append(ft.parts, fetchPart{p.Partition, p.Offset, p.LeaderEpoch, md, p.ErrorCode})
		}
		out = append(out, ft)
	}
	return out
}

func equalFetchTopics(a, b []fetchTopic) bool {
	return slices.EqualFunc(a, b, func(x, y fetchTopic) bool {
		return x.name == y.name && x.id == y.id && slices.Equal(x.parts, y.parts)
	})
}

func checkFetch(t *testing.T, what string, g kmsg.OffsetFetchResponseGroup, want []fetchTopic) {
	t.Helper()
	if g.ErrorCode != 0 {
		t.Fatalf("%s: group error %v", what, kerr.ErrorForCode(g.ErrorCode))
	}
	if got := fetchResults(g); !equalFetchTopics(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// sortByName orders topics by name, for the answers to "all offsets" whose topic order Kafka
// does not define.
func sortByName(ts []fetchTopic) []fetchTopic {
	slices.SortFunc(ts, func(a, b fetchTopic) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return ts
}

func parts(ps ...int32) []fetchPart {
	var out []fetchPart
	for _, p := range ps {
		out = append(out, fetchPart{partition: p})
	}
	return out
}

var (
	codeUnknownTopicID = int32(kerr.UnknownTopicID.Code)
	codeUnknownTP      = int32(kerr.UnknownTopicOrPartition.Code)
)

// TestOffsetCommitFetchV10 commits and fetches offsets by topic id, with Kafka's answers to
// unknown ids, the zero id and unknown partitions, and the order Kafka gives its answers in.
func TestOffsetCommitFetchV10(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "ids", 2, nil)
	createTopic(t, n, "other", 1, nil)
	ids, other, unknown := topicIDOf(t, n, "ids"), topicIDOf(t, n, "other"), randomTopicID()
	coordinate(t, n, "g10", "g9")

	// Refused partitions come first (an unknown partition of a known topic in that topic's
	// entry, ahead of its committed partitions); the coordinator's results are merged after.
	resp := sendCommit(t, n, 10, commitRequest("g10",
		commitTopic{id: ids, parts: []commitPart{{9, 1}, {0, 5}, {1, 7}}},
		commitTopic{id: unknown, parts: []commitPart{{0, 1}, {1, 1}}},
		commitTopic{id: [16]byte{}, parts: []commitPart{{0, 1}}},
		commitTopic{id: other, parts: []commitPart{{0, 2}}},
	))
	checkCommitResults(t, "commit v10", resp, []commitResult{
		{id: ids, codes: [][2]int32{{9, codeUnknownTP}, {0, 0}, {1, 0}}},
		{id: unknown, codes: [][2]int32{{0, codeUnknownTopicID}, {1, codeUnknownTopicID}}},
		{id: [16]byte{}, codes: [][2]int32{{0, codeUnknownTopicID}}},
		{id: other, codes: [][2]int32{{0, 0}}},
	})

	// Fetch by id: the coordinator's topics in request order (a partition without a
	// commit has offset -1 and no error), then the unknown ids with UNKNOWN_TOPIC_ID.
	g := sendFetch(t, n, 10, "g10", []fetchTopic{
		{id: unknown, parts: parts(0)},
		{id: ids, parts: parts(1, 0, 5)},
		{id: [16]byte{}, parts: parts(0)},
		{id: other, parts: parts(0)},
	})
	noOffset := func(p int32, code int16) fetchPart { return fetchPart{p, -1, -1, "", code} }
	checkFetch(t, "fetch v10 by id", g, []fetchTopic{
		{id: ids, parts: []fetchPart{{1, 7, 3, "md", 0}, {0, 5, 3, "md", 0}, noOffset(5, 0)}},
		{id: other, parts: []fetchPart{{0, 2, 3, "md", 0}}},
		{id: unknown, parts: []fetchPart{noOffset(0, kerr.UnknownTopicID.Code)}},
		{id: [16]byte{}, parts: []fetchPart{noOffset(0, kerr.UnknownTopicID.Code)}},
	})

	// All of the group's offsets: every topic named by its id.
	g = sendFetch(t, n, 10, "g10", nil)
	all := fetchResults(g)
	for i := range all {
		all[i].name = map[[16]byte]string{ids: "ids", other: "other"}[all[i].id]
	}
	if want := []fetchTopic{
		{name: "ids", id: ids, parts: []fetchPart{{0, 5, 3, "md", 0}, {1, 7, 3, "md", 0}}},
		{name: "other", id: other, parts: []fetchPart{{0, 2, 3, "md", 0}}},
	}; g.ErrorCode != 0 || !equalFetchTopics(sortByName(all), want) {
		t.Fatalf("fetch v10 all offsets: %v\n got  %+v\n want %+v", kerr.ErrorForCode(g.ErrorCode), all, want)
	}

	// The same offsets by name (v9), and offsets committed by name (v9) fetched by id.
	checkFetch(t, "fetch v9 by name", sendFetch(t, n, 9, "g10", []fetchTopic{{name: "ids", parts: parts(0)}}),
		[]fetchTopic{{name: "ids", parts: []fetchPart{{0, 5, 3, "md", 0}}}})
	resp = sendCommit(t, n, 9, commitRequest("g9",
		commitTopic{name: "nosuch", parts: []commitPart{{0, 1}}},
		commitTopic{name: "other", parts: []commitPart{{0, 4}}},
	))
	checkCommitResults(t, "commit v9", resp, []commitResult{
		{name: "nosuch", codes: [][2]int32{{0, codeUnknownTP}}},
		{name: "other", codes: [][2]int32{{0, 0}}},
	})
	checkFetch(t, "fetch v10 of a commit by name", sendFetch(t, n, 10, "g9", []fetchTopic{{id: other, parts: parts(0)}}),
		[]fetchTopic{{id: other, parts: []fetchPart{{0, 4, 3, "md", 0}}}})

	// A group that does not exist has no offsets; unknown ids are still refused.
	checkFetch(t, "fetch v10 of an unknown group", sendFetch(t, n, 10, "nosuchgroup", []fetchTopic{{id: ids, parts: parts(0)}, {id: unknown, parts: parts(0)}}),
		[]fetchTopic{{id: ids, parts: []fetchPart{noOffset(0, 0)}}, {id: unknown, parts: []fetchPart{noOffset(0, kerr.UnknownTopicID.Code)}}})

	// The coordinator's refusal (a member the empty group does not have) comes after the
	// unknown ids, which never reach it.
	req := commitRequest("g10", commitTopic{id: ids, parts: []commitPart{{0, 6}}}, commitTopic{id: unknown, parts: []commitPart{{0, 1}}})
	req.MemberID, req.Generation = "nobody", 3
	checkCommitResults(t, "commit v10 of an unknown member", sendCommit(t, n, 10, req), []commitResult{
		{id: unknown, codes: [][2]int32{{0, codeUnknownTopicID}}},
		{id: ids, codes: [][2]int32{{0, int32(kerr.UnknownMemberID.Code)}}},
	})
}

// TestOffsetFetchV10DeletedTopic: once a topic is deleted its id is unknown, and the group's
// offsets of it are left out of "all offsets" at v10, which names topics by id only.
func TestOffsetFetchV10DeletedTopic(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "gone", 1, nil)
	createTopic(t, n, "kept", 1, nil)
	gone, kept := topicIDOf(t, n, "gone"), topicIDOf(t, n, "kept")
	coordinate(t, n, "gd")
	checkCommitResults(t, "commit", sendCommit(t, n, 10, commitRequest("gd",
		commitTopic{id: gone, parts: []commitPart{{0, 3}}},
		commitTopic{id: kept, parts: []commitPart{{0, 4}}},
	)), []commitResult{{id: gone, codes: [][2]int32{{0, 0}}}, {id: kept, codes: [][2]int32{{0, 0}}}})

	adm := newAdmin(t, n)
	if r, err := adm.DeleteTopics(ctxT(t), "gone"); err != nil || r.Error() != nil {
		t.Fatalf("delete: %v %v", err, r.Error())
	}
	checkFetch(t, "all offsets after the deletion", sendFetch(t, n, 10, "gd", nil),
		[]fetchTopic{{id: kept, parts: []fetchPart{{0, 4, 3, "md", 0}}}})
	checkFetch(t, "the deleted topic's id", sendFetch(t, n, 10, "gd", []fetchTopic{{id: gone, parts: parts(0)}}),
		[]fetchTopic{{id: gone, parts: []fetchPart{{0, -1, -1, "", kerr.UnknownTopicID.Code}}}})
	resp := sendCommit(t, n, 10, commitRequest("gd", commitTopic{id: gone, parts: []commitPart{{0, 5}}}))
	checkCommitResults(t, "commit to the deleted topic's id", resp, []commitResult{{id: gone, codes: [][2]int32{{0, codeUnknownTopicID}}}})
}

// joinConsumerGroup joins a KIP-848 consumer group with one raw heartbeat (the coordinator
// must be loaded) and returns its answer.
func joinConsumerGroup(t *testing.T, n *testcluster.Node, group, memberID, topic string) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	hr := joinHeartbeat(t, n, group, memberID, topic)
	if hr.ErrorCode != 0 || hr.MemberEpoch < 1 {
		t.Fatalf("join %s: %+v", group, hr)
	}
	return hr
}

// joinHeartbeat sends the first ConsumerGroupHeartbeat of a member and returns the answer.
func joinHeartbeat(t *testing.T, n *testcluster.Node, group, memberID, topic string) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID = group, memberID
	hb.RebalanceTimeoutMillis = 30000
	hb.SubscribedTopicNames = []string{topic}
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hr, err := hb.RequestWith(ctxT(t), newClient(t, n).Broker(1))
	if err != nil {
		t.Fatalf("join %s: %v", group, err)
	}
	return hr
}

// TestOffsetFetchV10GroupError: a group-level error (here a KIP-848 member's stale epoch)
// answers the group with no topics, not even the unknown ids.
func TestOffsetFetchV10GroupError(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "cg", 1, nil)
	id := topicIDOf(t, n, "cg")
	coordinate(t, n, "g848")
	hr := joinConsumerGroup(t, n, "g848", "member-1", "cg")
	fetch := func(epoch int32) kmsg.OffsetFetchResponseGroup {
		req := kmsg.NewPtrOffsetFetchRequest()
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = "g848", kmsg.StringPtr("member-1"), epoch
		for _, tid := range [][16]byte{id, randomTopicID()} {
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.TopicID, rt.Partitions = tid, []int32{0}
			rg.Topics = append(rg.Topics, rt)
		}
		req.Groups = append(req.Groups, rg)
		return sendFetchRequest(t, n, 10, req)
	}
	if g := fetch(hr.MemberEpoch + 1); g.ErrorCode != kerr.StaleMemberEpoch.Code || len(g.Topics) != 0 {
		t.Fatalf("fetch with a stale epoch: %+v", g)
	}
	if g := fetch(hr.MemberEpoch); g.ErrorCode != 0 || len(g.Topics) != 2 || g.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("fetch with the member's epoch: %+v", g)
	}
}

// TestDescribeGroupsV6 checks KIP-1043's GROUP_ID_NOT_FOUND and Kafka's message for unknown
// groups, and that known groups are described as before.
func TestDescribeGroupsV6(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "dg", 1, nil)
	coordinate(t, n, "simple", "live", "nosuch", "")
	sendCommit(t, n, 10, commitRequest("simple", commitTopic{id: topicIDOf(t, n, "dg"), parts: []commitPart{{0, 1}}}))
	m := startMember(t, n, "m", "live", "dg", memberOpts{})
	balanced(t, []*member{m}, 1, []int{1})

	describe := func(version int16, groups ...string) map[string]kmsg.DescribeGroupsResponseGroup {
		t.Helper()
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = groups
		resp, err := req.RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.DescribeGroups, version))
		if err != nil || resp.Version != version || len(resp.Groups) != len(groups) {
			t.Fatalf("describe v%d: %+v %v", version, resp, err)
		}
		out := map[string]kmsg.DescribeGroupsResponseGroup{}
		for _, g := range resp.Groups {
			out[g.Group] = g
		}
		return out
	}
	v6 := describe(6, "nosuch", "", "simple", "live")
	for _, id := range []string{"nosuch", ""} {
		g := v6[id]
		if g.ErrorCode != kerr.GroupIDNotFound.Code || g.ErrorMessage == nil || *g.ErrorMessage != "Group "+id+" not found." ||
			g.State != "Dead" || len(g.Members) != 0 {
			t.Errorf("v6 group %q: %+v", id, g)
		}
	}
	if g := v6["simple"]; g.ErrorCode != 0 || g.ErrorMessage != nil || g.State != "Empty" {
		t.Errorf("v6 empty group: %+v", g)
	}
	if g := v6["live"]; g.ErrorCode != 0 || g.ErrorMessage != nil || g.State != "Stable" || g.ProtocolType != "consumer" || len(g.Members) != 1 {
		t.Errorf("v6 live group: %+v", g)
	}
	// Before v6 an unknown group is Dead, without an error.
	if g := describe(5, "nosuch")["nosuch"]; g.ErrorCode != 0 || g.ErrorMessage != nil || g.State != "Dead" {
		t.Errorf("v5 unknown group: %+v", g)
	}
}

// TestDescribeGroupsV6ConsumerGroup: a KIP-848 consumer group is described through
// DescribeGroups, a Samsa choice (Kafka 4.1 answers GROUP_ID_NOT_FOUND, "not a classic group").
func TestDescribeGroupsV6ConsumerGroup(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "kc", 1, nil)
	coordinate(t, n, "kg")
	joinConsumerGroup(t, n, "kg", "member-1", "kc")
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{"kg"}
	resp, err := req.RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.DescribeGroups, 6))
	if err != nil || resp.Version != 6 {
		t.Fatalf("describe: %+v %v", resp, err)
	}
	if g := resp.Groups[0]; g.ErrorCode != 0 || g.ErrorMessage != nil || g.ProtocolType != "consumer" || len(g.Members) != 1 {
		t.Fatalf("consumer group: %+v", g)
	}
}

// kafkaUUID is Kafka's string form of a topic id (base64url, unpadded).
func kafkaUUID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// TestFindCoordinatorV6 checks group keys at v6 and Kafka 4.1's answers to share keys (key
// type 2) without share groups, and to an unknown key type.
func TestFindCoordinatorV6(t *testing.T) {
	n := startGroupNode(t)
	ctx := ctxT(t)
	find := func(version int16, keyType int8, keys ...string) *kmsg.FindCoordinatorResponse {
		t.Helper()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType = keyType
		if version < 4 {
			req.CoordinatorKey = keys[0]
		} else {
			req.CoordinatorKeys = keys
		}
		resp, err := req.RequestWith(ctx, pinnedBroker(t, n, kmsg.FindCoordinator, version))
		if err != nil || resp.Version != version || version >= 4 && len(resp.Coordinators) != len(keys) {
			t.Fatalf("find coordinator v%d: %+v %v", version, resp, err)
		}
		return resp
	}
	check := func(what string, c kmsg.FindCoordinatorResponseCoordinator, code int16, msg string) {
		t.Helper()
		if c.ErrorCode != code || c.ErrorMessage == nil || *c.ErrorMessage != msg || c.NodeID != -1 || c.Port != -1 {
			t.Errorf("%s %q: %v %+v, want %v %q", what, c.Key, kerr.ErrorForCode(c.ErrorCode), c, kerr.ErrorForCode(code), msg)
		}
	}

	resp := find(6, 0, "g1", "g2")
	for _, c := range resp.Coordinators {
		if c.ErrorCode != 0 || c.NodeID != 1 || c.Port <= 0 || c.Host == "" {
			t.Errorf("group key %q: %+v", c.Key, c)
		}
	}

	topic := kafkaUUID(randomTopicID())
	// groupId:topicId:partition, checked as Kafka's SharePartitionKey.validate does (Java's
	// split drops trailing empty fields; padding is optional; Integer.parseInt takes a sign).
	valid := []string{"sg:" + topic + ":0", "sg:" + topic + ":-1", "sg:" + topic + ":+5", "sg:" + topic + "==:7",
		"sg:" + topic + ":0:", "sg:" + topic + ":0::"}
	invalid := []string{"sg:" + topic, ":" + topic + ":0", " :" + topic + ":0", "sg:" + topic + ":x", "sg:not-an-id:0",
		"sg:" + topic[:21] + ":0", "sg:" + topic + "=:0", "sg:" + topic + "\n:0", "sg:" + topic + ":0:1",
		"sg:" + topic + ":2147483648", "sg::0", ""}
	resp = find(6, 2, append(slices.Clone(valid), invalid...)...)
	for i, c := range resp.Coordinators {
		if i < len(valid) {
			// Kafka names the leader of __share_group_state, which does not exist.
			check("v6 share key", c, kerr.CoordinatorNotAvailable.Code, "")
		} else {
			check("v6 invalid share key", c, kerr.InvalidRequest.Code, "")
		}
	}
	for _, c := range find(5, 2, valid[0]).Coordinators {
		check("v5 share key", c, kerr.InvalidRequest.Code, "")
	}
	if r := find(3, 2, valid[0]); r.ErrorCode != kerr.InvalidRequest.Code || r.ErrorMessage == nil || *r.ErrorMessage != kerr.InvalidRequest.Description || r.NodeID != -1 {
		t.Errorf("v3 share key: %+v", r)
	}
	for _, c := range find(6, 3, "g1").Coordinators {
		check("unknown key type", c, kerr.InvalidRequest.Code, kerr.InvalidRequest.Description)
	}
	for _, c := range find(6, 1, "txn").Coordinators {
		if c.ErrorCode != 0 || c.NodeID != 1 || c.Port <= 0 || c.Host == "" {
			t.Errorf("transactional id %q: %+v", c.Key, c)
		}
	}
}

// TestGroupAPIVersions: ApiVersions advertises the newest versions, so kgo's group members
// (which send the highest version both sides support) commit and fetch with v10.
func TestGroupAPIVersions(t *testing.T) {
	n := startGroupNode(t)
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t), newClient(t, n).Broker(1))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int16]int16{
		kmsg.OffsetCommit.Int16():    10,
		kmsg.OffsetFetch.Int16():     10,
		kmsg.DescribeGroups.Int16():  6,
		kmsg.FindCoordinator.Int16(): 6,
	}
	for _, k := range resp.ApiKeys {
		if v, ok := want[k.ApiKey]; ok {
			if k.MaxVersion != v {
				t.Errorf("%s: max v%d, want v%d", kmsg.NameForKey(k.ApiKey), k.MaxVersion, v)
			}
			delete(want, k.ApiKey)
		}
	}
	if len(want) != 0 {
		t.Errorf("not advertised: %v", want)
	}
}
