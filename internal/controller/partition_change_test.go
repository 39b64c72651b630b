package controller

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
)

func TestValidateAlterPartition(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 2, 3, 4}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 3, PartitionEpoch: 5}
	img := clusterImage(t, 4, []int32{3}, []int32{4}, nil, p)
	epochOf := img.Brokers[2].Epoch
	ok := AlterPartitionData{LeaderEpoch: 3, PartitionEpoch: 5}
	with := func(edit func(*AlterPartitionData)) AlterPartitionData { d := ok; edit(&d); return d }
	tests := []struct {
		name    string
		broker  int32
		topic   metadata.UUID
		d       AlterPartitionData
		wantErr *kerr.Error
		changed bool
	}{
		{"shrink", 1, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{1} }), nil, true},
		{"unchanged", 1, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{1, 2} }), nil, false},
		{"epochs checked", 1, topicX, with(func(d *AlterPartitionData) {
			d.NewISR, d.NewISRBrokerEpochs = []int32{1, 2}, []int64{-1, epochOf}
		}), nil, false},
		{"unknown topic", 1, metadata.UUID{9}, with(func(d *AlterPartitionData) { d.NewISR = []int32{1} }), kerr.UnknownTopicID, false},
		{"unknown partition", 1, topicX, with(func(d *AlterPartitionData) { d.Partition = 1; d.NewISR = []int32{1} }), kerr.UnknownTopicOrPartition, false},
		{"newer leader epoch", 1, topicX, with(func(d *AlterPartitionData) { d.LeaderEpoch = 4; d.NewISR = []int32{1} }), kerr.NotController, false},
		{"newer partition epoch", 1, topicX, with(func(d *AlterPartitionData) { d.PartitionEpoch = 6; d.NewISR = []int32{1} }), kerr.NotController, false},
		{"old leader epoch", 1, topicX, with(func(d *AlterPartitionData) { d.LeaderEpoch = 2; d.NewISR = []int32{1} }), kerr.FencedLeaderEpoch, false},
		{"not the leader", 2, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{1} }), kerr.NotLeaderForPartition, false},
		{"old partition epoch", 1, topicX, with(func(d *AlterPartitionData) { d.PartitionEpoch = 4; d.NewISR = []int32{1} }), kerr.InvalidUpdateVersion, false},
		{"empty ISR", 1, topicX, ok, kerr.InvalidRequest, false},
		{"ISR without leader", 1, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{2} }), kerr.InvalidRequest, false},
		{"ISR not replicas", 1, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{1, 7} }), kerr.InvalidRequest, false},
		{"ISR repeats", 1, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{1, 1} }), kerr.InvalidRequest, false},
		{"fenced member", 1, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{1, 3} }), kerr.IneligibleReplica, false},
		{"member shutting down", 1, topicX, with(func(d *AlterPartitionData) { d.NewISR = []int32{1, 4} }), kerr.IneligibleReplica, false},
		{"member epoch mismatch", 1, topicX, with(func(d *AlterPartitionData) {
			d.NewISR, d.NewISRBrokerEpochs = []int32{1, 2}, []int64{-1, epochOf + 1}
		}), kerr.IneligibleReplica, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, rec, changed, err := validateAlterPartition(img, tt.broker, tt.topic, tt.d)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if changed != tt.changed || !samePartition(cur, img.Topics["x"].Partitions[0]) ||
				!slices.Equal(rec.ISR, tt.d.NewISR) || rec.Leader != nil || rec.Replicas != nil {
				t.Errorf("changed %v, rec %+v, cur %+v", changed, rec, cur)
			}
		})
	}
}

