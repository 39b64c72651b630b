package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseQuotaConfigs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []kadm.AlterClientQuotaOp
		err  string
	}{
		{in: []string{"producer_byte_rate=1048576,consumer_byte_rate=2097152"},
			want: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1048576}, {Key: "consumer_byte_rate", Value: 2097152}}},
		{in: []string{"request_percentage=12.5", " controller_mutation_rate = 2 "},
			want: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 12.5}, {Key: "controller_mutation_rate", Value: 2}}},
		{in: []string{"producer_byte_rate"}, err: "want KEY=VALUE"},
		{in: []string{"=5"}, err: "want KEY=VALUE"},
		{in: []string{"producer_byte_rate=fast"}, err: "is not a number"},
		{in: []string{"a=1,a=2"}, err: "given twice"},
		{in: nil, err: "no quota to set"},
	} {
		got, err := ParseQuotaConfigs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestQuotaEntityFlags(t *testing.T) {
	alice := "alice"
	for _, tc := range []struct {
		flags  QuotaEntityFlags
		entity string
		filter []kadm.DescribeClientQuotaComponent
		err    string
	}{
		{flags: QuotaEntityFlags{User: "alice"}, entity: "user=alice",
			filter: []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: &alice, MatchType: kmsg.QuotasMatchTypeExact}}},
		{flags: QuotaEntityFlags{User: "alice", ClientIDDefault: true}, entity: "user=alice,client-id=<default>",
			filter: []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: &alice, MatchType: kmsg.QuotasMatchTypeExact},
				{Type: "client-id", MatchType: kmsg.QuotasMatchTypeDefault}}},
		{flags: QuotaEntityFlags{IP: "127.0.0.1"}, entity: "ip=127.0.0.1"},
		{flags: QuotaEntityFlags{User: "alice", UserDefault: true}, err: "give one"},
		{flags: QuotaEntityFlags{}, err: "name an entity"},
	} {
		e, err := tc.flags.Entity()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: %v, want an error with %q", tc.flags, err, tc.err)
			}
			continue
		}
		if err != nil || QuotaEntityString(e) != tc.entity {
			t.Errorf("%+v: entity %s %v, want %s", tc.flags, QuotaEntityString(e), err, tc.entity)
		}
		if tc.filter != nil {
			if f, err := tc.flags.Filter(); err != nil || !reflect.DeepEqual(f, tc.filter) {
				t.Errorf("%+v: filter %+v %v, want %+v", tc.flags, f, err, tc.filter)
			}
		}
	}
}

func TestQuotaRows(t *testing.T) {
	alice, app := "alice", "app1"
	described := kadm.DescribedClientQuotas{
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}, {Type: "client-id", Name: &app}},
			Values: kadm.ClientQuotaValues{{Key: "producer_byte_rate", Value: 10}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id"}}, Values: kadm.ClientQuotaValues{{Key: "request_percentage", Value: 12.5}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}},
			Values: kadm.ClientQuotaValues{{Key: "producer_byte_rate", Value: 1048576}, {Key: "consumer_byte_rate", Value: 2097152}}},
	}
	want := []QuotaRow{
		{"client-id=<default>", "request_percentage", "12.5"},
		{"user=alice", "consumer_byte_rate", "2097152"},
		{"user=alice", "producer_byte_rate", "1048576"},
		{"user=alice,client-id=app1", "producer_byte_rate", "10"},
	}
	if got := QuotaRows(described); !reflect.DeepEqual(got, want) {
		t.Errorf("rows %+v, want %+v", got, want)
	}
	// Keys of an entity, whatever the order of its components.
	e := kadm.ClientQuotaEntity{{Type: "client-id", Name: &app}, {Type: "user", Name: &alice}}
	if got := QuotaKeys(described, e); !reflect.DeepEqual(got, []string{"producer_byte_rate"}) {
		t.Errorf("keys %v", got)
	}
}
