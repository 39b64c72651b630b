package broker_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// features is what ApiVersions says about features: supported ranges and finalized levels
// ("name min-max"), and the epoch.
type features struct {
	supported, finalized map[string][2]int16
	epoch                int64
}

func describeFeatures(t *testing.T, n *testcluster.Node, version int16) features {
	t.Helper()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.ApiVersions, version))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != version || resp.ErrorCode != 0 || resp.ZkMigrationReady {
		t.Fatalf("ApiVersions v%d (want v%d): error %d, ZkMigrationReady %v", resp.Version, version, resp.ErrorCode, resp.ZkMigrationReady)
	}
	f := features{supported: map[string][2]int16{}, finalized: map[string][2]int16{}, epoch: resp.FinalizedFeaturesEpoch}
	for _, s := range resp.SupportedFeatures {
		f.supported[s.Name] = [2]int16{s.MinVersion, s.MaxVersion}
	}
	for _, s := range resp.FinalizedFeatures {
		f.finalized[s.Name] = [2]int16{s.MinVersionLevel, s.MaxVersionLevel}
	}
	return f
}

// Samsa supports metadata.version 3.3-IV3 (7) to 3.8-IV0 (20), group.version 0-1,
// kraft.version 0-1 and transaction.version 0-2; the other features of Kafka 4.1 are at most
// 0 and so left out, as Kafka leaves them out. kraft.version is finalized at 1 only in a
// dynamic quorum, so a static one leaves it out of the finalized features (level 0).
var wantSupported = map[string][2]int16{"metadata.version": {7, 20}, "group.version": {0, 1}, "kraft.version": {0, 1}, "transaction.version": {0, 2}}

func TestApiVersionsFeatures(t *testing.T) {
	n := testcluster.Start(t)
	for _, v := range []int16{3, 4} {
		f := describeFeatures(t, n, v)
		want := map[string][2]int16{"metadata.version": {20, 20}, "group.version": {1, 1}, "transaction.version": {2, 2}}
		if !reflect.DeepEqual(f.supported, wantSupported) || !reflect.DeepEqual(f.finalized, want) || f.epoch <= 0 {
			t.Errorf("v%d: supported %v, finalized %v, epoch %d; want %v, %v, > 0", v, f.supported, f.finalized, f.epoch, wantSupported, want)
		}
	}
}

