package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Config resource types, numbered as in Kafka's DescribeConfigs/AlterConfigs.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// Record type names, as written in the "type" member of an encoded record.
const (
	TypeBootstrap           = "Bootstrap"
	TypeRegisterBroker      = "RegisterBroker"
	TypeCreateTopic         = "CreateTopic"
	TypeDeleteTopic         = "DeleteTopic"
	TypeCreatePartitions    = "CreatePartitions"
	TypeSetConfigs          = "SetConfigs"
	TypeAllocateProducerIDs = "AllocateProducerIDs"
	TypeFeatureLevel        = "FeatureLevel"
)

// recordVersion is the only layout version of every record type so far.
const recordVersion = 1

// Decoding errors.
var (
	ErrUnknownRecordType  = errors.New("metadata: unknown record type")
	ErrUnsupportedVersion = errors.New("metadata: unsupported record version")
	ErrMalformedRecord    = errors.New("metadata: malformed record")
)

// Record is one change to the cluster metadata. The concrete types are the value types
// declared in this file (Bootstrap, RegisterBroker, ...).
type Record interface {
	// RecordType returns the record's type name, one of the Type* constants.
	RecordType() string
}

// Bootstrap sets the cluster ID. It is the first record a new cluster commits.
type Bootstrap struct {
	ClusterID string `json:"clusterID"`
}

// RegisterBroker adds a broker, or replaces the registration of a broker with the same ID.
// It has the same fields as Broker; convert with RegisterBroker(b) and Broker(r).
type RegisterBroker Broker

