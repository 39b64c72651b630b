package group

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/storage"
)

func commitOf(tp TopicPartition, offset int64) CommitOffset {
	md := "md"
	return CommitOffset{TopicPartition: tp, Offset: offset, LeaderEpoch: 3, Metadata: &md, CommitTimestamp: -1}
}

var tp0, tp1, otherTP = TopicPartition{"t", 0}, TopicPartition{"t", 1}, TopicPartition{"u", 0}

func TestCommitValidation(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2)
	tests := []struct {
		name string
		req  CommitRequest
		want error
	}{
		{"member", CommitRequest{Group: "g", MemberID: ids[0], Generation: gen}, nil},
		{"old generation", CommitRequest{Group: "g", MemberID: ids[0], Generation: gen - 1}, errIllegalGeneration},
		{"unknown member", CommitRequest{Group: "g", MemberID: "x", Generation: gen}, errUnknownMember},
		{"non-member of a non-empty group", CommitRequest{Group: "g", Generation: -1}, errUnknownMember},
		{"simple commit to a new group", CommitRequest{Group: "simple", Generation: -1}, nil},
		{"generation for an unknown group", CommitRequest{Group: "nogroup", MemberID: "x", Generation: 1}, errIllegalGeneration},
		{"generation for an unknown group v9", CommitRequest{Group: "nogroup", MemberID: "x", Generation: 1, APIVersion: 9}, errGroupIDNotFound},
		{"static member with wrong id", CommitRequest{Group: "g", MemberID: ids[0], InstanceID: strPtr("i"), Generation: gen}, errUnknownMember},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.RetentionTime = -1
			tc.req.Offsets = []CommitOffset{commitOf(tp0, 10)}
			errs := h.shard.CommitOffsets(tc.req)
			wantErr(t, "commit", errs[0], tc.want)
		})
	}
	if h.state("simple") != "Empty" || h.shard.ListGroups(nil, nil)[1].ProtocolType != "" {
		t.Fatalf("simple group: %+v", h.shard.ListGroups(nil, nil))
	}
	if _, ok := h.shard.groups["nogroup"]; ok {
		t.Fatal("a rejected commit created a group")
	}
}

func TestCommitFetch(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 1)
	big := strings.Repeat("x", 5000)
	errs := h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: ids[0], Generation: gen, RetentionTime: -1, Offsets: []CommitOffset{
		commitOf(tp0, 10), commitOf(tp1, 20), {TopicPartition: otherTP, Offset: 1, LeaderEpoch: -1, Metadata: &big, CommitTimestamp: -1},
	}})
	wantErr(t, "tp0", errs[0], nil)
	wantErr(t, "tp1", errs[1], nil)
	wantErr(t, "metadata too large", errs[2], errMetadataTooLarge)

	got := h.shard.FetchOffsets("g", []TopicPartition{tp0, tp1, otherTP})
	want := []FetchedOffset{{tp0, 10, 3, "md", nil}, {tp1, 20, 3, "md", nil}, {otherTP, -1, -1, "", nil}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fetch %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if all := h.shard.FetchOffsets("g", nil); len(all) != 2 || all[0].TopicPartition != tp0 || all[1].TopicPartition != tp1 {
		t.Fatalf("fetch all: %+v", all)
	}
	if none := h.shard.FetchOffsets("nogroup", []TopicPartition{tp0}); none[0].Offset != -1 {
		t.Fatalf("fetch unknown group: %+v", none)
	}
	// A failed write is not acknowledged and leaves the committed offset alone.
	h.failStore = errCoordinatorNotAvl
	errs = h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: ids[0], Generation: gen, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 99)}})
	wantErr(t, "failed store", errs[0], errCoordinatorNotAvl)
	if f := h.shard.FetchOffsets("g", []TopicPartition{tp0}); f[0].Offset != 10 {
		t.Fatalf("offset after a failed commit: %d", f[0].Offset)
	}
}

