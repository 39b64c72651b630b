package controller

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/metadata"
)

// ACLDeleteResult is the outcome of one DeleteAcls filter: the bindings it removed.
type ACLDeleteResult struct {
	Matches []acl.Binding
	Err     error
}

// CreateAcls adds ACL bindings with Kafka's checks (AclControlManager): an invalid binding is
// INVALID_REQUEST, a binding that exists already (or twice in the request) is added once and
// succeeds. The valid bindings are written in one batch; one error per binding.
func (c *Controller) CreateAcls(ctx context.Context, bindings []acl.Binding) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(bindings))
	if err := c.beginLocked(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	img := c.Image()
	have := map[acl.Binding]bool{}
	for _, b := range img.ACLs {
		have[b] = true
	}
	var recs []metadata.Record
	var written []int
	for i, b := range bindings {
		if err := b.Validate(); err != nil {
			errs[i] = kafkaErrorf(kerr.InvalidRequest, "%s", err.Error())
			continue
		}
		if have[b] {
			continue
		}
		have[b] = true
		id := c.newACLID(img)
		recs = append(recs, metadata.AccessControlEntry{ID: id, Binding: b})
		written = append(written, i)
	}
	if len(recs) > 0 {
		if _, err := c.proposeLocked(ctx, recs...); err != nil {
			err = fmt.Errorf("controller: create ACLs: %w", err)
			for _, i := range written {
				errs[i] = err
			}
		} else {
			c.logger.Info("created ACLs", "count", len(recs))
		}
	}
	return errs
}

func (c *Controller) newACLID(img *metadata.Image) metadata.UUID {
	for {
		id := metadata.RandomUUID()
		if _, used := img.ACLs[id]; !used && !id.IsZero() {
			return id
		}
	}
}

// DeleteAcls removes the bindings each filter matches (Kafka's AclControlManager.deleteAcls):
// an invalid filter is INVALID_REQUEST; a binding matched by several filters is removed once
// and reported by each.
func (c *Controller) DeleteAcls(ctx context.Context, filters []acl.Filter) []ACLDeleteResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ACLDeleteResult, len(filters))
	if err := c.beginLocked(ctx); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	img := c.Image()
	removed := map[metadata.UUID]bool{}
	var recs []metadata.Record
	for i, f := range filters {
		if err := f.Validate(); err != nil {
			out[i].Err = kafkaErrorf(kerr.InvalidRequest, "%s", err.Error())
			continue
		}
		for _, id := range img.ACLIDs() {
			if b := img.ACLs[id]; f.Matches(b) {
				out[i].Matches = append(out[i].Matches, b)
				if !removed[id] {
					removed[id] = true
					recs = append(recs, metadata.RemoveAccessControlEntry{ID: id})
				}
			}
		}
	}
	if len(recs) > 0 {
		if _, err := c.proposeLocked(ctx, recs...); err != nil {
			err = fmt.Errorf("controller: delete ACLs: %w", err)
			for i := range out {
				if out[i].Err == nil {
					out[i] = ACLDeleteResult{Err: err}
				}
			}
		} else {
			c.logger.Info("deleted ACLs", "count", len(recs))
		}
	}
	return out
}
