package cli

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParsePlan(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []PlanPartition
		err        string
	}{
		{name: "kafka's generate output", json: `{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"t","partition":0,"replicas":[3,2]}]}`,
			want: []PlanPartition{{Topic: "t", Partition: 1, Replicas: []int32{2, 3}, LogDirs: []string{"any", "any"}}, {Topic: "t", Partition: 0, Replicas: []int32{3, 2}}}},
		{name: "not json", json: `{"version":1,`, err: "not valid"},
		{name: "null", json: `null`, err: "version 0"},
		{name: "an array", json: `[]`, err: "not valid"},
		{name: "a null partition", json: `{"version":1,"partitions":[null]}`, err: "no topic"},
		{name: "replicas null", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":null}]}`, err: "replica list cannot be empty"},
		{name: "broker id too large", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2147483648]}]}`, err: "not valid"},
		{name: "wrong type", json: `{"version":1,"partitions":[{"topic":"t","partition":"0","replicas":[1]}]}`, err: "not valid"},
		{name: "version 2", json: `{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}`, err: "version 2"},
		{name: "no version", json: `{"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}`, err: "version 0"},
		{name: "empty", json: `{"version":1,"partitions":[]}`, err: "cannot be empty"},
		{name: "no topic", json: `{"version":1,"partitions":[{"partition":0,"replicas":[1]}]}`, err: "no topic"},
		{name: "negative partition", json: `{"version":1,"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}`, err: "cannot be negative"},
		{name: "twice", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}`, err: "t-0 appears more than once"},
		{name: "no replicas", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}`, err: "replica list cannot be empty"},
		{name: "replica twice", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,1]}]}`, err: "broker 1 appears more than once"},
		{name: "negative broker", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[-1]}]}`, err: "invalid broker id -1"},
		{name: "log dir path", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/data"]}]}`, err: `log directory "/data": only "any" is supported`},
		{name: "log dirs count", json: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`, err: "1 entries for 2 replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := ParsePlan([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Partitions) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", plan.Partitions, tc.want)
			}
			for i, p := range plan.Partitions {
				w := tc.want[i]
				if p.Topic != w.Topic || p.Partition != w.Partition || !slices.Equal(p.Replicas, w.Replicas) || !slices.Equal(p.LogDirs, w.LogDirs) {
					t.Errorf("partition %d: %+v, want %+v", i, p, w)
				}
			}
		})
	}
}

// TestPlanJSONRoundTrip: a plan prints as Kafka's one-line JSON, sorted, with "any" log
// directories, and parses back to the same partitions.
func TestPlanJSONRoundTrip(t *testing.T) {
	plan := Plan{Version: 1, Partitions: []PlanPartition{
		{Topic: "b", Partition: 0, Replicas: []int32{1}},
		{Topic: "a<&>", Partition: 10, Replicas: []int32{3, 1}},
		{Topic: "a<&>", Partition: 2, Replicas: []int32{2, 3}},
	}}
	const want = `{"version":1,"partitions":[{"topic":"a<&>","partition":2,"replicas":[2,3],"log_dirs":["any","any"]},` +
		`{"topic":"a<&>","partition":10,"replicas":[3,1],"log_dirs":["any","any"]},{"topic":"b","partition":0,"replicas":[1],"log_dirs":["any"]}]}`
	if got := plan.JSON(); got != want {
		t.Fatalf("JSON:\n%s\nwant\n%s", got, want)
	}
	back, err := ParsePlan([]byte(plan.JSON()))
	if err != nil {
		t.Fatal(err)
	}
	if back.JSON() != want {
		t.Errorf("round trip: %s", back.JSON())
	}
	if got := plan.Names(); got != "a<&>-2,a<&>-10,b-0" {
		t.Errorf("Names: %s", got)
	}
	if got := plan.Topics(); !slices.Equal(got, []string{"a<&>", "b"}) {
		t.Errorf("Topics: %v", got)
	}
	if plan.Partitions[0].Topic != "b" {
		t.Error("JSON sorted the plan in place")
	}
}

func TestParseBrokerIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int32
		err  string
	}{
		{in: "2,3", want: []int32{2, 3}},
		{in: " 3 , 1 ", want: []int32{3, 1}},
		{in: "", err: "empty"},
		{in: "1,,2", err: `"" is not a broker id`},
		{in: "1,x", err: `"x" is not a broker id`},
		{in: "99999999999", err: "is not a broker id"},
		{in: "1,2,1", err: "broker 1 appears more than once"},
		{in: "-2", err: "invalid broker id -2"},
	} {
		got, err := ParseBrokerIDs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseTopicsToMove(t *testing.T) {
	for _, tc := range []struct {
		json string
		want []string
		err  string
	}{
		{json: `{"version":1,"topics":[{"topic":"a"},{"topic":"b"},{"topic":"a"}]}`, want: []string{"a", "b"}},
		{json: `{"version":1,"topics":[]}`, err: "lists no topic"},
		{json: `{"version":1,"topics":[{"topic":""}]}`, err: "has no name"},
		{json: `{"version":3,"topics":[{"topic":"a"}]}`, err: "version 3"},
		{json: `[`, err: "not valid"},
	} {
		got, err := ParseTopicsToMove([]byte(tc.json))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.json, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.json, got, err, tc.want)
		}
	}
}

// details builds topic details: topic -> replicas of partitions 0, 1, ...
func details(topics map[string][][]int32) kadm.TopicDetails {
	out := kadm.TopicDetails{}
	for name, parts := range topics {
		td := kadm.TopicDetail{Topic: name, Partitions: kadm.PartitionDetails{}}
		for i, r := range parts {
			td.Partitions[int32(i)] = kadm.PartitionDetail{Topic: name, Partition: int32(i), Leader: r[0], Replicas: r}
		}
		out[name] = td
	}
	return out
}

func TestProposeAssignment(t *testing.T) {
	current := details(map[string][][]int32{
		"a": {{1, 2}, {2, 3}, {3, 1}},
		"b": {{1, 2, 3}, {2, 3, 1}},
		"c": {{1}},
	})
	current["gone"] = kadm.TopicDetail{Topic: "gone", Err: kerr.UnknownTopicOrPartition}
	for _, tc := range []struct {
		name    string
		topics  []string
		brokers []int32
		want    string // the proposal's JSON
		err     string
	}{
		{name: "rf 2 onto 2 brokers", topics: []string{"a"}, brokers: []int32{4, 5},
			want: `{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[4,5],"log_dirs":["any","any"]},{"topic":"a","partition":1,"replicas":[5,4],"log_dirs":["any","any"]},{"topic":"a","partition":2,"replicas":[4,5],"log_dirs":["any","any"]}]}`},
		{name: "round robin continues across topics, sorted", topics: []string{"c", "a"}, brokers: []int32{1, 2, 3},
			want: `{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any","any"]},{"topic":"a","partition":1,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"a","partition":2,"replicas":[3,1],"log_dirs":["any","any"]},{"topic":"c","partition":0,"replicas":[1],"log_dirs":["any"]}]}`},
		{name: "rf 3 onto 4 brokers", topics: []string{"b"}, brokers: []int32{1, 2, 3, 4},
			want: `{"version":1,"partitions":[{"topic":"b","partition":0,"replicas":[1,2,3],"log_dirs":["any","any","any"]},{"topic":"b","partition":1,"replicas":[2,3,4],"log_dirs":["any","any","any"]}]}`},
		{name: "a topic twice", topics: []string{"c", "c"}, brokers: []int32{7},
			want: `{"version":1,"partitions":[{"topic":"c","partition":0,"replicas":[7],"log_dirs":["any"]}]}`},
		{name: "rf larger than the brokers", topics: []string{"b"}, brokers: []int32{1, 2}, err: "INVALID_REPLICATION_FACTOR: Replication factor: 3 larger than available brokers: 2."},
		{name: "unknown topic", topics: []string{"nope"}, brokers: []int32{1}, err: "topic nope does not exist"},
		{name: "topic error", topics: []string{"gone"}, brokers: []int32{1}, err: "UNKNOWN_TOPIC_OR_PARTITION"},
		{name: "broker twice", topics: []string{"a"}, brokers: []int32{1, 1}, err: "appears more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, proposed, err := ProposeAssignment(current, tc.topics, tc.brokers)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := proposed.JSON(); got != tc.want {
				t.Errorf("proposed\n%s\nwant\n%s", got, tc.want)
			}
			if len(cur.Partitions) != len(proposed.Partitions) {
				t.Fatalf("current %+v", cur)
			}
			for i, p := range cur.Partitions {
				if want := current[p.Topic].Partitions[p.Partition].Replicas; !slices.Equal(p.Replicas, want) {
					t.Errorf("current %d: %+v, want replicas %v", i, p, want)
				}
			}
		})
	}
}

