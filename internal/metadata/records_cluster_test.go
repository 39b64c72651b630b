package metadata

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestClusterRecordRoundTrip(t *testing.T) {
	recs := []Record{
		BrokerRegistrationChange{ID: 2, Epoch: 17, Fenced: ptr(false), InControlledShutdown: ptr(true)},
		BrokerRegistrationChange{ID: 2, Epoch: 17, Fenced: ptr(true)},
		UnregisterBroker{ID: 4, Epoch: 9},
		PartitionChange{TopicID: UUID{5}, Partition: 3, Leader: ptr(int32(-1)), ISR: []int32{2}},
		PartitionChange{TopicID: UUID{5}, Partition: 0, Replicas: []int32{3, 1, 2}},
		PartitionChange{TopicID: UUID{5}, Partition: 1, Replicas: []int32{4, 1, 2}, Reassignment: &Reassignment{Adding: []int32{4}, Removing: []int32{2}}},
		PartitionChange{TopicID: UUID{5}, Partition: 1, Replicas: []int32{4, 1}, Reassignment: &Reassignment{}},
		RegisterBroker{ID: 1, Fenced: true, Epoch: 7},
	}
	for _, r := range recs {
		data, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", data, got, r)
		}
	}
}

// TestOldRegistrationIsUnfenced: a RegisterBroker record written before fencing existed has no
// "fenced" member; the broker it registers is usable.
func TestOldRegistrationIsUnfenced(t *testing.T) {
	r, err := DecodeRecord([]byte(`{"type":"RegisterBroker","v":1,"id":1,"endpoints":[],"incarnationID":"AAAAAAAAAAAAAAAAAAAAAA"}`))
	if err != nil {
		t.Fatal(err)
	}
	img, err := (&Image{}).ApplyBatch(12, []Record{r})
	if err != nil {
		t.Fatal(err)
	}
	b := img.Brokers[1]
	if b.Fenced || b.InControlledShutdown || !b.Active() || b.Epoch != 12 {
		t.Errorf("old registration = %+v, want active with epoch 12", b)
	}
}

