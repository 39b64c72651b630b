package metadata

import (
	"errors"
	"reflect"
	"testing"

	"github.com/samsa-io/samsa/internal/quota"
)

func strp(s string) *string { return &s }

func userQuota(name *string, key string, value float64) ClientQuota {
	return ClientQuota{Entity: []QuotaEntityData{{EntityType: QuotaEntityUser, EntityName: name}}, Key: key, Value: value}
}

func TestClientQuotaRecords(t *testing.T) {
	alice := quota.Entity{User: quota.Named("alice")}
	aliceApp := quota.Entity{User: quota.Named("alice"), ClientID: quota.Named("app1")}
	defaultClient := quota.Entity{ClientID: quota.DefaultName()}
	ip := quota.Entity{IP: quota.Named("127.0.0.1")}
	recs := []Record{
		Bootstrap{ClusterID: "c"},
		userQuota(strp("alice"), quota.ProducerByteRate, 1048576),
		userQuota(strp("alice"), quota.ConsumerByteRate, 2097152),
		ClientQuota{Entity: []QuotaEntityData{{EntityType: QuotaEntityClientID}}, Key: quota.RequestPercentage, Value: 12.5},
		ClientQuota{Entity: []QuotaEntityData{{EntityType: QuotaEntityClientID, EntityName: strp("app1")},
			{EntityType: QuotaEntityUser, EntityName: strp("alice")}}, Key: quota.ProducerByteRate, Value: 10},
		ClientQuota{Entity: []QuotaEntityData{{EntityType: QuotaEntityIP, EntityName: strp("127.0.0.1")}}, Key: quota.ConnectionCreationRate, Value: 10},
	}
	img := build(t, recs...)
	want := map[quota.Entity]quota.Values{
		alice:         {quota.ProducerByteRate: 1048576, quota.ConsumerByteRate: 2097152},
		defaultClient: {quota.RequestPercentage: 12.5},
		aliceApp:      {quota.ProducerByteRate: 10},
		ip:            {quota.ConnectionCreationRate: 10},
	}
	if got := img.ClientQuotas().Quotas; !reflect.DeepEqual(got, want) {
		t.Fatalf("quotas %+v, want %+v", got, want)
	}
	// The record round-trips through its encoding, the image through a snapshot.
	for _, r := range recs[1:] {
		if back := must(DecodeRecord(must(EncodeRecord(r)))); !reflect.DeepEqual(back, r) {
			t.Errorf("record round trip: %+v, want %+v", back, r)
		}
	}
	data := must(EncodeImage(img))
	back := must(DecodeImage(data))
	if !Equal(img, back) || !reflect.DeepEqual(back.ClientQuotas().Quotas, want) {
		t.Fatalf("snapshot round trip:\n%s", data)
	}
	if again := must(EncodeImage(back)); string(again) != string(data) {
		t.Errorf("snapshot encoding not deterministic:\n%s\n%s", data, again)
	}
	if got := img.QuotaEntities(); !reflect.DeepEqual(got, []quota.Entity{ip, defaultClient, alice, aliceApp}) {
		t.Errorf("entity order %+v", got)
	}

	// Copy on write: an unrelated record keeps the table, a quota record replaces it and
	// leaves the old one as it was.
	table := img.ClientQuotas()
	other := must(img.Apply(FeatureLevel{Name: "metadata.version", Level: 20}))
	if other.ClientQuotas() != table {
		t.Errorf("an unrelated record replaced the quota table")
	}
	removed := must(img.Apply(ClientQuota{Entity: []QuotaEntityData{{EntityType: QuotaEntityUser, EntityName: strp("alice")}},
		Key: quota.ProducerByteRate, Remove: true}))
	if removed.ClientQuotas() == table || len(table.Quotas[alice]) != 2 {
		t.Fatalf("the old table changed: %+v", table.Quotas[alice])
	}
	if got := removed.ClientQuotas().Quotas[alice]; !reflect.DeepEqual(got, quota.Values{quota.ConsumerByteRate: 2097152}) {
		t.Errorf("after removal %+v", got)
	}
	// The last key of an entity removed removes the entity; a missing key is a no-op.
	gone := must(removed.Apply(ClientQuota{Entity: []QuotaEntityData{{EntityType: QuotaEntityUser, EntityName: strp("alice")}},
		Key: quota.ConsumerByteRate, Remove: true}))
	if _, ok := gone.ClientQuotas().Quotas[alice]; ok || len(gone.ClientQuotas().Quotas) != 3 {
		t.Errorf("entity left after its last key: %+v", gone.ClientQuotas().Quotas)
	}
	if same := must(gone.Apply(userQuota(strp("alice"), "x", 0).withRemove())); same != gone {
		t.Errorf("removing a missing key changed the image")
	}
	if (&Image{}).ClientQuotas() != (&Image{}).ClientQuotas() || len((&Image{}).ClientQuotas().Quotas) != 0 {
		t.Errorf("the empty image's table is not one empty table")
	}
}

func (r ClientQuota) withRemove() ClientQuota { r.Remove = true; return r }

func TestClientQuotaRecordRefused(t *testing.T) {
	img := build(t, Bootstrap{ClusterID: "c"})
	for name, r := range map[string]ClientQuota{
		"no entity":      {Key: quota.ProducerByteRate, Value: 1},
		"unknown type":   {Entity: []QuotaEntityData{{EntityType: "group"}}, Key: quota.ProducerByteRate, Value: 1},
		"type twice":     {Entity: []QuotaEntityData{{EntityType: QuotaEntityUser}, {EntityType: QuotaEntityUser, EntityName: strp("a")}}, Key: "k", Value: 1},
		"empty name":     {Entity: []QuotaEntityData{{EntityType: QuotaEntityUser, EntityName: strp("")}}, Key: "k", Value: 1},
		"no key":         userQuota(nil, "", 1),
		"zero value":     userQuota(nil, quota.ProducerByteRate, 0),
		"negative value": userQuota(nil, quota.ProducerByteRate, -1),
	} {
		if _, err := img.Apply(r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
		}
	}
}
