package controller

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// errBadValue is what the test config validator returns.
var errBadValue = errors.New("bad value")

// topicController starts a controller with brokers 1, 2, 3, default partitions 3, default
// replication factor 2, a validator that rejects the value "bad", and topics "existing" and
// "a_b".
func topicController(t *testing.T) *Controller {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.DefaultPartitions = 3
	cfg.DefaultReplicationFactor = 2
	validate := func(name, value string) error {
		if value == "bad" {
			return errBadValue
		}
		return nil
	}
	cfg.ValidateTopicConfig = validate
	cfg.ValidateBrokerConfig = validate
	c := startController(t, cfg)
	registerBrokers(t, c, 1, 2, 3)
	res := c.CreateTopics(testCtx(t), []CreateTopic{
		{Name: "existing", NumPartitions: 2, ReplicationFactor: 2},
		{Name: "a_b", NumPartitions: 1, ReplicationFactor: 1},
	}, false)
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return c
}

func TestCreateTopics(t *testing.T) {
	c := topicController(t)
	tests := []struct {
		name      string
		req       CreateTopic
		wantErr   *kerr.Error
		wantParts int32
		wantRF    int16
	}{
		{name: "defaults", req: CreateTopic{Name: "t-defaults", NumPartitions: -1, ReplicationFactor: -1}, wantParts: 3, wantRF: 2},
		{name: "explicit", req: CreateTopic{Name: "t.explicit", NumPartitions: 6, ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "5"}}, wantParts: 6, wantRF: 3},
		{name: "manual assignment", req: CreateTopic{Name: "t_manual", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {2, 3}, 1: {3, 1}}}, wantParts: 2, wantRF: 2},
		{name: "longest name", req: CreateTopic{Name: strings.Repeat("x", 249), NumPartitions: 1, ReplicationFactor: 1}, wantParts: 1, wantRF: 1},
		{name: "empty name", req: CreateTopic{Name: "", NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.InvalidTopicException},
		{name: "dot", req: CreateTopic{Name: ".", NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.InvalidTopicException},
		{name: "dot dot", req: CreateTopic{Name: "..", NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.InvalidTopicException},
		{name: "too long", req: CreateTopic{Name: strings.Repeat("y", 250), NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.InvalidTopicException},
		{name: "illegal character", req: CreateTopic{Name: "a/b", NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.InvalidTopicException},
		{name: "space", req: CreateTopic{Name: "a b", NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.InvalidTopicException},
		{name: "collision", req: CreateTopic{Name: "a.b", NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.InvalidTopicException},
		{name: "exists", req: CreateTopic{Name: "existing", NumPartitions: 1, ReplicationFactor: 1}, wantErr: kerr.TopicAlreadyExists},
		{name: "zero partitions", req: CreateTopic{Name: "p0", NumPartitions: 0, ReplicationFactor: 1}, wantErr: kerr.InvalidPartitions},
		{name: "negative partitions", req: CreateTopic{Name: "pneg", NumPartitions: -2, ReplicationFactor: 1}, wantErr: kerr.InvalidPartitions},
		{name: "too many partitions", req: CreateTopic{Name: "pbig", NumPartitions: maxPartitionsPerCreate + 1, ReplicationFactor: 1}, wantErr: kerr.PolicyViolation},
		{name: "zero replication factor", req: CreateTopic{Name: "rf0", NumPartitions: 1, ReplicationFactor: 0}, wantErr: kerr.InvalidReplicationFactor},
		{name: "replication factor above brokers", req: CreateTopic{Name: "rf4", NumPartitions: 1, ReplicationFactor: 4}, wantErr: kerr.InvalidReplicationFactor},
		{name: "invalid config", req: CreateTopic{Name: "cfg", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "bad"}}, wantErr: kerr.InvalidConfig},
		{name: "assignment unknown broker", req: CreateTopic{Name: "as1", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1, 9}}}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "assignment repeated broker", req: CreateTopic{Name: "as2", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1, 1}}}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "assignment uneven", req: CreateTopic{Name: "as3", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1, 2}, 1: {3}}}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "assignment gap", req: CreateTopic{Name: "as4", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1}, 2: {2}}}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "assignment empty replicas", req: CreateTopic{Name: "as5", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {}}}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "assignment and count", req: CreateTopic{Name: "as6", NumPartitions: 1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1}}}, wantErr: kerr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.Image()
			res := c.CreateTopics(testCtx(t), []CreateTopic{tt.req}, false)
			if len(res) != 1 || res[0].Name != tt.req.Name {
				t.Fatalf("results %+v", res)
			}
			r := res[0]
			if tt.wantErr != nil {
				if !errors.Is(r.Err, tt.wantErr) || ErrorCode(r.Err) != tt.wantErr.Code {
					t.Fatalf("err = %v, want %v", r.Err, tt.wantErr)
				}
				if c.Image() != before {
					t.Errorf("a failed create changed the image")
				}
				return
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.ID.IsZero() || r.NumPartitions != tt.wantParts || r.ReplicationFactor != tt.wantRF {
				t.Fatalf("result %+v", r)
			}
			topic, ok := c.Image().Topic(tt.req.Name)
			if !ok || topic.ID != r.ID || int32(len(topic.Partitions)) != tt.wantParts || topic.ReplicationFactor() != tt.wantRF {
				t.Fatalf("image topic %+v", topic)
			}
			if byID, _ := c.Image().TopicByID(r.ID); byID != topic {
				t.Errorf("topic not indexed by ID")
			}
			if !maps.Equal(topic.Configs, tt.req.Configs) {
				t.Errorf("configs %v, want %v", topic.Configs, tt.req.Configs)
			}
			for i, p := range topic.Partitions {
				if p.Partition != int32(i) || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
					t.Errorf("partition %+v", p)
				}
				if want, ok := tt.req.Assignments[int32(i)]; ok && !slices.Equal(p.Replicas, want) {
					t.Errorf("partition %d replicas %v, want %v", i, p.Replicas, want)
				}
			}
		})
	}
}