func TestBrokerEpochIsBatchIndex(t *testing.T) {
	img, err := (&Image{}).ApplyBatch(5, []Record{RegisterBroker{ID: 1, Epoch: 99, Fenced: true}})
	if err != nil {
		t.Fatal(err)
	}
	if img.Brokers[1].Epoch != 5 || !img.Brokers[1].Fenced {
		t.Fatalf("broker = %+v, want epoch 5 fenced", img.Brokers[1])
	}
	// Re-registration: a new epoch.
	img, err = img.ApplyBatch(9, []Record{RegisterBroker{ID: 1, Fenced: true}})
	if err != nil || img.Brokers[1].Epoch != 9 {
		t.Fatalf("re-registered broker = %+v, %v; want epoch 9", img.Brokers[1], err)
	}
	// An image survives a snapshot with its epochs and states.
	img, err = img.ApplyBatch(10, []Record{BrokerRegistrationChange{ID: 1, Epoch: 9, InControlledShutdown: ptr(true)}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeImage(data)
	if err != nil || !Equal(back, img) || !brokerEqual(back.Brokers[1], img.Brokers[1]) {
		t.Fatalf("snapshot round trip: %+v, %v; want %+v", back.Brokers[1], err, img.Brokers[1])
	}
	changed := *img
	changed.Brokers = map[int32]Broker{1: {ID: 1, Epoch: 9, Fenced: true}}
	if Equal(&changed, img) {
		t.Error("Equal ignores broker state")
	}
}

func TestBrokerRegistrationChange(t *testing.T) {
	base := build(t, RegisterBroker{ID: 1, Fenced: true}) // epoch 1
	tests := []struct {
		name    string
		rec     Record
		wantErr error
		want    Broker
	}{
		{name: "unfence", rec: BrokerRegistrationChange{ID: 1, Epoch: 1, Fenced: ptr(false)}, want: Broker{ID: 1, Epoch: 1}},
		{name: "controlled shutdown", rec: BrokerRegistrationChange{ID: 1, Epoch: 1, InControlledShutdown: ptr(true)},
			want: Broker{ID: 1, Epoch: 1, Fenced: true, InControlledShutdown: true}},
		{name: "stale epoch", rec: BrokerRegistrationChange{ID: 1, Epoch: 2, Fenced: ptr(false)}, wantErr: ErrStaleBrokerEpoch},
		{name: "unknown broker", rec: BrokerRegistrationChange{ID: 2, Epoch: 1, Fenced: ptr(false)}, wantErr: ErrUnknownBroker},
		{name: "empty change", rec: BrokerRegistrationChange{ID: 1, Epoch: 1}, wantErr: ErrInvalidRecord},
		{name: "unregister stale", rec: UnregisterBroker{ID: 1, Epoch: 3}, wantErr: ErrStaleBrokerEpoch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := base.Apply(tt.rec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if img != base {
					t.Error("failed apply changed the image")
				}
				return
			}
			if got := img.Brokers[1]; !brokerEqual(got, tt.want) {
				t.Errorf("broker = %+v, want %+v", got, tt.want)
			}
			if !base.Brokers[1].Fenced {
				t.Error("apply modified the receiver")
			}
		})
	}
	img, err := base.Apply(UnregisterBroker{ID: 1, Epoch: 1})
	if err != nil || len(img.Brokers) != 0 || len(base.Brokers) != 1 {
		t.Errorf("unregister: %v, brokers %v (base %v)", err, img.Brokers, base.Brokers)
	}
}

func TestPartitionChange(t *testing.T) {
	p0 := Partition{Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 7}
	base := build(t, CreateTopic{Name: "a", ID: idA, Partitions: []Partition{p0, {Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}})
	tests := []struct {
		name    string
		rec     PartitionChange
		wantErr error
		want    Partition
	}{
		{name: "shrink ISR keeps leader epoch", rec: PartitionChange{TopicID: idA, ISR: []int32{1, 3}},
			want: Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 8}},
		{name: "new leader bumps both epochs", rec: PartitionChange{TopicID: idA, Leader: ptr(int32(2)), ISR: []int32{2, 3}},
			want: Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}, Leader: 2, LeaderEpoch: 5, PartitionEpoch: 8}},
		{name: "same leader keeps leader epoch", rec: PartitionChange{TopicID: idA, Leader: ptr(int32(1))},
			want: Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 8}},
		{name: "no leader", rec: PartitionChange{TopicID: idA, Leader: ptr(NoLeader), ISR: []int32{3}},
			want: Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{3}, Leader: -1, LeaderEpoch: 5, PartitionEpoch: 8}},
		{name: "replicas", rec: PartitionChange{TopicID: idA, Replicas: []int32{3, 2, 1}},
			want: Partition{Replicas: []int32{3, 2, 1}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 8}},
		{name: "reassignment starts", rec: PartitionChange{TopicID: idA, Replicas: []int32{1, 2, 4, 3}, Reassignment: &Reassignment{Adding: []int32{4}, Removing: []int32{3}}},
			want: Partition{Replicas: []int32{1, 2, 4, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 8, AddingReplicas: []int32{4}, RemovingReplicas: []int32{3}}},
		{name: "empty reassignment alone", rec: PartitionChange{TopicID: idA, Reassignment: &Reassignment{}},
			want: Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 8}},
		{name: "adding not a replica", rec: PartitionChange{TopicID: idA, Reassignment: &Reassignment{Adding: []int32{4}}}, wantErr: ErrInvalidPartition},
		{name: "removing not a replica", rec: PartitionChange{TopicID: idA, Reassignment: &Reassignment{Removing: []int32{5}}}, wantErr: ErrInvalidPartition},
		{name: "adding and removing overlap", rec: PartitionChange{TopicID: idA, Reassignment: &Reassignment{Adding: []int32{2}, Removing: []int32{2}}}, wantErr: ErrInvalidPartition},
		{name: "adding repeats", rec: PartitionChange{TopicID: idA, Reassignment: &Reassignment{Adding: []int32{2, 2}}}, wantErr: ErrInvalidPartition},
		{name: "every replica removed", rec: PartitionChange{TopicID: idA, Reassignment: &Reassignment{Removing: []int32{1, 2, 3}}}, wantErr: ErrInvalidPartition},
		{name: "leader not in ISR", rec: PartitionChange{TopicID: idA, Leader: ptr(int32(2)), ISR: []int32{1}}, wantErr: ErrInvalidPartition},
		{name: "ISR not replicas", rec: PartitionChange{TopicID: idA, ISR: []int32{1, 4}}, wantErr: ErrInvalidPartition},
		{name: "ISR repeats", rec: PartitionChange{TopicID: idA, ISR: []int32{1, 1}}, wantErr: ErrInvalidPartition},
		{name: "empty ISR", rec: PartitionChange{TopicID: idA, ISR: []int32{}}, wantErr: ErrInvalidPartition},
		{name: "replicas drop ISR member", rec: PartitionChange{TopicID: idA, Replicas: []int32{1, 2}}, wantErr: ErrInvalidPartition},
		{name: "replicas repeat", rec: PartitionChange{TopicID: idA, Replicas: []int32{1, 2, 3, 3}}, wantErr: ErrInvalidPartition},
		{name: "nothing", rec: PartitionChange{TopicID: idA}, wantErr: ErrInvalidRecord},
		{name: "unknown topic", rec: PartitionChange{TopicID: idB, ISR: []int32{1}}, wantErr: ErrUnknownTopicID},
		{name: "unknown partition", rec: PartitionChange{TopicID: idA, Partition: 2, ISR: []int32{1}}, wantErr: ErrUnknownPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := base.Apply(tt.rec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if img != base {
					t.Error("failed apply changed the image")
				}
				return
			}
			got := img.Topics["a"].Partitions[0]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("partition = %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(base.Topics["a"].Partitions[0], p0) {
				t.Error("apply modified the receiver")
			}
		})
	}
}

