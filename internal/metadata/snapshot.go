package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/samsa-io/samsa/internal/acl"
)

// snapshotVersion is the layout version of an encoded image.
const snapshotVersion = 1

// snapshot is the encoded form of an Image; see the package documentation.
type snapshot struct {
	V              int                          `json:"v"`
	Index          uint64                       `json:"index"`
	ClusterID      string                       `json:"clusterID"`
	Brokers        []Broker                     `json:"brokers"`
	Topics         []*Topic                     `json:"topics"`
	BrokerConfigs  map[string]map[string]string `json:"brokerConfigs,omitempty"`
	NextProducerID int64                        `json:"nextProducerID"`
	Features       map[string]int16             `json:"features,omitempty"`
	FeaturesIndex  uint64                       `json:"featuresIndex,omitempty"`
	Controllers    []Controller                 `json:"controllers,omitempty"`
	// ScramCredentials are the users' SCRAM credentials (user, then mechanism).
	ScramCredentials map[string]map[string]ScramCredential `json:"scramCredentials,omitempty"`
	// ACLs are the ACL bindings, ordered by id.
	ACLs []aclEntry `json:"acls,omitempty"`
	// ClientQuotas are the client quotas by entity, in QuotaEntities' order.
	ClientQuotas []quotaEntry `json:"clientQuotas,omitempty"`
	// DelegationTokens are the delegation tokens, ordered by id.
	DelegationTokens []DelegationToken `json:"delegationTokens,omitempty"`
}

// EncodeImage encodes img as a snapshot. Equal images encode to equal bytes.
func EncodeImage(img *Image) ([]byte, error) {
	s := snapshot{
		V:              snapshotVersion,
		Index:          img.Index,
		ClusterID:      img.ClusterID,
		Brokers:        make([]Broker, 0, len(img.Brokers)),
		Topics:         img.sortedTopics(),
		BrokerConfigs:  img.BrokerConfigs,
		NextProducerID: img.NextProducerID,
		Features:       img.Features,
		FeaturesIndex:  img.FeaturesIndex,

		ScramCredentials: img.ScramCredentials,
		ClientQuotas:     img.quotaSnapshot(),
	}
	for _, id := range img.ACLIDs() {
		s.ACLs = append(s.ACLs, aclEntry{ID: id, Binding: img.ACLs[id]})
	}
	for _, id := range img.DelegationTokenIDs() {
		s.DelegationTokens = append(s.DelegationTokens, img.DelegationTokens[id])
	}
	for _, id := range img.BrokerIDs() {
		s.Brokers = append(s.Brokers, img.Brokers[id])
	}
	for _, id := range slices.Sorted(maps.Keys(img.Controllers)) {
		s.Controllers = append(s.Controllers, img.Controllers[id])
	}
	out, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode image: %w", err)
	}
	return out, nil
}

