package controller

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
)

// reassigning is a partition in the middle of a reassignment.
func reassigning(leader int32, replicas, isr, adding, removing []int32) metadata.Partition {
	p := part(leader, replicas, isr)
	p.AddingReplicas, p.RemovingReplicas = adding, removing
	return p
}

// TestPlanReassignment: the partition state a reassignment or its cancellation leads to, and
// Kafka's refusals, on brokers 1-5 with 5 fenced.
func TestPlanReassignment(t *testing.T) {
	type want struct {
		replicas, isr, adding, removing []int32
		leader                          int32
	}
	tests := []struct {
		name          string
		p             metadata.Partition
		configs       map[string]string
		target        []int32 // nil: cancel
		fixedRF       bool
		wantErr       *kerr.Error
		unchanged     bool
		want          want
		wantNewLeader bool
	}{
		{name: "move a follower", p: part(1, []int32{1, 2, 3}, []int32{1, 2, 3}), target: []int32{1, 2, 4},
			want: want{replicas: []int32{1, 2, 4, 3}, isr: []int32{1, 2, 3}, adding: []int32{4}, removing: []int32{3}, leader: 1}},
		{name: "move every replica", p: part(1, []int32{1, 2}, []int32{1, 2}), target: []int32{3, 4},
			want: want{replicas: []int32{3, 4, 1, 2}, isr: []int32{1, 2}, adding: []int32{3, 4}, removing: []int32{1, 2}, leader: 1}},
		{name: "removing only completes at once", p: part(1, []int32{1, 2, 3}, []int32{1, 2, 3}), target: []int32{1, 2},
			want: want{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1}},
		{name: "removing the leader elects a target replica", p: part(1, []int32{1, 2, 3}, []int32{1, 2, 3}), target: []int32{3, 2},
			want: want{replicas: []int32{3, 2}, isr: []int32{2, 3}, leader: 3}, wantNewLeader: true},
		{name: "removing a replica out of the ISR", p: part(1, []int32{1, 2, 3}, []int32{1, 2}), target: []int32{1, 2},
			want: want{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1}},
		{name: "target out of the ISR waits", p: part(1, []int32{1, 2, 3}, []int32{1, 3}), target: []int32{1, 2},
			want: want{replicas: []int32{1, 2, 3}, isr: []int32{1, 3}, removing: []int32{3}, leader: 1}},
		{name: "reorder", p: part(1, []int32{1, 2, 3}, []int32{1, 2, 3}), target: []int32{3, 2, 1},
			want: want{replicas: []int32{3, 2, 1}, isr: []int32{1, 2, 3}, leader: 1}},
		{name: "same replicas", p: part(1, []int32{1, 2, 3}, []int32{1, 2, 3}), target: []int32{1, 2, 3}, unchanged: true},
		{name: "new target of a reassignment", p: reassigning(1, []int32{1, 2, 4, 3}, []int32{1, 2, 3}, []int32{4}, []int32{3}), target: []int32{1, 2, 3},
			want: want{replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leader: 1}},
		{name: "fixed RF", p: part(1, []int32{1, 2, 3}, []int32{1, 2, 3}), target: []int32{1, 2}, fixedRF: true, wantErr: kerr.InvalidReplicationFactor},
		{name: "fixed RF same length", p: part(1, []int32{1, 2}, []int32{1, 2}), target: []int32{1, 3}, fixedRF: true,
			want: want{replicas: []int32{1, 3, 2}, isr: []int32{1, 2}, adding: []int32{3}, removing: []int32{2}, leader: 1}},
		{name: "fixed RF of a reassignment is its target's", p: reassigning(1, []int32{1, 4, 2}, []int32{1, 2}, []int32{4}, []int32{2}), target: []int32{1, 3}, fixedRF: true,
			want: want{replicas: []int32{1, 3, 4, 2}, isr: []int32{1, 2}, adding: []int32{3}, removing: []int32{4, 2}, leader: 1}},
		{name: "empty", p: part(1, []int32{1, 2}, []int32{1, 2}), target: []int32{}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "duplicate", p: part(1, []int32{1, 2}, []int32{1, 2}), target: []int32{1, 3, 1}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "unknown broker", p: part(1, []int32{1, 2}, []int32{1, 2}), target: []int32{1, 9}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "fenced only", p: part(1, []int32{1, 2}, []int32{1, 2}), target: []int32{5}, wantErr: kerr.InvalidReplicaAssignment},
		{name: "cancel without reassignment", p: part(1, []int32{1, 2}, []int32{1, 2}), wantErr: kerr.NoReassignmentInProgress},
		{name: "cancel", p: reassigning(1, []int32{1, 2, 4, 3}, []int32{1, 2, 3}, []int32{4}, []int32{3}),
			want: want{replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leader: 1}},
		{name: "cancel drops adding replicas from the ISR and leadership", p: reassigning(4, []int32{4, 3, 1, 2}, []int32{1, 4}, []int32{4, 3}, []int32{1, 2}),
			want: want{replicas: []int32{1, 2}, isr: []int32{1}, leader: 1}, wantNewLeader: true},
		{name: "cancel needing an unclean election", p: reassigning(4, []int32{4, 3, 1, 2}, []int32{4}, []int32{4, 3}, []int32{1, 2}), wantErr: kerr.InvalidReplicaAssignment},
		{name: "cancel with unclean election allowed", p: reassigning(4, []int32{4, 3, 1, 2}, []int32{4}, []int32{4, 3}, []int32{1, 2}),
			configs: map[string]string{uncleanLeaderElectionConfig: "true"},
			want:    want{replicas: []int32{1, 2}, isr: []int32{1}, leader: 1}, wantNewLeader: true},
		{name: "cancel electing an active original replica outside the ISR", p: reassigning(4, []int32{4, 3, 5, 2}, []int32{4}, []int32{4, 3}, []int32{5, 2}),
			configs: map[string]string{uncleanLeaderElectionConfig: "true"},
			want:    want{replicas: []int32{5, 2}, isr: []int32{2}, leader: 2}, wantNewLeader: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := clusterImage(t, 5, []int32{5}, nil, tt.configs, tt.p)
			rec, changed, err := planReassignment(img, Reassignment{Topic: "x", Replicas: tt.target}, !tt.fixedRF, false)
			if tt.wantErr != nil || err != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if changed == tt.unchanged {
				t.Fatalf("changed = %v, record %+v", changed, rec)
			}
			if !changed {
				return
			}
			next, err := img.Apply(rec)
			if err != nil {
				t.Fatalf("applying %+v: %v", rec, err)
			}
			got := next.Topics["x"].Partitions[0]
			w := tt.want
			if !slices.Equal(got.Replicas, w.replicas) || !slices.Equal(got.ISR, w.isr) || got.Leader != w.leader ||
				!slices.Equal(got.AddingReplicas, w.adding) || !slices.Equal(got.RemovingReplicas, w.removing) {
				t.Errorf("partition %+v, want %+v", got, w)
			}
			if (got.LeaderEpoch != tt.p.LeaderEpoch) != tt.wantNewLeader {
				t.Errorf("leader epoch %d -> %d", tt.p.LeaderEpoch, got.LeaderEpoch)
			}
		})
	}
	t.Run("unknown topic and partition", func(t *testing.T) {
		img := clusterImage(t, 2, nil, nil, nil, part(1, []int32{1, 2}, []int32{1, 2}))
		for _, r := range []Reassignment{{Topic: "nope", Replicas: []int32{1}}, {Topic: "x", Partition: 1, Replicas: []int32{1}}, {Topic: "x", Partition: -1}} {
			if _, _, err := planReassignment(img, r, true, false); !errors.Is(err, kerr.UnknownTopicOrPartition) {
				t.Errorf("%+v: %v", r, err)
			}
		}
	})
}