// TestPartitionChangeBatch: many changes to one topic in a batch apply in place on the batch's
// own copy, never on the receiver, and a failure leaves the receiver as it was.
func TestPartitionChangeBatch(t *testing.T) {
	base := build(t, CreateTopic{Name: "a", ID: idA, Partitions: parts(3, 1, 2)}, CreateTopic{Name: "b", ID: idB, Partitions: parts(1, 1, 2)})
	recs := []Record{
		PartitionChange{TopicID: idA, Partition: 0, ISR: []int32{1}},
		PartitionChange{TopicID: idA, Partition: 1, Leader: ptr(int32(2)), ISR: []int32{2}},
		PartitionChange{TopicID: idB, Partition: 0, ISR: []int32{1}},
		PartitionChange{TopicID: idA, Partition: 1, ISR: []int32{2, 1}},
	}
	img, err := base.ApplyBatch(50, recs)
	if err != nil {
		t.Fatal(err)
	}
	a := img.Topics["a"]
	if a != img.TopicsByID[idA] || !slices.Equal(a.Partitions[0].ISR, []int32{1}) ||
		a.Partitions[1].Leader != 2 || !slices.Equal(a.Partitions[1].ISR, []int32{2, 1}) || a.Partitions[1].PartitionEpoch != 2 ||
		!slices.Equal(img.Topics["b"].Partitions[0].ISR, []int32{1}) || img.Index != 50 {
		t.Errorf("batch result: a=%+v b=%+v", a.Partitions, img.Topics["b"].Partitions)
	}
	if !reflect.DeepEqual(base.Topics["a"].Partitions, parts(3, 1, 2)) || !reflect.DeepEqual(base.Topics["b"].Partitions, parts(1, 1, 2)) {
		t.Error("batch modified the receiver")
	}
	bad := append(slices.Clone(recs), PartitionChange{TopicID: idA, Partition: 2, ISR: []int32{3}})
	if got, err := base.ApplyBatch(51, bad); !errors.Is(err, ErrInvalidPartition) || got != base {
		t.Errorf("bad batch: %v", err)
	}
	if !reflect.DeepEqual(base.Topics["a"].Partitions, parts(3, 1, 2)) {
		t.Error("failed batch modified the receiver")
	}
}

func TestImageClusterHelpers(t *testing.T) {
	img := build(t,
		RegisterBroker{ID: 1}, RegisterBroker{ID: 2, Fenced: true}, RegisterBroker{ID: 3, InControlledShutdown: true},
		CreateTopic{Name: "b", ID: idB, Partitions: []Partition{
			{Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1},
			{Partition: 1, Replicas: []int32{2, 1}, ISR: []int32{2}, Leader: 2},
		}},
		CreateTopic{Name: "a", ID: idA, Partitions: []Partition{{Partition: 0, Replicas: []int32{3, 1}, ISR: []int32{1, 3}, Leader: 1}}},
	)
	if got := img.LiveBrokerIDs(); !slices.Equal(got, []int32{1, 3}) {
		t.Errorf("LiveBrokerIDs = %v", got)
	}
	want := []PartitionRef{{Topic: "a", TopicID: idA, Partition: 0}, {Topic: "b", TopicID: idB, Partition: 0}}
	if got := img.PartitionsLedBy(1); !reflect.DeepEqual(got, want) {
		t.Errorf("PartitionsLedBy(1) = %v", got)
	}
	if got := img.PartitionsWithISRMember(2); !reflect.DeepEqual(got, []PartitionRef{{Topic: "b", TopicID: idB, Partition: 0}, {Topic: "b", TopicID: idB, Partition: 1}}) {
		t.Errorf("PartitionsWithISRMember(2) = %v", got)
	}
	if got := img.PartitionsLedBy(3); got != nil {
		t.Errorf("PartitionsLedBy(3) = %v", got)
	}
}
