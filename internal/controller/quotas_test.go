package controller

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
)

func qe(pairs ...string) []metadata.QuotaEntityData {
	var out []metadata.QuotaEntityData
	for i := 0; i < len(pairs); i += 2 {
		d := metadata.QuotaEntityData{EntityType: pairs[i]}
		if pairs[i+1] != "<default>" {
			name := pairs[i+1]
			d.EntityName = &name
		}
		out = append(out, d)
	}
	return out
}

func set(key string, v float64) QuotaOp { return QuotaOp{Key: key, Value: v} }

func TestCheckQuotaAlterations(t *testing.T) {
	const user, client, ip = metadata.QuotaEntityUser, metadata.QuotaEntityClientID, metadata.QuotaEntityIP
	// The image has alice's producer_byte_rate at 1024.
	img, err := (&metadata.Image{}).Apply(metadata.ClientQuota{Entity: qe(user, "alice"), Key: quota.ProducerByteRate, Value: 1024})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		alts []QuotaAlteration
		// errs are the messages of the results, "" for success, one per entity.
		errs []string
		recs []metadata.Record
		// resolved are the host names that resolved (resolveIPEntityHosts).
		resolved map[string]bool
	}{
		{name: "user and client default",
			alts: []QuotaAlteration{{qe(user, "bob"), []QuotaOp{set(quota.ProducerByteRate, 1048576), set(quota.ConsumerByteRate, 2097152)}},
				{qe(client, "<default>"), []QuotaOp{set(quota.RequestPercentage, 12.5)}}},
			errs: []string{"", ""},
			recs: []metadata.Record{
				metadata.ClientQuota{Entity: qe(user, "bob"), Key: quota.ProducerByteRate, Value: 1048576},
				metadata.ClientQuota{Entity: qe(user, "bob"), Key: quota.ConsumerByteRate, Value: 2097152},
				metadata.ClientQuota{Entity: qe(client, "<default>"), Key: quota.RequestPercentage, Value: 12.5}}},
		{name: "user and client id combined, components in any order",
			alts: []QuotaAlteration{{qe(client, "app1", user, "alice"), []QuotaOp{set(quota.ControllerMutationRate, 0.5)}}},
			errs: []string{""},
			recs: []metadata.Record{metadata.ClientQuota{Entity: qe(user, "alice", client, "app1"), Key: quota.ControllerMutationRate, Value: 0.5}}},
		{name: "ip", alts: []QuotaAlteration{{qe(ip, "127.0.0.1"), []QuotaOp{set(quota.ConnectionCreationRate, 10)}},
			{qe(ip, "::1"), []QuotaOp{set(quota.ConnectionCreationRate, 10)}}},
			errs: []string{"", ""},
			recs: []metadata.Record{metadata.ClientQuota{Entity: qe(ip, "127.0.0.1"), Key: quota.ConnectionCreationRate, Value: 10},
				metadata.ClientQuota{Entity: qe(ip, "::1"), Key: quota.ConnectionCreationRate, Value: 10}}},
		{name: "unchanged value and missing removal write nothing",
			alts: []QuotaAlteration{{qe(user, "alice"), []QuotaOp{set(quota.ProducerByteRate, 1024), {Key: quota.ConsumerByteRate, Remove: true}}}},
			errs: []string{""}},
		{name: "removal", alts: []QuotaAlteration{{qe(user, "alice"), []QuotaOp{{Key: quota.ProducerByteRate, Remove: true}}}},
			errs: []string{""},
			recs: []metadata.Record{metadata.ClientQuota{Entity: qe(user, "alice"), Key: quota.ProducerByteRate, Remove: true}}},
		{name: "empty entity", alts: []QuotaAlteration{{nil, []QuotaOp{set(quota.ProducerByteRate, 1)}}},
			errs: []string{"Invalid empty client quota entity"}},
		{name: "unknown entity type", alts: []QuotaAlteration{{qe("group", "g"), []QuotaOp{set(quota.ProducerByteRate, 1)}}},
			errs: []string{"Unhandled client quota entity type: group"}},
		{name: "entity type twice", alts: []QuotaAlteration{{qe(user, "a", user, "b"), []QuotaOp{set(quota.ProducerByteRate, 1)}}},
			errs: []string{"Invalid client quota entity, duplicate entity entry user"}},
		{name: "empty name", alts: []QuotaAlteration{{qe(client, ""), []QuotaOp{set(quota.ProducerByteRate, 1)}}},
			errs: []string{"Empty client-id not supported"}},
		{name: "ip as a host name that resolves, stored as given",
			alts:     []QuotaAlteration{{qe(ip, "broker-1.example"), []QuotaOp{set(quota.ConnectionCreationRate, 3)}}},
			resolved: map[string]bool{"broker-1.example": true},
			errs:     []string{""},
			recs:     []metadata.Record{metadata.ClientQuota{Entity: qe(ip, "broker-1.example"), Key: quota.ConnectionCreationRate, Value: 3}}},
		{name: "ip as a host name that does not resolve",
			alts:     []QuotaAlteration{{qe(ip, "gone.example"), []QuotaOp{set(quota.ConnectionCreationRate, 3)}}},
			resolved: map[string]bool{"gone.example": false},
			errs:     []string{"gone.example is not a valid IP or resolvable host."}},
		{name: "ip with user", alts: []QuotaAlteration{{qe(user, "a", ip, "1.2.3.4"), []QuotaOp{set(quota.ConnectionCreationRate, 1)}}},
			errs: []string{"Invalid quota entity combination, IP entity should not be combined with User or ClientId"}},
		{name: "invalid ip", alts: []QuotaAlteration{{qe(ip, "300.1.1.1"), []QuotaOp{set(quota.ConnectionCreationRate, 1)}}},
			errs: []string{"300.1.1.1 is not a valid IP or resolvable host."}},
		{name: "ip key on a user", alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set(quota.ConnectionCreationRate, 1)}}},
			errs: []string{"Invalid configuration key connection_creation_rate"}},
		{name: "user key on an ip", alts: []QuotaAlteration{{qe(ip, "<default>"), []QuotaOp{set(quota.ProducerByteRate, 1)}}},
			errs: []string{"Invalid configuration key producer_byte_rate"}},
		{name: "unknown key", alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set("bytes_rate", 1)}}},
			errs: []string{"Invalid configuration key bytes_rate"}},
		{name: "zero", alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set(quota.RequestPercentage, 0)}}},
			errs: []string{"Quota request_percentage must be greater than 0"}},
		{name: "negative", alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set(quota.ProducerByteRate, -5)}}},
			errs: []string{"Quota producer_byte_rate must be greater than 0"}},
		{name: "fraction of a byte rate", alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set(quota.ConsumerByteRate, 10.5)}}},
			errs: []string{"consumer_byte_rate cannot be a fractional value."}},
		{name: "fraction of a connection rate", alts: []QuotaAlteration{{qe(ip, "<default>"), []QuotaOp{set(quota.ConnectionCreationRate, 1.25)}}},
			errs: []string{"connection_creation_rate cannot be a fractional value."}},
		{name: "connection rate too large", alts: []QuotaAlteration{{qe(ip, "<default>"), []QuotaOp{set(quota.ConnectionCreationRate, 1e10)}}},
			errs: []string{"Proposed value for connection_creation_rate is too large for an INT."}},
		{name: "key twice", alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set(quota.ProducerByteRate, 1), set(quota.ProducerByteRate, 2)}}},
			errs: []string{"Duplicate quota key producer_byte_rate not updating quota for this entity ClientQuotaEntity(entries={user=a})"}},
		{name: "entity twice fails it and keeps the others",
			alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set(quota.ProducerByteRate, 1)}},
				{qe(user, "b"), []QuotaOp{set(quota.ProducerByteRate, 2)}},
				{qe(user, "a"), []QuotaOp{set(quota.ConsumerByteRate, 1)}}},
			errs: []string{"Ignoring duplicate entity ClientQuotaEntity(entries={user=a})", ""},
			recs: []metadata.Record{metadata.ClientQuota{Entity: qe(user, "b"), Key: quota.ProducerByteRate, Value: 2}}},
		{name: "one bad op fails the whole entity",
			alts: []QuotaAlteration{{qe(user, "a"), []QuotaOp{set(quota.ProducerByteRate, 1), set(quota.ConsumerByteRate, 0)}}},
			errs: []string{"Quota consumer_byte_rate must be greater than 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, results := checkQuotaAlterations(img, tt.alts, tt.resolved)
			if len(results) != len(tt.errs) {
				t.Fatalf("%d results, want %d: %+v", len(results), len(tt.errs), results)
			}
			for i, r := range results {
				switch {
				case tt.errs[i] == "" && r.Err != nil:
					t.Errorf("entity %d: %v", i, r.Err)
				case tt.errs[i] != "" && (r.Err == nil || r.Err.Error() != tt.errs[i] || !errors.Is(r.Err, kerr.InvalidRequest)):
					t.Errorf("entity %d: %v, want INVALID_REQUEST %q", i, r.Err, tt.errs[i])
				}
			}
			if !reflect.DeepEqual(recs, tt.recs) {
				t.Errorf("records %+v, want %+v", recs, tt.recs)
			}
			// Every record written applies.
			if len(recs) > 0 {
				if _, err := img.ApplyBatch(img.Index+1, recs); err != nil {
					t.Errorf("records do not apply: %v", err)
				}
			}
		})
	}
}

