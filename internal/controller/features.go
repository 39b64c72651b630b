package controller

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// Feature names (KIP-584), as Kafka 4.1 defines them.
const (
	FeatureMetadataVersion    = "metadata.version"
	FeatureKRaftVersion       = "kraft.version"
	FeatureTransactionVersion = "transaction.version"
	FeatureGroupVersion       = "group.version"
	FeatureELRVersion         = "eligible.leader.replicas.version"
	FeatureShareVersion       = "share.version"
	FeatureStreamsVersion     = "streams.version"
)

// metadataVersion38IV0 is Kafka's metadata.version 3.8-IV0: the highest level whose
// inter-broker Fetch (v16) and ListOffsets (v8) versions Samsa serves (3.9-IV0 needs Fetch v17
// and ListOffsets v9). metadataVersionMin is Kafka 4.x's minimum, 3.3-IV3.
const (
	metadataVersion38IV0 int16 = 20
	metadataVersionMin   int16 = 7
)

// SupportedFeature is one feature this node supports: the levels it implements and the level a
// new cluster starts at.
type SupportedFeature struct {
	Name     string
	Min, Max int16
	Default  int16
}

// supportedFeatures lists every feature Kafka 4.1 defines for production, at the levels Samsa
// implements: KIP-848 consumer groups (group.version 1) and dynamic quorums (kraft.version 1,
// KIP-853; its level is the quorum's kind, set when the cluster is formatted: 0 for
// controller.quorum.voters, 1 for a quorum formatted with --standalone or
// --initial-controllers, never changed by UpdateFeatures) and transaction.version 2 (KIP-890
// part 2: the producer epoch bumped at every transaction end; a new cluster starts there, as
// a Kafka 4.x cluster does, and kafka-features can set it to 0 or 1). ELR, share groups and
// streams groups do not exist here, so their levels stay 0.
var supportedFeatures = []SupportedFeature{
	{Name: FeatureMetadataVersion, Min: metadataVersionMin, Max: metadataVersion38IV0, Default: metadataVersion38IV0},
	{Name: FeatureKRaftVersion, Max: kraftVersionDynamic},
	{Name: FeatureTransactionVersion, Max: 2, Default: 2},
	{Name: FeatureGroupVersion, Max: 1, Default: 1},
	{Name: FeatureELRVersion},
	{Name: FeatureShareVersion},
	{Name: FeatureStreamsVersion},
}

// metadataChanged[level] is Kafka's MetadataVersion.didMetadataChange for the supported
// metadata.version levels: whether that level changed the metadata records, which makes a
// downgrade across it lossy.
var metadataChanged = map[int16]bool{
	7: true, 8: true, 9: false, 10: false, 11: true, 12: false, 13: true,
	14: true, 15: true, 16: false, 17: true, 18: false, 19: false, 20: false,
}

// SupportedFeatures returns the features this node supports, in a fixed order.
func SupportedFeatures() []SupportedFeature {
	return append([]SupportedFeature(nil), supportedFeatures...)
}

func supportedFeature(name string) (SupportedFeature, bool) {
	for _, f := range supportedFeatures {
		if f.Name == name {
			return f, true
		}
	}
	return SupportedFeature{Name: name}, false
}

// defaultFeatureRecords returns the FeatureLevel records of a new cluster.
func defaultFeatureRecords() []metadata.Record {
	var recs []metadata.Record
	for _, f := range supportedFeatures {
		if f.Default > 0 {
			recs = append(recs, metadata.FeatureLevel{Name: f.Name, Level: f.Default})
		}
	}
	return recs
}

// FinalizedFeatures returns the finalized feature levels of img (features at level 0 are
// absent) and their epoch, the log index where they last changed. An image written before
// feature levels existed has the defaults (Start writes them).
func FinalizedFeatures(img *metadata.Image) (levels map[string]int16, epoch int64) {
	if img.FeatureLevel(FeatureMetadataVersion) > 0 {
		return img.Features, int64(img.FeaturesIndex)
	}
	levels = make(map[string]int16)
	for _, f := range supportedFeatures {
		if f.Default > 0 {
			levels[f.Name] = f.Default
		}
	}
	return levels, int64(img.FeaturesIndex)
}

// FinalizedLevel returns the finalized level of one feature in img (see FinalizedFeatures).
func FinalizedLevel(img *metadata.Image, name string) int16 {
	levels, _ := FinalizedFeatures(img)
	return levels[name]
}

// Upgrade types of UpdateFeatures v1+.
const (
	UpgradeTypeUpgrade         int8 = 1
	UpgradeTypeSafeDowngrade   int8 = 2
	UpgradeTypeUnsafeDowngrade int8 = 3
)

