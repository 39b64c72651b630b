package controller

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

var topicX = metadata.UUID{0x58}

// clusterImage builds an image with brokers 1..n (states by broker in fenced/shutdown) and topic
// "x" holding parts.
func clusterImage(t *testing.T, n int32, fenced, shutdown []int32, configs map[string]string, parts ...metadata.Partition) *metadata.Image {
	t.Helper()
	var recs []metadata.Record
	for id := int32(1); id <= n; id++ {
		recs = append(recs, metadata.RegisterBroker{ID: id, Fenced: slices.Contains(fenced, id), InControlledShutdown: slices.Contains(shutdown, id)})
	}
	for i := range parts {
		parts[i].Partition = int32(i)
	}
	if len(parts) > 0 {
		recs = append(recs, metadata.CreateTopic{Name: "x", ID: topicX, Partitions: parts, Configs: configs})
	}
	img, err := (&metadata.Image{}).ApplyBatch(1, recs)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func part(leader int32, replicas, isr []int32) metadata.Partition {
	return metadata.Partition{Replicas: replicas, ISR: isr, Leader: leader}
}

func TestElectLeader(t *testing.T) {
	tests := []struct {
		name        string
		p           metadata.Partition
		isr         []int32
		kind        electionKind
		inactive    []int32
		wantLeader  int32
		wantUnclean bool
	}{
		{"keep valid leader", part(2, []int32{1, 2, 3}, nil), []int32{1, 2, 3}, electOnline, nil, 2, false},
		{"preferred when in ISR", part(2, []int32{1, 2, 3}, nil), []int32{1, 2, 3}, electPreferred, nil, 1, false},
		{"preferred fenced keeps leader", part(2, []int32{1, 2, 3}, nil), []int32{1, 2, 3}, electPreferred, []int32{1}, 2, false},
		{"preferred not in ISR keeps leader", part(2, []int32{1, 2, 3}, nil), []int32{2, 3}, electPreferred, nil, 2, false},
		{"leader fenced: first ISR member in replica order", part(1, []int32{1, 3, 2}, nil), []int32{2, 3, 1}, electOnline, []int32{1}, 3, false},
		{"skip inactive ISR members", part(1, []int32{1, 2, 3}, nil), []int32{1, 2, 3}, electOnline, []int32{1, 2}, 3, false},
		{"none", part(1, []int32{1, 2, 3}, nil), []int32{1, 2}, electOnline, []int32{1, 2}, -1, false},
		{"unclean prefers the ISR", part(1, []int32{1, 2, 3}, nil), []int32{1, 2}, electUnclean, []int32{1}, 2, false},
		{"unclean outside the ISR", part(1, []int32{1, 2, 3}, nil), []int32{1, 2}, electUnclean, []int32{1, 2}, 3, true},
		{"unclean with nobody", part(1, []int32{1, 2}, nil), []int32{1}, electUnclean, []int32{1, 2}, -1, false},
		{"no leader yet", part(-1, []int32{1, 2}, nil), []int32{2}, electOnline, nil, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acceptable := func(id int32) bool { return !slices.Contains(tt.inactive, id) }
			leader, unclean := electLeader(tt.p, tt.isr, tt.kind, acceptable)
			if leader != tt.wantLeader || unclean != tt.wantUnclean {
				t.Errorf("electLeader = %d, %v; want %d, %v", leader, unclean, tt.wantLeader, tt.wantUnclean)
			}
		})
	}
}

func TestRemoveBrokerChanges(t *testing.T) {
	tests := []struct {
		name    string
		parts   []metadata.Partition
		fenced  []int32
		configs map[string]string
		def     bool
		want    []metadata.PartitionChange
	}{
		{
			name:  "leader moves to the next ISR member, follower leaves the ISR",
			parts: []metadata.Partition{part(1, []int32{1, 2, 3}, []int32{1, 2, 3}), part(2, []int32{2, 1}, []int32{2, 1}), part(3, []int32{3, 2}, []int32{3, 2})},
			want: []metadata.PartitionChange{
				{TopicID: topicX, Partition: 0, Leader: ptrTo(int32(2)), ISR: []int32{2, 3}},
				{TopicID: topicX, Partition: 1, ISR: []int32{2}},
			},
		},
		{
			name:  "last ISR member stays, partition leaderless",
			parts: []metadata.Partition{part(1, []int32{1, 2}, []int32{1})},
			want:  []metadata.PartitionChange{{TopicID: topicX, Partition: 0, Leader: ptrTo(int32(-1))}},
		},
		{
			name:   "other ISR members fenced: leaderless, broker leaves the ISR",
			parts:  []metadata.Partition{part(1, []int32{1, 2}, []int32{1, 2})},
			fenced: []int32{2},
			want:   []metadata.PartitionChange{{TopicID: topicX, Partition: 0, Leader: ptrTo(int32(-1)), ISR: []int32{2}}},
		},
		{
			name:    "unclean topic elects outside the ISR",
			parts:   []metadata.Partition{part(1, []int32{1, 2}, []int32{1})},
			configs: map[string]string{"unclean.leader.election.enable": "true"},
			want:    []metadata.PartitionChange{{TopicID: topicX, Partition: 0, Leader: ptrTo(int32(2)), ISR: []int32{2}}},
		},
		{
			name:  "unclean broker default",
			parts: []metadata.Partition{part(1, []int32{1, 2}, []int32{1})},
			def:   true,
			want:  []metadata.PartitionChange{{TopicID: topicX, Partition: 0, Leader: ptrTo(int32(2)), ISR: []int32{2}}},
		},
		{
			name:    "topic config overrides the default",
			parts:   []metadata.Partition{part(1, []int32{1, 2}, []int32{1})},
			configs: map[string]string{"unclean.leader.election.enable": "false"},
			def:     true,
			want:    []metadata.PartitionChange{{TopicID: topicX, Partition: 0, Leader: ptrTo(int32(-1))}},
		},
		{
			name:  "not involved",
			parts: []metadata.Partition{part(2, []int32{2, 3}, []int32{2, 3})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := clusterImage(t, 3, tt.fenced, nil, tt.configs, tt.parts...)
			got := removeBrokerChanges(img, 1, tt.def)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changes:\n got %s\nwant %s", fmtChanges(got), fmtChanges(tt.want))
			}
			// Every change must apply to the image.
			for _, rec := range got {
				if _, err := img.Apply(rec); err != nil {
					t.Errorf("change %s does not apply: %v", fmtChanges([]metadata.PartitionChange{rec}), err)
				}
			}
		})
	}
}

