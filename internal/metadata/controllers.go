package metadata

import (
	"fmt"
	"maps"
	"slices"
)

// TypeRegisterController is the record type of RegisterController.
const TypeRegisterController = "RegisterController"

// Controller is what the metadata knows of one controller of a dynamic quorum (KIP-853): the
// directory id of its metadata log directory and its controller-listener endpoints. Which
// controllers vote is Raft's configuration, not the image; this is the description
// DescribeQuorum gives of them (Kafka keeps both in its VotersRecord).
type Controller struct {
	ID int32 `json:"id"`
	// DirectoryID is the directory.id of the controller's metadata log directory; zero when
	// not known (an observer that only registered).
	DirectoryID UUID       `json:"directoryID,omitzero"`
	Endpoints   []Endpoint `json:"endpoints"`
}

// RegisterController adds or replaces the description of one controller (Samsa's record;
// Kafka's RegisterControllerRecord has no directory id, its VotersRecord has). A record whose
// DirectoryID is zero keeps the directory id already known for the controller.
type RegisterController Controller

// RecordType implements Record.
func (RegisterController) RecordType() string { return TypeRegisterController }

func (img *Image) applyRegisterController(r RegisterController) (*Image, error) {
	if r.ID < 0 {
		return img, fmt.Errorf("%w: controller id %d", ErrInvalidRecord, r.ID)
	}
	c := Controller(r)
	c.Endpoints = slices.Clone(c.Endpoints)
	if old, ok := img.Controllers[r.ID]; ok && c.DirectoryID.IsZero() {
		c.DirectoryID = old.DirectoryID
	}
	next := img.clone()
	next.Controllers = withEntry(img.Controllers, r.ID, c)
	return next, nil
}

// withEntry returns a copy of m (which may be nil) with k set to v.
func withEntry[K comparable, V any](m map[K]V, k K, v V) map[K]V {
	out := maps.Clone(m)
	if out == nil {
		out = make(map[K]V, 1)
	}
	out[k] = v
	return out
}

// withoutEntry returns a copy of m without k.
func withoutEntry[K comparable, V any](m map[K]V, k K) map[K]V {
	out := maps.Clone(m)
	delete(out, k)
	return out
}

func controllerEqual(a, b Controller) bool {
	return a.ID == b.ID && a.DirectoryID == b.DirectoryID && slices.Equal(a.Endpoints, b.Endpoints)
}
