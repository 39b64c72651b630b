package controller

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

func brokersWithRacks(racks ...string) []metadata.Broker {
	out := make([]metadata.Broker, len(racks))
	for i, r := range racks {
		out[i] = metadata.Broker{ID: int32(i + 1), Rack: r}
	}
	return out
}

func TestRackAlternated(t *testing.T) {
	got := rackAlternated(brokersWithRacks("b", "a", "b", "a", "c", "a"))
	var ids []int32
	for _, b := range got {
		ids = append(ids, b.ID)
	}
	// racks a: 2,4,6  b: 1,3  c: 5
	if want := []int32{2, 1, 5, 4, 3, 6}; !slices.Equal(ids, want) {
		t.Errorf("rackAlternated = %v, want %v", ids, want)
	}
}

func TestPlaceReplicas(t *testing.T) {
	tests := []struct {
		name    string
		brokers []metadata.Broker
		count   int32
		rf      int16
		start   int
		want    [][]int32
	}{
		{name: "no racks, round robin", brokers: brokersWithRacks("", "", ""), count: 4, rf: 2,
			want: [][]int32{{1, 2}, {2, 3}, {3, 1}, {1, 3}}},
		{name: "start offset", brokers: brokersWithRacks("", "", ""), count: 2, rf: 2, start: 1,
			want: [][]int32{{2, 3}, {3, 1}}},
		{name: "rf 1", brokers: brokersWithRacks("", ""), count: 3, rf: 1, want: [][]int32{{1}, {2}, {1}}},
		{name: "racks spread replicas", brokers: brokersWithRacks("a", "a", "b", "b"), count: 4, rf: 2,
			// order: 1(a) 3(b) 2(a) 4(b)
			want: [][]int32{{1, 3}, {3, 2}, {2, 4}, {4, 1}}},
		{name: "rf above racks", brokers: brokersWithRacks("a", "a", "b"), count: 3, rf: 3,
			want: [][]int32{{1, 3, 2}, {3, 2, 1}, {2, 3, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := placeReplicas(tt.brokers, tt.count, tt.rf, tt.start)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("placeReplicas = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPlaceReplicasProperties checks, over many shapes, what placement promises: distinct
// replicas, every rack used before any repeats, leaders spread evenly.
func TestPlaceReplicasProperties(t *testing.T) {
	shapes := [][]string{
		{"", "", "", "", ""},
		{"a", "b", "c", "a", "b", "c"},
		{"a", "a", "a", "b"},
		{"r1", "r2", "r1", "r2", "r3", "r3", "r3"},
	}
	for _, racks := range shapes {
		brokers := brokersWithRacks(racks...)
		rackOf := func(id int32) string { return brokers[id-1].Rack }
		numRacks := len(slices.Compact(slices.Sorted(slices.Values(racks))))
		for rf := int16(1); int(rf) <= len(brokers); rf++ {
			count := int32(len(brokers) * 6)
			lists, err := placeReplicas(brokers, count, rf, 3)
			if err != nil {
				t.Fatal(err)
			}
			leaders := make(map[int32]int)
			for _, l := range lists {
				leaders[l[0]]++
				if len(l) != int(rf) || len(slices.Compact(slices.Sorted(slices.Values(l)))) != int(rf) {
					t.Fatalf("racks %v rf %d: replicas %v", racks, rf, l)
				}
				usedRacks := make(map[string]bool)
				for _, id := range l {
					usedRacks[rackOf(id)] = true
				}
				if len(usedRacks) != min(int(rf), numRacks) {
					t.Errorf("racks %v rf %d: replicas %v use %d racks, want %d", racks, rf, l, len(usedRacks), min(int(rf), numRacks))
				}
			}
			for _, b := range brokers {
				if leaders[b.ID] != 6 {
					t.Errorf("racks %v rf %d: broker %d leads %d of %d partitions, want 6", racks, rf, b.ID, leaders[b.ID], count)
				}
			}
		}
	}
}

func TestPlaceReplicasErrors(t *testing.T) {
	_, err := placeReplicas(brokersWithRacks("", ""), 1, 3, 0)
	want := "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."
	if !errors.Is(err, kerr.InvalidReplicationFactor) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("too few brokers: %v", err)
	}
	_, err = placeReplicas(nil, 1, 1, 0)
	if !errors.Is(err, kerr.InvalidReplicationFactor) || !strings.HasSuffix(err.Error(), "All brokers are currently fenced.") {
		t.Errorf("no brokers: %v", err)
	}
}

func TestUsableBrokers(t *testing.T) {
	img := clusterImage(t, 4, []int32{2}, []int32{3}, nil)
	var ids []int32
	for _, b := range usableBrokers(img) {
		ids = append(ids, b.ID)
	}
	if !slices.Equal(ids, []int32{1, 4}) {
		t.Errorf("usable = %v, want [1 4]", ids)
	}
}
