package metadata

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/acl"
)

func aliceRead(topic string) acl.Binding {
	return acl.Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: topic,
		PatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:alice", Host: "*",
		Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow}
}

func TestACLRecords(t *testing.T) {
	img := build(t, Bootstrap{ClusterID: "c"},
		AccessControlEntry{ID: idA, Binding: aliceRead("t")},
		AccessControlEntry{ID: idB, Binding: aliceRead("u")})
	if got := img.ACLBindings(); len(got) != 2 || got[0] != aliceRead("t") || got[1] != aliceRead("u") {
		t.Fatalf("bindings %+v", got)
	}
	// The record round-trips through its encoding and the image through a snapshot.
	rec := must(DecodeRecord(must(EncodeRecord(AccessControlEntry{ID: idA, Binding: aliceRead("t")}))))
	if rec != (AccessControlEntry{ID: idA, Binding: aliceRead("t")}) {
		t.Errorf("decoded %+v", rec)
	}
	back := must(DecodeImage(must(EncodeImage(img))))
	if !Equal(img, back) || len(back.ACLs) != 2 {
		t.Fatalf("snapshot round trip: %+v", back.ACLs)
	}
	removed, err := img.Apply(RemoveAccessControlEntry{ID: idA})
	if err != nil || len(removed.ACLs) != 1 || len(img.ACLs) != 2 || Equal(img, removed) {
		t.Fatalf("remove: %v, %+v", err, removed.ACLs)
	}
	bad := aliceRead("t")
	bad.Principal = "alice"
	for _, r := range []Record{
		RemoveAccessControlEntry{ID: UUID{9}},
		AccessControlEntry{ID: idA, Binding: aliceRead("v")},
		AccessControlEntry{Binding: aliceRead("v")},
		AccessControlEntry{ID: UUID{9}, Binding: bad},
	} {
		if _, err := img.Apply(r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("apply %+v: %v", r, err)
		}
	}
}
