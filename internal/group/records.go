package group

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
)

// Record is one record of __consumer_offsets: a key and a value (nil for a tombstone).
type Record struct {
	Key   []byte
	Value []byte
}

// Key versions of __consumer_offsets records, as Kafka writes them. Versions 0 and 1 are
// offset commits, 2 is group metadata; higher versions belong to Kafka's KIP-848 coordinator
// and are skipped when replaying.
const (
	offsetCommitKeyVersion  = 1
	groupMetadataKeyVersion = 2
	// offsetCommitValueVersion is the value version written: 3 carries the leader epoch.
	// Version 1 (with an expire timestamp) is written for commits that set a retention time.
	offsetCommitValueVersion  = 3
	groupMetadataValueVersion = 3
)

// ErrCorruptRecord reports a __consumer_offsets record that cannot be decoded.
var ErrCorruptRecord = errors.New("group: corrupt __consumer_offsets record")

func offsetCommitKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetCommitKeyVersion
	k.Group, k.Topic, k.Partition = group, topic, partition
	return k.AppendTo(nil)
}

func offsetCommitValue(o offsetEntry) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueVersion
	if o.expireTimestamp >= 0 {
		v.Version = 1
		v.ExpireTimestamp = o.expireTimestamp
	}
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTimestamp
	return v.AppendTo(nil)
}

func groupMetadataKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupMetadataKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

// groupMetadataValue encodes a classic group as Kafka does: the selected protocol's metadata
// of each member and the given assignment (for a group completing its rebalance, the leader's
// assignment before it is handed out).
func groupMetadataValue(g *classicGroup, assignment map[string][]byte) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetadataValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateTime
	for _, id := range g.order {
		m := g.members[id]
		mm := kmsg.NewGroupMetadataValueMember()
		mm.MemberID = m.id
		if m.static {
			inst := m.instanceID
			mm.InstanceID = &inst
		}
		mm.ClientID = m.clientID
		mm.ClientHost = m.clientHost
		mm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		mm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		mm.Subscription = m.metadata(g.protocol)
		if mm.Subscription == nil {
			mm.Subscription = []byte{}
		}
		mm.Assignment = assignment[m.id]
		if mm.Assignment == nil {
			mm.Assignment = []byte{}
		}
		v.Members = append(v.Members, mm)
	}
	return v.AppendTo(nil)
}

// BuildBatch encodes records as one uncompressed v2 record batch (no producer id) with the
// given timestamp in milliseconds.
func BuildBatch(recs []Record, nowMs int64) []byte {
	return buildBatch(recs, nowMs, -1, -1, -1, 0)
}

// BuildTxnBatch encodes records as one transactional batch of the producer (TxnOffsetCommit),
// its first record numbered seq.
func BuildTxnBatch(recs []Record, nowMs int64, producerID int64, epoch int16, seq int32) []byte {
	return buildBatch(recs, nowMs, producerID, epoch, seq, records.AttrTransactional)
}

func buildBatch(recs []Record, nowMs int64, producerID int64, epoch int16, seq int32, attrs int16) []byte {
	var body []byte
	for i, r := range recs {
		body = appendRecord(body, int32(i), r.Key, r.Value)
	}
	b := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  nowMs,
		MaxTimestamp:    nowMs,
		Attributes:      attrs,
		ProducerID:      producerID,
		ProducerEpoch:   epoch,
		FirstSequence:   seq,
		NumRecords:      int32(len(recs)),
		Records:         body,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-records.LengthOffset))
	binary.BigEndian.PutUint32(raw[17:], records.ComputeCRC(raw))
	return raw
}

// appendRecord appends one record in the v2 encoding: a varint length, then the body.
func appendRecord(dst []byte, offsetDelta int32, key, value []byte) []byte {
	r := kmsg.Record{OffsetDelta: offsetDelta, Key: key, Value: value}
	body := r.AppendTo(nil)[1:] // drop the placeholder length (varint 0 is one byte)
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// forEachRecord calls fn with the key and value of every record of a batch read from the
// log, decompressing it if needed. Control batches (transaction markers) are skipped.
func forEachRecord(batch []byte, fn func(offset int64, key, value []byte) error) error {
	h, err := records.ParseHeader(batch)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptRecord, err)
	}
	if h.IsControl() {
		return nil
	}
	body := batch[records.HeaderSize:h.Size()]
	if h.Codec() != records.CodecNone {
		if body, err = records.Decompress(h.Codec(), body); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptRecord, err)
		}
	}
	for i := int32(0); i < h.RecordCount; i++ {
		n, w := binary.Varint(body)
		if w <= 0 || n < 0 || int64(len(body)-w) < n {
			return fmt.Errorf("%w: truncated record at offset %d", ErrCorruptRecord, h.BaseOffset)
		}
		var r kmsg.Record
		if err := r.ReadFrom(body[:w+int(n)]); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptRecord, err)
		}
		body = body[w+int(n):]
		if err := fn(h.BaseOffset+int64(r.OffsetDelta), r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

// splitBatches calls fn with each complete batch of data (a trailing partial batch is
// ignored, as in a fetch response).
func splitBatches(data []byte, fn func(batch []byte)) {
	records.Split(data, func(b []byte) error { fn(b); return nil })
}