func TestOffsetExpiration(t *testing.T) {
	set := testSettings()
	set.OffsetsRetention = time.Hour
	set.OffsetsRetentionCheckInterval = time.Minute
	set.MaxSessionTimeout = 3 * time.Hour
	h := newHarness(t, set)

	// A simple group: offsets expire by commit time.
	h.shard.CommitOffsets(CommitRequest{Group: "simple", Generation: -1, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 1)}})
	// A consumer group with a member: its offsets stay while it is Stable and subscribed.
	ids, gen := h.stableGroup("g", 1, withSession(2*time.Hour))
	h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: ids[0], Generation: gen, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 5), commitOf(otherTP, 6)}})
	// An old-style commit with its own retention time.
	h.shard.CommitOffsets(CommitRequest{Group: "old", Generation: -1, RetentionTime: 10 * time.Minute, Offsets: []CommitOffset{commitOf(tp0, 7)}})

	h.clock.Advance(11 * time.Minute)
	if _, ok := h.shard.groups["old"]; ok {
		t.Fatal("offset with an expire timestamp did not expire")
	}
	h.clock.Advance(50 * time.Minute)
	if _, ok := h.shard.groups["simple"]; ok {
		t.Fatal("simple group's offsets did not expire an hour after the commit")
	}
	// g is Stable and subscribed to "t": tp0 stays; "u" is not subscribed and expired.
	if f := h.shard.FetchOffsets("g", nil); len(f) != 1 || f[0].TopicPartition != tp0 {
		t.Fatalf("stable group offsets: %+v", f)
	}
	// Once g is Empty its offsets expire an hour after it became empty.
	h.shard.LeaveGroup("g", []LeaveMember{{MemberID: ids[0]}})
	h.wantState("g", "Empty")
	h.clock.Advance(59 * time.Minute)
	if f := h.shard.FetchOffsets("g", nil); len(f) != 1 {
		t.Fatalf("offsets expired too early: %+v", f)
	}
	h.clock.Advance(2 * time.Minute)
	if _, ok := h.shard.groups["g"]; ok {
		t.Fatal("empty group without offsets was not deleted")
	}
	// The deletions were written as tombstones.
	tombstones := 0
	for _, r := range h.written {
		if r.Value == nil {
			tombstones++
		}
	}
	if tombstones != 2+1+1+1+2 { // 2 in g, 1 simple, 1 old + group tombstones of simple, old, g
		t.Fatalf("%d tombstones written", tombstones)
	}
}

func TestDeleteOffsets(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 1)
	h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: ids[0], Generation: gen, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 5), commitOf(otherTP, 6)}})
	gerr, errs := h.shard.DeleteOffsets("g", []TopicPartition{tp0, otherTP})
	wantErr(t, "group", gerr, nil)
	wantErr(t, "subscribed topic", errs[0], errSubscribedToTopic)
	wantErr(t, "other topic", errs[1], nil)
	if f := h.shard.FetchOffsets("g", nil); len(f) != 1 || f[0].TopicPartition != tp0 {
		t.Fatalf("offsets after delete: %+v", f)
	}
	gerr, _ = h.shard.DeleteOffsets("nogroup", []TopicPartition{tp0})
	wantErr(t, "unknown group", gerr, errGroupIDNotFound)
	h.shard.LeaveGroup("g", []LeaveMember{{MemberID: ids[0]}})
	if gerr, errs = h.shard.DeleteOffsets("g", []TopicPartition{tp0}); gerr != nil || errs[0] != nil {
		t.Fatalf("delete from empty group: %v %v", gerr, errs)
	}
}

func TestDeleteListDescribe(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2)
	h.shard.CommitOffsets(CommitRequest{Group: "simple", Generation: -1, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 1)}})

	d := h.shard.DescribeGroup("g")
	if d.State != "Stable" || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 2 ||
		string(d.Members[0].Assignment) != "assignment-of-"+ids[0] || d.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe %+v", d)
	}
	var sub kmsg.ConsumerMemberMetadata
	if err := sub.ReadFrom(d.Members[1].Metadata); err != nil || sub.Topics[0] != "t" {
		t.Fatalf("member metadata: %v %+v", err, sub)
	}
	if d := h.shard.DescribeGroup("nogroup"); d.State != "Dead" || d.Err != nil {
		t.Fatalf("describe unknown: %+v", d)
	}
	tests := []struct {
		states, types []string
		want          []string
	}{
		{nil, nil, []string{"g", "simple"}},
		{[]string{"stable"}, nil, []string{"g"}},
		{[]string{"Empty"}, nil, []string{"simple"}},
		{nil, []string{"classic"}, []string{"g", "simple"}},
		{nil, []string{"consumer"}, nil},
	}
	for _, tc := range tests {
		var got []string
		for _, l := range h.shard.ListGroups(tc.states, tc.types) {
			got = append(got, l.Group)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("list %v %v: %v, want %v", tc.states, tc.types, got, tc.want)
		}
	}
	wantErr(t, "delete non-empty", h.shard.DeleteGroup("g"), errNonEmptyGroup)
	wantErr(t, "delete unknown", h.shard.DeleteGroup("nogroup"), errGroupIDNotFound)
	wantErr(t, "delete simple", h.shard.DeleteGroup("simple"), nil)
	if f := h.shard.FetchOffsets("simple", []TopicPartition{tp0}); f[0].Offset != -1 {
		t.Fatal("offsets of a deleted group remain")
	}
	h.shard.LeaveGroup("g", []LeaveMember{{MemberID: ids[0]}, {MemberID: ids[1]}})
	_ = gen
	wantErr(t, "delete emptied group", h.shard.DeleteGroup("g"), nil)
	if l := h.shard.ListGroups(nil, nil); len(l) != 0 {
		t.Fatalf("groups after delete: %+v", l)
	}
}

