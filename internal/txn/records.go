package txn

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record of __transaction_state: a key and a value (nil for a tombstone).
type Record struct {
	Key   []byte
	Value []byte
}

// Key and value versions of __transaction_state records, as Kafka writes them.
const (
	keyVersion      = 0 // TransactionLogKey: the transactional id
	maxValueVersion = 1 // TransactionLogValue 1 is flexible (tagged fields from KIP-890)
)

// ErrCorruptRecord reports a __transaction_state record that cannot be decoded.
var ErrCorruptRecord = errors.New("txn: corrupt __transaction_state record")

// errUnknownVersion marks a record of a key or value version this coordinator does not
// know; Kafka's loader skips those too.
var errUnknownVersion = errors.New("txn: unknown __transaction_state record version")

// EncodeKey encodes the key of a transactional id's record.
func EncodeKey(transactionalID string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.Version = keyVersion
	k.TransactionalID = transactionalID
	return k.AppendTo(nil)
}

// EncodeValue encodes metadata as Kafka's TransactionLogValue at the version the
// transaction.version level writes (0 below TV1, else 1 with the KIP-890 tagged fields).
// Partitions are written per topic, null when the state is Empty, as Kafka does.
func EncodeValue(m Metadata, level TransactionVersion) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = level.logValueVersion()
	v.ProducerID = m.ProducerID
	v.ProducerEpoch = m.ProducerEpoch
	v.TimeoutMillis = m.TimeoutMs
	v.State = kmsg.TransactionState(m.State)
	if m.State != StateEmpty {
		v.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range m.Partitions {
			if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
				t := kmsg.NewTxnMetadataValueTopic()
				t.Topic = tp.Topic
				v.Topics = append(v.Topics, t)
			}
			last := &v.Topics[len(v.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
	}
	v.LastUpdateTimestamp = m.LastUpdateTimestamp
	v.StartTimestamp = m.StartTimestamp
	if v.Version >= 1 {
		v.PreviousProducerID = m.PreviousProducerID
		v.NextProducerID = m.NextProducerID
		v.ClientTransactionVersion = int16(m.ClientTransactionVersion)
	}
	return v.AppendTo(nil)
}

// DecodeRecord decodes a record of __transaction_state: the transactional id and its
// metadata, nil for a tombstone. Records of unknown key or value versions report
// errUnknownVersion (IsUnknownVersion); malformed ones ErrCorruptRecord. It never panics.
func DecodeRecord(key, value []byte) (string, *Metadata, error) {
	if len(key) < 2 {
		return "", nil, fmt.Errorf("%w: key of %d bytes", ErrCorruptRecord, len(key))
	}
	if version := int16(key[0])<<8 | int16(key[1]); version != keyVersion {
		return "", nil, fmt.Errorf("%w: key version %d", errUnknownVersion, version)
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return "", nil, fmt.Errorf("%w: key: %w", ErrCorruptRecord, err)
	}
	if value == nil {
		return k.TransactionalID, nil, nil
	}
	if len(value) < 2 {
		return "", nil, fmt.Errorf("%w: value of %d bytes", ErrCorruptRecord, len(value))
	}
	if version := int16(value[0])<<8 | int16(value[1]); version < 0 || version > maxValueVersion {
		return "", nil, fmt.Errorf("%w: value version %d", errUnknownVersion, version)
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return "", nil, fmt.Errorf("%w: value: %w", ErrCorruptRecord, err)
	}
	state := State(v.State)
	if !state.valid() {
		return "", nil, fmt.Errorf("%w: transaction state %d", ErrCorruptRecord, v.State)
	}
	m := &Metadata{
		TransactionalID:          k.TransactionalID,
		ProducerID:               v.ProducerID,
		PreviousProducerID:       v.PreviousProducerID,
		NextProducerID:           v.NextProducerID,
		ProducerEpoch:            v.ProducerEpoch,
		LastProducerEpoch:        noProducerEpoch,
		TimeoutMs:                v.TimeoutMillis,
		State:                    state,
		StartTimestamp:           v.StartTimestamp,
		LastUpdateTimestamp:      v.LastUpdateTimestamp,
		ClientTransactionVersion: TransactionVersion(v.ClientTransactionVersion),
	}
	if v.Version < 1 {
		m.PreviousProducerID, m.NextProducerID, m.ClientTransactionVersion = noProducerID, noProducerID, TV0
	}
	if state != StateEmpty {
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				m.Partitions = append(m.Partitions, TopicPartition{t.Topic, p})
			}
		}
		slices.SortFunc(m.Partitions, comparePartitions)
		m.Partitions = slices.Compact(m.Partitions)
	}
	return k.TransactionalID, m, nil
}

// IsUnknownVersion reports whether DecodeRecord skipped a record of an unknown version.
func IsUnknownVersion(err error) bool { return errors.Is(err, errUnknownVersion) }