func TestAlterPartition(t *testing.T) {
	c, _ := clusterController(t, 3, nil)
	x := createTopic(t, c, "x", []int32{1, 2, 3})
	ctx := testCtx(t)
	epoch1 := c.Image().Brokers[1].Epoch
	req := func(isr []int32, partitionEpoch int32) AlterPartitionRequest {
		return AlterPartitionRequest{BrokerID: 1, BrokerEpoch: epoch1, Topics: []AlterPartitionTopic{{
			TopicID: x.ID, Partitions: []AlterPartitionData{{Partition: 0, LeaderEpoch: 0, PartitionEpoch: partitionEpoch, NewISR: isr}},
		}}}
	}
	if _, err := c.AlterPartition(ctx, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: epoch1 + 1}); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Errorf("wrong broker epoch: %v", err)
	}
	res, err := c.AlterPartition(ctx, req([]int32{1, 3}, 0))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("shrink: %+v, %v", res, err)
	}
	want := metadata.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 3}, Leader: 1, PartitionEpoch: 1}
	if got := partitionOf(c, "x", 0); !samePartition(got, want) || !samePartition(res[0].Partition, want) {
		t.Errorf("after shrink: image %+v, result %+v; want %+v", got, res[0].Partition, want)
	}
	// The same request again is stale.
	res, err = c.AlterPartition(ctx, req([]int32{1, 3}, 0))
	if err != nil || !errors.Is(res[0].Err, kerr.InvalidUpdateVersion) {
		t.Errorf("replayed request: %+v, %v", res, err)
	}
	// Expanding through the kmsg handler (v3, with broker epochs).
	kreq := kmsg.NewPtrAlterPartitionRequest()
	kreq.Version, kreq.BrokerID, kreq.BrokerEpoch = 3, 1, epoch1
	kt := kmsg.NewAlterPartitionRequestTopic()
	kt.TopicID = x.ID
	kp := kmsg.NewAlterPartitionRequestTopicPartition()
	kp.PartitionEpoch = 1
	for _, id := range []int32{1, 3, 2} {
		m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		m.BrokerID, m.BrokerEpoch = id, c.Image().Brokers[id].Epoch
		kp.NewEpochISR = append(kp.NewEpochISR, m)
	}
	kt.Partitions = append(kt.Partitions, kp)
	kreq.Topics = append(kreq.Topics, kt)
	kresp := c.HandleAlterPartition(ctx, kreq)
	if kresp.ErrorCode != 0 || len(kresp.Topics) != 1 || kresp.Topics[0].TopidID != x.ID {
		t.Fatalf("handler response %+v", kresp)
	}
	rp := kresp.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 || rp.LeaderID != 1 || rp.PartitionEpoch != 2 || !slices.Equal(rp.ISR, []int32{1, 3, 2}) {
		t.Errorf("handler partition %+v", rp)
	}
	// v1 by name, unknown name; v2 unknown ID.
	kreq.Version = 1
	kreq.Topics[0].Topic = "nope"
	kreq.Topics[0].Partitions[0].NewISR = []int32{1}
	kreq.Topics[0].Partitions[0].PartitionEpoch = 2
	if kresp := c.HandleAlterPartition(ctx, kreq); kresp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown name: %+v", kresp.Topics[0].Partitions[0])
	}
	kreq.Topics[0].Topic = "x"
	if kresp := c.HandleAlterPartition(ctx, kreq); kresp.Topics[0].Partitions[0].ErrorCode != 0 || kresp.Topics[0].Topic != "x" ||
		!slices.Equal(partitionOf(c, "x", 0).ISR, []int32{1}) {
		t.Errorf("v1 by name: %+v, partition %+v", kresp.Topics[0].Partitions[0], partitionOf(c, "x", 0))
	}
	kreq.Version = 2
	kreq.Topics[0].TopicID = metadata.UUID{9}
	if kresp := c.HandleAlterPartition(ctx, kreq); kresp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("unknown ID: %+v", kresp.Topics[0].Partitions[0])
	}
	kreq.BrokerEpoch = 0
	if kresp := c.HandleAlterPartition(ctx, kreq); kresp.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Errorf("stale broker epoch: %+v", kresp)
	}
}

