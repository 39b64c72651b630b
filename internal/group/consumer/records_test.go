package consumer

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecordsRoundTrip(t *testing.T) {
	a := Assignment{tid("x"): {0, 3, 7}, tid("y"): {1}}
	recs := []Record{
		groupMetadataRecord("g", groupMetadataValue{epoch: 7, metadataHash: -42}),
		memberMetadataRecord("g", "m", memberMetadataValue{instanceID: "i", rackID: "r", clientID: "c", clientHost: "/h",
			topicNames: []string{"x", "y"}, regex: "o.*", serverAssignor: "range", rebalanceTimeout: 30000}),
		targetAssignmentRecord("g", 7),
		memberTargetRecord("g", "m", a),
		currentAssignmentRecord("g", "m", currentAssignmentValue{epoch: 7, previousEpoch: 6, state: MemberUnrevokedPartitions, assigned: a, pendingRevocation: Assignment{tid("z"): {2}}}),
	}
	s := New(DefaultConfig(), nil)
	for _, r := range recs {
		if !IsRecord(r.Key) {
			t.Fatalf("IsRecord(%x) = false", r.Key)
		}
		if err := s.Replay(r); err != nil {
			t.Fatal(err)
		}
	}
	g := s.groups["g"]
	m := g.members["m"]
	if g.epoch != 7 || g.metadataHash != -42 || g.assignmentEpoch != 7 || !g.target["m"].equal(a) ||
		m.instanceID != "i" || m.rackID != "r" || m.regex != "o.*" || m.serverAssignor != "range" || m.rebalanceTimeout != 30000 ||
		m.epoch != 7 || m.previousEpoch != 6 || m.state != MemberUnrevokedPartitions || !m.assigned.equal(a) || m.pendingRevocation.count() != 1 {
		t.Fatalf("replayed state:\n%s", dump(s))
	}
	// Keys are Kafka-style: int16 type, int16-length strings.
	if want := []byte{0, 101, 0, 1, 'g', 0, 1, 'm'}; !bytes.Equal(recs[1].Key, want) {
		t.Fatalf("member key %x, want %x", recs[1].Key, want)
	}
	for _, k := range [][]byte{nil, {0}, {0, 1, 0, 1, 'g'}, {0, 2, 0, 0}, {0, 99, 0, 0}} {
		if IsRecord(k) {
			t.Fatalf("IsRecord(%x) = true", k)
		}
	}
	// Tombstones of a member, then of the group, remove them.
	for _, r := range []Record{
		tombstone(TypeCurrentAssignment, "g", "m"), tombstone(TypeMemberTargetAssignment, "g", "m"),
		tombstone(TypeMemberMetadata, "g", "m"), tombstone(TypeTargetAssignment, "g", ""), tombstone(TypeGroupMetadata, "g", ""),
	} {
		if err := s.Replay(r); err != nil {
			t.Fatal(err)
		}
	}
	if s.Has("g") {
		t.Fatal("group survived its tombstone")
	}
}

func TestCorruptRecords(t *testing.T) {
	good := currentAssignmentRecord("g", "m", currentAssignmentValue{epoch: 1, assigned: Assignment{tid("x"): {0, 1}}, pendingRevocation: Assignment{}})
	cases := map[string]Record{
		"unknown type":        {Key: []byte{0, 50, 0, 1, 'g'}, Value: []byte{0, 0}},
		"short key":           {Key: []byte{0, 100, 0, 9, 'g'}, Value: good.Value},
		"trailing key bytes":  {Key: append(groupMetadataRecord("g", groupMetadataValue{}).Key, 0), Value: groupMetadataRecord("g", groupMetadataValue{}).Value},
		"value version":       {Key: good.Key, Value: append([]byte{0, 1}, good.Value[2:]...)},
		"truncated value":     {Key: good.Key, Value: good.Value[:len(good.Value)-1]},
		"trailing value":      {Key: good.Key, Value: append(append([]byte{}, good.Value...), 0)},
		"huge count":          {Key: good.Key, Value: append(append([]byte{}, good.Value[:11]...), 0xff, 0xff, 0xff, 0xff, 0x0f)},
		"unsorted partitions": {Key: good.Key, Value: currentAssignmentRecord("g", "m", currentAssignmentValue{assigned: Assignment{tid("x"): {1, 0}}}).Value},
		"bad state":           {Key: good.Key, Value: currentAssignmentRecord("g", "m", currentAssignmentValue{state: 9}).Value},
	}
	for name, r := range cases {
		s := New(DefaultConfig(), nil)
		if err := s.Replay(r); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("%s: Replay = %v, want ErrCorruptRecord", name, err)
		}
	}
}

func FuzzReplay(f *testing.F) {
	a := Assignment{tid("x"): {0, 3}}
	for _, r := range []Record{
		groupMetadataRecord("g", groupMetadataValue{epoch: 3}),
		memberMetadataRecord("g", "m", memberMetadataValue{topicNames: []string{"x"}, rebalanceTimeout: 1}),
		memberMetadataRecord("g", "m", memberMetadataValue{topicNames: []string{"x"}, rebalanceTimeout: 1,
			classic: &classicMeta{sessionTimeout: 10000, protocols: []ClassicProtocol{{Name: "range", Metadata: []byte{0, 3}}}}}),
		targetAssignmentRecord("g", 2),
		memberTargetRecord("g", "m", a),
		currentAssignmentRecord("g", "m", currentAssignmentValue{epoch: 2, assigned: a, pendingRevocation: Assignment{}}),
	} {
		f.Add(r.Key, r.Value)
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := New(DefaultConfig(), nil)
		if err := s.Replay(Record{Key: key, Value: value}); err != nil && !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("error not wrapping ErrCorruptRecord: %v", err)
		}
	})
}

func TestClassicMemberMetadataRoundTrip(t *testing.T) {
	c := &classicMeta{sessionTimeout: 45000, protocols: []ClassicProtocol{{Name: "range", Metadata: []byte{0, 3, 1}}, {Name: "cooperative-sticky", Metadata: nil}}}
	r := memberMetadataRecord("g", "m", memberMetadataValue{clientID: "c", topicNames: []string{"t"}, rebalanceTimeout: 300000, classic: c})
	if r.Value[1] != memberMetadataClassicVersion {
		t.Fatalf("value version %d, want %d", r.Value[1], memberMetadataClassicVersion)
	}
	v, err := decodeMemberMetadata(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	if !v.classic.equal(&classicMeta{sessionTimeout: 45000, protocols: []ClassicProtocol{{Name: "range", Metadata: []byte{0, 3, 1}}, {Name: "cooperative-sticky", Metadata: []byte{}}}}) ||
		v.clientID != "c" || v.rebalanceTimeout != 300000 {
		t.Fatalf("decoded %+v, classic %+v", v, v.classic)
	}
	// A version-0 value has no classic metadata; a version above 1 is refused.
	if v, err := decodeMemberMetadata(memberMetadataRecord("g", "m", memberMetadataValue{}).Value); err != nil || v.classic != nil {
		t.Fatalf("version 0: %+v, %v", v, err)
	}
	bad := append([]byte{0, 2}, r.Value[2:]...)
	if _, err := decodeMemberMetadata(bad); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("version 2: %v", err)
	}
	if _, err := decodeMemberMetadata(r.Value[:len(r.Value)-1]); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("truncated: %v", err)
	}
}