func TestCurrentPlan(t *testing.T) {
	topics := details(map[string][][]int32{"t": {{1, 2}, {2, 3}}})
	plan := Plan{Version: 1, Partitions: []PlanPartition{{Topic: "t", Partition: 1, Replicas: []int32{1}}, {Topic: "t", Partition: 0, Replicas: []int32{3}}}}
	cur, err := CurrentPlan(plan, topics)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cur.JSON(), `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","any"]},{"topic":"t","partition":1,"replicas":[2,3],"log_dirs":["any","any"]}]}`; got != want {
		t.Errorf("current %s, want %s", got, want)
	}
	for _, tc := range []struct {
		part PlanPartition
		err  string
	}{
		{PlanPartition{Topic: "t", Partition: 2, Replicas: []int32{1}}, "partition t-2 does not exist (topic t has 2 partitions)"},
		{PlanPartition{Topic: "u", Partition: 0, Replicas: []int32{1}}, "topic u does not exist"},
	} {
		if _, err := CurrentPlan(Plan{Version: 1, Partitions: []PlanPartition{tc.part}}, topics); err == nil || err.Error() != tc.err {
			t.Errorf("%s: err %v, want %q", tc.part.Name(), err, tc.err)
		}
	}
	bad := kadm.TopicDetails{"t": {Topic: "t", Err: kerr.TopicAuthorizationFailed}}
	if _, err := CurrentPlan(plan, bad); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("topic error: %v", err)
	}
}