// TestReassignmentStateMachine steps a reassignment through images alone (no controller, no
// sockets): x-0 on 1,2 moves to 3,4; the leader's ISR growth to 1,2,3 leaves it in progress,
// to 1,2,3,4 completes it in the same record (leader 1, removed, hands over to 3); a stale
// AlterPartition is refused; each image lists what is in progress.
func TestReassignmentStateMachine(t *testing.T) {
	img := clusterImage(t, 4, nil, nil, nil, part(1, []int32{1, 2}, []int32{1, 2}))
	apply := func(rec metadata.PartitionChange) metadata.Partition {
		t.Helper()
		next, err := img.Apply(rec)
		if err != nil {
			t.Fatalf("applying %+v: %v", rec, err)
		}
		img = next
		return img.Topics["x"].Partitions[0]
	}
	rec, changed, err := planReassignment(img, Reassignment{Topic: "x", Replicas: []int32{3, 4}}, true, false)
	if err != nil || !changed {
		t.Fatalf("plan: %v %v", changed, err)
	}
	p := apply(rec)
	if got := ListPartitionReassignments(img, nil); len(got) != 1 || !slices.Equal(got[0].Replicas, []int32{3, 4, 1, 2}) ||
		!slices.Equal(got[0].Adding, []int32{3, 4}) || !slices.Equal(got[0].Removing, []int32{1, 2}) {
		t.Fatalf("listed %+v", got)
	}
	grow := func(isr []int32, partitionEpoch int32) (metadata.PartitionChange, bool, error) {
		_, rec, ok, err := validateAlterPartition(img, 1, topicX, AlterPartitionData{LeaderEpoch: p.LeaderEpoch, PartitionEpoch: partitionEpoch, NewISR: isr})
		return rec, ok, err
	}
	rec, ok, err := grow([]int32{1, 2, 3}, p.PartitionEpoch)
	if err != nil || !ok || rec.Replicas != nil || rec.Reassignment != nil || rec.Leader != nil {
		t.Fatalf("ISR 1,2,3: %+v %v %v", rec, ok, err)
	}
	p = apply(rec)
	if _, _, err := grow([]int32{1, 2, 3, 4}, p.PartitionEpoch-1); !errors.Is(err, kerr.InvalidUpdateVersion) {
		t.Errorf("stale partition epoch: %v", err)
	}
	rec, ok, err = grow([]int32{1, 2, 3, 4}, p.PartitionEpoch)
	if err != nil || !ok {
		t.Fatalf("ISR 1,2,3,4: %v %v", ok, err)
	}
	before := p
	p = apply(rec)
	if p.Reassigning() || !slices.Equal(p.Replicas, []int32{3, 4}) || !slices.Equal(p.ISR, []int32{3, 4}) || p.Leader != 3 ||
		p.LeaderEpoch != before.LeaderEpoch+1 || p.PartitionEpoch != before.PartitionEpoch+1 {
		t.Errorf("completed: %+v", p)
	}
	if got := ListPartitionReassignments(img, nil); len(got) != 0 {
		t.Errorf("listed after completion: %+v", got)
	}
}