func TestUpdateFeatures(t *testing.T) {
	const failed = "The update failed for all features since the following feature had an error: "
	type update struct {
		name  string
		level int16
		typ   int8 // v1+; v0 sends AllowDowngrade for typ > 1
	}
	tests := []struct {
		name         string
		versions     []int16
		updates      []update
		validateOnly bool
		wantMsg      string // "" for success
		wantGroup    int16  // finalized group.version afterwards
		wantTV       int16  // finalized transaction.version afterwards (0: 2, the default)
	}{
		{name: "safe downgrade", versions: []int16{0, 1, 2}, updates: []update{{"group.version", 0, 2}}, wantGroup: 0},
		{name: "validate only", versions: []int16{1, 2}, updates: []update{{"group.version", 0, 2}}, validateOnly: true, wantGroup: 1},
		{name: "transaction.version beyond the supported range", versions: []int16{0, 1, 2}, updates: []update{{"transaction.version", 3, 1}}, wantGroup: 1,
			wantMsg: failed + "Invalid update version 3 for feature transaction.version. Local controller 1 only supports versions 0-2"},
		{name: "transaction.version downgrade", versions: []int16{1, 2}, updates: []update{{"transaction.version", 1, 2}}, wantGroup: 1, wantTV: 1},
		{name: "unsupported feature", versions: []int16{1, 2}, updates: []update{{"share.version", 1, 1}}, wantGroup: 1,
			wantMsg: failed + "Invalid update version 1 for feature share.version. Local controller 1 does not support this feature."},
		{name: "beyond the supported range", versions: []int16{1, 2}, updates: []update{{"group.version", 0, 2}, {"group.version", 2, 1}}, wantGroup: 1,
			wantMsg: failed + "Invalid update version 2 for feature group.version. Local controller 1 only supports versions 0-1"},
		{name: "lossy metadata.version downgrade", versions: []int16{1}, updates: []update{{"metadata.version", 14, 2}}, wantGroup: 1,
			wantMsg: failed + "Invalid metadata.version 14. Refusing to perform the requested downgrade because it might delete metadata information."},
		{name: "downgrade without a downgrade type", versions: []int16{0, 2}, updates: []update{{"group.version", 0, 1}}, wantGroup: 1,
			wantMsg: failed + "Invalid update version 0 for feature group.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."},
	}
	for _, tt := range tests {
		for _, v := range tt.versions {
			t.Run(tt.name+"/v"+string(rune('0'+v)), func(t *testing.T) {
				n := testcluster.Start(t)
				before := describeFeatures(t, n, 4)
				req := kmsg.NewPtrUpdateFeaturesRequest()
				req.ValidateOnly = tt.validateOnly
				for _, u := range tt.updates {
					fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
					fu.Feature, fu.MaxVersionLevel, fu.UpgradeType, fu.AllowDowngrade = u.name, u.level, u.typ, u.typ > 1
					req.FeatureUpdates = append(req.FeatureUpdates, fu)
				}
				resp, err := req.RequestWith(ctxT(t), pinnedBroker(t, n, kmsg.UpdateFeatures, v))
				if err != nil {
					t.Fatal(err)
				}
				if resp.Version != v {
					t.Fatalf("answered at v%d", resp.Version)
				}
				gotMsg := ""
				if resp.ErrorMessage != nil {
					gotMsg = *resp.ErrorMessage
				}
				wantCode := int16(0)
				if tt.wantMsg != "" {
					wantCode = kerr.InvalidUpdateVersion.Code
				}
				if resp.ErrorCode != wantCode || gotMsg != tt.wantMsg {
					t.Fatalf("error %d %q, want %d %q", resp.ErrorCode, gotMsg, wantCode, tt.wantMsg)
				}
				if wantResults := tt.wantMsg == "" && v <= 1; (len(resp.Results) == len(tt.updates)) != wantResults {
					t.Errorf("results %+v at v%d", resp.Results, v)
				}
				for _, r := range resp.Results {
					if r.ErrorCode != 0 {
						t.Errorf("result %+v", r)
					}
				}
				after := describeFeatures(t, n, 4)
				want := map[string][2]int16{"metadata.version": {20, 20}, "transaction.version": {2, 2}}
				if tt.wantGroup > 0 {
					want["group.version"] = [2]int16{tt.wantGroup, tt.wantGroup}
				}
				if tt.wantTV > 0 {
					want["transaction.version"] = [2]int16{tt.wantTV, tt.wantTV}
				}
				if !reflect.DeepEqual(after.finalized, want) {
					t.Errorf("finalized %v, want %v", after.finalized, want)
				}
				if changed := tt.wantGroup != 1 || tt.wantTV != 0; changed != (after.epoch > before.epoch) || after.epoch < before.epoch {
					t.Errorf("epoch %d -> %d", before.epoch, after.epoch)
				}
			})
		}
	}
}

// A feature change is in the metadata log: it survives a restart, and group.version 0 turns
// KIP-848 consumer groups off (UNSUPPORTED_VERSION, as Kafka) until it is upgraded again.
func TestUpdateFeaturesPersists(t *testing.T) {
	n := testcluster.Start(t)
	adm := newAdmin(t, n)
	update := func(level int16, typ int8) {
		t.Helper()
		res, err := adm.UpdateFeatures(ctxT(t), false, kadm.FeatureUpdate{Feature: "group.version", MaxVersionLevel: level, UpgradeType: typ})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("group.version -> %d: %v", level, err)
		}
	}
	heartbeat := func() int16 {
		t.Helper()
		coordinate(t, n, "g")
		return joinHeartbeat(t, n, "g", "m-features-test-0000001", "t").ErrorCode
	}
	update(0, 3)
	n.Restart()
	f := describeFeatures(t, n, 4)
	if _, ok := f.finalized["group.version"]; ok || f.finalized["metadata.version"] != [2]int16{20, 20} {
		t.Fatalf("after restart: finalized %v", f.finalized)
	}
	if code := heartbeat(); code != kerr.UnsupportedVersion.Code {
		t.Fatalf("ConsumerGroupHeartbeat with group.version 0: error %v", kerr.ErrorForCode(code))
	}
	res, err := adm.UpdateFeatures(ctxT(t), false, kadm.FeatureUpdate{Feature: "group.version", MaxVersionLevel: 2, UpgradeType: 1})
	if err == nil {
		err = res.Error()
	}
	if !errors.Is(err, kerr.InvalidUpdateVersion) {
		t.Fatalf("group.version 2: %v", err)
	}
	update(1, 1)
	n.Restart()
	if f := describeFeatures(t, n, 4); f.finalized["group.version"] != [2]int16{1, 1} {
		t.Fatalf("after the upgrade and a restart: finalized %v", f.finalized)
	}
	if code := heartbeat(); code != 0 {
		t.Fatalf("ConsumerGroupHeartbeat with group.version 1: error %v", kerr.ErrorForCode(code))
	}
}