// CreateTopic adds a topic. Partitions must be numbered 0..n-1 in order, n >= 1.
type CreateTopic struct {
	Name       string            `json:"name"`
	ID         UUID              `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// DeleteTopic removes the topic with the given ID.
type DeleteTopic struct {
	ID UUID `json:"id"`
}

// CreatePartitions appends partitions to a topic. The new partitions must be numbered
// consecutively from the topic's current partition count.
type CreatePartitions struct {
	TopicID    UUID        `json:"topicID"`
	Partitions []Partition `json:"partitions"`
}

// SetConfigs changes configs of one resource: keys in Set are set, keys in Delete removed
// (back to their defaults). ResourceType is ResourceTopic (ResourceName is the topic name) or
// ResourceBroker (ResourceName is a decimal broker ID, or "" for the cluster-wide default).
type SetConfigs struct {
	ResourceType int8              `json:"resourceType"`
	ResourceName string            `json:"resourceName"`
	Set          map[string]string `json:"set,omitempty"`
	Delete       []string          `json:"delete,omitempty"`
}

// AllocateProducerIDs hands out producer IDs [FirstID, FirstID+Count). FirstID must equal the
// image's NextProducerID, so blocks never overlap.
type AllocateProducerIDs struct {
	FirstID int64 `json:"firstID"`
	Count   int32 `json:"count"`
}

// FeatureLevel sets the finalized level of one feature (Kafka's FeatureLevelRecord): Level 0
// removes the feature from the finalized features, as Kafka does.
type FeatureLevel struct {
	Name  string `json:"name"`
	Level int16  `json:"level"`
}

// RecordType implements Record.
func (Bootstrap) RecordType() string { return TypeBootstrap }

// RecordType implements Record.
func (RegisterBroker) RecordType() string { return TypeRegisterBroker }

// RecordType implements Record.
func (CreateTopic) RecordType() string { return TypeCreateTopic }

// RecordType implements Record.
func (DeleteTopic) RecordType() string { return TypeDeleteTopic }

// RecordType implements Record.
func (CreatePartitions) RecordType() string { return TypeCreatePartitions }

// RecordType implements Record.
func (SetConfigs) RecordType() string { return TypeSetConfigs }

// RecordType implements Record.
func (AllocateProducerIDs) RecordType() string { return TypeAllocateProducerIDs }

// RecordType implements Record.
func (FeatureLevel) RecordType() string { return TypeFeatureLevel }

// decodeAs unmarshals data into a fresh T and returns it as a Record.
func decodeAs[T Record](data []byte) (Record, error) {
	var r T
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	return r, nil
}

// decoders maps a record type name to the decoder of its current version.
var decoders = map[string]func([]byte) (Record, error){
	TypeBootstrap:           decodeAs[Bootstrap],
	TypeRegisterBroker:      decodeAs[RegisterBroker],
	TypeCreateTopic:         decodeAs[CreateTopic],
	TypeDeleteTopic:         decodeAs[DeleteTopic],
	TypeCreatePartitions:    decodeAs[CreatePartitions],
	TypeSetConfigs:          decodeAs[SetConfigs],
	TypeAllocateProducerIDs: decodeAs[AllocateProducerIDs],
	TypeFeatureLevel:        decodeAs[FeatureLevel],
	TypeRegisterController:  decodeAs[RegisterController],

	TypeBrokerRegistrationChange: decodeAs[BrokerRegistrationChange],
	TypeUnregisterBroker:         decodeAs[UnregisterBroker],
	TypePartitionChange:          decodeAs[PartitionChange],

	TypeUserScramCredential:       decodeAs[UserScramCredential],
	TypeRemoveUserScramCredential: decodeAs[RemoveUserScramCredential],

	TypeAccessControlEntry:       decodeAs[AccessControlEntry],
	TypeRemoveAccessControlEntry: decodeAs[RemoveAccessControlEntry],

	TypeClientQuota: decodeAs[ClientQuota],

	TypeDelegationToken:       decodeAs[DelegationToken],
	TypeRemoveDelegationToken: decodeAs[RemoveDelegationToken],
}

// envelope is the part of an encoded record common to all types.
type envelope struct {
	Type string `json:"type"`
	V    int    `json:"v"`
}

// EncodeRecord encodes r as described in the package documentation.
func EncodeRecord(r Record) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil record", ErrUnknownRecordType)
	}
	if _, ok := decoders[r.RecordType()]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRecordType, r.RecordType())
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode %s: %w", r.RecordType(), err)
	}
	head, err := json.Marshal(envelope{Type: r.RecordType(), V: recordVersion})
	if err != nil {
		return nil, fmt.Errorf("metadata: encode %s: %w", r.RecordType(), err)
	}
	// Splice {"type":..,"v":1} and the body's members into one object.
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("metadata: encode %s: not a JSON object", r.RecordType())
	}
	out := make([]byte, 0, len(head)+len(body))
	out = append(out, head[:len(head)-1]...)
	if inner := body[1:]; !bytes.Equal(inner, []byte("}")) {
		out = append(out, ',')
		out = append(out, inner...)
	} else {
		out = append(out, '}')
	}
	return out, nil
}

// DecodeRecord decodes one record encoded by EncodeRecord.
func DecodeRecord(data []byte) (Record, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedRecord, err)
	}
	decode, ok := decoders[env.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRecordType, env.Type)
	}
	if env.V != recordVersion {
		return nil, fmt.Errorf("%w: %s v%d", ErrUnsupportedVersion, env.Type, env.V)
	}
	r, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformedRecord, env.Type, err)
	}
	return r, nil
}

// EncodeBatch encodes records as one Raft log entry: a JSON array of encoded records.
func EncodeBatch(recs []Record) ([]byte, error) {
	raw := make([]json.RawMessage, 0, len(recs))
	for i, r := range recs {
		b, err := EncodeRecord(r)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		raw = append(raw, b)
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode batch: %w", err)
	}
	return out, nil
}

// DecodeBatch decodes a log entry written by EncodeBatch.
func DecodeBatch(data []byte) ([]Record, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: batch: %w", ErrMalformedRecord, err)
	}
	recs := make([]Record, 0, len(raw))
	for i, b := range raw {
		r, err := DecodeRecord(b)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}
