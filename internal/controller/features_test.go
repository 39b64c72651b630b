package controller

import (
	"errors"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

var defaultLevels = map[string]int16{FeatureMetadataVersion: 20, FeatureGroupVersion: 1, FeatureTransactionVersion: 2}

func TestStartWritesDefaultFeatures(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	img := c.Image()
	if !maps.Equal(img.Features, defaultLevels) {
		t.Errorf("features %v, want %v", img.Features, defaultLevels)
	}
	if img.FeaturesIndex == 0 || img.FeaturesIndex > img.Index {
		t.Errorf("features index %d, image index %d", img.FeaturesIndex, img.Index)
	}
}

// A metadata log written before feature levels existed has no metadata.version: Start writes
// the defaults on top of it.
func TestStartWritesFeaturesToOldLog(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	c, err := Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	_, err = c.proposeLocked(testCtx(t), metadata.FeatureLevel{Name: FeatureMetadataVersion}, metadata.FeatureLevel{Name: FeatureGroupVersion},
		metadata.FeatureLevel{Name: FeatureTransactionVersion})
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	old := c.Image()
	if len(old.Features) != 0 {
		t.Fatalf("features %v", old.Features)
	}
	if levels, _ := FinalizedFeatures(old); !maps.Equal(levels, defaultLevels) {
		t.Errorf("an image without features reads as %v, want the defaults", levels)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	img := startController(t, cfg).Image()
	if !maps.Equal(img.Features, defaultLevels) || img.FeaturesIndex <= old.Index {
		t.Errorf("after restart: features %v at %d (old log ends at %d)", img.Features, img.FeaturesIndex, old.Index)
	}
}

func TestUpdateFeatures(t *testing.T) {
	const (
		up     = UpgradeTypeUpgrade
		safe   = UpgradeTypeSafeDowngrade
		unsafe = UpgradeTypeUnsafeDowngrade
	)
	tests := []struct {
		name    string
		updates []FeatureUpdate
		want    map[string]int16 // nil: unchanged
		wantMsg string           // Kafka's message of the INVALID_UPDATE_VERSION refusal
	}{
		{name: "safe downgrade group.version", updates: []FeatureUpdate{{FeatureGroupVersion, 0, safe}},
			want: map[string]int16{FeatureMetadataVersion: 20, FeatureTransactionVersion: 2}},
		{name: "unsafe downgrade group.version", updates: []FeatureUpdate{{FeatureGroupVersion, 0, unsafe}},
			want: map[string]int16{FeatureMetadataVersion: 20, FeatureTransactionVersion: 2}},
		{name: "safe downgrade transaction.version", updates: []FeatureUpdate{{FeatureTransactionVersion, 0, safe}},
			want: map[string]int16{FeatureMetadataVersion: 20, FeatureGroupVersion: 1}},
		{name: "same level writes nothing", updates: []FeatureUpdate{{FeatureGroupVersion, 1, up}, {FeatureTransactionVersion, 2, up}, {FeatureKRaftVersion, 0, up}}},
		{name: "metadata.version downgrade without lost metadata", updates: []FeatureUpdate{{FeatureMetadataVersion, 17, safe}},
			want: map[string]int16{FeatureMetadataVersion: 17, FeatureGroupVersion: 1, FeatureTransactionVersion: 2}},
		{name: "lossy metadata.version downgrade", updates: []FeatureUpdate{{FeatureMetadataVersion, 16, safe}},
			wantMsg: "Invalid metadata.version 16. Refusing to perform the requested downgrade because it might delete metadata information."},
		{name: "unsafe lossy metadata.version downgrade", updates: []FeatureUpdate{{FeatureMetadataVersion, 7, unsafe}},
			wantMsg: "Invalid metadata.version 7. Unsafe metadata downgrade is not supported in this version."},
		{name: "metadata.version above the supported range", updates: []FeatureUpdate{{FeatureMetadataVersion, 27, up}},
			wantMsg: "Invalid update version 27 for feature metadata.version. Local controller 1 only supports versions 7-20"},
		{name: "group.version above the supported range", updates: []FeatureUpdate{{FeatureGroupVersion, 2, up}},
			wantMsg: "Invalid update version 2 for feature group.version. Local controller 1 only supports versions 0-1"},
		{name: "transaction.version above the supported range", updates: []FeatureUpdate{{FeatureTransactionVersion, 3, up}},
			wantMsg: "Invalid update version 3 for feature transaction.version. Local controller 1 only supports versions 0-2"},
		{name: "unknown feature", updates: []FeatureUpdate{{"no.such.feature", 1, up}},
			wantMsg: "Invalid update version 1 for feature no.such.feature. Local controller 1 does not support this feature."},
		{name: "unknown feature at level 0", updates: []FeatureUpdate{{"no.such.feature", 0, safe}},
			wantMsg: "Invalid update version 0 for feature no.such.feature. Feature no.such.feature not found."},
		{name: "negative level", updates: []FeatureUpdate{{FeatureGroupVersion, -1, safe}},
			wantMsg: "Invalid update version -1 for feature group.version. A feature version cannot be less than 0."},
		{name: "downgrade as an upgrade", updates: []FeatureUpdate{{FeatureGroupVersion, 0, up}},
			wantMsg: "Invalid update version 0 for feature group.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."},
		{name: "unknown upgrade type", updates: []FeatureUpdate{{FeatureGroupVersion, 0, 4}},
			wantMsg: "Invalid update version 0 for feature group.version. The controller does not support the given upgrade type."},
		{name: "kraft.version upgrade of a static quorum", updates: []FeatureUpdate{{FeatureKRaftVersion, 1, up}},
			wantMsg: "Invalid update version 1 for feature kraft.version. Local controller 1 cannot change it: a quorum of controller.quorum.voters stays at 0, a dynamic quorum (formatted with --standalone or --initial-controllers) at 1."},
		{name: "kraft.version above the supported range", updates: []FeatureUpdate{{FeatureKRaftVersion, 2, up}},
			wantMsg: "Invalid update version 2 for feature kraft.version. Local controller 1 only supports versions 0-1"},
		{name: "all or nothing", updates: []FeatureUpdate{{FeatureGroupVersion, 0, safe}, {FeatureShareVersion, 1, up}},
			wantMsg: "Invalid update version 1 for feature share.version. Local controller 1 does not support this feature."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startController(t, testConfig(t, t.TempDir()))
			before := c.Image()
			// validateOnly checks the same way and changes nothing.
			for _, validateOnly := range []bool{true, false} {
				err := c.UpdateFeatures(testCtx(t), tt.updates, validateOnly)
				var fe *KafkaError
				switch {
				case tt.wantMsg == "" && err != nil:
					t.Fatalf("validateOnly=%v: %v", validateOnly, err)
				case tt.wantMsg != "" && (!errors.As(err, &fe) || fe.Message != tt.wantMsg || !errors.Is(err, kerr.InvalidUpdateVersion)):
					t.Fatalf("validateOnly=%v: error %v, want INVALID_UPDATE_VERSION %q", validateOnly, err, tt.wantMsg)
				}
				if validateOnly && c.Image().Index != before.Index {
					t.Fatalf("validateOnly committed")
				}
			}
			img := c.Image()
			want, wantIndex := tt.want, img.Index
			if want == nil {
				want, wantIndex = before.Features, before.FeaturesIndex
			}
			if !maps.Equal(img.Features, want) || img.FeaturesIndex != wantIndex {
				t.Errorf("features %v at %d, want %v at %d", img.Features, img.FeaturesIndex, want, wantIndex)
			}
		})
	}
}
