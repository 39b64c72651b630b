package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
)

var (
	idA = UUID{1}
	idB = UUID{2}
)

func parts(n int, replicas ...int32) []Partition {
	out := make([]Partition, n)
	for i := range out {
		out[i] = Partition{Partition: int32(i), Replicas: replicas, ISR: replicas, Leader: replicas[0]}
	}
	return out
}

// build applies recs to the empty image, failing the test on error.
func build(t *testing.T, recs ...Record) *Image {
	t.Helper()
	img, err := (&Image{}).ApplyBatch(uint64(len(recs)), recs)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return img
}

func TestApply(t *testing.T) {
	base := []Record{
		Bootstrap{ClusterID: "c1"},
		RegisterBroker{ID: 1, Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 9092, SecurityProtocol: "PLAINTEXT"}}},
		CreateTopic{Name: "a", ID: idA, Partitions: parts(2, 1), Configs: map[string]string{"retention.ms": "1"}},
	}
	tests := []struct {
		name    string
		rec     Record
		wantErr error
		check   func(t *testing.T, img *Image)
	}{
		{name: "bootstrap same id is a no-op", rec: Bootstrap{ClusterID: "c1"}, check: func(t *testing.T, img *Image) {
			if img.ClusterID != "c1" {
				t.Errorf("cluster ID %q", img.ClusterID)
			}
		}},
		{name: "bootstrap other id", rec: Bootstrap{ClusterID: "c2"}, wantErr: ErrClusterIDMismatch},
		{name: "bootstrap empty id", rec: Bootstrap{}, wantErr: ErrInvalidRecord},
		{name: "register new broker", rec: RegisterBroker{ID: 2, Rack: "r2"}, check: func(t *testing.T, img *Image) {
			if got := img.BrokerIDs(); !reflect.DeepEqual(got, []int32{1, 2}) || img.Brokers[2].Rack != "r2" {
				t.Errorf("brokers %v", img.Brokers)
			}
		}},
		{name: "re-register replaces", rec: RegisterBroker{ID: 1, IncarnationID: UUID{9}}, check: func(t *testing.T, img *Image) {
			if b := img.Brokers[1]; b.IncarnationID != (UUID{9}) || len(b.Endpoints) != 0 {
				t.Errorf("broker 1 = %+v", b)
			}
		}},
		{name: "register negative id", rec: RegisterBroker{ID: -1}, wantErr: ErrInvalidRecord},
		{name: "create topic", rec: CreateTopic{Name: "b", ID: idB, Partitions: parts(3, 1)}, check: func(t *testing.T, img *Image) {
			tb, ok := img.Topic("b")
			if !ok || len(tb.Partitions) != 3 || tb.ReplicationFactor() != 1 {
				t.Fatalf("topic b = %+v", tb)
			}
			if byID, _ := img.TopicByID(idB); byID != tb {
				t.Errorf("by-ID index does not hold the same topic")
			}
			if got := img.TopicNames(); !reflect.DeepEqual(got, []string{"a", "b"}) {
				t.Errorf("names %v", got)
			}
		}},
		{name: "create existing name", rec: CreateTopic{Name: "a", ID: idB, Partitions: parts(1, 1)}, wantErr: ErrTopicExists},
		{name: "create existing id", rec: CreateTopic{Name: "b", ID: idA, Partitions: parts(1, 1)}, wantErr: ErrTopicIDExists},
		{name: "create zero id", rec: CreateTopic{Name: "b", Partitions: parts(1, 1)}, wantErr: ErrInvalidRecord},
		{name: "create no partitions", rec: CreateTopic{Name: "b", ID: idB}, wantErr: ErrInvalidRecord},
		{name: "create misnumbered partitions", rec: CreateTopic{Name: "b", ID: idB, Partitions: []Partition{{Partition: 1, Replicas: []int32{1}}}}, wantErr: ErrInvalidRecord},
		{name: "create partition without replicas", rec: CreateTopic{Name: "b", ID: idB, Partitions: []Partition{{Partition: 0}}}, wantErr: ErrInvalidRecord},
		{name: "delete topic", rec: DeleteTopic{ID: idA}, check: func(t *testing.T, img *Image) {
			if len(img.Topics) != 0 || len(img.TopicsByID) != 0 {
				t.Errorf("topics left: %v", img.Topics)
			}
		}},
		{name: "delete unknown topic", rec: DeleteTopic{ID: idB}, wantErr: ErrUnknownTopicID},
		{name: "create partitions", rec: CreatePartitions{TopicID: idA, Partitions: parts(4, 1)[2:]}, check: func(t *testing.T, img *Image) {
			ta, _ := img.Topic("a")
			if len(ta.Partitions) != 4 || ta.Partitions[3].Partition != 3 || ta.Configs["retention.ms"] != "1" {
				t.Errorf("topic a = %+v", ta)
			}
			if byID, _ := img.TopicByID(idA); byID != ta {
				t.Errorf("by-ID index does not hold the same topic")
			}
		}},
		{name: "create partitions wrong start", rec: CreatePartitions{TopicID: idA, Partitions: parts(4, 1)[3:]}, wantErr: ErrInvalidRecord},
		{name: "create partitions none", rec: CreatePartitions{TopicID: idA}, wantErr: ErrInvalidRecord},
		{name: "create partitions unknown topic", rec: CreatePartitions{TopicID: idB, Partitions: parts(1, 1)}, wantErr: ErrUnknownTopicID},
		{name: "set topic configs", rec: SetConfigs{ResourceType: ResourceTopic, ResourceName: "a", Set: map[string]string{"cleanup.policy": "compact"}, Delete: []string{"retention.ms"}}, check: func(t *testing.T, img *Image) {
			ta, _ := img.Topic("a")
			if !reflect.DeepEqual(ta.Configs, map[string]string{"cleanup.policy": "compact"}) {
				t.Errorf("configs %v", ta.Configs)
			}
		}},
		{name: "delete last topic config", rec: SetConfigs{ResourceType: ResourceTopic, ResourceName: "a", Delete: []string{"retention.ms"}}, check: func(t *testing.T, img *Image) {
			if ta, _ := img.Topic("a"); ta.Configs != nil {
				t.Errorf("configs %v", ta.Configs)
			}
		}},
		{name: "set configs unknown topic", rec: SetConfigs{ResourceType: ResourceTopic, ResourceName: "zz"}, wantErr: ErrUnknownTopic},
		{name: "set cluster default", rec: SetConfigs{ResourceType: ResourceBroker, Set: map[string]string{"log.retention.ms": "5"}}, check: func(t *testing.T, img *Image) {
			if img.BrokerConfig("")["log.retention.ms"] != "5" {
				t.Errorf("broker configs %v", img.BrokerConfigs)
			}
		}},
		{name: "set broker config", rec: SetConfigs{ResourceType: ResourceBroker, ResourceName: "1", Set: map[string]string{"x": "y"}}, check: func(t *testing.T, img *Image) {
			if img.BrokerConfig("1")["x"] != "y" || img.BrokerConfig("") != nil {
				t.Errorf("broker configs %v", img.BrokerConfigs)
			}
		}},
		{name: "bad broker resource name", rec: SetConfigs{ResourceType: ResourceBroker, ResourceName: "01"}, wantErr: ErrInvalidRecord},
		{name: "bad resource type", rec: SetConfigs{ResourceType: 3, ResourceName: "a"}, wantErr: ErrInvalidRecord},
		{name: "allocate producer ids", rec: AllocateProducerIDs{FirstID: 0, Count: 1000}, check: func(t *testing.T, img *Image) {
			if img.NextProducerID != 1000 {
				t.Errorf("next producer ID %d", img.NextProducerID)
			}
		}},
		{name: "allocate producer ids gap", rec: AllocateProducerIDs{FirstID: 5, Count: 1}, wantErr: ErrProducerIDMismatch},
		{name: "allocate zero producer ids", rec: AllocateProducerIDs{FirstID: 0, Count: 0}, wantErr: ErrInvalidRecord},
		{name: "pointer record", rec: &DeleteTopic{ID: idA}, wantErr: ErrUnknownRecordType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := build(t, base...)
			before, err := EncodeImage(old)
			if err != nil {
				t.Fatal(err)
			}
			got, err := old.Apply(tt.rec)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if got != old {
					t.Errorf("failed Apply returned a different image")
				}
			} else {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if got == old {
					t.Fatalf("Apply returned the receiver")
				}
				tt.check(t, got)
			}
			after, err := EncodeImage(old)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("Apply modified the old image:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestApplyBatchIsAtomic(t *testing.T) {
	img := build(t, Bootstrap{ClusterID: "c"})
	got, err := img.ApplyBatch(7, []Record{
		CreateTopic{Name: "a", ID: idA, Partitions: parts(1, 1)},
		CreateTopic{Name: "a", ID: idB, Partitions: parts(1, 1)},
	})
	if !errors.Is(err, ErrTopicExists) || got != img || len(img.Topics) != 0 {
		t.Fatalf("got %v, %v; topics %v", got, err, img.Topics)
	}
	got, err = img.ApplyBatch(8, nil)
	if err != nil || got == img || got.Index != 8 || img.Index != 1 {
		t.Fatalf("empty batch: %+v, %v", got, err)
	}
}

func TestApplySharesUnchanged(t *testing.T) {
	img := build(t,
		RegisterBroker{ID: 1},
		CreateTopic{Name: "a", ID: idA, Partitions: parts(1, 1)},
		SetConfigs{ResourceType: ResourceBroker, Set: map[string]string{"k": "v"}},
	)
	next, err := img.Apply(CreateTopic{Name: "b", ID: idB, Partitions: parts(1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if next.Topics["a"] != img.Topics["a"] {
		t.Errorf("unchanged topic was copied")
	}
	same := func(a, b any) bool { return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() }
	if !same(next.Brokers, img.Brokers) || !same(next.BrokerConfigs, img.BrokerConfigs) {
		t.Errorf("unchanged maps were copied")
	}
	if same(next.Topics, img.Topics) {
		t.Errorf("changed map was shared")
	}
}

func TestApplyDoesNotAliasRecord(t *testing.T) {
	replicas := []int32{1, 2}
	rec := CreateTopic{Name: "a", ID: idA, Partitions: []Partition{{Replicas: replicas, ISR: replicas}}, Configs: map[string]string{"k": "v"}}
	img := build(t, rec)
	replicas[0] = 9
	rec.Configs["k"] = "changed"
	ta, _ := img.Topic("a")
	if ta.Partitions[0].Replicas[0] != 1 || ta.Partitions[0].ISR[0] != 1 || ta.Configs["k"] != "v" {
		t.Errorf("image aliases the record: %+v", ta)
	}
}

func TestApplyDeterministic(t *testing.T) {
	recs := []Record{
		Bootstrap{ClusterID: "c"},
		RegisterBroker{ID: 2}, RegisterBroker{ID: 1},
		CreateTopic{Name: "b", ID: idB, Partitions: parts(2, 1, 2), Configs: map[string]string{"x": "1", "y": "2"}},
		CreateTopic{Name: "a", ID: idA, Partitions: parts(1, 2)},
		SetConfigs{ResourceType: ResourceBroker, ResourceName: "2", Set: map[string]string{"p": "q", "r": "s"}},
		AllocateProducerIDs{FirstID: 0, Count: 10},
	}
	first, err := EncodeImage(build(t, recs...))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := EncodeImage(build(t, recs...))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("same records, different images:\n%s\n%s", first, again)
		}
	}
}

func TestImageSnapshotRoundTrip(t *testing.T) {
	img := build(t,
		Bootstrap{ClusterID: "c"},
		RegisterBroker{ID: 1, Rack: "r", IncarnationID: UUID{3}, Endpoints: []Endpoint{{Listener: "L", Host: "h", Port: 1, SecurityProtocol: "SSL"}}},
		CreateTopic{Name: "a", ID: idA, Partitions: parts(3, 1), Configs: map[string]string{"k": "v"}},
		CreateTopic{Name: "b", ID: idB, Partitions: parts(1, 1)},
		SetConfigs{ResourceType: ResourceBroker, Set: map[string]string{"k": "v"}},
		AllocateProducerIDs{FirstID: 0, Count: 3},
		FeatureLevel{Name: "metadata.version", Level: 20},
		RegisterController{ID: 2, DirectoryID: UUID{5}, Endpoints: []Endpoint{{Listener: "CONTROLLER", Host: "h", Port: 2}}},
		RegisterController{ID: 1, Endpoints: []Endpoint{{Listener: "CONTROLLER", Host: "h", Port: 1}}},
	)
	data, err := EncodeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeImage(data)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(img, got) || got.Index != img.Index {
		t.Fatalf("round trip changed the image:\n%s", data)
	}
	if tb, _ := got.TopicByID(idB); tb != got.Topics["b"] {
		t.Errorf("decoded indexes do not share topics")
	}
	if !Equal(&Image{}, must(DecodeImage(must(EncodeImage(&Image{}))))) {
		t.Errorf("empty image round trip")
	}
}

func TestDecodeImageErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"not json", "{"},
		{"version", `{"v":2}`},
		{"duplicate topic", `{"v":1,"topics":[{"name":"a","id":"AQAAAAAAAAAAAAAAAAAAAA","partitions":[{"partition":0,"replicas":[1]}]},{"name":"a","id":"AgAAAAAAAAAAAAAAAAAAAA","partitions":[{"partition":0,"replicas":[1]}]}]}`},
		{"zero topic id", `{"v":1,"topics":[{"name":"a","partitions":[{"partition":0,"replicas":[1]}]}]}`},
		{"duplicate broker", `{"v":1,"brokers":[{"id":1},{"id":1}]}`},
		{"duplicate controller", `{"v":1,"controllers":[{"id":1},{"id":1}]}`},
		{"negative controller", `{"v":1,"controllers":[{"id":-1}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeImage([]byte(tt.data)); err == nil {
				t.Fatalf("DecodeImage(%s) succeeded", tt.data)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func FuzzDecodeImage(f *testing.F) {
	f.Add([]byte(`{"v":1,"index":3,"clusterID":"c","topics":[{"name":"a","id":"AQAAAAAAAAAAAAAAAAAAAA","partitions":[{"partition":0,"replicas":[1]}]}]}`))
	f.Add([]byte(`{"v":1,"index":4,"clusterID":"c","features":{"metadata.version":20,"group.version":1},"featuresIndex":2}`))
	f.Add([]byte(`{"v":1,"index":5,"clusterID":"c","clientQuotas":[{"entity":[{"entityType":"user","entityName":"alice"},{"entityType":"client-id","entityName":null}],"values":{"producer_byte_rate":1048576}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(data)
		if err != nil {
			return
		}
		again, err := EncodeImage(img)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := DecodeImage(again)
		if err != nil || !Equal(img, back) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// TestRegisterController: a description replaces the one before; a zero directory id keeps
// the known one (a controller that registers again as an observer); the old image is
// unchanged; a negative id is refused.
func TestRegisterController(t *testing.T) {
	ep := func(port int32) []Endpoint { return []Endpoint{{Listener: "CONTROLLER", Host: "h", Port: port}} }
	img := build(t, RegisterController{ID: 1, DirectoryID: UUID{1}, Endpoints: ep(1)})
	next, err := img.Apply(RegisterController{ID: 1, Endpoints: ep(2)})
	if err != nil {
		t.Fatal(err)
	}
	if got := next.Controllers[1]; got.DirectoryID != (UUID{1}) || got.Endpoints[0].Port != 2 {
		t.Errorf("after re-registration: %+v, want directory id kept and port 2", got)
	}
	if img.Controllers[1].Endpoints[0].Port != 1 {
		t.Errorf("the old image changed")
	}
	next, err = next.Apply(RegisterController{ID: 1, DirectoryID: UUID{7}, Endpoints: ep(2)})
	if err != nil || next.Controllers[1].DirectoryID != (UUID{7}) {
		t.Errorf("new directory id: %+v, %v", next.Controllers[1], err)
	}
	if _, err := img.Apply(RegisterController{ID: -1}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("negative id: %v, want ErrInvalidRecord", err)
	}
}

// TestReassignmentInSnapshot: a partition's adding and removing replicas survive a snapshot,
// and an image that differs only in them is not Equal.
func TestReassignmentInSnapshot(t *testing.T) {
	img := build(t,
		CreateTopic{Name: "a", ID: idA, Partitions: parts(1, 1, 2)},
		PartitionChange{TopicID: idA, Replicas: []int32{3, 1, 2}, Reassignment: &Reassignment{Adding: []int32{3}, Removing: []int32{2}}},
	)
	got := must(DecodeImage(must(EncodeImage(img))))
	p := got.Topics["a"].Partitions[0]
	if !Equal(img, got) || !slices.Equal(p.AddingReplicas, []int32{3}) || !slices.Equal(p.RemovingReplicas, []int32{2}) || !p.Reassigning() {
		t.Fatalf("round trip: %+v", p)
	}
	if rf := got.Topics["a"].ReplicationFactor(); rf != 2 {
		t.Errorf("replication factor %d during the reassignment, want the target's 2", rf)
	}
	if !slices.Equal(p.ReassignmentTarget(), []int32{3, 1}) || !slices.Equal(p.OriginalReplicas(), []int32{1, 2}) {
		t.Errorf("target %v, original %v", p.ReassignmentTarget(), p.OriginalReplicas())
	}
	done := must(img.Apply(PartitionChange{TopicID: idA, Reassignment: &Reassignment{}}))
	if Equal(img, done) || done.Topics["a"].Partitions[0].Reassigning() {
		t.Errorf("ending the reassignment: %+v", done.Topics["a"].Partitions[0])
	}
}
