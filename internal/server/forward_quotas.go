package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
)

// AlterClientQuotas runs on the local controller when it is the active one, else is sent to
// the active controller as an AlterClientQuotas request; the answers are matched to the
// entities by their components.
func (c *clusterController) AlterClientQuotas(ctx context.Context, alts []controller.QuotaAlteration, validateOnly bool) []controller.QuotaResult {
	if c.local.IsLeader() {
		return c.local.AlterClientQuotas(ctx, alts, validateOnly)
	}
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.ValidateOnly = validateOnly
	for _, a := range alts {
		e := kmsg.NewAlterClientQuotasRequestEntry()
		for _, d := range a.Entity {
			ed := kmsg.NewAlterClientQuotasRequestEntryEntity()
			ed.Type, ed.Name = d.EntityType, d.EntityName
			e.Entity = append(e.Entity, ed)
		}
		for _, op := range a.Ops {
			o := kmsg.NewAlterClientQuotasRequestEntryOp()
			o.Key, o.Value, o.Remove = op.Key, op.Value, op.Remove
			e.Ops = append(e.Ops, o)
		}
		req.Entries = append(req.Entries, e)
	}
	out := controller.QuotaResultsFor(alts)
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	byEntity := map[string]error{}
	for _, e := range resp.(*kmsg.AlterClientQuotasResponse).Entries {
		data := make([]metadata.QuotaEntityData, len(e.Entity))
		for i, d := range e.Entity {
			data[i] = metadata.QuotaEntityData{EntityType: d.Type, EntityName: d.Name}
		}
		byEntity[metadata.QuotaEntityString(data)] = kafkaErr(e.ErrorCode, e.ErrorMessage)
	}
	for i := range out {
		err, ok := byEntity[metadata.QuotaEntityString(out[i].Entity)]
		if !ok {
			err = kerr.UnknownServerError
		}
		out[i].Err = err
	}
	if !validateOnly {
		// Wait for what the alteration asked for, not for a new index: an alteration that
		// changes nothing (a refusal, a value already set) writes no record.
		c.images.wait(ctx, func(img *metadata.Image) bool { return quotasShow(img, alts, out) })
	}
	return out
}

// quotasShow reports whether img has the quotas that the alterations which succeeded asked for.
func quotasShow(img *metadata.Image, alts []controller.QuotaAlteration, results []controller.QuotaResult) bool {
	ok := map[string]bool{}
	for _, r := range results {
		ok[metadata.QuotaEntityString(r.Entity)] = r.Err == nil
	}
	for _, a := range alts {
		if !ok[metadata.QuotaEntityString(a.Entity)] {
			continue
		}
		e, err := metadata.QuotaEntity(a.Entity)
		if err != nil {
			continue
		}
		have := img.ClientQuotas().Quotas[e]
		for _, op := range a.Ops {
			v, set := have[op.Key]
			if op.Remove == set || (!op.Remove && v != op.Value) {
				return false
			}
		}
	}
	return true
}
