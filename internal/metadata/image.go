package metadata

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/quota"
)

// Errors Apply returns when a record does not fit the image. The image is left unchanged.
var (
	ErrInvalidRecord      = errors.New("metadata: invalid record")
	ErrClusterIDMismatch  = errors.New("metadata: cluster ID already set to a different value")
	ErrTopicExists        = errors.New("metadata: topic already exists")
	ErrTopicIDExists      = errors.New("metadata: topic ID already in use")
	ErrUnknownTopic       = errors.New("metadata: unknown topic")
	ErrUnknownTopicID     = errors.New("metadata: unknown topic ID")
	ErrProducerIDMismatch = errors.New("metadata: producer ID block does not start at the next producer ID")
)

// Endpoint is one listener a broker accepts clients on.
type Endpoint struct {
	Listener string `json:"listener"`
	Host     string `json:"host"`
	Port     int32  `json:"port"`
	// SecurityProtocol is Kafka's name for the listener's protocol: PLAINTEXT, SSL,
	// SASL_PLAINTEXT or SASL_SSL.
	SecurityProtocol string `json:"securityProtocol"`
}

// Broker is a registered broker.
type Broker struct {
	ID        int32      `json:"id"`
	Endpoints []Endpoint `json:"endpoints"`
	Rack      string     `json:"rack,omitempty"`
	// IncarnationID changes every time the broker process starts.
	IncarnationID UUID `json:"incarnationID"`
	// Epoch is the broker epoch: the Raft log index of the batch holding the broker's
	// RegisterBroker record (ApplyBatch sets it; a value in the record is ignored). Heartbeats
	// and AlterPartition requests carry it, so a request from an old incarnation is refused.
	Epoch int64 `json:"epoch,omitempty"`
	// Fenced brokers may not lead partitions nor join ISRs. A registration is fenced until the
	// broker has caught up with the metadata log; a broker whose session expires is fenced.
	// Registrations written before fencing existed have no "fenced" member: unfenced.
	Fenced bool `json:"fenced,omitempty"`
	// InControlledShutdown marks a broker shutting down cleanly: its leaderships are being moved
	// away and it may not lead or join ISRs.
	InControlledShutdown bool `json:"inControlledShutdown,omitempty"`
}

// Active reports whether b may lead partitions and join ISRs: unfenced and not shutting down
// (Kafka's ClusterControlManager.isActive).
func (b Broker) Active() bool { return !b.Fenced && !b.InControlledShutdown }