func TestUnfenceBrokerChanges(t *testing.T) {
	img := clusterImage(t, 3, []int32{1, 2}, nil, nil,
		part(-1, []int32{1, 2}, []int32{1}), // leaderless, 1 in ISR: 1 leads
		part(-1, []int32{2, 1}, []int32{2}), // leaderless, 1 not in ISR: stays
		part(3, []int32{3, 1}, []int32{3}),  // has a leader: untouched
		part(-1, []int32{2, 3}, []int32{2}), // 1 not a replica: untouched
	)
	got := unfenceBrokerChanges(img, 1, false)
	want := []metadata.PartitionChange{{TopicID: topicX, Partition: 0, Leader: ptrTo(int32(1))}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes:\n got %s\nwant %s", fmtChanges(got), fmtChanges(want))
	}
	got = unfenceBrokerChanges(img, 1, true) // unclean: 1 may lead partition 1 too
	want = append(want, metadata.PartitionChange{TopicID: topicX, Partition: 1, Leader: ptrTo(int32(1)), ISR: []int32{1}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unclean changes:\n got %s\nwant %s", fmtChanges(got), fmtChanges(want))
	}
}

func TestElectOne(t *testing.T) {
	img := clusterImage(t, 3, []int32{3}, nil, nil,
		part(1, []int32{1, 2}, []int32{1, 2}),     // 0: preferred leads
		part(2, []int32{1, 2}, []int32{1, 2}),     // 1: preferred in ISR, not leading
		part(2, []int32{3, 2}, []int32{3, 2}),     // 2: preferred fenced
		part(-1, []int32{3, 2}, []int32{3}),       // 3: leaderless, ISR fenced, 2 live outside
		part(-1, []int32{3}, []int32{3}),          // 4: leaderless, nobody
		part(-1, []int32{3, 1, 2}, []int32{3, 2}), // 5: leaderless, 2 in ISR
	)
	x := img.Topics["x"]
	tests := []struct {
		name    string
		part    int32
		typ     int8
		wantErr *kerr.Error
		want    *metadata.PartitionChange
	}{
		{"preferred not needed", 0, ElectionPreferred, kerr.ElectionNotNeeded, nil},
		{"preferred elected", 1, ElectionPreferred, nil, &metadata.PartitionChange{TopicID: topicX, Partition: 1, Leader: ptrTo(int32(1))}},
		{"preferred unavailable", 2, ElectionPreferred, kerr.PreferredLeaderNotAvailable, nil},
		{"preferred on leaderless takes another ISR member", 5, ElectionPreferred, nil, &metadata.PartitionChange{TopicID: topicX, Partition: 5, Leader: ptrTo(int32(2))}},
		{"unclean not needed", 1, ElectionUnclean, kerr.ElectionNotNeeded, nil},
		{"unclean elects outside the ISR", 3, ElectionUnclean, nil, &metadata.PartitionChange{TopicID: topicX, Partition: 3, Leader: ptrTo(int32(2)), ISR: []int32{2}}},
		{"unclean prefers the ISR", 5, ElectionUnclean, nil, &metadata.PartitionChange{TopicID: topicX, Partition: 5, Leader: ptrTo(int32(2))}},
		{"unclean nobody", 4, ElectionUnclean, kerr.EligibleLeadersNotAvailable, nil},
		{"unknown partition", 9, ElectionPreferred, kerr.UnknownTopicOrPartition, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := electOne(img, x, tt.part, tt.typ)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(rec, *tt.want) {
				t.Errorf("electOne = %s, %v; want %s", fmtChanges([]metadata.PartitionChange{rec}), err, fmtChanges([]metadata.PartitionChange{*tt.want}))
			}
		})
	}
}

// fmtChanges renders changes with their pointers followed, for failure messages.
func fmtChanges(cs []metadata.PartitionChange) string {
	out := "["
	for _, c := range cs {
		leader := "="
		if c.Leader != nil {
			leader = string(rune('0' + *c.Leader))
			if *c.Leader < 0 {
				leader = "-1"
			}
		}
		out += " {p" + string(rune('0'+c.Partition)) + " leader " + leader + " isr " + fmtInts(c.ISR) + "}"
	}
	return out + " ]"
}

func fmtInts(s []int32) string {
	if s == nil {
		return "="
	}
	out := "["
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += string(rune('0' + v))
	}
	return out + "]"
}