func TestCreateTopicsPlacement(t *testing.T) {
	c := topicController(t)
	res := c.CreateTopics(testCtx(t), []CreateTopic{{Name: "spread", NumPartitions: 6, ReplicationFactor: 3}}, false)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	topic, _ := c.Image().Topic("spread")
	leaders := map[int32]int{}
	for _, p := range topic.Partitions {
		leaders[p.Leader]++
		sorted := slices.Sorted(slices.Values(p.Replicas))
		if !slices.Equal(sorted, []int32{1, 2, 3}) {
			t.Errorf("partition %d replicas %v: want one on each broker", p.Partition, p.Replicas)
		}
	}
	for _, id := range []int32{1, 2, 3} {
		if leaders[id] != 2 {
			t.Errorf("leaders per broker %v: want 2 each", leaders)
			break
		}
	}
}

func TestCreateTopicsBatch(t *testing.T) {
	c := topicController(t)
	res := c.CreateTopics(testCtx(t), []CreateTopic{
		{Name: "one", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "dup", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "existing", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "dup", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "x.y", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "x_y", NumPartitions: 1, ReplicationFactor: 1},
	}, false)
	want := []*kerr.Error{nil, kerr.InvalidRequest, kerr.TopicAlreadyExists, kerr.InvalidRequest, nil, kerr.InvalidTopicException}
	for i, r := range res {
		if want[i] == nil && r.Err != nil || want[i] != nil && !errors.Is(r.Err, want[i]) {
			t.Errorf("result %d (%s): err %v, want %v", i, r.Name, r.Err, want[i])
		}
	}
	img := c.Image()
	for name, want := range map[string]bool{"one": true, "dup": false, "x.y": true, "x_y": false} {
		if _, ok := img.Topic(name); ok != want {
			t.Errorf("topic %q exists = %v, want %v", name, ok, want)
		}
	}
	if res[0].ID == res[4].ID {
		t.Errorf("two topics got the same ID")
	}
}

