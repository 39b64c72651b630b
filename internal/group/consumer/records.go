package consumer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Record is one record of __consumer_offsets: a key and a value (nil for a tombstone).
type Record struct {
	Key   []byte
	Value []byte
}

// Record types of consumer-group records (the int16 at the start of a key); see the package
// documentation for their layouts.
const (
	TypeGroupMetadata          int16 = 100
	TypeMemberMetadata         int16 = 101
	TypeTargetAssignment       int16 = 102
	TypeMemberTargetAssignment int16 = 103
	TypeCurrentAssignment      int16 = 104
)

// valueVersion is the version of every value; member metadata of a member using the
// classic protocol is written at memberMetadataClassicVersion.
const (
	valueVersion                 = 0
	memberMetadataClassicVersion = 1
)

// ErrCorruptRecord reports a consumer-group record that cannot be decoded.
var ErrCorruptRecord = errors.New("consumer group: corrupt record")

// IsRecord reports whether a __consumer_offsets key belongs to this package.
func IsRecord(key []byte) bool {
	if len(key) < 2 {
		return false
	}
	t := int16(binary.BigEndian.Uint16(key))
	return t >= TypeGroupMetadata && t <= TypeCurrentAssignment
}

// recordKey is a decoded key.
type recordKey struct {
	typ    int16
	group  string
	member string // types 101, 103, 104
}

func hasMember(typ int16) bool {
	return typ == TypeMemberMetadata || typ == TypeMemberTargetAssignment || typ == TypeCurrentAssignment
}

func (k recordKey) encode() []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(k.typ))
	b = appendKeyString(b, k.group)
	if hasMember(k.typ) {
		b = appendKeyString(b, k.member)
	}
	return b
}