func TestAlterClientQuotasValidateOnly(t *testing.T) {
	c := startController(t, testConfig(t, t.TempDir()))
	ctx := testCtx(t)
	alt := []QuotaAlteration{{qe(metadata.QuotaEntityUser, "alice"), []QuotaOp{set(quota.ProducerByteRate, 1024)}}}
	before := c.Image()
	table := c.ClientQuotas()
	if r := c.AlterClientQuotas(ctx, alt, true); len(r) != 1 || r[0].Err != nil {
		t.Fatalf("validate only: %+v", r)
	}
	if c.Image().Index != before.Index || c.ClientQuotas() != table || len(table.Quotas) != 0 {
		t.Fatalf("validate only wrote records")
	}
	if r := c.AlterClientQuotas(ctx, alt, false); len(r) != 1 || r[0].Err != nil {
		t.Fatalf("alter: %+v", r)
	}
	if got := c.ClientQuotas().Quotas[quota.Entity{User: quota.Named("alice")}]; got[quota.ProducerByteRate] != 1024 || c.ClientQuotas() == table {
		t.Fatalf("quotas after alter: %+v", c.ClientQuotas().Quotas)
	}
	// The same value again changes nothing: no record, the same table.
	table = c.ClientQuotas()
	index := c.Image().Index
	if r := c.AlterClientQuotas(ctx, alt, false); len(r) != 1 || r[0].Err != nil || c.Image().Index != index || c.ClientQuotas() != table {
		t.Fatalf("an alteration that changes nothing: %+v, index %d -> %d", r, index, c.Image().Index)
	}
}

// TestResolveIPEntityHosts: the host names of ip entities are looked up (localhost resolves,
// a name under .invalid never does); address literals, the default and other entity types
// are not.
func TestResolveIPEntityHosts(t *testing.T) {
	ip := metadata.QuotaEntityIP
	got := resolveIPEntityHosts(context.Background(), []QuotaAlteration{
		{Entity: qe(ip, "localhost")}, {Entity: qe(ip, "no-such-host.invalid")}, {Entity: qe(ip, "127.0.0.1")},
		{Entity: qe(ip, "<default>")}, {Entity: qe(metadata.QuotaEntityUser, "localhost2")},
	}, 5*time.Second)
	if want := map[string]bool{"localhost": true, "no-such-host.invalid": false}; !reflect.DeepEqual(got, want) {
		t.Fatalf("resolved %v, want %v", got, want)
	}
}