func TestCreateTopicsValidateOnly(t *testing.T) {
	c := topicController(t)
	before := c.Image()
	res := c.CreateTopics(testCtx(t), []CreateTopic{
		{Name: "dry", NumPartitions: -1, ReplicationFactor: -1},
		{Name: "existing", NumPartitions: 1, ReplicationFactor: 1},
	}, true)
	if res[0].Err != nil || res[0].NumPartitions != 3 || res[0].ReplicationFactor != 2 || !res[0].ID.IsZero() {
		t.Errorf("valid result %+v", res[0])
	}
	if !errors.Is(res[1].Err, kerr.TopicAlreadyExists) {
		t.Errorf("invalid result %+v", res[1])
	}
	if err := c.CreatePartitions(testCtx(t), "existing", 5, nil, true); err != nil {
		t.Errorf("validate-only CreatePartitions: %v", err)
	}
	if err := c.CreatePartitions(testCtx(t), "existing", 1, nil, true); !errors.Is(err, kerr.InvalidPartitions) {
		t.Errorf("validate-only CreatePartitions shrinking: %v", err)
	}
	if err := c.AlterConfigs(testCtx(t), metadata.ResourceTopic, "existing", map[string]string{"k": "v"}, nil, true); err != nil {
		t.Errorf("validate-only AlterConfigs: %v", err)
	}
	if err := c.AlterConfigs(testCtx(t), metadata.ResourceTopic, "existing", map[string]string{"k": "bad"}, nil, true); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("validate-only AlterConfigs with a bad value: %v", err)
	}
	if c.Image() != before {
		t.Errorf("validate-only requests changed the image")
	}
}

func TestDeleteTopics(t *testing.T) {
	c := topicController(t)
	ctx := testCtx(t)
	res := c.CreateTopics(ctx, []CreateTopic{
		{Name: "d1", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "d2", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "d3", NumPartitions: 1, ReplicationFactor: 1},
	}, false)
	d2, d3 := res[1].ID, res[2].ID
	tests := []struct {
		name     string
		names    []string
		ids      [][16]byte
		wantErrs []*kerr.Error
		gone     []string
	}{
		{name: "by name", names: []string{"d1"}, wantErrs: []*kerr.Error{nil}, gone: []string{"d1"}},
		{name: "by id", ids: [][16]byte{d2}, wantErrs: []*kerr.Error{nil}, gone: []string{"d2"}},
		{name: "unknown name", names: []string{"nope"}, wantErrs: []*kerr.Error{kerr.UnknownTopicOrPartition}},
		{name: "deleted name", names: []string{"d1"}, wantErrs: []*kerr.Error{kerr.UnknownTopicOrPartition}},
		{name: "unknown id", ids: [][16]byte{{9, 9}}, wantErrs: []*kerr.Error{kerr.UnknownTopicID}},
		{name: "duplicate names", names: []string{"d3", "d3"}, wantErrs: []*kerr.Error{kerr.InvalidRequest, kerr.InvalidRequest}},
		{name: "duplicate ids", ids: [][16]byte{d3, d3}, wantErrs: []*kerr.Error{kerr.InvalidRequest, kerr.InvalidRequest}},
		{name: "same topic by name and id", names: []string{"d3"}, ids: [][16]byte{d3}, wantErrs: []*kerr.Error{nil, kerr.InvalidRequest}, gone: []string{"d3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.DeleteTopics(testCtx(t), tt.names, tt.ids)
			if len(got) != len(tt.wantErrs) {
				t.Fatalf("%d results, want %d", len(got), len(tt.wantErrs))
			}
			for i, r := range got {
				want := tt.wantErrs[i]
				if want == nil && r.Err != nil || want != nil && !errors.Is(r.Err, want) {
					t.Errorf("result %d: err %v, want %v", i, r.Err, want)
				}
				if want == nil && (r.Name == "" || r.ID.IsZero()) {
					t.Errorf("result %d lacks name or ID: %+v", i, r)
				}
			}
			for _, name := range tt.gone {
				if _, ok := c.Image().Topic(name); ok {
					t.Errorf("topic %q still exists", name)
				}
			}
		})
	}
	// A deleted name can be created again, with a new ID.
	res = c.CreateTopics(ctx, []CreateTopic{{Name: "d2", NumPartitions: 1, ReplicationFactor: 1}}, false)
	if res[0].Err != nil || res[0].ID == d2 {
		t.Errorf("re-create: %+v", res[0])
	}
}

