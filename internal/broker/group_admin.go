package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group admin APIs. DescribeGroups v6 (GROUP_ID_NOT_FOUND for unknown groups) is not
// served; unknown groups are described as Dead, as earlier versions expect.
func init() {
	register(kmsg.ListGroups.Int16(), 0, 5, handleListGroups)
	register(kmsg.DescribeGroups.Int16(), 0, 5, handleDescribeGroups)
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
	for _, g := range groups {
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func handleDescribeGroups(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range r.Groups {
		d := b.groups.DescribeGroup(id)
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.AuthorizedOperations = authorizedOperationsOmitted
		rg.ErrorCode = errCode(d.Err)
		if d.Err == nil {
			rg.State, rg.ProtocolType, rg.Protocol = d.State, d.ProtocolType, d.Protocol
			for _, m := range d.Members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
				rm.ProtocolMetadata, rm.MemberAssignment = nonNil(m.Metadata), nonNil(m.Assignment)
				rg.Members = append(rg.Members, rm)
			}
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
		rg.ErrorCode = errCode(b.groups.DeleteGroup(id))
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
