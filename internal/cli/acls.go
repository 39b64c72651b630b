package cli

import (
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACLFlags are the flags of `samsa acl`, named as kafka-acls names them.
type ACLFlags struct {
	Topics, Groups, TransactionalIDs []string
	Cluster                          bool
	AllowPrincipals, DenyPrincipals  []string
	AllowHosts, DenyHosts            []string
	Operations                       []string
	Pattern                          string
}

// Builder returns kadm's ACL builder for the flags: for creation (every principal, host,
// resource and operation combined; hosts default to `*`) or as a filter (what is not given
// matches everything).
func (f ACLFlags) Builder(filter bool) (*kadm.ACLBuilder, error) {
	b := kadm.NewACLs()
	pattern := f.Pattern
	if pattern == "" {
		pattern = "literal"
		if filter {
			pattern = "any"
		}
	}
	pt, err := kmsg.ParseACLResourcePatternType(pattern)
	if err != nil || pt == kmsg.ACLResourcePatternTypeUnknown {
		return nil, fmt.Errorf("--resource-pattern-type %q: want literal or prefixed (any or match to list or delete)", pattern)
	}
	b.ResourcePatternType(pt)
	var ops []kadm.ACLOperation
	for _, o := range f.Operations {
		op, err := kmsg.ParseACLOperation(o)
		if err != nil || op == kmsg.ACLOperationUnknown {
			return nil, fmt.Errorf("--operation %q: want one of Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All", o)
		}
		ops = append(ops, op)
	}
	resources := len(f.Topics) + len(f.Groups) + len(f.TransactionalIDs)
	principals := len(f.AllowPrincipals) + len(f.DenyPrincipals)
	if !filter {
		switch {
		case principals == 0:
			return nil, errors.New("an ACL needs --allow-principal or --deny-principal")
		case resources == 0 && !f.Cluster:
			return nil, errors.New("an ACL needs a resource: --topic, --group, --transactional-id or --cluster")
		case len(ops) == 0:
			return nil, errors.New("an ACL needs --operation")
		}
	}
	if filter && resources == 0 && !f.Cluster {
		b.AnyResource()
	} else {
		b.MaybeTopics(f.Topics...).MaybeGroups(f.Groups...).MaybeTransactionalIDs(f.TransactionalIDs...).MaybeClusters(f.Cluster)
	}
	if filter && principals == 0 {
		b.Allow().Deny()
	} else {
		b.MaybeAllow(f.AllowPrincipals...).MaybeDeny(f.DenyPrincipals...)
	}
	if len(f.AllowPrincipals) > 0 || (filter && principals == 0) {
		b.AllowHosts(hostsOrWildcard(f.AllowHosts, filter)...)
	}
	if len(f.DenyPrincipals) > 0 || (filter && principals == 0) {
		b.DenyHosts(hostsOrWildcard(f.DenyHosts, filter)...)
	}
	if len(ops) == 0 {
		ops = []kadm.ACLOperation{kadm.OpAny}
	}
	b.Operations(ops...)
	return b, nil
}

// hostsOrWildcard: the hosts given, else `*` for creation and any host for a filter.
func hostsOrWildcard(hosts []string, filter bool) []string {
	if len(hosts) == 0 && !filter {
		return []string{"*"}
	}
	return hosts
}

// ACLRow is one ACL as `samsa acl list` and `delete` print it.
type ACLRow struct {
	Type, Name, Pattern, Principal, Host, Operation, Permission string
}

// DescribedACLRows flattens DescribeACLs' answer, sorted.
func DescribedACLRows(results kadm.DescribeACLsResults) []ACLRow {
	var acls []kadm.DescribedACL
	for _, r := range results {
		acls = append(acls, r.Described...)
	}
	return aclRows(acls)
}

// DeletedACLRows flattens DeleteACLs' answer, sorted.
func DeletedACLRows(results kadm.DeleteACLsResults) []ACLRow {
	var acls []kadm.DescribedACL
	for _, r := range results {
		for _, d := range r.Deleted {
			acls = append(acls, kadm.DescribedACL{Principal: d.Principal, Host: d.Host, Type: d.Type, Name: d.Name,
				Pattern: d.Pattern, Operation: d.Operation, Permission: d.Permission})
		}
	}
	return aclRows(acls)
}

func aclRows(acls []kadm.DescribedACL) []ACLRow {
	rows := make([]ACLRow, 0, len(acls))
	for _, d := range acls {
		rows = append(rows, ACLRow{d.Type.String(), d.Name, d.Pattern.String(), d.Principal, d.Host, d.Operation.String(), d.Permission.String()})
	}
	sort.Slice(rows, func(i, j int) bool { return fmt.Sprint(rows[i]) < fmt.Sprint(rows[j]) })
	return rows
}
