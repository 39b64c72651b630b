package controller

import (
	"context"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

// QuotaOp sets one quota key of an entity to Value, or with Remove deletes it
// (AlterClientQuotas' op).
type QuotaOp struct {
	Key    string
	Value  float64
	Remove bool
}

// QuotaAlteration is one entry of AlterClientQuotas: an entity as the request names it and
// the changes to its quotas.
type QuotaAlteration struct {
	Entity []metadata.QuotaEntityData
	Ops    []QuotaOp
}

// QuotaResult is the outcome for one entity of AlterClientQuotas.
type QuotaResult struct {
	Entity []metadata.QuotaEntityData
	Err    error
}

// quotaKind is the type of a quota key in Kafka's QuotaConfig ConfigDefs: the integral ones
// refuse fractions.
type quotaKind int

const (
	quotaDouble quotaKind = iota
	quotaLong
	quotaInt
)

// userClientQuotaKeys are the keys of user and client-id entities (Kafka's
// QuotaConfig.userAndClientQuotaConfigs), ipQuotaKeys those of ip entities.
var (
	userClientQuotaKeys = map[string]quotaKind{
		quota.ProducerByteRate:       quotaLong,
		quota.ConsumerByteRate:       quotaLong,
		quota.RequestPercentage:      quotaDouble,
		quota.ControllerMutationRate: quotaDouble,
	}
	ipQuotaKeys = map[string]quotaKind{quota.ConnectionCreationRate: quotaInt}
)

// ClientQuotas implements quota.Source: the quotas of the current image (the same *Table until
// a ClientQuota record changes them).
func (c *Controller) ClientQuotas() *quota.Table { return c.Image().ClientQuotas() }

var _ quota.Source = (*Controller)(nil)

// AlterClientQuotas applies client quota changes with Kafka's checks (ControllerApis,
// ClientQuotaControlManager), every failure INVALID_REQUEST with Kafka's message: a key twice
// for one entity, an entity twice in the request, an empty entity, an unknown entity type, a
// type twice, an empty name, ip combined with user or client-id, an ip that is not an address,
// a key not valid for the entity, a value not above 0, a fraction for an integral key. The
// changes of the entities that pass are written in one batch (none with validateOnly), only
// those that change something. One result per entity, in the order of their first appearance.
//
// An ip entity may name a host that resolves, as Kafka's controller takes it
// (InetAddress.getByName): the name is stored as given and the brokers apply its quota to the
// addresses they resolve it to. Names are resolved here, before the controller's lock and
// within resolveTimeout, never when a record is applied.
func (c *Controller) AlterClientQuotas(ctx context.Context, alts []QuotaAlteration, validateOnly bool) []QuotaResult {
	hosts := resolveIPEntityHosts(ctx, alts, resolveTimeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		results := QuotaResultsFor(alts)
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	recs, results := checkQuotaAlterations(c.Image(), alts, hosts)
	if validateOnly || len(recs) == 0 {
		return results
	}
	if _, err := c.proposeLocked(ctx, recs...); err != nil {
		err = fmt.Errorf("controller: alter client quotas: %w", err)
		for i := range results {
			if results[i].Err == nil {
				results[i].Err = err
			}
		}
		return results
	}
	c.logger.Info("altered client quotas", "records", len(recs))
	return results
}

// quotaEntityKey identifies an entity as a request names it, whether valid or not, so that
// the same entity named twice is found (the order of its components does not matter).
func quotaEntityKey(data []metadata.QuotaEntityData) string {
	parts := make([]string, len(data))
	for i, d := range data {
		name := "\x01"
		if d.EntityName != nil {
			name = "\x02" + *d.EntityName
		}
		parts[i] = d.EntityType + "\x00" + name
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x00\x00")
}

// QuotaResultsFor returns one result (no error yet) per distinct entity of alts, in the order
// of their first appearance: the results AlterClientQuotas answers with.
func QuotaResultsFor(alts []QuotaAlteration) []QuotaResult {
	var out []QuotaResult
	seen := map[string]bool{}
	for _, a := range alts {
		if k := quotaEntityKey(a.Entity); !seen[k] {
			seen[k] = true
			out = append(out, QuotaResult{Entity: a.Entity})
		}
	}
	return out
}

// resolveTimeout bounds the resolution of the host names of one AlterClientQuotas.
const resolveTimeout = 2 * time.Second

// resolveIPEntityHosts resolves the names of ip entities that are not address literals and
// reports which resolve; a name not resolved within timeout (all of them together) does not.
func resolveIPEntityHosts(ctx context.Context, alts []QuotaAlteration, timeout time.Duration) map[string]bool {
	var out map[string]bool
	var cancel context.CancelFunc
	for _, a := range alts {
		for _, d := range a.Entity {
			if d.EntityType != metadata.QuotaEntityIP || d.EntityName == nil || net.ParseIP(*d.EntityName) != nil {
				continue
			}
			name := *d.EntityName
			if _, done := out[name]; done || name == "" {
				continue
			}
			if out == nil {
				out = map[string]bool{}
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			addrs, err := net.DefaultResolver.LookupIPAddr(ctx, name)
			out[name] = err == nil && len(addrs) > 0
		}
	}
	return out
}

// checkQuotaAlterations validates alts against img and returns the records of the entities
// that pass and one result per entity. resolvable are the host names of ip entities that
// resolved (resolveIPEntityHosts).
func checkQuotaAlterations(img *metadata.Image, alts []QuotaAlteration, resolvable map[string]bool) ([]metadata.Record, []QuotaResult) {
	results := QuotaResultsFor(alts)
	index := map[string]int{}
	for i, r := range results {
		index[quotaEntityKey(r.Entity)] = i
	}
	recsOf := make([][]metadata.Record, len(results))
	done := make([]bool, len(results))
	for _, a := range alts {
		i := index[quotaEntityKey(a.Entity)]
		if done[i] {
			results[i].Err = kafkaErrorf(kerr.InvalidRequest, "Ignoring duplicate entity %s", metadata.QuotaEntityString(a.Entity))
			continue
		}
		done[i] = true
		recsOf[i], results[i].Err = checkQuotaAlteration(img, a, resolvable)
	}
	var recs []metadata.Record
	for i, r := range results {
		if r.Err == nil {
			recs = append(recs, recsOf[i]...)
		}
	}
	return recs, results
}

// checkQuotaAlteration validates one entity's changes and returns the records of those that
// change its quotas.
func checkQuotaAlteration(img *metadata.Image, a QuotaAlteration, resolvable map[string]bool) ([]metadata.Record, error) {
	keys := map[string]bool{}
	for _, op := range a.Ops {
		if keys[op.Key] {
			return nil, kafkaErrorf(kerr.InvalidRequest, "Duplicate quota key %s not updating quota for this entity %s",
				op.Key, metadata.QuotaEntityString(a.Entity))
		}
		keys[op.Key] = true
	}
	entity, err := metadata.QuotaEntity(a.Entity)
	if err != nil {
		return nil, kafkaErrorf(kerr.InvalidRequest, "%s", err.Error())
	}
	valid := userClientQuotaKeys
	if entity.IP.Set {
		if entity.User.Set || entity.ClientID.Set {
			return nil, kafkaErrorf(kerr.InvalidRequest, "Invalid quota entity combination, IP entity should not be combined with User or ClientId")
		}
		if !entity.IP.Default && net.ParseIP(entity.IP.Name) == nil && !resolvable[entity.IP.Name] {
			return nil, kafkaErrorf(kerr.InvalidRequest, "%s is not a valid IP or resolvable host.", entity.IP.Name)
		}
		valid = ipQuotaKeys
	}
	current := img.ClientQuotas().Quotas[entity]
	components := metadata.QuotaEntityComponents(entity)
	var recs []metadata.Record
	for _, op := range a.Ops {
		if op.Remove {
			if _, ok := current[op.Key]; ok {
				recs = append(recs, metadata.ClientQuota{Entity: components, Key: op.Key, Remove: true})
			}
			continue
		}
		kind, ok := valid[op.Key]
		if !ok {
			return nil, kafkaErrorf(kerr.InvalidRequest, "Invalid configuration key %s", op.Key)
		}
		if err := checkQuotaValue(op.Key, kind, op.Value); err != nil {
			return nil, err
		}
		if v, ok := current[op.Key]; !ok || v != op.Value {
			recs = append(recs, metadata.ClientQuota{Entity: components, Key: op.Key, Value: op.Value})
		}
	}
	return recs, nil
}

// checkQuotaValue applies Kafka's value checks: above 0, within the key's type, integral for
// the integral keys (a remainder up to 1e-6 is tolerated, as Kafka does).
func checkQuotaValue(key string, kind quotaKind, v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return kafkaErrorf(kerr.InvalidRequest, "Quota %s must be a finite number", key)
	case v <= 0:
		return kafkaErrorf(kerr.InvalidRequest, "Quota %s must be greater than 0", key)
	case kind == quotaLong && v > math.MaxInt64:
		return kafkaErrorf(kerr.InvalidRequest, "Proposed value for %s is too large for a LONG.", key)
	case kind == quotaInt && v > math.MaxInt32:
		return kafkaErrorf(kerr.InvalidRequest, "Proposed value for %s is too large for an INT.", key)
	case kind != quotaDouble && math.Mod(v, 1) > 1e-6:
		return kafkaErrorf(kerr.InvalidRequest, "%s cannot be a fractional value.", key)
	}
	return nil
}
