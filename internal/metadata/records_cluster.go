package metadata

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Record types of the cluster: broker state changes and partition leadership/ISR changes.
const (
	TypeBrokerRegistrationChange = "BrokerRegistrationChange"
	TypeUnregisterBroker         = "UnregisterBroker"
	TypePartitionChange          = "PartitionChange"
)

// Errors of the cluster records. The image is left unchanged.
var (
	ErrUnknownBroker     = errors.New("metadata: unknown broker")
	ErrStaleBrokerEpoch  = errors.New("metadata: broker epoch does not match the registration")
	ErrUnknownPartition  = errors.New("metadata: unknown partition")
	ErrInvalidPartition  = errors.New("metadata: invalid partition state")
	errEmptyChange       = errors.New("changes nothing")
	errDuplicateReplica  = errors.New("a broker appears twice")
	errISRNotReplicas    = errors.New("the ISR holds a broker that is not a replica")
	errLeaderNotInISR    = errors.New("the leader is not in the ISR")
	errEmptyISROrReplica = errors.New("empty ISR or replicas")
	errBadReassignment   = errors.New("adding and removing replicas must be distinct replicas, not all of them removed")
)

// NoLeader is the Leader of a partition that has none.
const NoLeader int32 = -1

// BrokerRegistrationChange changes the state of one registration (Kafka's
// BrokerRegistrationChangeRecord). Epoch must be the registration's epoch, so a change computed
// for an older incarnation never applies to a newer one. Nil fields are left unchanged.
type BrokerRegistrationChange struct {
	ID                   int32 `json:"id"`
	Epoch                int64 `json:"epoch"`
	Fenced               *bool `json:"fenced,omitempty"`
	InControlledShutdown *bool `json:"inControlledShutdown,omitempty"`
}

// UnregisterBroker removes the registration of broker ID if its epoch is Epoch.
type UnregisterBroker struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// PartitionChange changes the leader, ISR or replicas of one partition (Kafka's
// PartitionChangeRecord). Nil fields are unchanged; Leader -1 (NoLeader) means no leader. Every
// change adds one to the partition epoch; a change of leader adds one to the leader epoch
// (Kafka 3.6+: an ISR change alone keeps the leader epoch). The result must be consistent:
// replicas non-empty without repeats, ISR a non-empty subset of the replicas, leader in the ISR
// or -1.
type PartitionChange struct {
	TopicID   UUID    `json:"topicID"`
	Partition int32   `json:"partition"`
	Leader    *int32  `json:"leader,omitempty"`
	ISR       []int32 `json:"isr,omitempty"`
	Replicas  []int32 `json:"replicas,omitempty"`
	// Reassignment, when not nil, sets the partition's adding and removing replicas (Kafka's
	// addingReplicas / removingReplicas); an empty one ends the reassignment.
	Reassignment *Reassignment `json:"reassignment,omitempty"`
}

// Reassignment is the reassignment state a PartitionChange sets (KIP-455).
type Reassignment struct {
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
}

// RecordType implements Record.
func (BrokerRegistrationChange) RecordType() string { return TypeBrokerRegistrationChange }

// RecordType implements Record.
func (UnregisterBroker) RecordType() string { return TypeUnregisterBroker }

// RecordType implements Record.
func (PartitionChange) RecordType() string { return TypePartitionChange }

// registration returns broker id's registration if its epoch is epoch.
func (img *Image) registration(id int32, epoch int64) (Broker, error) {
	b, ok := img.Brokers[id]
	if !ok {
		return b, fmt.Errorf("%w: %d", ErrUnknownBroker, id)
	}
	if b.Epoch != epoch {
		return b, fmt.Errorf("%w: broker %d has epoch %d, record has %d", ErrStaleBrokerEpoch, id, b.Epoch, epoch)
	}
	return b, nil
}

// withBroker returns a clone of img whose broker map holds b (or lacks id when b is nil).
func (img *Image) withBroker(id int32, b *Broker) *Image {
	next := img.clone()
	next.Brokers = maps.Clone(img.Brokers)
	if next.Brokers == nil {
		next.Brokers = make(map[int32]Broker, 1)
	}
	if b == nil {
		delete(next.Brokers, id)
	} else {
		next.Brokers[id] = *b
	}
	return next
}