// TestReplayRebuildsState writes state through one shard, replays its records into a fresh
// one (as loading a partition does) and checks groups and offsets came back.
func TestReplayRebuildsState(t *testing.T) {
	h := newHarness(t, testSettings())
	ids, gen := h.stableGroup("g", 2, withSession(30*time.Second))
	h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: ids[0], Generation: gen, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 5), commitOf(tp1, 6)}})
	h.shard.CommitOffsets(CommitRequest{Group: "g", MemberID: ids[0], Generation: gen, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 7)}})
	h.shard.CommitOffsets(CommitRequest{Group: "simple", Generation: -1, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 1)}})
	h.shard.CommitOffsets(CommitRequest{Group: "gone", Generation: -1, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 1)}})
	wantErr(t, "delete", h.shard.DeleteGroup("gone"), nil)

	// Through real batches, as the log holds them.
	batch := BuildBatch(h.written, h.clock.Now().UnixMilli())
	s2 := h.newShard(testSettings())
	if err := forEachRecord(batch, func(_ int64, k, v []byte) error { return s2.replay(k, v) }); err != nil {
		t.Fatal(err)
	}
	s2.finishLoad()
	d := s2.DescribeGroup("g")
	if d.State != "Stable" || len(d.Members) != 2 || d.Protocol != "range" || string(d.Members[1].Assignment) != "assignment-of-"+ids[1] {
		t.Fatalf("replayed group %+v", d)
	}
	if f := s2.FetchOffsets("g", nil); len(f) != 2 || f[0].Offset != 7 || f[1].Offset != 6 || f[0].LeaderEpoch != 3 || f[0].Metadata != "md" {
		t.Fatalf("replayed offsets %+v", f)
	}
	if s2.DescribeGroup("simple").State != "Empty" || s2.DescribeGroup("gone").State != "Dead" {
		t.Fatal("simple or deleted group not replayed right")
	}
	// The replayed members carry on with heartbeats in the same generation.
	h.shard = s2
	wantErr(t, "heartbeat after replay", h.heartbeat("g", ids[1], gen), nil)
	// A member that does not come back times out.
	h.clock.Advance(20 * time.Second)
	wantErr(t, "heartbeat", h.heartbeat("g", ids[1], gen), nil)
	h.clock.Advance(15 * time.Second)
	wantErr(t, "heartbeat after the other expired", h.heartbeat("g", ids[1], gen), errRebalance)
}

func TestReplaySkipsUnknownAndRejectsCorrupt(t *testing.T) {
	h := newHarness(t, testSettings())
	s := h.newShard(testSettings())
	if err := s.replay([]byte{0, 9, 1, 2}, []byte{1}); err != nil {
		t.Fatalf("unknown key version: %v", err)
	}
	if err := s.replay([]byte{0, 1, 0}, []byte{1}); err == nil {
		t.Fatal("corrupt offset key accepted")
	}
	if err := s.replay([]byte{0}, nil); err == nil {
		t.Fatal("short key accepted")
	}
	if err := forEachRecord([]byte{1, 2, 3}, nil); err == nil {
		t.Fatal("corrupt batch accepted")
	}
}

func TestPartitionFor(t *testing.T) {
	// Utils.abs("...".hashCode()) % 50, hashes computed independently over UTF-16 units.
	tests := []struct {
		group string
		want  int32
	}{
		{"", 0},
		{"my-group", 12},               // hashCode -1906497762
		{"test-consumer-group", 31},    // hashCode -1793216381
		{"console-consumer-41234", 35}, // hashCode 161195285
	}
	for _, tc := range tests {
		if got := PartitionFor(tc.group, 50); got != tc.want {
			t.Errorf("PartitionFor(%q) = %d, want %d", tc.group, got, tc.want)
		}
	}
	if h := javaStringHashCode("hello"); h != 99162322 {
		t.Errorf("hashCode(hello) = %d", h)
	}
	if h := javaStringHashCode("polygenelubricants"); h != -2147483648 {
		t.Errorf("hashCode(polygenelubricants) = %d, want MIN_VALUE", h)
	}
	if PartitionFor("polygenelubricants", 50) != 0 {
		t.Error("MIN_VALUE hash must map to partition 0")
	}
	if h := javaStringHashCode("😀"); h != 0xd83d*31+0xde00 {
		t.Errorf("surrogate pair hash %d", h)
	}
}

// TestCommitOnAFullDisk: an offset commit that the full disk refuses answers
// KAFKA_STORAGE_ERROR, which consumers report, instead of COORDINATOR_NOT_AVAILABLE, which they
// retry until their timeout; the commit is not applied, and one after space returns is.
func TestCommitOnAFullDisk(t *testing.T) {
	h := newHarness(t, testSettings())
	h.failStore = &storage.DiskFullError{Dir: "/data/__consumer_offsets-0", Free: 0, Err: syscall.ENOSPC}
	commit := CommitRequest{Group: "g", Generation: -1, RetentionTime: -1, Offsets: []CommitOffset{commitOf(tp0, 5)}}
	wantErr(t, "commit on a full disk", h.shard.CommitOffsets(commit)[0], kerr.KafkaStorageError)
	if got := h.shard.FetchOffsets("g", nil); len(got) != 0 {
		t.Fatalf("a refused commit was applied: %+v", got)
	}
	h.failStore = nil
	wantErr(t, "commit after space returned", h.shard.CommitOffsets(commit)[0], nil)
}