func appendKeyString(b []byte, s string) []byte {
	if len(s) > math.MaxInt16 {
		s = s[:math.MaxInt16] // ids are far shorter: Kafka strings are int16-sized
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func decodeKey(key []byte) (recordKey, error) {
	r := reader{b: key}
	k := recordKey{typ: r.int16()}
	if k.typ < TypeGroupMetadata || k.typ > TypeCurrentAssignment {
		return k, fmt.Errorf("%w: unknown record type %d", ErrCorruptRecord, k.typ)
	}
	k.group = r.keyString()
	if hasMember(k.typ) {
		k.member = r.keyString()
	}
	return k, r.done("key")
}

// groupMetadataValue is record type 100.
type groupMetadataValue struct {
	epoch        int32
	metadataHash int64
}

// memberMetadataValue is record type 101.
type memberMetadataValue struct {
	instanceID       string
	rackID           string
	clientID         string
	clientHost       string
	topicNames       []string
	regex            string
	serverAssignor   string
	rebalanceTimeout int32 // ms
	// classic is set for a member using the classic protocol (value version 1); nil for a
	// member using ConsumerGroupHeartbeat (value version 0).
	classic *classicMeta
}

// currentAssignmentValue is record type 104.
type currentAssignmentValue struct {
	epoch             int32
	previousEpoch     int32
	state             MemberState
	assigned          Assignment
	pendingRevocation Assignment
}

func groupMetadataRecord(group string, v groupMetadataValue) Record {
	w := newValue()
	w.int32(v.epoch)
	w.int64(v.metadataHash)
	return Record{Key: recordKey{typ: TypeGroupMetadata, group: group}.encode(), Value: w.b}
}

func memberMetadataRecord(group, member string, v memberMetadataValue) Record {
	w := newValue()
	if v.classic != nil {
		w = newValueVersion(memberMetadataClassicVersion)
	}
	w.str(v.instanceID)
	w.str(v.rackID)
	w.str(v.clientID)
	w.str(v.clientHost)
	w.uvarint(uint64(len(v.topicNames)))
	for _, t := range v.topicNames {
		w.str(t)
	}
	w.str(v.regex)
	w.str(v.serverAssignor)
	w.int32(v.rebalanceTimeout)
	if c := v.classic; c != nil {
		w.int32(c.sessionTimeout)
		w.uvarint(uint64(len(c.protocols)))
		for _, p := range c.protocols {
			w.str(p.Name)
			w.str(string(p.Metadata))
		}
	}
	return Record{Key: recordKey{typ: TypeMemberMetadata, group: group, member: member}.encode(), Value: w.b}
}

func targetAssignmentRecord(group string, epoch int32) Record {
	w := newValue()
	w.int32(epoch)
	return Record{Key: recordKey{typ: TypeTargetAssignment, group: group}.encode(), Value: w.b}
}

func memberTargetRecord(group, member string, a Assignment) Record {
	w := newValue()
	w.assignment(a)
	return Record{Key: recordKey{typ: TypeMemberTargetAssignment, group: group, member: member}.encode(), Value: w.b}
}

func currentAssignmentRecord(group, member string, v currentAssignmentValue) Record {
	w := newValue()
	w.int32(v.epoch)
	w.int32(v.previousEpoch)
	w.b = append(w.b, byte(v.state))
	w.assignment(v.assigned)
	w.assignment(v.pendingRevocation)
	return Record{Key: recordKey{typ: TypeCurrentAssignment, group: group, member: member}.encode(), Value: w.b}
}

func tombstone(typ int16, group, member string) Record {
	return Record{Key: recordKey{typ: typ, group: group, member: member}.encode()}
}

func decodeGroupMetadata(b []byte) (groupMetadataValue, error) {
	r := valueReader(b)
	v := groupMetadataValue{epoch: r.int32(), metadataHash: r.int64()}
	return v, r.done("group metadata")
}

func decodeMemberMetadata(b []byte) (memberMetadataValue, error) {
	r, version := valueReaderUpTo(b, memberMetadataClassicVersion)
	var v memberMetadataValue
	v.instanceID = r.str()
	v.rackID = r.str()
	v.clientID = r.str()
	v.clientHost = r.str()
	n := r.count(1)
	for i := 0; i < n; i++ {
		v.topicNames = append(v.topicNames, r.str())
	}
	v.regex = r.str()
	v.serverAssignor = r.str()
	v.rebalanceTimeout = r.int32()
	if version == memberMetadataClassicVersion && r.err == nil {
		c := &classicMeta{sessionTimeout: r.int32()}
		n := r.count(2)
		for i := 0; i < n && r.err == nil; i++ {
			c.protocols = append(c.protocols, ClassicProtocol{Name: r.str(), Metadata: []byte(r.str())})
		}
		v.classic = c
	}
	return v, r.done("member metadata")
}

func decodeTargetAssignment(b []byte) (int32, error) {
	r := valueReader(b)
	e := r.int32()
	return e, r.done("target assignment")
}

func decodeMemberTarget(b []byte) (Assignment, error) {
	r := valueReader(b)
	a := r.assignment()
	return a, r.done("member target assignment")
}

func decodeCurrentAssignment(b []byte) (currentAssignmentValue, error) {
	r := valueReader(b)
	var v currentAssignmentValue
	v.epoch = r.int32()
	v.previousEpoch = r.int32()
	v.state = MemberState(r.int8())
	v.assigned = r.assignment()
	v.pendingRevocation = r.assignment()
	if r.err == nil && v.state > MemberUnreleasedPartitions {
		r.err = fmt.Errorf("unknown member state %d", v.state)
	}
	return v, r.done("current assignment")
}

type writer struct{ b []byte }

func newValue() *writer { return newValueVersion(valueVersion) }

func newValueVersion(v int16) *writer {
	return &writer{b: binary.BigEndian.AppendUint16(nil, uint16(v))}
}

func (w *writer) int32(v int32)    { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *writer) int64(v int64)    { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *writer) assignment(a Assignment) {
	ts := a.topics()
	w.uvarint(uint64(len(ts)))
	for _, t := range ts {
		w.b = append(w.b, t[:]...)
		w.uvarint(uint64(len(a[t])))
		for _, p := range a[t] {
			w.int32(p)
		}
	}
}

// reader decodes with a sticky error: once a read fails, later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func valueReader(b []byte) *reader {
	r, _ := valueReaderUpTo(b, valueVersion)
	return r
}

// valueReaderUpTo reads a value's version, refusing versions above max.
func valueReaderUpTo(b []byte, max int16) (*reader, int16) {
	r := &reader{b: b}
	v := r.int16()
	if r.err == nil && (v < valueVersion || v > max) {
		r.err = fmt.Errorf("unknown value version %d", v)
	}
	return r, v
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) int8() int8 {
	if b := r.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}

func (r *reader) int16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) int32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) int64() int64 {
	if b := r.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of elements that take at least minSize bytes each, refusing counts
// that the remaining bytes cannot hold.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.err = errors.New("count larger than the remaining bytes")
		return 0
	}
	return int(n)
}

func (r *reader) str() string {
	n := r.count(1)
	return string(r.take(n))
}

func (r *reader) keyString() string {
	n := r.int16()
	if n < 0 && r.err == nil {
		r.err = errors.New("negative string length")
	}
	return string(r.take(int(n)))
}

func (r *reader) assignment() Assignment {
	n := r.count(17)
	a := make(Assignment, n)
	for i := 0; i < n && r.err == nil; i++ {
		var t TopicID
		copy(t[:], r.take(16))
		k := r.count(4)
		ps := make([]int32, 0, k)
		for j := 0; j < k; j++ {
			p := r.int32()
			if r.err == nil && (p < 0 || (j > 0 && p <= ps[j-1])) {
				r.err = errors.New("partitions not increasing")
			}
			ps = append(ps, p)
		}
		if _, dup := a[t]; (dup || k == 0) && r.err == nil {
			r.err = errors.New("duplicate or empty topic")
		}
		a[t] = ps
	}
	return a
}

func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorruptRecord, what, r.err)
	}
	return nil
}