// DecodeImage decodes a snapshot written by EncodeImage.
func DecodeImage(data []byte) (*Image, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("metadata: decode image: %w", err)
	}
	if s.V != snapshotVersion {
		return nil, fmt.Errorf("%w: image v%d", ErrUnsupportedVersion, s.V)
	}
	img := &Image{
		Index:          s.Index,
		ClusterID:      s.ClusterID,
		NextProducerID: s.NextProducerID,
		FeaturesIndex:  s.FeaturesIndex,
	}
	if err := checkFeatures(s.Features); err != nil {
		return nil, err
	}
	if len(s.Features) > 0 {
		img.Features = s.Features
	}
	for _, c := range s.Controllers {
		if img.Controllers == nil {
			img.Controllers = make(map[int32]Controller, len(s.Controllers))
		}
		if _, dup := img.Controllers[c.ID]; dup || c.ID < 0 {
			return nil, fmt.Errorf("metadata: decode image: controller %d twice or invalid", c.ID)
		}
		img.Controllers[c.ID] = c
	}
	if len(s.Brokers) > 0 {
		img.Brokers = make(map[int32]Broker, len(s.Brokers))
		for _, b := range s.Brokers {
			if _, dup := img.Brokers[b.ID]; dup {
				return nil, fmt.Errorf("metadata: decode image: broker %d twice", b.ID)
			}
			img.Brokers[b.ID] = b
		}
	}
	if len(s.Topics) > 0 {
		img.Topics = make(map[string]*Topic, len(s.Topics))
		img.TopicsByID = make(map[UUID]*Topic, len(s.Topics))
		for _, t := range s.Topics {
			if t == nil || t.Name == "" || t.ID.IsZero() || len(t.Partitions) == 0 {
				return nil, fmt.Errorf("metadata: decode image: invalid topic %+v", t)
			}
			if err := checkPartitions(t.Partitions, 0); err != nil {
				return nil, fmt.Errorf("metadata: decode image: topic %q: %w", t.Name, err)
			}
			if _, dup := img.Topics[t.Name]; dup {
				return nil, fmt.Errorf("metadata: decode image: topic %q twice", t.Name)
			}
			if _, dup := img.TopicsByID[t.ID]; dup {
				return nil, fmt.Errorf("metadata: decode image: topic ID %s twice", t.ID)
			}
			img.Topics[t.Name] = t
			img.TopicsByID[t.ID] = t
		}
	}
	if len(s.ScramCredentials) > 0 {
		img.ScramCredentials = s.ScramCredentials
	}
	for _, e := range s.ACLs {
		if img.ACLs == nil {
			img.ACLs = make(map[UUID]acl.Binding, len(s.ACLs))
		}
		img.ACLs[e.ID] = e.Binding
	}
	quotas, err := quotasFromSnapshot(s.ClientQuotas)
	if err != nil {
		return nil, err
	}
	img.Quotas = quotas
	if img.DelegationTokens, err = delegationTokensFromSnapshot(s.DelegationTokens); err != nil {
		return nil, err
	}
	for name, c := range s.BrokerConfigs {
		if len(c) == 0 {
			continue
		}
		if img.BrokerConfigs == nil {
			img.BrokerConfigs = make(map[string]map[string]string, len(s.BrokerConfigs))
		}
		img.BrokerConfigs[name] = c
	}
	return img, nil
}

// Equal reports whether a and b hold the same metadata, ignoring Index (but not FeaturesIndex,
// the features' epoch). Nil and empty maps
// are equal.
func Equal(a, b *Image) bool {
	if a.ClusterID != b.ClusterID || a.NextProducerID != b.NextProducerID ||
		a.FeaturesIndex != b.FeaturesIndex || !maps.Equal(a.Features, b.Features) {
		return false
	}
	if !maps.EqualFunc(a.Brokers, b.Brokers, brokerEqual) || !maps.EqualFunc(a.Controllers, b.Controllers, controllerEqual) {
		return false
	}
	if !maps.EqualFunc(a.ScramCredentials, b.ScramCredentials, scramEqual) || !maps.Equal(a.ACLs, b.ACLs) || !quotasEqual(a, b) ||
		!maps.EqualFunc(a.DelegationTokens, b.DelegationTokens, delegationTokenEqual) {
		return false
	}
	if !maps.EqualFunc(a.Topics, b.Topics, topicEqual) || len(a.TopicsByID) != len(b.TopicsByID) {
		return false
	}
	return maps.EqualFunc(a.BrokerConfigs, b.BrokerConfigs, func(x, y map[string]string) bool {
		return maps.Equal(x, y)
	})
}

func brokerEqual(a, b Broker) bool {
	return a.ID == b.ID && a.Rack == b.Rack && a.IncarnationID == b.IncarnationID &&
		a.Epoch == b.Epoch && a.Fenced == b.Fenced && a.InControlledShutdown == b.InControlledShutdown &&
		slices.Equal(a.Endpoints, b.Endpoints)
}

func topicEqual(a, b *Topic) bool {
	return a.Name == b.Name && a.ID == b.ID && maps.Equal(a.Configs, b.Configs) &&
		slices.EqualFunc(a.Partitions, b.Partitions, func(x, y Partition) bool {
			return x.Partition == y.Partition && x.Leader == y.Leader &&
				x.LeaderEpoch == y.LeaderEpoch && x.PartitionEpoch == y.PartitionEpoch &&
				slices.Equal(x.Replicas, y.Replicas) && slices.Equal(x.ISR, y.ISR) &&
				slices.Equal(x.AddingReplicas, y.AddingReplicas) && slices.Equal(x.RemovingReplicas, y.RemovingReplicas)
		})
}
