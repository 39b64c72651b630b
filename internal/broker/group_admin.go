package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group admin APIs.
func init() {
	register(kmsg.ListGroups.Int16(), 0, 5, handleListGroups)
	register(kmsg.DescribeGroups.Int16(), 0, 6, handleDescribeGroups)
	register(kmsg.DeleteGroups.Int16(), 0, 2, handleDeleteGroups)
}

func handleListGroups(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	var states, types []string
	if r.Version >= 4 {
		states = r.StatesFilter
	}
	if r.Version >= 5 {
		types = r.TypesFilter
	}
	groups, err := b.groups.ListGroups(states, types)
	resp.ErrorCode = errCode(err)
	// DESCRIBE on the cluster lists every group, else the groups the principal may DESCRIBE.
	all := b.authorizeCluster(req, kmsg.ACLOperationDescribe)
	for _, g := range groups {
		if !all && !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

// handleDescribeGroups describes groups as Kafka does, with one difference: a KIP-848 consumer
// group is described too (protocol type "consumer", its assignor as the protocol, each member's
// subscription and assignment in the classic consumer encoding), where Kafka 4.1 answers it as
// an unknown group (v6: GROUP_ID_NOT_FOUND "Group G is not a classic group.").
func handleDescribeGroups(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range r.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.AuthorizedOperations = authorizedOperationsOmitted
		if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, id) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		d := b.groups.DescribeGroup(id)
		rg.ErrorCode = errCode(d.Err)
		switch {
		case d.Err == nil && d.State == "Dead" && r.Version >= 6:
			// KIP-1043: v6 tells an unknown group apart, with Kafka's message
			// (GroupMetadataManager.describeGroups); earlier versions get a Dead group.
			rg.State = d.State
			rg.ErrorCode = kerr.GroupIDNotFound.Code
			rg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Group %s not found.", id))
		case d.Err == nil:
			rg.State, rg.ProtocolType, rg.Protocol = d.State, d.ProtocolType, d.Protocol
			for _, m := range d.Members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
				rm.ProtocolMetadata, rm.MemberAssignment = nonNil(m.Metadata), nonNil(m.Assignment)
				rg.Members = append(rg.Members, rm)
			}
		}
		if r.IncludeAuthorizedOperations && rg.ErrorCode == 0 {
			rg.AuthorizedOperations = b.authorizedOperations(req, kmsg.ACLResourceTypeGroup, id)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func handleDeleteGroups(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range r.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		if !b.authorize(req, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, id) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		} else {
			rg.ErrorCode = errCode(b.groups.DeleteGroup(id))
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
