package acl

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Authorizer decides requests with the standard authorizer's rules:
//
//   - a super user (super.users) may do everything;
//   - the bindings that apply are those of the resource's type whose pattern matches the name
//     (LITERAL equal or `*`, PREFIXED a prefix of it), whose principal is the request's or
//     `User:*`, and whose host is the request's or `*`;
//   - a DENY of the operation (or of ALL) wins over any ALLOW;
//   - an ALLOW of the operation, of ALL, or of an operation implying it allows: READ, WRITE,
//     DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS (a DENY implies
//     nothing);
//   - with no binding at all on the resource (any principal, host or operation), the answer is
//     allow.everyone.if.no.acl.found; otherwise it is a denial.
type Authorizer struct {
	SuperUsers           map[string]bool
	AllowEveryoneIfNoACL bool
}

// ParseSuperUsers splits super.users (principals separated by semicolons).
func ParseSuperUsers(s string) map[string]bool {
	out := map[string]bool{}
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out[p] = true
		}
	}
	return out
}

// Request is what is authorized: who, from where, what, on which resource.
type Request struct {
	Principal    string
	Host         string
	Operation    kmsg.ACLOperation
	ResourceType kmsg.ACLResourceType
	ResourceName string
}

// Authorize reports whether the request is allowed given the bindings.
func (a *Authorizer) Authorize(bindings []Binding, r Request) bool {
	if a.SuperUsers[r.Principal] {
		return true
	}
	found, allowed := false, false
	for _, b := range bindings {
		if b.ResourceType != r.ResourceType || !patternMatches(b, r.ResourceName) {
			continue
		}
		found = true
		if (b.Principal != r.Principal && b.Principal != WildcardPrincipal) || (b.Host != r.Host && b.Host != Wildcard) {
			continue
		}
		switch b.Permission {
		case kmsg.ACLPermissionTypeDeny:
			if b.Operation == r.Operation || b.Operation == kmsg.ACLOperationAll {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			if b.Operation == r.Operation || b.Operation == kmsg.ACLOperationAll || implies(b.Operation, r.Operation) {
				allowed = true
			}
		}
	}
	if !found {
		return a.AllowEveryoneIfNoACL
	}
	return allowed
}

func patternMatches(b Binding, name string) bool {
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral:
		return b.ResourceName == name || b.ResourceName == Wildcard
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

// implies reports whether an ALLOW of granted allows op although they differ.
func implies(granted, op kmsg.ACLOperation) bool {
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// AuthorizeAny reports whether the principal may perform op on some resource of the type
// (Kafka's authorizeByResourceType, KIP-679: an idempotent producer needs WRITE on any topic):
// a super user may; a DENY of op on every name (literal `*`) refuses; an ALLOW of op on any
// name allows; otherwise refused.
func (a *Authorizer) AuthorizeAny(bindings []Binding, r Request) bool {
	if a.SuperUsers[r.Principal] {
		return true
	}
	allowed := false
	for _, b := range bindings {
		if b.ResourceType != r.ResourceType || (b.Principal != r.Principal && b.Principal != WildcardPrincipal) || (b.Host != r.Host && b.Host != Wildcard) {
			continue
		}
		ops := b.Operation == r.Operation || b.Operation == kmsg.ACLOperationAll
		switch {
		case b.Permission == kmsg.ACLPermissionTypeDeny && ops && b.PatternType == kmsg.ACLResourcePatternTypeLiteral && b.ResourceName == Wildcard:
			return false
		case b.Permission == kmsg.ACLPermissionTypeAllow && (ops || implies(b.Operation, r.Operation)):
			allowed = true
		}
	}
	return allowed
}

// SupportedOperations are the operations that apply to a resource type, those Kafka reports
// in "authorized operations" fields (its AclEntry.supportedOperations).
func SupportedOperations(rt kmsg.ACLResourceType) []kmsg.ACLOperation {
	switch rt {
	case kmsg.ACLResourceTypeTopic:
		return []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
			kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	case kmsg.ACLResourceTypeGroup:
		return []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete,
			kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	case kmsg.ACLResourceTypeCluster:
		return []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
			kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe}
	case kmsg.ACLResourceTypeTransactionalId:
		return []kmsg.ACLOperation{kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite}
	case kmsg.ACLResourceTypeDelegationToken:
		return []kmsg.ACLOperation{kmsg.ACLOperationDescribe}
	case kmsg.ACLResourceTypeUser:
		return []kmsg.ACLOperation{kmsg.ACLOperationCreateTokens, kmsg.ACLOperationDescribeTokens}
	}
	return nil
}

// OperationsBitfield is Kafka's encoding of a set of operations in an "authorized
// operations" field: bit n set for the operation of code n.
func OperationsBitfield(ops []kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		bits |= 1 << uint(op)
	}
	return bits
}