func TestElectLeaders(t *testing.T) {
	c, _ := clusterController(t, 3, nil)
	createTopic(t, c, "x", []int32{1, 2}, []int32{2, 1})
	ctx := testCtx(t)
	// Fence 1, then bring it back: it is unfenced but out of the ISRs.
	heartbeat(t, c, 1, func(r *HeartbeatRequest) { r.WantFence = true })
	heartbeat(t, c, 1, nil)
	if p := partitionOf(c, "x", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Fatalf("x-0 = %+v", p)
	}
	res, err := c.ElectLeaders(ctx, ElectionPreferred, map[string][]int32{"x": {1, 0, 7}, "nope": {0}})
	if err != nil || len(res) != 4 {
		t.Fatalf("ElectLeaders = %+v, %v", res, err)
	}
	for i, want := range []struct {
		topic string
		part  int32
		err   *kerr.Error
	}{{"nope", 0, kerr.UnknownTopicOrPartition}, {"x", 0, kerr.PreferredLeaderNotAvailable}, {"x", 1, kerr.ElectionNotNeeded}, {"x", 7, kerr.UnknownTopicOrPartition}} {
		if r := res[i]; r.Topic != want.topic || r.Partition != want.part || !errors.Is(r.Err, want.err) {
			t.Errorf("result %d = %+v, want %s-%d %v", i, r, want.topic, want.part, want.err)
		}
	}
	// 1 rejoins the ISR of x-0; the preferred election then moves x-0 back to it.
	_, err = c.AlterPartition(ctx, AlterPartitionRequest{BrokerID: 2, BrokerEpoch: c.Image().Brokers[2].Epoch, Topics: []AlterPartitionTopic{{
		TopicID: c.Image().Topics["x"].ID, Partitions: []AlterPartitionData{{Partition: 0, LeaderEpoch: 1, PartitionEpoch: 1, NewISR: []int32{2, 1}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	kreq := kmsg.NewPtrElectLeadersRequest()
	kreq.Version = 2 // Topics nil: every partition; not-needed ones are left out
	kresp := c.HandleElectLeaders(ctx, kreq)
	if kresp.ErrorCode != 0 || len(kresp.Topics) != 1 || len(kresp.Topics[0].Partitions) != 1 ||
		kresp.Topics[0].Partitions[0].Partition != 0 || kresp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("all-partitions election: %+v", kresp)
	}
	if p := partitionOf(c, "x", 0); p.Leader != 1 || p.LeaderEpoch != 2 {
		t.Errorf("x-0 = %+v, want leader 1, leader epoch 2", p)
	}

	// Unclean: x-1's ISR is [2] only; fence 2 (leaderless), 1 may lead only uncleanly.
	createTopic(t, c, "u", []int32{2, 1})
	uID := c.Image().Topics["u"].ID
	_, err = c.AlterPartition(ctx, AlterPartitionRequest{BrokerID: 2, BrokerEpoch: c.Image().Brokers[2].Epoch, Topics: []AlterPartitionTopic{{
		TopicID: uID, Partitions: []AlterPartitionData{{Partition: 0, NewISR: []int32{2}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	heartbeat(t, c, 2, func(r *HeartbeatRequest) { r.WantFence = true })
	if p := partitionOf(c, "u", 0); p.Leader != -1 {
		t.Fatalf("u-0 = %+v, want leaderless", p)
	}
	res, err = c.ElectLeaders(ctx, ElectionUnclean, map[string][]int32{"u": {0}})
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("unclean election: %+v, %v", res, err)
	}
	if p := partitionOf(c, "u", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Errorf("u-0 = %+v, want leader 1 ISR [1]", p)
	}
	if _, err := c.ElectLeaders(ctx, 5, nil); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("election type 5: %v", err)
	}
}

func TestHandleBrokerRegistrationAndHeartbeat(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	ctx := testCtx(t)
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = 4, "other", [16]byte{4}
	rack := "r1"
	req.Rack = &rack
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port, l.SecurityProtocol = "PLAINTEXT", "h", 9092, 0
	req.Listeners = append(req.Listeners, l)
	if resp := c.HandleBrokerRegistration(ctx, req); resp.ErrorCode != kerr.InconsistentClusterID.Code {
		t.Errorf("other cluster: %+v", resp)
	}
	req.ClusterID = c.Image().ClusterID
	resp := c.HandleBrokerRegistration(ctx, req)
	b := c.Image().Brokers[4]
	if resp.ErrorCode != 0 || resp.BrokerEpoch != b.Epoch || b.Rack != "r1" || !b.Fenced ||
		len(b.Endpoints) != 1 || b.Endpoints[0] != (metadata.Endpoint{Listener: "PLAINTEXT", Host: "h", Port: 9092, SecurityProtocol: "PLAINTEXT"}) {
		t.Fatalf("registration %+v, broker %+v", resp, b)
	}
	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch, hb.CurrentMetadataOffset = 4, resp.BrokerEpoch, int64(c.Image().Index)
	if hr := c.HandleBrokerHeartbeat(ctx, hb); hr.ErrorCode != 0 || hr.IsFenced || !hr.IsCaughtUp || hr.ShouldShutdown {
		t.Errorf("heartbeat %+v", hr)
	}
	hb.BrokerEpoch++
	if hr := c.HandleBrokerHeartbeat(ctx, hb); hr.ErrorCode != kerr.StaleBrokerEpoch.Code || !hr.IsFenced {
		t.Errorf("stale heartbeat %+v", hr)
	}
}

func TestPlacementOnRacksAndFencing(t *testing.T) {
	racks := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b"}
	c, _ := clusterController(t, 4, func(id int32) string { return racks[id] })
	res := c.CreateTopics(testCtx(t), []CreateTopic{{Name: "r", NumPartitions: 8, ReplicationFactor: 2}}, false)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	leaders := make(map[int32]int)
	for _, p := range c.Image().Topics["r"].Partitions {
		leaders[p.Leader]++
		if racks[p.Replicas[0]] == racks[p.Replicas[1]] || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
			t.Errorf("partition %+v: want replicas on two racks, leader first, full ISR", p)
		}
	}
	for id := int32(1); id <= 4; id++ {
		if leaders[id] != 2 {
			t.Errorf("broker %d leads %d partitions, want 2", id, leaders[id])
		}
	}
	// Fenced brokers get no new replicas.
	heartbeat(t, c, 4, func(r *HeartbeatRequest) { r.WantFence = true })
	res = c.CreateTopics(testCtx(t), []CreateTopic{{Name: "f", NumPartitions: 6, ReplicationFactor: 3}}, false)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	for _, p := range c.Image().Topics["f"].Partitions {
		if slices.Contains(p.Replicas, 4) {
			t.Errorf("partition %+v placed on fenced broker 4", p)
		}
	}
	res = c.CreateTopics(testCtx(t), []CreateTopic{{Name: "g", NumPartitions: 1, ReplicationFactor: 4}}, false)
	if !errors.Is(res[0].Err, kerr.InvalidReplicationFactor) || !strings.Contains(res[0].Err.Error(), "only 3 broker(s)") {
		t.Errorf("rf 4 with a fenced broker: %v", res[0].Err)
	}
	// An explicit assignment may name a fenced broker: it is not in the ISR and does not lead.
	tp := createTopic(t, c, "m", []int32{4, 1})
	if p := tp.Partitions[0]; p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Errorf("manual with fenced 4: %+v", p)
	}
	heartbeat(t, c, 3, func(r *HeartbeatRequest) { r.WantFence = true })
	res = c.CreateTopics(testCtx(t), []CreateTopic{{Name: "n", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {3, 4}}}}, false)
	if !errors.Is(res[0].Err, kerr.InvalidReplicaAssignment) {
		t.Errorf("manual with only fenced brokers: %v", res[0].Err)
	}
}