func TestProgress(t *testing.T) {
	topics := details(map[string][][]int32{"t": {{2, 3}, {1, 3, 2}, {1, 2}}})
	listed := kadm.ListPartitionReassignmentsResponses{"t": {1: {Topic: "t", Partition: 1, Replicas: []int32{1, 3, 2}, AddingReplicas: []int32{3}, RemovingReplicas: []int32{2}}}}
	plan := Plan{Version: 1, Partitions: []PlanPartition{
		{Topic: "t", Partition: 2, Replicas: []int32{2, 3}},
		{Topic: "t", Partition: 1, Replicas: []int32{1, 3}},
		{Topic: "t", Partition: 0, Replicas: []int32{2, 3}},
		{Topic: "u", Partition: 0, Replicas: []int32{1}},
	}}
	progress := Progress(plan, topics, listed)
	var states []ReassignState
	for _, p := range progress {
		states = append(states, p.State)
	}
	if want := []ReassignState{ReassignCompleted, ReassignInProgress, ReassignNotStarted, ReassignNotStarted}; !slices.Equal(states, want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	var buf bytes.Buffer
	moving, other, err := WriteProgress(&buf, progress)
	if err != nil || moving != 1 || other != 2 {
		t.Fatalf("WriteProgress: %d in progress, %d other, %v", moving, other, err)
	}
	const want = `Status of partition reassignment:
Reassignment of partition t-0 is completed.
Reassignment of partition t-1 is still in progress (replicas 1,3,2).
There is no active reassignment of partition t-2, but replica set is 1,2 rather than 2,3.
There is no active reassignment of partition u-0, but replica set is none rather than 1.
`
	if buf.String() != want {
		t.Errorf("verification:\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestWriteReassignments(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteReassignments(&buf, nil); err != nil || buf.String() != "No partition reassignment in progress.\n" {
		t.Errorf("none: %q %v", buf.String(), err)
	}
	buf.Reset()
	listed := kadm.ListPartitionReassignmentsResponses{
		"t": {0: {Topic: "t", Partition: 0, Replicas: []int32{1, 3, 2}, AddingReplicas: []int32{3}, RemovingReplicas: []int32{2}}},
		"a": {4: {Topic: "a", Partition: 4, Replicas: []int32{1, 2}, RemovingReplicas: []int32{2}}},
	}
	if err := WriteReassignments(&buf, listed); err != nil {
		t.Fatal(err)
	}
	const want = `TOPIC  PARTITION  REPLICAS  ADDING  REMOVING
a      4          1,2       -       2
t      0          1,3,2     3       2
`
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestReassignmentsFrom(t *testing.T) {
	resp := kmsg.NewPtrListPartitionReassignmentsResponse()
	rt := kmsg.NewListPartitionReassignmentsResponseTopic()
	rt.Topic = "t"
	rt.Partitions = []kmsg.ListPartitionReassignmentsResponseTopicPartition{{Partition: 2, Replicas: []int32{1, 3, 2}, AddingReplicas: []int32{3}, RemovingReplicas: []int32{2}}}
	resp.Topics = append(resp.Topics, rt)
	got, err := ReassignmentsFrom(resp)
	if err != nil {
		t.Fatal(err)
	}
	if r := got["t"][2]; r.Topic != "t" || r.Partition != 2 || !slices.Equal(r.Replicas, []int32{1, 3, 2}) ||
		!slices.Equal(r.AddingReplicas, []int32{3}) || !slices.Equal(r.RemovingReplicas, []int32{2}) || len(got) != 1 {
		t.Errorf("converted %+v", got)
	}
	msg := "not allowed"
	resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, &msg
	if _, err := ReassignmentsFrom(resp); !errors.Is(err, kerr.ClusterAuthorizationFailed) || !strings.Contains(err.Error(), msg) {
		t.Errorf("error answer: %v", err)
	}
}