// Partition is the replica assignment and leadership of one partition.
type Partition struct {
	Partition      int32   `json:"partition"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leaderEpoch"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	// AddingReplicas and RemovingReplicas are the replicas an ongoing reassignment adds and
	// removes (KIP-455; both subsets of Replicas, disjoint): Replicas is then the target
	// replicas followed by RemovingReplicas. Both empty: no reassignment.
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// Reassigning reports whether p has a reassignment in progress.
func (p Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// ReassignmentTarget returns the replicas p has once its reassignment completes: Replicas
// without RemovingReplicas (Replicas itself when none is in progress).
func (p Partition) ReassignmentTarget() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) })
}

// OriginalReplicas returns the replicas p had before its reassignment: Replicas without
// AddingReplicas, in Replicas' order (what cancelling it reverts to).
func (p Partition) OriginalReplicas() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.AddingReplicas, r) })
}

// Topic is one topic. Partitions[i].Partition == i.
type Topic struct {
	Name       string            `json:"name"`
	ID         UUID              `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// ReplicationFactor returns the number of replicas of the topic's first partition (those it
// keeps once a reassignment in progress completes).
func (t *Topic) ReplicationFactor() int16 {
	if len(t.Partitions) == 0 {
		return 0
	}
	return int16(len(t.Partitions[0].ReassignmentTarget()))
}

// Image is an immutable snapshot of the cluster metadata. Never modify an Image or anything
// reachable from it; Apply returns a new one. The zero Image is the empty metadata.
type Image struct {
	// Index is the Raft log index of the last batch applied to this image.
	Index     uint64
	ClusterID string
	Brokers   map[int32]Broker
	// Topics and TopicsByID index the same *Topic values.
	Topics     map[string]*Topic
	TopicsByID map[UUID]*Topic
	// BrokerConfigs holds dynamic broker configs by resource name: "" is the cluster-wide
	// default, a decimal broker ID is that broker's own.
	BrokerConfigs map[string]map[string]string
	// NextProducerID is the first producer ID not yet allocated.
	NextProducerID int64
	// Features holds the finalized feature levels by name (FeatureLevel records); a feature at
	// level 0 is absent, as in Kafka. Nil until the first FeatureLevel record.
	Features map[string]int16
	// FeaturesIndex is the log index of the last batch that held a FeatureLevel record: the
	// epoch of the finalized features.
	FeaturesIndex uint64
	// Controllers describes the controllers of a dynamic quorum by node id (RegisterController
	// records): directory ids and endpoints. Nil with a static quorum.
	Controllers map[int32]Controller
	// ScramCredentials are the users' SCRAM credentials by user name, then mechanism
	// (UserScramCredential records).
	ScramCredentials map[string]map[string]ScramCredential
	// ACLs are the ACL bindings by id (AccessControlEntry records).
	ACLs map[UUID]acl.Binding
	// Quotas are the client quotas (ClientQuota records), nil when there are none; read them
	// with ClientQuotas. A change replaces the table, never edits it.
	Quotas *quota.Table
	// DelegationTokens are the delegation tokens by token id (DelegationToken records).
	DelegationTokens map[string]DelegationToken
}

// Topic returns the topic with the given name.
func (img *Image) Topic(name string) (*Topic, bool) {
	t, ok := img.Topics[name]
	return t, ok
}

// TopicByID returns the topic with the given ID.
func (img *Image) TopicByID(id UUID) (*Topic, bool) {
	t, ok := img.TopicsByID[id]
	return t, ok
}

// TopicNames returns the names of all topics, sorted.
func (img *Image) TopicNames() []string {
	return slices.Sorted(maps.Keys(img.Topics))
}

// BrokerIDs returns the IDs of all registered brokers, sorted.
func (img *Image) BrokerIDs() []int32 {
	return slices.Sorted(maps.Keys(img.Brokers))
}

// BrokerConfig returns the dynamic configs of one broker resource ("" for the cluster-wide
// default). The map is shared; do not modify it.
func (img *Image) BrokerConfig(name string) map[string]string {
	return img.BrokerConfigs[name]
}

// DynamicBrokerValue returns the run-time value of a broker setting for node: its own
// dynamic config, else the cluster-wide default (Kafka's DynamicBrokerConfig order, above
// server.properties); ok is false when neither sets it.
func (img *Image) DynamicBrokerValue(node int32, name string) (v string, ok bool) {
	if v, ok = img.BrokerConfigs[strconv.Itoa(int(node))][name]; ok {
		return v, true
	}
	v, ok = img.BrokerConfigs[""][name]
	return v, ok
}

// ApplyBatch applies recs in order and returns the resulting image at the given log index. It is
// atomic: if any record fails, it returns the receiver unchanged and the error.
func (img *Image) ApplyBatch(index uint64, recs []Record) (*Image, error) {
	next := img
	features := false
	var st batchState
	for i, r := range recs {
		var applied *Image
		var err error
		switch r := r.(type) {
		case RegisterBroker:
			// The broker epoch is the index of the batch that registers the broker.
			r.Epoch = int64(index)
			applied, err = next.Apply(r)
		case PartitionChange:
			applied, err = next.applyPartitionChange(r, &st)
		default:
			applied, err = next.Apply(r)
		}
		if err != nil {
			return img, fmt.Errorf("record %d (%T): %w", i, r, err)
		}
		next = applied
		_, isFeature := r.(FeatureLevel)
		features = features || isFeature
	}
	if next == img {
		next = img.clone()
	}
	next.Index = index
	if features {
		next.FeaturesIndex = index
	}
	return next, nil
}

// Apply returns the image with r applied. It never modifies the receiver; on error it returns
// the receiver and the error. The returned image has the receiver's Index; ApplyBatch sets it.
func (img *Image) Apply(r Record) (*Image, error) {
	switch r := r.(type) {
	case Bootstrap:
		return img.applyBootstrap(r)
	case RegisterBroker:
		return img.applyRegisterBroker(r)
	case CreateTopic:
		return img.applyCreateTopic(r)
	case DeleteTopic:
		return img.applyDeleteTopic(r)
	case CreatePartitions:
		return img.applyCreatePartitions(r)
	case SetConfigs:
		return img.applySetConfigs(r)
	case AllocateProducerIDs:
		return img.applyAllocateProducerIDs(r)
	case FeatureLevel:
		return img.applyFeatureLevel(r)
	case RegisterController:
		return img.applyRegisterController(r)
	case BrokerRegistrationChange:
		return img.applyBrokerRegistrationChange(r)
	case UnregisterBroker:
		return img.applyUnregisterBroker(r)
	case PartitionChange:
		return img.applyPartitionChange(r, nil)
	case UserScramCredential:
		return img.applyUserScramCredential(r)
	case RemoveUserScramCredential:
		return img.applyRemoveUserScramCredential(r)
	case AccessControlEntry:
		return img.applyAccessControlEntry(r)
	case RemoveAccessControlEntry:
		return img.applyRemoveAccessControlEntry(r)
	case ClientQuota:
		return img.applyClientQuota(r)
	case DelegationToken:
		return img.applyDelegationToken(r)
	case RemoveDelegationToken:
		return img.applyRemoveDelegationToken(r)
	default:
		return img, fmt.Errorf("%w: %T", ErrUnknownRecordType, r)
	}
}

// clone returns a shallow copy of img that shares all maps.
func (img *Image) clone() *Image {
	c := *img
	return &c
}

func (img *Image) applyBootstrap(r Bootstrap) (*Image, error) {
	if r.ClusterID == "" {
		return img, fmt.Errorf("%w: empty cluster ID", ErrInvalidRecord)
	}
	if img.ClusterID != "" && img.ClusterID != r.ClusterID {
		return img, fmt.Errorf("%w: have %q, record has %q", ErrClusterIDMismatch, img.ClusterID, r.ClusterID)
	}
	next := img.clone()
	next.ClusterID = r.ClusterID
	return next, nil
}

func (img *Image) applyRegisterBroker(r RegisterBroker) (*Image, error) {
	if r.ID < 0 {
		return img, fmt.Errorf("%w: broker ID %d", ErrInvalidRecord, r.ID)
	}
	b := Broker(r)
	b.Endpoints = slices.Clone(b.Endpoints)
	next := img.clone()
	next.Brokers = withEntry(img.Brokers, b.ID, b)
	return next, nil
}

// checkPartitions checks that parts are numbered first, first+1, ... and each has replicas.
func checkPartitions(parts []Partition, first int32) error {
	for i, p := range parts {
		if want := first + int32(i); p.Partition != want {
			return fmt.Errorf("%w: partition %d at position %d, want %d", ErrInvalidRecord, p.Partition, i, want)
		}
		if len(p.Replicas) == 0 {
			return fmt.Errorf("%w: partition %d has no replicas", ErrInvalidRecord, p.Partition)
		}
	}
	return nil
}

// clonePartitions deep-copies parts so an image never aliases a caller's slices.
func clonePartitions(parts []Partition) []Partition {
	out := make([]Partition, len(parts))
	for i, p := range parts {
		p.Replicas = slices.Clone(p.Replicas)
		p.ISR = slices.Clone(p.ISR)
		out[i] = p
	}
	return out
}

// withTopic returns a clone of img whose topic indexes hold t (replacing old, if non-nil).
func (img *Image) withTopic(old, t *Topic) *Image {
	next := img.clone()
	next.Topics = maps.Clone(img.Topics)
	next.TopicsByID = maps.Clone(img.TopicsByID)
	if next.Topics == nil {
		next.Topics = make(map[string]*Topic, 1)
		next.TopicsByID = make(map[UUID]*Topic, 1)
	}
	if old != nil {
		delete(next.Topics, old.Name)
		delete(next.TopicsByID, old.ID)
	}
	if t != nil {
		next.Topics[t.Name] = t
		next.TopicsByID[t.ID] = t
	}
	return next
}

func (img *Image) applyCreateTopic(r CreateTopic) (*Image, error) {
	if r.Name == "" {
		return img, fmt.Errorf("%w: empty topic name", ErrInvalidRecord)
	}
	if r.ID.IsZero() {
		return img, fmt.Errorf("%w: zero topic ID for %q", ErrInvalidRecord, r.Name)
	}
	if _, ok := img.Topics[r.Name]; ok {
		return img, fmt.Errorf("%w: %q", ErrTopicExists, r.Name)
	}
	if _, ok := img.TopicsByID[r.ID]; ok {
		return img, fmt.Errorf("%w: %s", ErrTopicIDExists, r.ID)
	}
	if len(r.Partitions) == 0 {
		return img, fmt.Errorf("%w: topic %q has no partitions", ErrInvalidRecord, r.Name)
	}
	if err := checkPartitions(r.Partitions, 0); err != nil {
		return img, fmt.Errorf("topic %q: %w", r.Name, err)
	}
	t := &Topic{
		Name:       r.Name,
		ID:         r.ID,
		Partitions: clonePartitions(r.Partitions),
		Configs:    maps.Clone(r.Configs),
	}
	return img.withTopic(nil, t), nil
}

func (img *Image) applyDeleteTopic(r DeleteTopic) (*Image, error) {
	old, ok := img.TopicsByID[r.ID]
	if !ok {
		return img, fmt.Errorf("%w: %s", ErrUnknownTopicID, r.ID)
	}
	return img.withTopic(old, nil), nil
}

func (img *Image) applyCreatePartitions(r CreatePartitions) (*Image, error) {
	old, ok := img.TopicsByID[r.TopicID]
	if !ok {
		return img, fmt.Errorf("%w: %s", ErrUnknownTopicID, r.TopicID)
	}
	if len(r.Partitions) == 0 {
		return img, fmt.Errorf("%w: no new partitions for %q", ErrInvalidRecord, old.Name)
	}
	if err := checkPartitions(r.Partitions, int32(len(old.Partitions))); err != nil {
		return img, fmt.Errorf("topic %q: %w", old.Name, err)
	}
	t := *old
	t.Partitions = make([]Partition, 0, len(old.Partitions)+len(r.Partitions))
	t.Partitions = append(t.Partitions, old.Partitions...)
	t.Partitions = append(t.Partitions, clonePartitions(r.Partitions)...)
	return img.withTopic(old, &t), nil
}

// applyConfigChange returns a copy of configs with set applied and del removed, or nil if the
// result is empty.
func applyConfigChange(configs, set map[string]string, del []string) map[string]string {
	out := maps.Clone(configs)
	if out == nil {
		out = make(map[string]string, len(set))
	}
	maps.Copy(out, set)
	for _, k := range del {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (img *Image) applySetConfigs(r SetConfigs) (*Image, error) {
	switch r.ResourceType {
	case ResourceTopic:
		old, ok := img.Topics[r.ResourceName]
		if !ok {
			return img, fmt.Errorf("%w: %q", ErrUnknownTopic, r.ResourceName)
		}
		t := *old
		t.Configs = applyConfigChange(old.Configs, r.Set, r.Delete)
		return img.withTopic(old, &t), nil
	case ResourceBroker:
		if r.ResourceName != "" {
			if id, err := strconv.ParseInt(r.ResourceName, 10, 32); err != nil || id < 0 ||
				strconv.FormatInt(id, 10) != r.ResourceName {
				return img, fmt.Errorf("%w: broker resource name %q", ErrInvalidRecord, r.ResourceName)
			}
		}
		next := img.clone()
		next.BrokerConfigs = maps.Clone(img.BrokerConfigs)
		if next.BrokerConfigs == nil {
			next.BrokerConfigs = make(map[string]map[string]string, 1)
		}
		if c := applyConfigChange(img.BrokerConfigs[r.ResourceName], r.Set, r.Delete); c != nil {
			next.BrokerConfigs[r.ResourceName] = c
		} else {
			delete(next.BrokerConfigs, r.ResourceName)
		}
		return next, nil
	default:
		return img, fmt.Errorf("%w: config resource type %d", ErrInvalidRecord, r.ResourceType)
	}
}

func (img *Image) applyAllocateProducerIDs(r AllocateProducerIDs) (*Image, error) {
	if r.Count <= 0 {
		return img, fmt.Errorf("%w: producer ID count %d", ErrInvalidRecord, r.Count)
	}
	if r.FirstID != img.NextProducerID {
		return img, fmt.Errorf("%w: first %d, next %d", ErrProducerIDMismatch, r.FirstID, img.NextProducerID)
	}
	if r.FirstID > math.MaxInt64-int64(r.Count) {
		return img, fmt.Errorf("%w: producer IDs exhausted", ErrInvalidRecord)
	}
	next := img.clone()
	next.NextProducerID = r.FirstID + int64(r.Count)
	return next, nil
}

// sortedTopics returns the image's topics sorted by name.
func (img *Image) sortedTopics() []*Topic {
	ts := slices.Collect(maps.Values(img.Topics))
	slices.SortFunc(ts, func(a, b *Topic) int { return cmp.Compare(a.Name, b.Name) })
	return ts
}