func (img *Image) applyBrokerRegistrationChange(r BrokerRegistrationChange) (*Image, error) {
	b, err := img.registration(r.ID, r.Epoch)
	if err != nil {
		return img, err
	}
	if r.Fenced == nil && r.InControlledShutdown == nil {
		return img, fmt.Errorf("%w: registration change of broker %d %w", ErrInvalidRecord, r.ID, errEmptyChange)
	}
	if r.Fenced != nil {
		b.Fenced = *r.Fenced
	}
	if r.InControlledShutdown != nil {
		b.InControlledShutdown = *r.InControlledShutdown
	}
	return img.withBroker(r.ID, &b), nil
}

func (img *Image) applyUnregisterBroker(r UnregisterBroker) (*Image, error) {
	if _, err := img.registration(r.ID, r.Epoch); err != nil {
		return img, err
	}
	return img.withBroker(r.ID, nil), nil
}

// batchState lets one batch change many partitions of a topic in linear time: topics and
// topic maps created while applying the batch are reachable only from the batch's unpublished
// intermediate images, so later records of the same batch may modify them in place.
type batchState struct {
	mapsOf *Image          // the image whose Topics/TopicsByID maps this batch created
	topics map[*Topic]bool // topics this batch created
}

// applyPartitionChange applies r. st, if non-nil, is the state of the batch r belongs to.
func (img *Image) applyPartitionChange(r PartitionChange, st *batchState) (*Image, error) {
	old, ok := img.TopicsByID[r.TopicID]
	if !ok {
		return img, fmt.Errorf("%w: %s", ErrUnknownTopicID, r.TopicID)
	}
	if r.Partition < 0 || int(r.Partition) >= len(old.Partitions) {
		return img, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, old.Name, r.Partition)
	}
	p, err := ChangePartition(old.Partitions[r.Partition], r)
	if err != nil {
		return img, fmt.Errorf("%s-%d: %w", old.Name, r.Partition, err)
	}
	if st != nil && st.topics[old] {
		old.Partitions[r.Partition] = p // created by this batch: not yet visible to anyone
		return img, nil
	}
	t := *old
	t.Partitions = slices.Clone(old.Partitions)
	t.Partitions[r.Partition] = p
	if st == nil {
		return img.withTopic(old, &t), nil
	}
	if st.topics == nil {
		st.topics = make(map[*Topic]bool)
	}
	st.topics[&t] = true
	if st.mapsOf == img {
		img.Topics[t.Name] = &t
		img.TopicsByID[t.ID] = &t
		return img, nil
	}
	next := img.withTopic(old, &t)
	st.mapsOf = next
	return next, nil
}

// ChangePartition returns p with c applied (c's topic and partition are not checked) and the
// epochs advanced, or an error if c changes nothing or the result is inconsistent. The
// controller uses it to compute the partition an AlterPartition request would produce.
func ChangePartition(p Partition, c PartitionChange) (Partition, error) {
	if c.Leader == nil && c.ISR == nil && c.Replicas == nil && c.Reassignment == nil {
		return p, fmt.Errorf("%w: partition change %w", ErrInvalidRecord, errEmptyChange)
	}
	next := p
	if c.Replicas != nil {
		next.Replicas = slices.Clone(c.Replicas)
	}
	if c.ISR != nil {
		next.ISR = slices.Clone(c.ISR)
	}
	if c.Reassignment != nil {
		next.AddingReplicas = nilIfEmpty(c.Reassignment.Adding)
		next.RemovingReplicas = nilIfEmpty(c.Reassignment.Removing)
	}
	if c.Leader != nil {
		if *c.Leader != p.Leader {
			next.LeaderEpoch++
		}
		next.Leader = *c.Leader
	}
	next.PartitionEpoch++
	if err := CheckPartition(next); err != nil {
		return p, err
	}
	return next, nil
}