// FeatureUpdate is one change of UpdateFeatures: set Name to Level.
type FeatureUpdate struct {
	Name        string
	Level       int16
	UpgradeType int8
}

// UpdateFeatures changes finalized feature levels, all or none, as Kafka's controller does: the
// first update that is refused refuses the request, with Kafka's message in a *KafkaError.
// Updates that leave a level unchanged write nothing. With validateOnly nothing is committed.
// Other errors wrap a *kerr.Error.
func (c *Controller) UpdateFeatures(ctx context.Context, updates []FeatureUpdate, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return err
	}
	current, _ := FinalizedFeatures(c.Image())
	var recs []metadata.Record
	for _, u := range updates {
		if err := c.checkFeatureUpdate(u, current[u.Name]); err != nil {
			return err
		}
		if u.Level != current[u.Name] && u.Name != FeatureKRaftVersion {
			recs = append(recs, metadata.FeatureLevel{Name: u.Name, Level: u.Level})
		}
	}
	if validateOnly || len(recs) == 0 {
		return nil
	}
	if _, err := c.proposeLocked(ctx, recs...); err != nil {
		return fmt.Errorf("controller: update features: %w", err)
	}
	for _, r := range recs {
		fl := r.(metadata.FeatureLevel)
		c.logger.Info("updated feature", "feature", fl.Name, "from", current[fl.Name], "to", fl.Level)
	}
	return nil
}

// checkFeatureUpdate applies the checks of Kafka 4.1's FeatureControlManager.updateFeature, in
// its order and with its messages, to changing one feature from level current.
func (c *Controller) checkFeatureUpdate(u FeatureUpdate, current int16) error {
	invalid := func(reason string) error {
		return &KafkaError{kerr.InvalidUpdateVersion,
			fmt.Sprintf("Invalid update version %d for feature %s. %s", u.Level, u.Name, reason)}
	}
	if u.UpgradeType < UpgradeTypeUpgrade || u.UpgradeType > UpgradeTypeUnsafeDowngrade {
		return invalid("The controller does not support the given upgrade type.")
	}
	if u.Level < 0 {
		return invalid("A feature version cannot be less than 0.")
	}
	f, known := supportedFeature(u.Name)
	if u.Level < f.Min || u.Level > f.Max {
		if f.Max == 0 {
			return invalid(fmt.Sprintf("Local controller %d does not support this feature.", c.cfg.NodeID))
		}
		return invalid(fmt.Sprintf("Local controller %d only supports versions %s", c.cfg.NodeID, versionRange(f.Min, f.Max)))
	}
	if u.Level < current && u.UpgradeType == UpgradeTypeUpgrade {
		return invalid("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
	}
	if u.Level > current && u.UpgradeType != UpgradeTypeUpgrade {
		return invalid("Can't downgrade to a newer version.")
	}
	switch {
	case u.Name == FeatureMetadataVersion:
		if u.Level < current && metadataDowngradeLossy(current, u.Level) {
			reason := "Refusing to perform the requested downgrade because it might delete metadata information."
			if u.UpgradeType == UpgradeTypeUnsafeDowngrade {
				reason = "Unsafe metadata downgrade is not supported in this version."
			}
			return &KafkaError{kerr.InvalidUpdateVersion,
				fmt.Sprintf("Invalid metadata.version %d. %s", u.Level, reason)}
		}
	case u.Name == FeatureKRaftVersion:
		if u.UpgradeType != UpgradeTypeUpgrade && u.Level != current {
			return invalid("Can't downgrade the version of this feature.")
		}
		if u.Level != current {
			// Kafka 4.1 can upgrade a static quorum to kraft.version 1; Samsa cannot (hashicorp
			// raft's configuration would have to take over controller.quorum.voters).
			return invalid(fmt.Sprintf("Local controller %d cannot change it: a quorum of controller.quorum.voters "+
				"stays at 0, a dynamic quorum (formatted with --standalone or --initial-controllers) at 1.", c.cfg.NodeID))
		}
	case !known:
		return invalid(fmt.Sprintf("Feature %s not found.", u.Name))
	}
	return nil
}

// metadataDowngradeLossy is Kafka's MetadataVersion.checkIfMetadataChanged for a downgrade
// from one supported level to a lower one: whether a level in (to, from] changed the metadata.
func metadataDowngradeLossy(from, to int16) bool {
	for l := from; l > to; l-- {
		if metadataChanged[l] {
			return true
		}
	}
	return false
}

// versionRange formats a range as Kafka's VersionRange.toString does.
func versionRange(lo, hi int16) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}
