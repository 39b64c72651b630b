package cli

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/wire"
)

func partitions(rf int, leaders ...int32) kadm.PartitionDetails {
	ps := kadm.PartitionDetails{}
	for i, l := range leaders {
		var replicas []int32
		for r := range rf {
			replicas = append(replicas, int32(r+1))
		}
		ps[int32(i)] = kadm.PartitionDetail{Partition: int32(i), Leader: l, Replicas: replicas, ISR: replicas}
	}
	return ps
}

func TestWriteTopicList(t *testing.T) {
	topics := kadm.TopicDetails{
		"orders":    {Topic: "orders", Partitions: partitions(3, 1, 2, 3)},
		"a":         {Topic: "a", Partitions: partitions(1, 1)},
		"forbidden": {Topic: "forbidden", Err: kerr.TopicAuthorizationFailed},
	}
	var b strings.Builder
	if err := WriteTopicList(&b, topics); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NAME       PARTITIONS  REPLICATION-FACTOR\n" +
		"a          1           1\n" +
		"forbidden  -           -  (TOPIC_AUTHORIZATION_FAILED: " + kerr.TopicAuthorizationFailed.Description + ")\n" +
		"orders     3           3\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTopicOverrides(t *testing.T) {
	v := func(s string) *string { return &s }
	configs := []kadm.Config{
		{Key: "segment.bytes", Value: v("1"), Source: kmsg.ConfigSourceDefaultConfig},
		{Key: "retention.ms", Value: v("1000"), Source: kmsg.ConfigSourceDynamicTopicConfig},
		{Key: "cleanup.policy", Value: v("compact"), Source: kmsg.ConfigSourceDynamicTopicConfig},
		{Key: "min.insync.replicas", Value: v("2"), Source: kmsg.ConfigSourceStaticBrokerConfig},
	}
	got := TopicOverrides(configs)
	if len(got) != 2 || got[0].Key != "cleanup.policy" || got[1].Key != "retention.ms" {
		t.Errorf("got %+v, want cleanup.policy then retention.ms", got)
	}
}

func TestWriteTopicDescription(t *testing.T) {
	v := func(s string) *string { return &s }
	type testCase struct {
		name      string
		td        kadm.TopicDetail
		overrides []kadm.Config
		keep      PartitionFilter
		cleaner   map[int32]wire.CleanerState
		want      string
	}
	tests := []testCase{
		{
			name: "defaults",
			td:   kadm.TopicDetail{Topic: "a", Partitions: partitions(1, 1)},
			want: "" +
				"Topic:               a\n" +
				"Partitions:          1\n" +
				"Replication factor:  1\n" +
				"Configs:             (defaults)\n" +
				"  PARTITION  LEADER  REPLICAS  ISR\n" +
				"  0          1       1         1\n",
		},
		{
			name: "overrides, id, no leader, offline, error",
			td: kadm.TopicDetail{
				Topic: "orders",
				ID:    kadm.TopicID{0: 0xfb, 15: 1},
				Partitions: kadm.PartitionDetails{
					0: {Partition: 0, Leader: 2, Replicas: []int32{1, 2}, ISR: []int32{2}, OfflineReplicas: []int32{1}},
					1: {Partition: 1, Leader: -1, Replicas: []int32{2, 1}, Err: kerr.LeaderNotAvailable},
				},
			},
			overrides: []kadm.Config{
				{Key: "cleanup.policy", Value: v("compact")},
				{Key: "sasl.secret", Sensitive: true},
			},
			want: "" +
				"Topic:               orders\n" +
				"ID:                  -wAAAAAAAAAAAAAAAAAAAQ\n" +
				"Partitions:          2\n" +
				"Replication factor:  2\n" +
				"Configs:             cleanup.policy=compact\n" +
				"                     sasl.secret=(sensitive)\n" +
				"  PARTITION  LEADER  REPLICAS  ISR  OFFLINE  ERROR\n" +
				"  0          2       1,2       2    1        \n" +
				"  1          none    2,1       -    -        LEADER_NOT_AVAILABLE: " + kerr.LeaderNotAvailable.Description + "\n",
		},
		{
			name: "filtered: under-replicated or unavailable",
			td: kadm.TopicDetail{
				Topic: "rf3",
				Partitions: kadm.PartitionDetails{
					0: {Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
					1: {Partition: 1, Leader: 2, Replicas: []int32{2, 3, 1}, ISR: []int32{2, 1}},
					2: {Partition: 2, Leader: 3, Replicas: []int32{3, 1, 2}, ISR: []int32{3, 1, 2}},
				},
			},
			keep: AnyOf(UnderReplicated, Unavailable([]int32{1, 2})),
			want: "" +
				"Topic:               rf3\n" +
				"Partitions:          3\n" +
				"Replication factor:  3\n" +
				"Configs:             (defaults)\n" +
				"  PARTITION  LEADER  REPLICAS  ISR\n" +
				"  1          2       2,3,1     2,1\n" +
				"  2          3       3,1,2     3,1,2\n",
		},
	}
	tests = append(tests, testCase{
		name:    "compacted: the cleaner's state",
		td:      kadm.TopicDetail{Topic: "c", Partitions: partitions(1, 1, 1)},
		cleaner: map[int32]wire.CleanerState{0: {FirstDirtyOffset: 12345, DirtyRatio: 0.125}},
		want: "" +
			"Topic:               c\n" +
			"Partitions:          2\n" +
			"Replication factor:  1\n" +
			"Configs:             (defaults)\n" +
			"  PARTITION  LEADER  REPLICAS  ISR  DIRTY  CLEANED TO\n" +
			"  0          1       1         1    0.12   12345\n" +
			"  1          1       1         1    -      -\n",
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteTopicDescription(&b, tt.td, tt.overrides, tt.keep, tt.cleaner); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%q\nwant:\n%q", b.String(), tt.want)
			}
		})
	}
}
