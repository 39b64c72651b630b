package metadata

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		Bootstrap{ClusterID: "MkU3OEVBNTcwNTJENDM2Qk"},
		RegisterBroker{ID: 3, Rack: "r1", IncarnationID: UUID{0xff, 1},
			Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "localhost", Port: 9092, SecurityProtocol: "PLAINTEXT"}}},
		CreateTopic{Name: "t", ID: UUID{1, 2, 3}, Configs: map[string]string{"a": "b"},
			Partitions: []Partition{{Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 5}}},
		DeleteTopic{ID: UUID{7}},
		CreatePartitions{TopicID: UUID{7}, Partitions: []Partition{{Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
		SetConfigs{ResourceType: ResourceBroker, ResourceName: "", Set: map[string]string{"x": "1"}, Delete: []string{"y"}},
		AllocateProducerIDs{FirstID: 1000, Count: 1000},
		FeatureLevel{Name: "group.version", Level: 1},
		RegisterController{ID: 2, DirectoryID: UUID{9}, Endpoints: []Endpoint{{Listener: "CONTROLLER", Host: "h", Port: 9093}}},
	}
	for _, r := range recs {
		t.Run(r.RecordType(), func(t *testing.T) {
			data, err := EncodeRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			prefix := `{"type":"` + r.RecordType() + `","v":1`
			if !strings.HasPrefix(string(data), prefix) {
				t.Errorf("encoded %s, want prefix %s", data, prefix)
			}
			got, err := DecodeRecord(data)
			if err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, r)
			}
		})
	}
	batch, err := EncodeBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Errorf("batch round trip:\n got %#v\nwant %#v", got, recs)
	}
}

func TestEncodeEmptyRecord(t *testing.T) {
	data, err := EncodeRecord(DeleteTopic{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"DeleteTopic","v":1,"id":"AAAAAAAAAAAAAAAAAAAAAA"}`
	if string(data) != want {
		t.Errorf("got %s, want %s", data, want)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{"not json", `{`, ErrMalformedRecord},
		{"unknown type", `{"type":"Nope","v":1}`, ErrUnknownRecordType},
		{"missing type", `{"v":1}`, ErrUnknownRecordType},
		{"newer version", `{"type":"DeleteTopic","v":2,"id":"AAAAAAAAAAAAAAAAAAAAAA"}`, ErrUnsupportedVersion},
		{"missing version", `{"type":"DeleteTopic"}`, ErrUnsupportedVersion},
		{"bad field", `{"type":"DeleteTopic","v":1,"id":"short"}`, ErrMalformedRecord},
		{"bad field type", `{"type":"AllocateProducerIDs","v":1,"count":"x"}`, ErrMalformedRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRecord([]byte(tt.data))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := DecodeBatch([]byte(`[{"type":"Nope","v":1}]`)); !errors.Is(err, ErrUnknownRecordType) {
		t.Errorf("batch err = %v", err)
	}
	if _, err := EncodeRecord(nil); !errors.Is(err, ErrUnknownRecordType) {
		t.Errorf("encode nil err = %v", err)
	}
}

func TestUUIDText(t *testing.T) {
	u := UUID{0xfb, 0xff, 0x01}
	s := u.String()
	if len(s) != 22 {
		t.Fatalf("len(%q) = %d", s, len(s))
	}
	got, err := ParseUUID(s)
	if err != nil || got != u {
		t.Fatalf("ParseUUID(%q) = %v, %v", s, got, err)
	}
	for _, bad := range []string{"", "abc", "AAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAB"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) succeeded", bad)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`[{"type":"DeleteTopic","v":1,"id":"AAAAAAAAAAAAAAAAAAAAAA"}]`))
	f.Add([]byte(`[{"type":"CreateTopic","v":1,"name":"a","id":"AQAAAAAAAAAAAAAAAAAAAA","partitions":[{"partition":0,"replicas":[1]}]}]`))
	f.Add([]byte(`[{"type":"FeatureLevel","v":1,"name":"metadata.version","level":20},{"type":"FeatureLevel","v":1,"name":"group.version","level":0}]`))
	f.Add([]byte(`[{"type":"ClientQuota","v":1,"entity":[{"entityType":"ip","entityName":null}],"key":"connection_creation_rate","value":10},{"type":"ClientQuota","v":1,"entity":[{"entityType":"ip"}],"key":"connection_creation_rate","remove":true}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := DecodeBatch(data)
		if err != nil {
			return
		}
		// Whatever decodes must apply or fail cleanly, and re-encode.
		if _, err := (&Image{}).ApplyBatch(1, recs); err != nil {
			return
		}
		if _, err := EncodeBatch(recs); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
