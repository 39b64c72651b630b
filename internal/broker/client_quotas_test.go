package broker_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

func quotaName(s string) *string { return &s }

// quotaEntity builds an entity from type/name pairs, "<default>" for the default name.
func quotaEntity(pairs ...string) kadm.ClientQuotaEntity {
	var e kadm.ClientQuotaEntity
	for i := 0; i < len(pairs); i += 2 {
		c := kadm.ClientQuotaEntityComponent{Type: pairs[i]}
		if pairs[i+1] != "<default>" {
			c.Name = quotaName(pairs[i+1])
		}
		e = append(e, c)
	}
	return e
}

// describedQuotas flattens a describe answer to entity string → key → value.
func describedQuotas(qs kadm.DescribedClientQuotas) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, q := range qs {
		vs := map[string]float64{}
		for _, v := range q.Values {
			vs[v.Key] = v.Value
		}
		out[q.Entity.String()] = vs
	}
	return out
}

func alterQuotas(t *testing.T, adm *kadm.Client, validateOnly bool, entries ...kadm.AlterClientQuotaEntry) kadm.AlteredClientQuotas {
	t.Helper()
	alter := adm.AlterClientQuotas
	if validateOnly {
		alter = adm.ValidateAlterClientQuotas
	}
	res, err := alter(ctxT(t), entries)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func describeAllQuotas(t *testing.T, adm *kadm.Client) map[string]map[string]float64 {
	t.Helper()
	qs, err := adm.DescribeClientQuotas(ctxT(t), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return describedQuotas(qs)
}

func TestClientQuotas(t *testing.T) {
	n := testcluster.Start(t)
	adm := kadm.NewClient(newClient(t, n))
	set := func(key string, v float64) kadm.AlterClientQuotaOp {
		return kadm.AlterClientQuotaOp{Key: key, Value: v}
	}
	res := alterQuotas(t, adm, false,
		kadm.AlterClientQuotaEntry{Entity: quotaEntity("user", "alice"), Ops: []kadm.AlterClientQuotaOp{
			set("producer_byte_rate", 1048576), set("consumer_byte_rate", 2097152)}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity("client-id", "<default>"), Ops: []kadm.AlterClientQuotaOp{set("request_percentage", 12.5)}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity("user", "alice", "client-id", "app1"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 10)}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity("ip", "127.0.0.1"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 10)}},
		// A host name that resolves, stored as given (Kafka's InetAddress.getByName check).
		kadm.AlterClientQuotaEntry{Entity: quotaEntity("ip", "localhost"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 20)}},
	)
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("alter %s: %v %s", r.Entity, r.Err, r.ErrMessage)
		}
	}
	want := map[string]map[string]float64{
		"{user=alice}":                 {"producer_byte_rate": 1048576, "consumer_byte_rate": 2097152},
		"{client-id=<default>}":        {"request_percentage": 12.5},
		"{user=alice, client-id=app1}": {"producer_byte_rate": 10},
		"{ip=127.0.0.1}":               {"connection_creation_rate": 10},
		"{ip=localhost}":               {"connection_creation_rate": 20},
	}
	if got := describeAllQuotas(t, adm); !reflect.DeepEqual(got, want) {
		t.Fatalf("described %v, want %v", got, want)
	}

	// validate_only checks and writes nothing.
	res = alterQuotas(t, adm, true, kadm.AlterClientQuotaEntry{Entity: quotaEntity("user", "bob"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 5)}})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("validate only: %+v", res)
	}
	if got := describeAllQuotas(t, adm); !reflect.DeepEqual(got, want) {
		t.Fatalf("validate only changed the quotas: %v", got)
	}

	// Kafka's refusals, per entry.
	for _, tc := range []struct {
		name   string
		entity kadm.ClientQuotaEntity
		op     kadm.AlterClientQuotaOp
		msg    string
	}{
		{"unresolvable host", quotaEntity("ip", "no-such-host.invalid"), set("connection_creation_rate", 1), "no-such-host.invalid is not a valid IP or resolvable host."},
		{"invalid ip", quotaEntity("ip", "300.1.2.3"), set("connection_creation_rate", 1), "300.1.2.3 is not a valid IP or resolvable host."},
		{"ip with user", quotaEntity("ip", "1.2.3.4", "user", "a"), set("connection_creation_rate", 1), "IP entity should not be combined"},
		{"zero", quotaEntity("user", "a"), set("producer_byte_rate", 0), "Quota producer_byte_rate must be greater than 0"},
		{"fraction", quotaEntity("user", "a"), set("producer_byte_rate", 1.5), "producer_byte_rate cannot be a fractional value."},
		{"key of another type", quotaEntity("ip", "<default>"), set("producer_byte_rate", 1), "Invalid configuration key producer_byte_rate"},
		{"unknown entity type", quotaEntity("group", "g"), set("producer_byte_rate", 1), "Unhandled client quota entity type: group"},
		{"type twice", quotaEntity("user", "a", "user", "b"), set("producer_byte_rate", 1), "duplicate entity entry user"},
	} {
		for _, validateOnly := range []bool{true, false} {
			res := alterQuotas(t, adm, validateOnly, kadm.AlterClientQuotaEntry{Entity: tc.entity, Ops: []kadm.AlterClientQuotaOp{tc.op}})
			if len(res) != 1 || !errors.Is(res[0].Err, kerr.InvalidRequest) || !strings.Contains(res[0].ErrMessage, tc.msg) {
				t.Errorf("%s (validate only %v): %+v, want INVALID_REQUEST %q", tc.name, validateOnly, res, tc.msg)
			}
		}
	}

	// Describe's filters: EXACT, DEFAULT, ANY, strict.
	exact := func(typ, name string) kadm.DescribeClientQuotaComponent {
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchName: quotaName(name), MatchType: kmsg.QuotasMatchTypeExact}
	}
	def := func(typ string) kadm.DescribeClientQuotaComponent {
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: kmsg.QuotasMatchTypeDefault}
	}
	anyOf := func(typ string) kadm.DescribeClientQuotaComponent {
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: kmsg.QuotasMatchTypeAny}
	}
	for _, tc := range []struct {
		name       string
		strict     bool
		components []kadm.DescribeClientQuotaComponent
		entities   []string
	}{
		{"exact user", false, []kadm.DescribeClientQuotaComponent{exact("user", "alice")}, []string{"{user=alice}", "{user=alice, client-id=app1}"}},
		{"exact user strict", true, []kadm.DescribeClientQuotaComponent{exact("user", "alice")}, []string{"{user=alice}"}},
		{"exact user and client", true, []kadm.DescribeClientQuotaComponent{exact("user", "alice"), exact("client-id", "app1")}, []string{"{user=alice, client-id=app1}"}},
		{"exact unknown name", false, []kadm.DescribeClientQuotaComponent{exact("user", "nobody")}, nil},
		{"default client", false, []kadm.DescribeClientQuotaComponent{def("client-id")}, []string{"{client-id=<default>}"}},
		{"default user", false, []kadm.DescribeClientQuotaComponent{def("user")}, nil},
		{"any client", false, []kadm.DescribeClientQuotaComponent{anyOf("client-id")}, []string{"{client-id=<default>}", "{user=alice, client-id=app1}"}},
		{"any user strict", true, []kadm.DescribeClientQuotaComponent{anyOf("user")}, []string{"{user=alice}"}},
		{"any ip", false, []kadm.DescribeClientQuotaComponent{anyOf("ip")}, []string{"{ip=127.0.0.1}", "{ip=localhost}"}},
		{"exact host name", false, []kadm.DescribeClientQuotaComponent{exact("ip", "localhost")}, []string{"{ip=localhost}"}},
		{"everything", false, nil, []string{"{user=alice}", "{client-id=<default>}", "{user=alice, client-id=app1}", "{ip=127.0.0.1}", "{ip=localhost}"}},
		{"nothing strict", true, nil, nil},
	} {
		qs, err := adm.DescribeClientQuotas(ctxT(t), tc.strict, tc.components)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for e := range describedQuotas(qs) {
			got = append(got, e)
		}
		if !sameStrings(got, tc.entities) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.entities)
		}
	}
	for _, tc := range []struct {
		name       string
		components []kadm.DescribeClientQuotaComponent
		code       *kerr.Error
	}{
		{"unknown entity type", []kadm.DescribeClientQuotaComponent{anyOf("group")}, kerr.UnsupportedVersion},
		{"ip with user", []kadm.DescribeClientQuotaComponent{anyOf("ip"), exact("user", "alice")}, kerr.InvalidRequest},
		{"type twice", []kadm.DescribeClientQuotaComponent{anyOf("user"), def("user")}, kerr.InvalidRequest},
		{"exact without a name", []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeExact}}, kerr.InvalidRequest},
		{"default with a name", []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: quotaName("a"), MatchType: kmsg.QuotasMatchTypeDefault}}, kerr.InvalidRequest},
		{"unknown match type", []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 7}}, kerr.UnsupportedVersion},
	} {
		if _, err := adm.DescribeClientQuotas(ctxT(t), false, tc.components); !errors.Is(err, tc.code) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code.Message)
		}
	}

	// A removal, then the quotas survive a restart (log replay) and a restart from a snapshot
	// with a change after it.
	res = alterQuotas(t, adm, false, kadm.AlterClientQuotaEntry{Entity: quotaEntity("user", "alice"),
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}}})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("remove: %+v", res)
	}
	want["{user=alice}"] = map[string]float64{"consumer_byte_rate": 2097152}
	if got := describeAllQuotas(t, adm); !reflect.DeepEqual(got, want) {
		t.Fatalf("after removal %v, want %v", got, want)
	}
	n.Restart()
	adm = kadm.NewClient(newClient(t, n))
	if got := describeAllQuotas(t, adm); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart %v, want %v", got, want)
	}
	if err := n.Server().SnapshotMetadata(); err != nil {
		t.Fatal(err)
	}
	res = alterQuotas(t, adm, false, kadm.AlterClientQuotaEntry{Entity: quotaEntity("ip", "<default>"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 100)}})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("alter after the snapshot: %+v", res)
	}
	want["{ip=<default>}"] = map[string]float64{"connection_creation_rate": 100}
	n.Restart()
	adm = kadm.NewClient(newClient(t, n))
	if got := describeAllQuotas(t, adm); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart from a snapshot %v, want %v", got, want)
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, c := range count {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestClientQuotasAuthorization: with the standard authorizer, AlterClientQuotas needs
// ALTER_CONFIGS on the cluster (each entry refused without it) and DescribeClientQuotas
// DESCRIBE_CONFIGS (the top-level error); an ACL granting them lets alice through.
func TestClientQuotasAuthorization(t *testing.T) {
	n := startACLNode(t)
	alice := kadm.NewClient(saslUser(t, n, "alice", "alice-secret"))
	admin := kadm.NewClient(saslUser(t, n, "admin", "admin-secret"))
	entry := kadm.AlterClientQuotaEntry{Entity: quotaEntity("user", "bob"),
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}}
	res := alterQuotas(t, alice, false, entry)
	if len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice's alter without ACLs: %+v, want CLUSTER_AUTHORIZATION_FAILED", res)
	}
	if _, err := alice.DescribeClientQuotas(ctxT(t), false, nil); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice's describe without ACLs: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	if got := describeAllQuotas(t, admin); len(got) != 0 {
		t.Fatalf("a refused alter wrote quotas: %v", got)
	}
	createACLs(t, admin, kadm.NewACLs().Allow("User:alice").Clusters().
		Operations(kadm.OpAlterConfigs, kadm.OpDescribeConfigs))
	res = alterQuotas(t, alice, false, entry)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("alice's alter with ALTER_CONFIGS: %+v", res)
	}
	if got := describeAllQuotas(t, alice); got["{user=bob}"]["producer_byte_rate"] != 1024 {
		t.Fatalf("alice describes %v", got)
	}
}