// CheckPartition checks that a partition's state is consistent: replicas non-empty, without
// repeats or negative IDs; the ISR a non-empty subset of the replicas without repeats; the
// leader in the ISR or -1. The error wraps ErrInvalidPartition.
func CheckPartition(p Partition) error {
	if len(p.Replicas) == 0 || len(p.ISR) == 0 {
		return fmt.Errorf("%w: %w (replicas %v, ISR %v)", ErrInvalidPartition, errEmptyISROrReplica, p.Replicas, p.ISR)
	}
	for i, r := range p.Replicas {
		if r < 0 || slices.Contains(p.Replicas[:i], r) {
			return fmt.Errorf("%w: replicas %v: %w or is negative", ErrInvalidPartition, p.Replicas, errDuplicateReplica)
		}
	}
	for i, r := range p.ISR {
		if slices.Contains(p.ISR[:i], r) {
			return fmt.Errorf("%w: ISR %v: %w", ErrInvalidPartition, p.ISR, errDuplicateReplica)
		}
		if !slices.Contains(p.Replicas, r) {
			return fmt.Errorf("%w: ISR %v, replicas %v: %w", ErrInvalidPartition, p.ISR, p.Replicas, errISRNotReplicas)
		}
	}
	if p.Leader != NoLeader && !slices.Contains(p.ISR, p.Leader) {
		return fmt.Errorf("%w: leader %d, ISR %v: %w", ErrInvalidPartition, p.Leader, p.ISR, errLeaderNotInISR)
	}
	for i, r := range p.AddingReplicas {
		if slices.Contains(p.AddingReplicas[:i], r) || !slices.Contains(p.Replicas, r) || slices.Contains(p.RemovingReplicas, r) {
			return fmt.Errorf("%w: adding replicas %v, removing %v, replicas %v: %w", ErrInvalidPartition, p.AddingReplicas, p.RemovingReplicas, p.Replicas, errBadReassignment)
		}
	}
	for i, r := range p.RemovingReplicas {
		if slices.Contains(p.RemovingReplicas[:i], r) || !slices.Contains(p.Replicas, r) {
			return fmt.Errorf("%w: removing replicas %v, replicas %v: %w", ErrInvalidPartition, p.RemovingReplicas, p.Replicas, errBadReassignment)
		}
	}
	if len(p.RemovingReplicas) == len(p.Replicas) && len(p.Replicas) > 0 {
		return fmt.Errorf("%w: every replica of %v is being removed: %w", ErrInvalidPartition, p.Replicas, errBadReassignment)
	}
	return nil
}

// nilIfEmpty returns a copy of s, nil when s is empty (so an image never holds empty lists
// where nil means the same).
func nilIfEmpty(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// PartitionRef names one partition of the image.
type PartitionRef struct {
	Topic     string
	TopicID   UUID
	Partition int32
}

// LiveBrokerIDs returns the IDs of the unfenced brokers, sorted (brokers in controlled
// shutdown included: they are alive until they are fenced).
func (img *Image) LiveBrokerIDs() []int32 {
	var ids []int32
	for id, b := range img.Brokers {
		if !b.Fenced {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// PartitionsLedBy returns the partitions whose leader is broker id, by topic name and
// partition. It scans every partition.
func (img *Image) PartitionsLedBy(id int32) []PartitionRef {
	return img.partitionsWhere(func(p *Partition) bool { return p.Leader == id })
}

// PartitionsWithISRMember returns the partitions whose ISR holds broker id, by topic name and
// partition. It scans every partition.
func (img *Image) PartitionsWithISRMember(id int32) []PartitionRef {
	return img.partitionsWhere(func(p *Partition) bool { return slices.Contains(p.ISR, id) })
}

// partitionsWhere returns the partitions matching keep, sorted by topic name and partition.
func (img *Image) partitionsWhere(keep func(*Partition) bool) []PartitionRef {
	var out []PartitionRef
	for _, t := range img.Topics {
		for i := range t.Partitions {
			if keep(&t.Partitions[i]) {
				out = append(out, PartitionRef{Topic: t.Name, TopicID: t.ID, Partition: int32(i)})
			}
		}
	}
	slices.SortFunc(out, func(a, b PartitionRef) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}