// TestReassignmentLifecycle drives a reassignment through the controller: it starts, is
// listed, is not complete while a target replica is out of the ISR, completes with the leader's
// ISR growth (the leader moving to a target replica), then a second one is cancelled through
// the kmsg handlers.
func TestReassignmentLifecycle(t *testing.T) {
	c, _ := clusterController(t, 4, nil)
	x := createTopic(t, c, "x", []int32{1, 2}, []int32{2, 1})
	ctx := testCtx(t)
	res, err := c.AlterPartitionReassignments(ctx, []Reassignment{
		{Topic: "x", Partition: 0, Replicas: []int32{3, 4}},
		{Topic: "x", Partition: 1}, // nothing to cancel
		{Topic: "x", Partition: 1, Replicas: []int32{2, 3}},
	}, true)
	if err != nil || len(res) != 3 || res[0].Err != nil || !errors.Is(res[1].Err, kerr.NoReassignmentInProgress) || res[2].Err != nil {
		t.Fatalf("alter: %+v, %v", res, err)
	}
	p0 := partitionOf(c, "x", 0)
	if !slices.Equal(p0.Replicas, []int32{3, 4, 1, 2}) || !slices.Equal(p0.AddingReplicas, []int32{3, 4}) || !slices.Equal(p0.RemovingReplicas, []int32{1, 2}) || p0.Leader != 1 {
		t.Fatalf("started: %+v", p0)
	}
	listed := ListPartitionReassignments(c.Image(), nil)
	if len(listed) != 2 || listed[0].Partition != 0 || !slices.Equal(listed[0].Adding, []int32{3, 4}) || !slices.Equal(listed[1].Removing, []int32{1}) {
		t.Errorf("listed %+v", listed)
	}
	if only := ListPartitionReassignments(c.Image(), map[string][]int32{"x": {1, 7}, "nope": {0}}); len(only) != 1 || only[0].Partition != 1 {
		t.Errorf("listed x-1: %+v", only)
	}

	epoch1 := c.Image().Brokers[1].Epoch
	alter := func(isr []int32) metadata.Partition {
		t.Helper()
		p := partitionOf(c, "x", 0)
		r, err := c.AlterPartition(ctx, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: epoch1, Topics: []AlterPartitionTopic{{TopicID: x.ID,
			Partitions: []AlterPartitionData{{Partition: 0, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: isr}}}}})
		if err != nil || r[0].Err != nil {
			t.Fatalf("AlterPartition %v: %+v, %v", isr, r, err)
		}
		return partitionOf(c, "x", 0)
	}
	if p := alter([]int32{1, 2, 3}); !p.Reassigning() || !slices.Equal(p.ISR, []int32{1, 2, 3}) || p.Leader != 1 {
		t.Fatalf("one target replica in the ISR: %+v", p)
	}
	p := alter([]int32{1, 2, 3, 4})
	if p.Reassigning() || !slices.Equal(p.Replicas, []int32{3, 4}) || !slices.Equal(p.ISR, []int32{3, 4}) || p.Leader != 3 || p.LeaderEpoch != p0.LeaderEpoch+1 {
		t.Fatalf("completed: %+v", p)
	}

	// Partition 1 ([2,3,1], adding 3, removing 1) is cancelled through the handler; a v1
	// request that changes the replication factor is refused.
	kreq := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	kreq.Version, kreq.AllowReplicationFactorChange = 1, false
	kt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	kt.Topic = "x"
	cancel := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	cancel.Partition = 1
	grow := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	grow.Replicas = []int32{3, 4, 1}
	kt.Partitions = append(kt.Partitions, cancel, grow)
	kreq.Topics = append(kreq.Topics, kt)
	kresp := c.HandleAlterPartitionReassignments(ctx, kreq)
	if kresp.ErrorCode != 0 || kresp.AllowReplicationFactorChange || len(kresp.Topics) != 1 || len(kresp.Topics[0].Partitions) != 2 {
		t.Fatalf("handler: %+v", kresp)
	}
	if got := kresp.Topics[0].Partitions; got[0].ErrorCode != 0 || got[1].Partition != 0 || got[1].ErrorCode != kerr.InvalidReplicationFactor.Code ||
		got[1].ErrorMessage == nil || *got[1].ErrorMessage != "The replication factor is changed from 2 to 3" {
		t.Errorf("partitions: %+v", got)
	}
	if p := partitionOf(c, "x", 1); p.Reassigning() || !slices.Equal(p.Replicas, []int32{2, 1}) || !slices.Equal(p.ISR, []int32{2, 1}) {
		t.Errorf("cancelled: %+v", p)
	}
	lreq := kmsg.NewPtrListPartitionReassignmentsRequest()
	if lresp := c.HandleListPartitionReassignments(lreq); lresp.ErrorCode != 0 || len(lresp.Topics) != 0 {
		t.Errorf("list after: %+v", lresp)
	}
}