func TestCreatePartitions(t *testing.T) {
	c := topicController(t) // "existing" has 2 partitions, replication factor 2
	tests := []struct {
		name       string
		topic      string
		count      int32
		assignment [][]int32
		wantErr    *kerr.Error
		wantCount  int
	}{
		{name: "grow", topic: "existing", count: 4, wantCount: 4},
		{name: "grow manual", topic: "existing", count: 5, assignment: [][]int32{{3, 1}}, wantCount: 5},
		{name: "same count", topic: "existing", count: 5, wantErr: kerr.InvalidPartitions},
		{name: "shrink", topic: "existing", count: 1, wantErr: kerr.InvalidPartitions},
		{name: "too many", topic: "existing", count: maxPartitions + 1, wantErr: kerr.InvalidPartitions},
		{name: "unknown topic", topic: "nope", count: 3, wantErr: kerr.UnknownTopicOrPartition},
		{name: "assignment too short", topic: "existing", count: 7, assignment: [][]int32{{1, 2}}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "assignment wrong replication factor", topic: "existing", count: 6, assignment: [][]int32{{1}}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "assignment unknown broker", topic: "existing", count: 6, assignment: [][]int32{{1, 7}}, wantErr: kerr.InvalidReplicaAssignment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.Image()
			err := c.CreatePartitions(testCtx(t), tt.topic, tt.count, tt.assignment, false)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if c.Image() != before {
					t.Errorf("a failed request changed the image")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			topic, _ := c.Image().Topic(tt.topic)
			old, _ := before.Topic(tt.topic)
			if len(topic.Partitions) != tt.wantCount || topic.ID != old.ID {
				t.Fatalf("topic %+v", topic)
			}
			if !slices.EqualFunc(topic.Partitions[:len(old.Partitions)], old.Partitions, func(a, b metadata.Partition) bool {
				return a.Leader == b.Leader && slices.Equal(a.Replicas, b.Replicas)
			}) {
				t.Errorf("existing partitions changed")
			}
			for i, p := range topic.Partitions[len(old.Partitions):] {
				if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] {
					t.Errorf("new partition %+v", p)
				}
				if tt.assignment != nil && !slices.Equal(p.Replicas, tt.assignment[i]) {
					t.Errorf("new partition replicas %v, want %v", p.Replicas, tt.assignment[i])
				}
			}
		})
	}
}

