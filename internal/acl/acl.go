// Package acl holds ACL bindings and the standard authorizer's rules (Kafka's
// StandardAuthorizer, KIP-801) without I/O: which bindings a filter matches (DescribeAcls,
// DeleteAcls) and whether a principal may perform an operation on a resource. Codes are Kafka's
// (kmsg's ACL enums).
package acl

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Wildcard is the resource name and host that match every name and host; WildcardPrincipal
// matches every principal.
const (
	Wildcard          = "*"
	WildcardPrincipal = "User:*"
	// ClusterName is the only name of the CLUSTER resource.
	ClusterName = "kafka-cluster"
)

// Binding is one ACL: a resource pattern and an access control entry (Kafka's AclBinding, the
// fields of its AccessControlEntryRecord).
type Binding struct {
	ResourceType kmsg.ACLResourceType        `json:"resourceType"`
	ResourceName string                      `json:"resourceName"`
	PatternType  kmsg.ACLResourcePatternType `json:"patternType"`
	Principal    string                      `json:"principal"`
	Host         string                      `json:"host"`
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

// Validate checks a binding to create as Kafka's controller and AclApis do; the error's text
// is the INVALID_REQUEST message.
func (b Binding) Validate() error {
	switch {
	case b.ResourceType < kmsg.ACLResourceTypeTopic || b.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("Invalid resourceType %d", b.ResourceType)
	case b.PatternType != kmsg.ACLResourcePatternTypeLiteral && b.PatternType != kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("Invalid patternType %d", b.PatternType)
	case b.Operation < kmsg.ACLOperationAll || b.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("Invalid operation %d", b.Operation)
	case b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny:
		return fmt.Errorf("Invalid permissionType %d", b.Permission)
	case b.ResourceName == "":
		return fmt.Errorf("Invalid empty resource name specified")
	case b.ResourceType == kmsg.ACLResourceTypeCluster && b.ResourceName != ClusterName:
		return fmt.Errorf("The only valid name for the CLUSTER resource is %s", ClusterName)
	case !validPrincipal(b.Principal):
		return fmt.Errorf("Could not parse principal from `%s` (no colon is present separating the principal type from the principal name)", b.Principal)
	case b.Host == "":
		return fmt.Errorf("Invalid empty host")
	}
	return nil
}

func validPrincipal(p string) bool {
	typ, _, ok := strings.Cut(p, ":")
	return ok && typ != ""
}

// Filter selects bindings (Kafka's AclBindingFilter): nil strings and the ANY codes match
// everything; pattern MATCH matches the literal name, the literal wildcard and the prefixes of
// the name.
type Filter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Validate checks a filter as Kafka does (a filter with an unknown code is INVALID_REQUEST).
func (f Filter) Validate() error {
	switch {
	case f.ResourceType < kmsg.ACLResourceTypeAny || f.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("Invalid resourceType %d", f.ResourceType)
	case f.PatternType < kmsg.ACLResourcePatternTypeAny || f.PatternType > kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("Invalid patternType %d", f.PatternType)
	case f.Operation < kmsg.ACLOperationAny || f.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("Invalid operation %d", f.Operation)
	case f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow:
		return fmt.Errorf("Invalid permissionType %d", f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects b.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	if !f.matchesPattern(b) {
		return false
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == b.Permission
}

func (f Filter) matchesPattern(b Binding) bool {
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		return f.ResourceName == nil || *f.ResourceName == b.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		// The bindings that apply to the name, as the authorizer finds them.
		return f.ResourceName == nil || patternMatches(b, *f.ResourceName)
	default:
		return f.PatternType == b.PatternType && (f.ResourceName == nil || *f.ResourceName == b.ResourceName)
	}
}
