package metadata

import (
	"fmt"
	"maps"
	"slices"

	"github.com/samsa-io/samsa/internal/acl"
)

// Record types of ACL bindings.
const (
	TypeAccessControlEntry       = "AccessControlEntry"
	TypeRemoveAccessControlEntry = "RemoveAccessControlEntry"
)

// AccessControlEntry adds one ACL binding under its id (Kafka's AccessControlEntryRecord).
type AccessControlEntry struct {
	ID UUID `json:"id"`
	acl.Binding
}

// RemoveAccessControlEntry deletes the binding with the id (Kafka's
// RemoveAccessControlEntryRecord).
type RemoveAccessControlEntry struct {
	ID UUID `json:"id"`
}

// RecordType implements Record.
func (AccessControlEntry) RecordType() string { return TypeAccessControlEntry }

// RecordType implements Record.
func (RemoveAccessControlEntry) RecordType() string { return TypeRemoveAccessControlEntry }

func (img *Image) applyAccessControlEntry(r AccessControlEntry) (*Image, error) {
	if r.ID.IsZero() {
		return img, fmt.Errorf("%w: ACL binding without id", ErrInvalidRecord)
	}
	if err := r.Binding.Validate(); err != nil {
		return img, fmt.Errorf("%w: ACL binding %s: %v", ErrInvalidRecord, r.ID, err)
	}
	if _, dup := img.ACLs[r.ID]; dup {
		return img, fmt.Errorf("%w: ACL binding %s exists", ErrInvalidRecord, r.ID)
	}
	next := img.clone()
	next.ACLs = withEntry(img.ACLs, r.ID, r.Binding)
	return next, nil
}

func (img *Image) applyRemoveAccessControlEntry(r RemoveAccessControlEntry) (*Image, error) {
	if _, ok := img.ACLs[r.ID]; !ok {
		return img, fmt.Errorf("%w: no ACL binding %s", ErrInvalidRecord, r.ID)
	}
	next := img.clone()
	next.ACLs = withoutEntry(img.ACLs, r.ID)
	return next, nil
}

// ACLBindings returns the ACL bindings, ordered by id.
func (img *Image) ACLBindings() []acl.Binding {
	out := make([]acl.Binding, 0, len(img.ACLs))
	for _, id := range img.ACLIDs() {
		out = append(out, img.ACLs[id])
	}
	return out
}

// ACLIDs returns the ids of the ACL bindings, sorted.
func (img *Image) ACLIDs() []UUID {
	return slices.SortedFunc(maps.Keys(img.ACLs), func(a, b UUID) int { return slices.Compare(a[:], b[:]) })
}

// aclEntry is a binding of a snapshot.
type aclEntry struct {
	ID UUID `json:"id"`
	acl.Binding
}