func TestAlterConfigs(t *testing.T) {
	c := topicController(t)
	tests := []struct {
		name      string
		resType   int8
		resName   string
		set       map[string]string
		del       []string
		wantErr   *kerr.Error
		wantAfter map[string]string
	}{
		{name: "set topic", resType: metadata.ResourceTopic, resName: "existing", set: map[string]string{"retention.ms": "1", "cleanup.policy": "compact"},
			wantAfter: map[string]string{"retention.ms": "1", "cleanup.policy": "compact"}},
		{name: "delete topic config", resType: metadata.ResourceTopic, resName: "existing", del: []string{"retention.ms", "never.set"},
			wantAfter: map[string]string{"cleanup.policy": "compact"}},
		{name: "unknown topic", resType: metadata.ResourceTopic, resName: "nope", set: map[string]string{"a": "b"}, wantErr: kerr.UnknownTopicOrPartition},
		{name: "invalid topic value", resType: metadata.ResourceTopic, resName: "existing", set: map[string]string{"retention.ms": "bad"}, wantErr: kerr.InvalidConfig},
		{name: "set and delete", resType: metadata.ResourceTopic, resName: "existing", set: map[string]string{"a": "1"}, del: []string{"a"}, wantErr: kerr.InvalidRequest},
		{name: "cluster default", resType: metadata.ResourceBroker, resName: "", set: map[string]string{"log.retention.ms": "10"},
			wantAfter: map[string]string{"log.retention.ms": "10"}},
		{name: "one broker", resType: metadata.ResourceBroker, resName: "2", set: map[string]string{"x": "y"}, wantAfter: map[string]string{"x": "y"}},
		{name: "invalid broker value", resType: metadata.ResourceBroker, resName: "2", set: map[string]string{"x": "bad"}, wantErr: kerr.InvalidConfig},
		{name: "bad broker name", resType: metadata.ResourceBroker, resName: "two", set: map[string]string{"x": "y"}, wantErr: kerr.InvalidRequest},
		{name: "unsupported resource", resType: 3, resName: "existing", set: map[string]string{"x": "y"}, wantErr: kerr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.Image()
			err := c.AlterConfigs(testCtx(t), tt.resType, tt.resName, tt.set, tt.del, false)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if c.Image() != before {
					t.Errorf("a failed request changed the image")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			if tt.resType == metadata.ResourceTopic {
				topic, _ := c.Image().Topic(tt.resName)
				got = topic.Configs
			} else {
				got = c.Image().BrokerConfig(tt.resName)
			}
			if !maps.Equal(got, tt.wantAfter) {
				t.Errorf("configs %v, want %v", got, tt.wantAfter)
			}
		})
	}
}

// TestCreateTopicsPartitionsPerRequest: past 10,000 partitions in one request every topic of it
// fails with POLICY_VIOLATION, as in Kafka; the default count (3 here) stands for -1,
// assignments count one each.
func TestCreateTopicsPartitionsPerRequest(t *testing.T) {
	c := topicController(t)
	assigned := map[int32][]int32{0: {1}, 1: {1}}
	for _, tc := range []struct {
		name string
		reqs []CreateTopic
		ok   bool
	}{
		{"at the limit", []CreateTopic{{Name: "a1", NumPartitions: 5000, ReplicationFactor: 1}, {Name: "a2", NumPartitions: 4995, ReplicationFactor: 1},
			{Name: "a3", NumPartitions: -1, ReplicationFactor: 1}, {Name: "a4", Assignments: assigned, NumPartitions: -1, ReplicationFactor: -1}}, true},
		{"over by the default", []CreateTopic{{Name: "b1", NumPartitions: 9_998, ReplicationFactor: 1}, {Name: "b2", NumPartitions: -1, ReplicationFactor: 1}}, false},
		{"over by assignments", []CreateTopic{{Name: "c1", NumPartitions: 9_999, ReplicationFactor: 1}, {Name: "c2", Assignments: assigned, NumPartitions: -1, ReplicationFactor: -1}}, false},
		{"one huge topic", []CreateTopic{{Name: "d1", NumPartitions: 10_001, ReplicationFactor: 1}, {Name: "d2", NumPartitions: 1, ReplicationFactor: 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range c.CreateTopics(testCtx(t), tc.reqs, true) {
				if tc.ok && r.Err != nil || !tc.ok && !errors.Is(r.Err, kerr.PolicyViolation) {
					t.Errorf("%s: err %v, want ok=%v", r.Name, r.Err, tc.ok)
				}
			}
		})
	}
}
