package txn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

var sample = Metadata{
	TransactionalID: "tx", ProducerID: 42, PreviousProducerID: 41, NextProducerID: 43, ProducerEpoch: 7,
	LastProducerEpoch: -1, TimeoutMs: 60000, State: StateOngoing,
	Partitions:     []TopicPartition{{"a", 0}, {"a", 2}, {"b", 1}},
	StartTimestamp: 1000, LastUpdateTimestamp: 2000, ClientTransactionVersion: TV2,
}

func TestRecordRoundTrip(t *testing.T) {
	for _, level := range []TransactionVersion{TV0, TV2} {
		for _, st := range []State{StateEmpty, StateOngoing, StatePrepareCommit, StateCompleteAbort} {
			m := sample
			m.State = st
			id, got, err := DecodeRecord(EncodeKey(m.TransactionalID), EncodeValue(m, level))
			if err != nil || id != "tx" {
				t.Fatalf("decode: %q %v", id, err)
			}
			want := m
			if st == StateEmpty {
				want.Partitions = nil // Kafka writes no partitions for Empty
			}
			if level == TV0 {
				want.PreviousProducerID, want.NextProducerID, want.ClientTransactionVersion = -1, -1, TV0
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("level %d state %s:\n got %+v\nwant %+v", level, st, *got, want)
			}
		}
	}
	if id, m, err := DecodeRecord(EncodeKey("tx"), nil); err != nil || id != "tx" || m != nil {
		t.Fatalf("tombstone: %q %v %v", id, m, err)
	}
}

// TestRecordBytes pins the encoding to Kafka's TransactionLogKey v0 and TransactionLogValue
// v0/v1 layouts (int16 version prefix, then the fields in schema order).
func TestRecordBytes(t *testing.T) {
	if got := hex.EncodeToString(EncodeKey("tx")); got != "000000027478" {
		t.Fatalf("key: %s", got)
	}
	m := Metadata{TransactionalID: "tx", ProducerID: 1, PreviousProducerID: 1, NextProducerID: -1, ProducerEpoch: 2,
		TimeoutMs: 3, State: StateOngoing, Partitions: []TopicPartition{{"t", 5}}, StartTimestamp: 6, LastUpdateTimestamp: 7,
		ClientTransactionVersion: TV2}
	v0 := "0000" + "0000000000000001" + "0002" + "00000003" + "01" +
		"00000001" + "00017400000001" + "00000005" + "0000000000000007" + "0000000000000006"
	if got := hex.EncodeToString(EncodeValue(m, TV0)); got != v0 {
		t.Fatalf("value v0:\n got %s\nwant %s", got, v0)
	}
	v1 := "0001" + "0000000000000001" + "0002" + "00000003" + "01" +
		"02" + "0274" + "02" + "00000005" + "00" + "0000000000000007" + "0000000000000006" +
		"02" + "0008" + "0000000000000001" + "0202" + "0002" // tags: PreviousProducerId, ClientTransactionVersion
	if got := hex.EncodeToString(EncodeValue(m, TV2)); got != v1 {
		t.Fatalf("value v1:\n got %s\nwant %s", got, v1)
	}
}

func TestDecodeRejectsAndSkips(t *testing.T) {
	good := EncodeValue(sample, TV2)
	for name, c := range map[string]struct {
		key, value []byte
		unknown    bool
	}{
		"short key":       {key: []byte{0}, value: good},
		"key version 1":   {key: []byte{0, 1, 0, 0}, value: good, unknown: true},
		"value version 2": {key: EncodeKey("x"), value: append([]byte{0, 2}, good[2:]...), unknown: true},
		"truncated value": {key: EncodeKey("x"), value: good[:len(good)-3]},
		"truncated key":   {key: EncodeKey("xyz")[:4], value: good},
		"bad state":       {key: EncodeKey("x"), value: withState(good, 9)},
		"one-byte value":  {key: EncodeKey("x"), value: []byte{0}},
	} {
		_, _, err := DecodeRecord(c.key, c.value)
		switch {
		case c.unknown && !IsUnknownVersion(err):
			t.Errorf("%s: %v, want an unknown version", name, err)
		case !c.unknown && !errors.Is(err, ErrCorruptRecord):
			t.Errorf("%s: %v, want corrupt", name, err)
		}
	}
	// Replay skips unknown versions and refuses corrupt records.
	s := NewShard(0, 0, DefaultSettings(), nil)
	if err := s.Replay([]byte{0, 1, 0, 0}, good); err != nil {
		t.Fatalf("unknown key version: %v", err)
	}
	if err := s.Replay(EncodeKey("x"), withState(good, 9)); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("corrupt record: %v", err)
	}
}

func withState(value []byte, state byte) []byte {
	v := bytes.Clone(value)
	v[2+8+2+4] = state
	return v
}

// FuzzDecodeRecord: decoding never panics, and what decodes re-encodes to a record that
// decodes to the same metadata.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeKey("tx"), EncodeValue(sample, TV2))
	f.Add(EncodeKey("tx"), EncodeValue(sample, TV0))
	f.Add(EncodeKey(""), []byte{0, 1})
	f.Add([]byte{0, 0, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		id, m, err := DecodeRecord(key, value)
		if err != nil || m == nil {
			return
		}
		level := TV0
		if value[1] == 1 {
			level = TV2
		}
		id2, m2, err := DecodeRecord(EncodeKey(id), EncodeValue(*m, level))
		if err != nil || id2 != id {
			t.Fatalf("re-decode: %q %v", id2, err)
		}
		if m.State == StateEmpty {
			m.Partitions = nil
		}
		if !reflect.DeepEqual(*m, *m2) {
			t.Fatalf("round trip:\n%+v\n%+v", *m, *m2)
		}
	})
}

// TestPartitionFor checks Kafka's mapping against Java String.hashCode values known from
// the JDK: "" 0, "a" 97, "hello" 99162322, "Aa" and "BB" 2112, "polygenelubricants"
// Integer.MIN_VALUE (which Utils.abs maps to 0).
func TestPartitionFor(t *testing.T) {
	for id, want := range map[string]int32{"": 0, "a": 47, "hello": 22, "Aa": 12, "BB": 12, "polygenelubricants": 0} {
		if got := PartitionFor(id, 50); got != want {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", id, got, want)
		}
	}
	if got := PartitionFor("hello", 7); got != 99162322%7 {
		t.Errorf("PartitionFor(hello, 7) = %d", got)
	}
}

func TestSettingsDefaults(t *testing.T) {
	s := DefaultSettings()
	if s.MaxTimeout.Milliseconds() != 900000 || s.TransactionalIDExpiration.Milliseconds() != 604800000 ||
		s.AbortTimedOutInterval.Milliseconds() != 10000 || s.RemoveExpiredInterval.Milliseconds() != 3600000 ||
		s.StateLogNumPartitions != 50 || s.StateLogReplicationFactor != 3 || s.StateLogSegmentBytes != 104857600 ||
		s.StateLogMinISR != 2 {
		t.Fatalf("defaults: %+v", s)
	}
	c := s.TopicConfigs()
	if c["cleanup.policy"] != "compact" || c["min.insync.replicas"] != "2" || c["segment.bytes"] != "104857600" {
		t.Fatalf("topic configs: %v", c)
	}
}
