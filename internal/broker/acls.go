package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/acl"
)

// The ACL APIs (KIP-140, KIP-290 prefixed patterns): DescribeAcls v1–3 from the metadata
// image, CreateAcls and DeleteAcls v1–3 through the controller (forwarded to the active one).
// Without an authorizer they answer SECURITY_DISABLED, as Kafka does.

func init() {
	register(kmsg.DescribeACLs.Int16(), 1, 3, handleDescribeAcls)
	register(kmsg.CreateACLs.Int16(), 1, 3, handleCreateAcls)
	register(kmsg.DeleteACLs.Int16(), 1, 3, handleDeleteAcls)
}

const securityDisabled = "No Authorizer is configured."

func handleDescribeAcls(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeACLsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	if b.authorizer == nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(securityDisabled)
		return resp, nil
	}
	if !b.authorizeCluster(req, kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	f := acl.Filter{ResourceType: r.ResourceType, ResourceName: r.ResourceName, PatternType: r.ResourcePatternType,
		Principal: r.Principal, Host: r.Host, Operation: r.Operation, Permission: r.PermissionType}
	if err := f.Validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
		return resp, nil
	}
	type pattern struct {
		rt   kmsg.ACLResourceType
		name string
		pt   kmsg.ACLResourcePatternType
	}
	index := map[pattern]int{}
	for _, bd := range b.ctrl.Image().ACLBindings() {
		if !f.Matches(bd) {
			continue
		}
		p := pattern{bd.ResourceType, bd.ResourceName, bd.PatternType}
		i, ok := index[p]
		if !ok {
			i = len(resp.Resources)
			index[p] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = p.rt, p.name, p.pt
			resp.Resources = append(resp.Resources, res)
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
	return resp, nil
}

func handleCreateAcls(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	if code, msg, refused := b.refuseAclChange(req); refused {
		for range r.Creations {
			res := kmsg.NewCreateACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = code, msg
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}
	bindings := make([]acl.Binding, len(r.Creations))
	for i, c := range r.Creations {
		bindings[i] = acl.Binding{ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType}
	}
	for _, err := range b.ctrl.CreateAcls(req.conn.ctx, bindings) {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = errCode(err), errMessage(err)
		resp.Results = append(resp.Results, res)
	}
	b.awaitMetadata(req)
	return resp, nil
}

func handleDeleteAcls(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	if code, msg, refused := b.refuseAclChange(req); refused {
		for range r.Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = code, msg
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}
	filters := make([]acl.Filter, len(r.Filters))
	for i, f := range r.Filters {
		filters[i] = acl.Filter{ResourceType: f.ResourceType, ResourceName: f.ResourceName, PatternType: f.ResourcePatternType,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType}
	}
	for _, dr := range b.ctrl.DeleteAcls(req.conn.ctx, filters) {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = errCode(dr.Err), errMessage(dr.Err)
		for _, bd := range dr.Matches {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = bd.ResourceType, bd.ResourceName, bd.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
			res.MatchingACLs = append(res.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, res)
	}
	b.awaitMetadata(req)
	return resp, nil
}

// refuseAclChange says why CreateAcls or DeleteAcls is refused as a whole: no authorizer
// (SECURITY_DISABLED), or no ALTER on the cluster.
func (b *Broker) refuseAclChange(req *request) (code int16, msg *string, refused bool) {
	switch {
	case b.authorizer == nil:
		return kerr.SecurityDisabled.Code, kmsg.StringPtr(securityDisabled), true
	case !b.authorizeCluster(req, kmsg.ACLOperationAlter):
		return kerr.ClusterAuthorizationFailed.Code, nil, true
	}
	return 0, nil, false
}
