package broker

import (
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

// The client quota APIs (KIP-546): DescribeClientQuotas v0–1 from the metadata image,
// AlterClientQuotas v0–1 through the controller (forwarded to the active one). With an
// authorizer, describing needs DESCRIBE_CONFIGS on the cluster (checked by dispatch), altering
// ALTER_CONFIGS on the cluster (checked here: its response has no top-level error code, so
// each entry is refused, as Kafka does).

func init() {
	register(kmsg.DescribeClientQuotas.Int16(), 0, 1, handleDescribeClientQuotas)
	register(kmsg.AlterClientQuotas.Int16(), 0, 1, handleAlterClientQuotas)
}

func handleAlterClientQuotas(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AlterClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	alts := make([]controller.QuotaAlteration, len(r.Entries))
	for i, e := range r.Entries {
		for _, d := range e.Entity {
			alts[i].Entity = append(alts[i].Entity, metadata.QuotaEntityData{EntityType: d.Type, EntityName: d.Name})
		}
		for _, op := range e.Ops {
			alts[i].Ops = append(alts[i].Ops, controller.QuotaOp{Key: op.Key, Value: op.Value, Remove: op.Remove})
		}
	}
	var results []controller.QuotaResult
	if b.authorizeCluster(req, kmsg.ACLOperationAlterConfigs) {
		results = b.ctrl.AlterClientQuotas(req.conn.ctx, alts, r.ValidateOnly)
	} else {
		results = controller.QuotaResultsFor(alts)
		for i := range results {
			results[i].Err = kerr.ClusterAuthorizationFailed
		}
	}
	for _, res := range results {
		e := kmsg.NewAlterClientQuotasResponseEntry()
		e.ErrorCode, e.ErrorMessage = errCode(res.Err), errMessage(res.Err)
		for _, d := range res.Entity {
			ed := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ed.Type, ed.Name = d.EntityType, d.EntityName
			e.Entity = append(e.Entity, ed)
		}
		resp.Entries = append(resp.Entries, e)
	}
	if !r.ValidateOnly {
		b.awaitMetadata(req)
	}
	return resp, nil
}

// quotaFilter is a DescribeClientQuotas filter: components whose name must match (nil for the
// default) and components that must merely be present (Kafka's MATCH_TYPE_SPECIFIED).
type quotaFilter struct {
	exact   map[string]*string
	present map[string]bool
	strict  bool
}

// newQuotaFilter checks the request's components as Kafka's ClientQuotasImage.describe does.
func newQuotaFilter(r *kmsg.DescribeClientQuotasRequest) (quotaFilter, error) {
	f := quotaFilter{exact: map[string]*string{}, present: map[string]bool{}, strict: r.Strict}
	for _, c := range r.Components {
		t := c.EntityType
		_, exact := f.exact[t]
		switch {
		case t == "":
			return f, &controller.KafkaError{Code: kerr.InvalidRequest, Message: "Invalid empty entity type."}
		case exact || f.present[t]:
			return f, &controller.KafkaError{Code: kerr.InvalidRequest, Message: "Entity type " + t + " cannot appear more than once in the filter."}
		case t != metadata.QuotaEntityUser && t != metadata.QuotaEntityClientID && t != metadata.QuotaEntityIP:
			return f, &controller.KafkaError{Code: kerr.UnsupportedVersion, Message: "Unsupported entity type " + t}
		}
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if c.Match == nil {
				return f, &controller.KafkaError{Code: kerr.InvalidRequest, Message: "Request specified MATCH_TYPE_EXACT, but set match string to null."}
			}
			f.exact[t] = c.Match
		case kmsg.QuotasMatchTypeDefault:
			if c.Match != nil {
				return f, &controller.KafkaError{Code: kerr.InvalidRequest, Message: "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."}
			}
			f.exact[t] = nil
		case kmsg.QuotasMatchTypeAny:
			if c.Match != nil {
				return f, &controller.KafkaError{Code: kerr.InvalidRequest, Message: "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."}
			}
			f.present[t] = true
		default:
			return f, &controller.KafkaError{Code: kerr.UnsupportedVersion, Message: "Unknown match type " + strconv.Itoa(int(c.MatchType))}
		}
	}
	_, ipExact := f.exact[metadata.QuotaEntityIP]
	if ipExact || f.present[metadata.QuotaEntityIP] {
		if len(f.exact)+len(f.present) > 1 {
			return f, &controller.KafkaError{Code: kerr.InvalidRequest, Message: "Invalid entity filter component combination. " +
				"IP filter component should not be used with user or clientId filter component."}
		}
	}
	return f, nil
}

// matches reports whether an entity's components pass the filter.
func (f quotaFilter) matches(data []metadata.QuotaEntityData) bool {
	if f.strict && len(data) != len(f.exact)+len(f.present) {
		return false
	}
	have := make(map[string]*string, len(data))
	for _, d := range data {
		have[d.EntityType] = d.EntityName
	}
	for t, want := range f.exact {
		got, ok := have[t]
		if !ok || (got == nil) != (want == nil) || (got != nil && *got != *want) {
			return false
		}
	}
	for t := range f.present {
		if _, ok := have[t]; !ok {
			return false
		}
	}
	return true
}

func handleDescribeClientQuotas(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	f, err := newQuotaFilter(r)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	img := b.ctrl.Image()
	table := img.ClientQuotas()
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	for _, e := range img.QuotaEntities() {
		data := metadata.QuotaEntityComponents(e)
		if !f.matches(data) {
			continue
		}
		resp.Entries = append(resp.Entries, describeQuotaEntry(data, table.Quotas[e]))
	}
	return resp, nil
}

// describeQuotaEntry is one entity's entry of a DescribeClientQuotas response, its values in
// key order.
func describeQuotaEntry(data []metadata.QuotaEntityData, values quota.Values) kmsg.DescribeClientQuotasResponseEntry {
	entry := kmsg.NewDescribeClientQuotasResponseEntry()
	for _, d := range data {
		ed := kmsg.NewDescribeClientQuotasResponseEntryEntity()
		ed.Type, ed.Name = d.EntityType, d.EntityName
		entry.Entity = append(entry.Entity, ed)
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		v := kmsg.NewDescribeClientQuotasResponseEntryValue()
		v.Key, v.Value = k, values[k]
		entry.Values = append(entry.Values, v)
	}
	return entry
}
