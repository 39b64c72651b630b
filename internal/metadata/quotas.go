package metadata

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/samsa-io/samsa/internal/quota"
)

// TypeClientQuota is the record type of client quotas.
const TypeClientQuota = "ClientQuota"

// Quota entity types, as Kafka names them in the ClientQuotas APIs and ClientQuotaRecord.
const (
	QuotaEntityUser     = "user"
	QuotaEntityClientID = "client-id"
	QuotaEntityIP       = "ip"
)

// QuotaEntityData is one component of a quota entity as Kafka's records and requests carry it:
// an entity type and a name, nil for the default entity of that type.
type QuotaEntityData struct {
	EntityType string  `json:"entityType"`
	EntityName *string `json:"entityName"`
}

// ClientQuota sets (or, with Remove, deletes) one quota of one entity (Kafka's
// ClientQuotaRecord).
type ClientQuota struct {
	Entity []QuotaEntityData `json:"entity"`
	Key    string            `json:"key"`
	Value  float64           `json:"value,omitempty"`
	Remove bool              `json:"remove,omitempty"`
}

// RecordType implements Record.
func (ClientQuota) RecordType() string { return TypeClientQuota }

// QuotaEntity turns the components of an entity into a quota.Entity. It fails on an empty
// entity, an unknown entity type, a type named twice or an empty name, with Kafka's messages
// (ClientQuotaControlManager.validateEntity).
func QuotaEntity(data []QuotaEntityData) (quota.Entity, error) {
	var e quota.Entity
	if len(data) == 0 {
		return e, errors.New("Invalid empty client quota entity")
	}
	for _, d := range data {
		var n *quota.Name
		switch d.EntityType {
		case QuotaEntityUser:
			n = &e.User
		case QuotaEntityClientID:
			n = &e.ClientID
		case QuotaEntityIP:
			n = &e.IP
		default:
			return e, fmt.Errorf("Unhandled client quota entity type: %s", d.EntityType)
		}
		if n.Set {
			return e, fmt.Errorf("Invalid client quota entity, duplicate entity entry %s", d.EntityType)
		}
		if d.EntityName == nil {
			*n = quota.DefaultName()
			continue
		}
		if *d.EntityName == "" {
			return e, fmt.Errorf("Empty %s not supported", d.EntityType)
		}
		*n = quota.Named(*d.EntityName)
	}
	return e, nil
}

// QuotaEntityComponents is the inverse of QuotaEntity: the components of e, user first, then
// client id, then ip.
func QuotaEntityComponents(e quota.Entity) []QuotaEntityData {
	var out []QuotaEntityData
	add := func(typ string, n quota.Name) {
		if !n.Set {
			return
		}
		d := QuotaEntityData{EntityType: typ}
		if !n.Default {
			name := n.Name
			d.EntityName = &name
		}
		out = append(out, d)
	}
	add(QuotaEntityUser, e.User)
	add(QuotaEntityClientID, e.ClientID)
	add(QuotaEntityIP, e.IP)
	return out
}

// QuotaEntityString renders an entity's components as Kafka's ClientQuotaEntity does in
// messages, e.g. "ClientQuotaEntity(entries={user=alice, client-id=null})".
func QuotaEntityString(data []QuotaEntityData) string {
	parts := make([]string, 0, len(data))
	for _, d := range data {
		name := "null"
		if d.EntityName != nil {
			name = *d.EntityName
		}
		parts = append(parts, d.EntityType+"="+name)
	}
	return "ClientQuotaEntity(entries={" + strings.Join(parts, ", ") + "})"
}

// emptyQuotas is the table of an image without quotas: the same pointer every time.
var emptyQuotas = &quota.Table{Quotas: map[quota.Entity]quota.Values{}}

// ClientQuotas implements quota.Source: the configured client quotas. The table is immutable
// and the same pointer is returned until a ClientQuota record changes it.
func (img *Image) ClientQuotas() *quota.Table {
	if img.Quotas == nil {
		return emptyQuotas
	}
	return img.Quotas
}

var _ quota.Source = (*Image)(nil)

func (img *Image) applyClientQuota(r ClientQuota) (*Image, error) {
	e, err := QuotaEntity(r.Entity)
	if err != nil {
		return img, fmt.Errorf("%w: client quota entity: %v", ErrInvalidRecord, err)
	}
	if r.Key == "" {
		return img, fmt.Errorf("%w: client quota without a key", ErrInvalidRecord)
	}
	if !r.Remove && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Value <= 0) {
		return img, fmt.Errorf("%w: client quota %s of %s is %v", ErrInvalidRecord, r.Key, QuotaEntityString(r.Entity), r.Value)
	}
	old := img.ClientQuotas().Quotas
	values := maps.Clone(old[e])
	if r.Remove {
		if _, ok := values[r.Key]; !ok {
			return img, nil // as Kafka's replay: removing a missing quota changes nothing
		}
		delete(values, r.Key)
	} else {
		if values == nil {
			values = quota.Values{}
		}
		values[r.Key] = r.Value
	}
	quotas := maps.Clone(old)
	if len(values) == 0 {
		delete(quotas, e)
	} else {
		quotas[e] = values
	}
	next := img.clone()
	next.Quotas = &quota.Table{Quotas: quotas}
	if len(quotas) == 0 {
		next.Quotas = nil
	}
	return next, nil
}

// quotaEntry is one entity's quotas in a snapshot.
type quotaEntry struct {
	Entity []QuotaEntityData `json:"entity"`
	Values quota.Values      `json:"values"`
}

// compareQuotaEntities orders entities by user, then client id, then ip, the default before
// the named ones and an absent component first.
func compareQuotaEntities(a, b quota.Entity) int {
	key := func(n quota.Name) string {
		switch {
		case !n.Set:
			return ""
		case n.Default:
			return "\x01"
		}
		return "\x02" + n.Name
	}
	return cmp.Or(cmp.Compare(key(a.User), key(b.User)), cmp.Compare(key(a.ClientID), key(b.ClientID)),
		cmp.Compare(key(a.IP), key(b.IP)))
}

// QuotaEntities returns the entities with quotas, ordered (user, client id, ip; the default
// first).
func (img *Image) QuotaEntities() []quota.Entity {
	return slices.SortedFunc(maps.Keys(img.ClientQuotas().Quotas), compareQuotaEntities)
}

// quotaSnapshot lists the image's quotas in a snapshot's order.
func (img *Image) quotaSnapshot() []quotaEntry {
	var out []quotaEntry
	for _, e := range img.QuotaEntities() {
		out = append(out, quotaEntry{Entity: QuotaEntityComponents(e), Values: img.Quotas.Quotas[e]})
	}
	return out
}

// quotasFromSnapshot rebuilds the quota table of a snapshot (nil when it has none).
func quotasFromSnapshot(entries []quotaEntry) (*quota.Table, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	t := &quota.Table{Quotas: make(map[quota.Entity]quota.Values, len(entries))}
	for _, q := range entries {
		e, err := QuotaEntity(q.Entity)
		if err != nil {
			return nil, fmt.Errorf("metadata: decode image: client quota entity: %v", err)
		}
		if _, dup := t.Quotas[e]; dup || len(q.Values) == 0 {
			return nil, fmt.Errorf("metadata: decode image: client quotas of %s twice or empty", QuotaEntityString(q.Entity))
		}
		t.Quotas[e] = q.Values
	}
	return t, nil
}

func quotasEqual(a, b *Image) bool {
	return maps.EqualFunc(a.ClientQuotas().Quotas, b.ClientQuotas().Quotas, func(x, y quota.Values) bool {
		return maps.Equal(x, y)
	})
}
