package acl

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic    = kmsg.ACLResourceTypeTopic
	group    = kmsg.ACLResourceTypeGroup
	literal  = kmsg.ACLResourcePatternTypeLiteral
	prefixed = kmsg.ACLResourcePatternTypePrefixed
	allow    = kmsg.ACLPermissionTypeAllow
	deny     = kmsg.ACLPermissionTypeDeny
	read     = kmsg.ACLOperationRead
	write    = kmsg.ACLOperationWrite
	describe = kmsg.ACLOperationDescribe
)

func bind(rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) Binding {
	return Binding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

// TestAuthorize follows the standard authorizer's documented rules (Kafka's authorization
// docs, KIP-290 prefixed ACLs, KIP-801 StandardAuthorizer).
func TestAuthorize(t *testing.T) {
	aliceReadT := bind(topic, "t", literal, "User:alice", "*", read, allow)
	for _, tc := range []struct {
		name          string
		bindings      []Binding
		super         string
		allowEveryone bool
		req           Request
		want          bool
	}{
		{name: "no ACL denies by default", req: Request{"User:alice", "1.2.3.4", read, topic, "t"}, want: false},
		{name: "no ACL with allow.everyone.if.no.acl.found", allowEveryone: true, req: Request{"User:alice", "1.2.3.4", read, topic, "t"}, want: true},
		{name: "another principal's ACL on the resource: allow.everyone does not apply", allowEveryone: true,
			bindings: []Binding{aliceReadT}, req: Request{"User:bob", "1.2.3.4", read, topic, "t"}, want: false},
		{name: "literal allow", bindings: []Binding{aliceReadT}, req: Request{"User:alice", "1.2.3.4", read, topic, "t"}, want: true},
		{name: "literal allow is for its operation", bindings: []Binding{aliceReadT}, req: Request{"User:alice", "1.2.3.4", write, topic, "t"}, want: false},
		{name: "literal allow is for its name", bindings: []Binding{aliceReadT}, req: Request{"User:alice", "1.2.3.4", read, topic, "tt"}, want: false},
		{name: "literal allow is for its resource type", bindings: []Binding{aliceReadT}, req: Request{"User:alice", "1.2.3.4", read, group, "t"}, want: false},
		{name: "READ implies DESCRIBE", bindings: []Binding{aliceReadT}, req: Request{"User:alice", "h", describe, topic, "t"}, want: true},
		{name: "WRITE implies DESCRIBE", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", write, allow)}, req: Request{"User:alice", "h", describe, topic, "t"}, want: true},
		{name: "DELETE implies DESCRIBE", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", kmsg.ACLOperationDelete, allow)}, req: Request{"User:alice", "h", describe, topic, "t"}, want: true},
		{name: "ALTER implies DESCRIBE", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", kmsg.ACLOperationAlter, allow)}, req: Request{"User:alice", "h", describe, topic, "t"}, want: true},
		{name: "CREATE does not imply DESCRIBE", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", kmsg.ACLOperationCreate, allow)}, req: Request{"User:alice", "h", describe, topic, "t"}, want: false},
		{name: "ALTER_CONFIGS implies DESCRIBE_CONFIGS", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", kmsg.ACLOperationAlterConfigs, allow)}, req: Request{"User:alice", "h", kmsg.ACLOperationDescribeConfigs, topic, "t"}, want: true},
		{name: "DESCRIBE does not imply READ", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", describe, allow)}, req: Request{"User:alice", "h", read, topic, "t"}, want: false},
		{name: "ALL allows every operation", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", kmsg.ACLOperationAll, allow)}, req: Request{"User:alice", "h", kmsg.ACLOperationAlterConfigs, topic, "t"}, want: true},
		{name: "DENY wins over ALLOW", bindings: []Binding{aliceReadT, bind(topic, "t", literal, "User:alice", "*", read, deny)}, req: Request{"User:alice", "h", read, topic, "t"}, want: false},
		{name: "DENY of ALL wins", bindings: []Binding{aliceReadT, bind(topic, "*", literal, "User:*", "*", kmsg.ACLOperationAll, deny)}, req: Request{"User:alice", "h", read, topic, "t"}, want: false},
		{name: "DENY READ does not deny DESCRIBE", bindings: []Binding{bind(topic, "t", literal, "User:alice", "*", write, allow), bind(topic, "t", literal, "User:alice", "*", read, deny)}, req: Request{"User:alice", "h", describe, topic, "t"}, want: true},
		{name: "DENY from another host does not apply", bindings: []Binding{aliceReadT, bind(topic, "t", literal, "User:alice", "10.0.0.1", read, deny)}, req: Request{"User:alice", "10.0.0.2", read, topic, "t"}, want: true},
		{name: "DENY from the host applies", bindings: []Binding{aliceReadT, bind(topic, "t", literal, "User:alice", "10.0.0.1", read, deny)}, req: Request{"User:alice", "10.0.0.1", read, topic, "t"}, want: false},
		{name: "ALLOW for another host", bindings: []Binding{bind(topic, "t", literal, "User:alice", "10.0.0.1", read, allow)}, req: Request{"User:alice", "10.0.0.2", read, topic, "t"}, want: false},
		{name: "wildcard resource", bindings: []Binding{bind(topic, "*", literal, "User:alice", "*", read, allow)}, req: Request{"User:alice", "h", read, topic, "anything"}, want: true},
		{name: "wildcard principal", bindings: []Binding{bind(topic, "t", literal, "User:*", "*", read, allow)}, req: Request{"User:bob", "h", read, topic, "t"}, want: true},
		{name: "prefixed", bindings: []Binding{bind(topic, "orders-", prefixed, "User:alice", "*", read, allow)}, req: Request{"User:alice", "h", read, topic, "orders-eu"}, want: true},
		{name: "prefixed is not a suffix", bindings: []Binding{bind(topic, "orders-", prefixed, "User:alice", "*", read, allow)}, req: Request{"User:alice", "h", read, topic, "eu-orders-"}, want: false},
		{name: "prefixed DENY wins over literal ALLOW", bindings: []Binding{aliceReadT, bind(topic, "t", prefixed, "User:alice", "*", read, deny)}, req: Request{"User:alice", "h", read, topic, "t"}, want: false},
		{name: "a prefixed * is a prefix, not a wildcard", bindings: []Binding{bind(topic, "*", prefixed, "User:alice", "*", read, allow)}, req: Request{"User:alice", "h", read, topic, "t"}, want: false},
		{name: "super user without ACLs", super: "User:admin; User:root", req: Request{"User:root", "h", kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, ClusterName}, want: true},
		{name: "super user despite DENY", super: "User:admin", bindings: []Binding{bind(topic, "t", literal, "User:admin", "*", read, deny)}, req: Request{"User:admin", "h", read, topic, "t"}, want: true},
		{name: "not a super user", super: "User:admin", req: Request{"User:administrator", "h", read, topic, "t"}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Authorizer{SuperUsers: ParseSuperUsers(tc.super), AllowEveryoneIfNoACL: tc.allowEveryone}
			if got := a.Authorize(tc.bindings, tc.req); got != tc.want {
				t.Errorf("Authorize(%+v) = %v, want %v", tc.req, got, tc.want)
			}
		})
	}
}

// TestAuthorizeAny: KIP-679's check by resource type (an idempotent producer's WRITE on
// any topic).
func TestAuthorizeAny(t *testing.T) {
	a := &Authorizer{SuperUsers: ParseSuperUsers("User:admin")}
	req := Request{Principal: "User:alice", Host: "h", Operation: write, ResourceType: topic}
	for _, tc := range []struct {
		name     string
		bindings []Binding
		want     bool
	}{
		{"no ACL", nil, false},
		{"WRITE on one topic", []Binding{bind(topic, "t", literal, "User:alice", "*", write, allow)}, true},
		{"WRITE on a prefix", []Binding{bind(topic, "t-", prefixed, "User:alice", "*", write, allow)}, true},
		{"READ only", []Binding{bind(topic, "t", literal, "User:alice", "*", read, allow)}, false},
		{"another principal", []Binding{bind(topic, "t", literal, "User:bob", "*", write, allow)}, false},
		{"a group, not a topic", []Binding{bind(group, "t", literal, "User:alice", "*", write, allow)}, false},
		{"DENY on every topic", []Binding{bind(topic, "t", literal, "User:alice", "*", write, allow), bind(topic, "*", literal, "User:*", "*", write, deny)}, false},
		{"DENY on one topic", []Binding{bind(topic, "t", literal, "User:alice", "*", write, allow), bind(topic, "u", literal, "User:alice", "*", write, deny)}, true},
	} {
		if got := a.AuthorizeAny(tc.bindings, req); got != tc.want {
			t.Errorf("%s: AuthorizeAny = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !a.AuthorizeAny(nil, Request{Principal: "User:admin", Operation: write, ResourceType: topic}) {
		t.Error("a super user is refused")
	}
}

func ptr(s string) *string { return &s }

// TestFilterMatches follows Kafka's AclBindingFilter/ResourcePatternFilter rules.
func TestFilterMatches(t *testing.T) {
	lit := bind(topic, "t", literal, "User:alice", "*", read, allow)
	wild := bind(topic, "*", literal, "User:alice", "*", read, allow)
	pre := bind(topic, "t", prefixed, "User:alice", "*", read, allow)
	any := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	with := func(f func(*Filter)) Filter { c := any; f(&c); return c }
	for _, tc := range []struct {
		name   string
		filter Filter
		b      Binding
		want   bool
	}{
		{"any matches all", any, pre, true},
		{"resource type", with(func(f *Filter) { f.ResourceType = group }), lit, false},
		{"ANY pattern with a name: the exact name in any pattern", with(func(f *Filter) { f.ResourceName = ptr("t") }), pre, true},
		{"ANY pattern does not expand the wildcard", with(func(f *Filter) { f.ResourceName = ptr("t") }), wild, false},
		{"LITERAL pattern", with(func(f *Filter) { f.PatternType = literal; f.ResourceName = ptr("t") }), pre, false},
		{"PREFIXED pattern", with(func(f *Filter) { f.PatternType = prefixed; f.ResourceName = ptr("t") }), pre, true},
		{"MATCH: the literal", with(func(f *Filter) { f.PatternType = kmsg.ACLResourcePatternTypeMatch; f.ResourceName = ptr("t") }), lit, true},
		{"MATCH: the wildcard", with(func(f *Filter) { f.PatternType = kmsg.ACLResourcePatternTypeMatch; f.ResourceName = ptr("t") }), wild, true},
		{"MATCH: a prefix", with(func(f *Filter) { f.PatternType = kmsg.ACLResourcePatternTypeMatch; f.ResourceName = ptr("tx") }), pre, true},
		{"MATCH: not a prefix", with(func(f *Filter) { f.PatternType = kmsg.ACLResourcePatternTypeMatch; f.ResourceName = ptr("u") }), pre, false},
		{"principal", with(func(f *Filter) { f.Principal = ptr("User:bob") }), lit, false},
		{"host", with(func(f *Filter) { f.Host = ptr("*") }), lit, true},
		{"operation", with(func(f *Filter) { f.Operation = write }), lit, false},
		{"permission", with(func(f *Filter) { f.Permission = deny }), lit, false},
	} {
		if got := tc.filter.Matches(tc.b); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := bind(topic, "t", literal, "User:alice", "*", read, allow)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Binding){
		func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeAny },
		func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypeMatch },
		func(b *Binding) { b.Operation = kmsg.ACLOperationAny },
		func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeAny },
		func(b *Binding) { b.ResourceName = "" },
		func(b *Binding) { b.Principal = "alice" },
		func(b *Binding) { b.Host = "" },
		func(b *Binding) { b.ResourceType, b.ResourceName = kmsg.ACLResourceTypeCluster, "c" },
	} {
		b := good
		bad(&b)
		if b.Validate() == nil {
			t.Errorf("%+v is valid", b)
		}
	}
	if (Filter{ResourceType: kmsg.ACLResourceTypeUnknown, PatternType: literal, Operation: read, Permission: allow}).Validate() == nil {
		t.Error("a filter of unknown resource type is valid")
	}
}
