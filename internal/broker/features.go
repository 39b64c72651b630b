package broker

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
)

// Features (KIP-584): ApiVersions v3+ reports the supported and finalized features (see
// appendFeatures) and UpdateFeatures changes the finalized levels through the controller.
func init() {
	register(kmsg.UpdateFeatures.Int16(), 0, 2, handleUpdateFeatures)
}

// appendFeatures fills the feature fields of an ApiVersions response as a Kafka 4.1 broker
// does: supported features whose maximum level is 0 are left out, and so are finalized
// features at level 0; the epoch is the metadata log index where the levels last changed.
func (b *Broker) appendFeatures(resp *kmsg.ApiVersionsResponse) {
	for _, f := range controller.SupportedFeatures() {
		if f.Max == 0 {
			continue
		}
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = f.Name, f.Min, f.Max
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
	}
	levels, epoch := controller.FinalizedFeatures(b.ctrl.Image())
	for _, name := range slices.Sorted(maps.Keys(levels)) {
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = name, levels[name], levels[name]
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	}
	resp.FinalizedFeaturesEpoch = epoch
	resp.ZkMigrationReady = false
}

// updateFeaturesFailed prefixes the refusal of an UpdateFeatures request, as Kafka's
// controller does.
const updateFeaturesFailed = "The update failed for all features since the following feature had an error: "

func handleUpdateFeatures(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.UpdateFeaturesRequest)
	resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	updates := make([]controller.FeatureUpdate, 0, len(r.FeatureUpdates))
	for _, u := range r.FeatureUpdates {
		typ := u.UpgradeType
		if r.Version == 0 { // v0 has AllowDowngrade instead of UpgradeType
			typ = controller.UpgradeTypeUpgrade
			if u.AllowDowngrade {
				typ = controller.UpgradeTypeSafeDowngrade
			}
		}
		updates = append(updates, controller.FeatureUpdate{Name: u.Feature, Level: u.MaxVersionLevel, UpgradeType: typ})
	}
	if err := b.ctrl.UpdateFeatures(req.conn.ctx, updates, r.ValidateOnly); err != nil {
		b.log.Info("refused feature update", "err", err)
		resp.ErrorCode = errCode(err)
		resp.ErrorMessage = strp(updateFeaturesFailed + err.Error())
		return resp, nil
	}
	// Kafka lists each feature as updated up to v1 (v2 dropped the list), with the message of
	// its NONE error.
	if r.Version <= 1 {
		for _, u := range r.FeatureUpdates {
			res := kmsg.NewUpdateFeaturesResponseResult()
			res.Feature, res.ErrorMessage = u.Feature, strp("NONE")
			resp.Results = append(resp.Results, res)
		}
	}
	return resp, nil
}
