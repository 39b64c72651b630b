package cli

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// QuotaEntityFlags are the entity flags of `samsa quota`: each type named, or its default, or
// absent.
type QuotaEntityFlags struct {
	User, ClientID, IP                      string
	UserDefault, ClientIDDefault, IPDefault bool
}

// quotaComponents returns the (type, name, default) of each entity type the flags name.
func (f QuotaEntityFlags) quotaComponents() ([]kadm.ClientQuotaEntityComponent, error) {
	var out []kadm.ClientQuotaEntityComponent
	for _, c := range []struct {
		typ, flag, name string
		def             bool
	}{
		{"user", "user", f.User, f.UserDefault},
		{"client-id", "client-id", f.ClientID, f.ClientIDDefault},
		{"ip", "ip", f.IP, f.IPDefault},
	} {
		switch {
		case c.name != "" && c.def:
			return nil, fmt.Errorf("--%s and --%s-default name two entities: give one", c.flag, c.flag)
		case c.def:
			out = append(out, kadm.ClientQuotaEntityComponent{Type: c.typ})
		case c.name != "":
			name := c.name
			out = append(out, kadm.ClientQuotaEntityComponent{Type: c.typ, Name: &name})
		}
	}
	return out, nil
}

// Entity returns the entity the flags name: at least one of user, client id or ip.
func (f QuotaEntityFlags) Entity() (kadm.ClientQuotaEntity, error) {
	cs, err := f.quotaComponents()
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, errors.New("name an entity: --user, --client-id or --ip (or their --*-default)")
	}
	return kadm.ClientQuotaEntity(cs), nil
}

// Filter returns the DescribeClientQuotas components of the flags: each name matched exactly,
// each default as the default; no flags match every entity.
func (f QuotaEntityFlags) Filter() ([]kadm.DescribeClientQuotaComponent, error) {
	cs, err := f.quotaComponents()
	if err != nil {
		return nil, err
	}
	out := make([]kadm.DescribeClientQuotaComponent, len(cs))
	for i, c := range cs {
		out[i] = kadm.DescribeClientQuotaComponent{Type: c.Type, MatchName: c.Name, MatchType: kmsg.QuotasMatchTypeExact}
		if c.Name == nil {
			out[i].MatchType = kmsg.QuotasMatchTypeDefault
		}
	}
	return out, nil
}

// ParseQuotaConfigs parses --add-config values, KEY=VALUE separated by commas (as
// kafka-configs takes them), into set operations; a key given twice is refused.
func ParseQuotaConfigs(values []string) ([]kadm.AlterClientQuotaOp, error) {
	var ops []kadm.AlterClientQuotaOp
	for _, v := range values {
		for _, kv := range strings.Split(v, ",") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			key, val, ok := strings.Cut(kv, "=")
			key = strings.TrimSpace(key)
			if !ok || key == "" {
				return nil, fmt.Errorf("quota %q: want KEY=VALUE", kv)
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				return nil, fmt.Errorf("quota %s: value %q is not a number", key, val)
			}
			if slices.ContainsFunc(ops, func(o kadm.AlterClientQuotaOp) bool { return o.Key == key }) {
				return nil, fmt.Errorf("quota %s given twice", key)
			}
			ops = append(ops, kadm.AlterClientQuotaOp{Key: key, Value: f})
		}
	}
	if len(ops) == 0 {
		return nil, errors.New("no quota to set: --add-config KEY=VALUE[,KEY=VALUE...]")
	}
	return ops, nil
}

// QuotaRow is one line of `samsa quota list`.
type QuotaRow struct {
	Entity, Key, Value string
}

// QuotaEntityString renders an entity as `samsa quota list` shows it: user=alice,client-id=app1,
// <default> for a default name.
func QuotaEntityString(e kadm.ClientQuotaEntity) string {
	parts := make([]string, len(e))
	for i, c := range e {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}

// QuotaRows flattens described quotas into rows sorted by entity, then key; values print
// without a fraction when they have none.
func QuotaRows(described kadm.DescribedClientQuotas) []QuotaRow {
	var rows []QuotaRow
	for _, d := range described {
		entity := QuotaEntityString(d.Entity)
		for _, v := range d.Values {
			rows = append(rows, QuotaRow{Entity: entity, Key: v.Key, Value: strconv.FormatFloat(v.Value, 'f', -1, 64)})
		}
	}
	slices.SortFunc(rows, func(a, b QuotaRow) int {
		if c := strings.Compare(a.Entity, b.Entity); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return rows
}

// QuotaKeys returns the keys an entity has in described (for deleting every quota of it).
func QuotaKeys(described kadm.DescribedClientQuotas, e kadm.ClientQuotaEntity) []string {
	want := QuotaEntityString(sortedEntity(e))
	var keys []string
	for _, d := range described {
		if QuotaEntityString(sortedEntity(d.Entity)) == want {
			for _, v := range d.Values {
				keys = append(keys, v.Key)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// sortedEntity orders an entity's components by type, so that entities compare whatever the
// order the broker lists them in.
func sortedEntity(e kadm.ClientQuotaEntity) kadm.ClientQuotaEntity {
	out := slices.Clone(e)
	slices.SortFunc(out, func(a, b kadm.ClientQuotaEntityComponent) int { return strings.Compare(a.Type, b.Type) })
	return out
}
