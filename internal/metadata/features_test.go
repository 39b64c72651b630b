package metadata

import (
	"errors"
	"maps"
	"testing"
)

func TestApplyFeatureLevel(t *testing.T) {
	tests := []struct {
		name      string
		batches   [][]Record
		want      map[string]int16
		wantIndex uint64
		wantErr   error
	}{
		{name: "set", batches: [][]Record{{FeatureLevel{Name: "metadata.version", Level: 20}, FeatureLevel{Name: "group.version", Level: 1}}},
			want: map[string]int16{"metadata.version": 20, "group.version": 1}, wantIndex: 1},
		{name: "level 0 removes",
			batches: [][]Record{{FeatureLevel{Name: "group.version", Level: 1}}, {FeatureLevel{Name: "group.version", Level: 0}}},
			want:    map[string]int16{}, wantIndex: 2},
		{name: "other records keep the epoch",
			batches: [][]Record{{FeatureLevel{Name: "group.version", Level: 1}}, {Bootstrap{ClusterID: "c"}}},
			want:    map[string]int16{"group.version": 1}, wantIndex: 1},
		{name: "empty name", batches: [][]Record{{FeatureLevel{Level: 1}}}, wantErr: ErrInvalidRecord},
		{name: "negative level", batches: [][]Record{{FeatureLevel{Name: "x", Level: -1}}}, wantErr: ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := &Image{}
			var err error
			for i, b := range tt.batches {
				if img, err = img.ApplyBatch(uint64(i+1), b); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !maps.Equal(img.Features, tt.want) || img.FeaturesIndex != tt.wantIndex {
				t.Errorf("features %v at %d, want %v at %d", img.Features, img.FeaturesIndex, tt.want, tt.wantIndex)
			}
		})
	}
}

func TestApplyFeatureLevelCopies(t *testing.T) {
	old := build(t, FeatureLevel{Name: "group.version", Level: 1})
	next, err := old.Apply(FeatureLevel{Name: "group.version", Level: 0})
	if err != nil {
		t.Fatal(err)
	}
	if old.FeatureLevel("group.version") != 1 || next.FeatureLevel("group.version") != 0 {
		t.Errorf("old %v, new %v", old.Features, next.Features)
	}
}

func TestFeaturesSnapshotRoundTrip(t *testing.T) {
	img, err := build(t, Bootstrap{ClusterID: "c"}).ApplyBatch(5, []Record{FeatureLevel{Name: "metadata.version", Level: 20}})
	if err != nil {
		t.Fatal(err)
	}
	got := must(DecodeImage(must(EncodeImage(img))))
	if !Equal(img, got) || got.FeatureLevel("metadata.version") != 20 || got.FeaturesIndex != 5 {
		t.Fatalf("round trip: %v at %d", got.Features, got.FeaturesIndex)
	}
	old := must(DecodeImage([]byte(`{"v":1,"index":3,"clusterID":"c"}`)))
	if old.Features != nil || old.FeaturesIndex != 0 {
		t.Errorf("snapshot without features decoded as %v at %d", old.Features, old.FeaturesIndex)
	}
	for _, bad := range []string{`{"v":1,"features":{"group.version":0}}`, `{"v":1,"features":{"":1}}`} {
		if _, err := DecodeImage([]byte(bad)); err == nil {
			t.Errorf("DecodeImage(%s) succeeded", bad)
		}
	}
}
