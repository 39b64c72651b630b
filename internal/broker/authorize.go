package broker

import (
	"bytes"
	"fmt"
	"net"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
)

// Authorization (authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer):
// every API is in apiAuthorization, which says how its requests are checked. Without an
// authorizer nothing is checked and nothing here runs.
type authCheck int

const (
	// checkNone: served to every authenticated principal (ApiVersions, the SASL exchange).
	checkNone authCheck = iota
	// checkInHandler: the handler checks each resource with Kafka's operations and answers
	// Kafka's errors (per topic, partition, group...).
	checkInHandler
	// checkCluster: the operation of clusterOps on the CLUSTER resource, checked by dispatch
	// (CLUSTER_AUTHORIZATION_FAILED in the top-level error code).
	checkCluster
	// checkTxn: WRITE on the request's transactional id (its TransactionalID field), then READ
	// on its group if it has one (AddOffsetsToTxn), checked by dispatch
	// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED).
	checkTxn
	// checkGroup: the operation of groupOps on the request's group (its Group field),
	// checked by dispatch (GROUP_AUTHORIZATION_FAILED in the top-level error code).
	checkGroup
)

// clusterOps are the operations of the checkCluster APIs on the CLUSTER resource (Kafka's).
var clusterOps = map[int16]kmsg.ACLOperation{
	kmsg.AlterPartition.Int16():               kmsg.ACLOperationClusterAction,
	kmsg.BrokerRegistration.Int16():           kmsg.ACLOperationClusterAction,
	kmsg.BrokerHeartbeat.Int16():              kmsg.ACLOperationClusterAction,
	kmsg.AllocateProducerIDs.Int16():          kmsg.ACLOperationClusterAction,
	kmsg.ControllerRegistration.Int16():       kmsg.ACLOperationClusterAction,
	kmsg.DescribeQuorum.Int16():               kmsg.ACLOperationDescribe,
	kmsg.AddRaftVoter.Int16():                 kmsg.ACLOperationAlter,
	kmsg.RemoveRaftVoter.Int16():              kmsg.ACLOperationAlter,
	kmsg.UpdateFeatures.Int16():               kmsg.ACLOperationAlter,
	kmsg.ElectLeaders.Int16():                 kmsg.ACLOperationAlter,
	kmsg.AlterPartitionAssignments.Int16():    kmsg.ACLOperationAlter,
	kmsg.ListPartitionReassignments.Int16():   kmsg.ACLOperationDescribe,
	kmsg.DescribeLogDirs.Int16():              kmsg.ACLOperationDescribe,
	kmsg.DescribeUserSCRAMCredentials.Int16(): kmsg.ACLOperationDescribe,
	kmsg.DescribeClientQuotas.Int16():         kmsg.ACLOperationDescribeConfigs,
}

// groupOps are the operations of the checkGroup APIs on the request's group (Kafka's).
var groupOps = map[int16]kmsg.ACLOperation{
	kmsg.JoinGroup.Int16():              kmsg.ACLOperationRead,
	kmsg.SyncGroup.Int16():              kmsg.ACLOperationRead,
	kmsg.Heartbeat.Int16():              kmsg.ACLOperationRead,
	kmsg.LeaveGroup.Int16():             kmsg.ACLOperationRead,
	kmsg.ConsumerGroupHeartbeat.Int16(): kmsg.ACLOperationRead,
}

// apiAuthorization says how each API the broker serves is authorized.
// TestAPIAuthorizationTable fails when a registered API has no entry.
var apiAuthorization = map[int16]authCheck{
	kmsg.ApiVersions.Int16():      checkNone,
	kmsg.SASLHandshake.Int16():    checkNone,
	kmsg.SASLAuthenticate.Int16(): checkNone,

	kmsg.Produce.Int16():     checkInHandler, // WRITE topic; WRITE transactional id
	kmsg.Fetch.Int16():       checkInHandler, // READ topic; CLUSTER_ACTION for a replica
	kmsg.Metadata.Int16():    checkInHandler, // DESCRIBE topic (hidden), CREATE to auto-create
	kmsg.ListOffsets.Int16(): checkInHandler, // DESCRIBE topic; CLUSTER_ACTION for a replica
	// WRITE on the transactional id; IDEMPOTENT_WRITE on the cluster or WRITE on a topic.
	kmsg.InitProducerID.Int16(): checkInHandler,
	kmsg.DescribeACLs.Int16():   checkInHandler, // DESCRIBE cluster
	kmsg.CreateACLs.Int16():     checkInHandler, // ALTER cluster
	kmsg.DeleteACLs.Int16():     checkInHandler, // ALTER cluster
	// DESCRIBE on the group or the transactional id.
	kmsg.FindCoordinator.Int16(): checkInHandler,
	kmsg.OffsetCommit.Int16():    checkInHandler, // READ group, READ topic
	kmsg.OffsetFetch.Int16():     checkInHandler, // DESCRIBE group, DESCRIBE topic
	kmsg.CreateTopics.Int16():    checkInHandler, // CREATE cluster or topic
	kmsg.DeleteTopics.Int16():    checkInHandler, // DELETE topic
	// DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, or on the cluster for a broker.
	kmsg.DescribeConfigs.Int16():         checkInHandler,
	kmsg.DescribeGroups.Int16():          checkInHandler, // DESCRIBE group
	kmsg.ListGroups.Int16():              checkInHandler, // DESCRIBE cluster, or the groups one may DESCRIBE
	kmsg.DeleteGroups.Int16():            checkInHandler, // DELETE group
	kmsg.OffsetForLeaderEpoch.Int16():    checkInHandler, // DESCRIBE topic; CLUSTER_ACTION for a replica
	kmsg.DeleteRecords.Int16():           checkInHandler, // DELETE topic
	kmsg.CreatePartitions.Int16():        checkInHandler, // ALTER topic
	kmsg.DescribeTopicPartitions.Int16(): checkInHandler, // DESCRIBE topic (hidden)
	kmsg.AlterConfigs.Int16():            checkInHandler,
	kmsg.IncrementalAlterConfigs.Int16(): checkInHandler,
	kmsg.AlterClientQuotas.Int16():       checkInHandler, // ALTER_CONFIGS cluster, per entry
	// Kafka checks nothing but the authorized operations asked for (not served).
	kmsg.DescribeCluster.Int16(): checkNone,
	// v0-3: WRITE on the transactional id and the topics; v4+ (leaders): CLUSTER_ACTION.
	kmsg.AddPartitionsToTxn.Int16(): checkInHandler,
	// WRITE on the transactional id, READ on the group and the topics.
	kmsg.TxnOffsetCommit.Int16(): checkInHandler,
	// DESCRIBE on each transactional id (ListTransactions lists only those).
	kmsg.DescribeTransactions.Int16(): checkInHandler,
	kmsg.ListTransactions.Int16():     checkInHandler,
	kmsg.DescribeProducers.Int16():    checkInHandler, // READ on the topic
	// CLUSTER_ACTION / ALTER on the cluster; their responses have no top-level error code, so
	// the handler answers each partition or user with Kafka's error.
	kmsg.WriteTxnMarkers.Int16():           checkInHandler,
	kmsg.AlterUserSCRAMCredentials.Int16(): checkInHandler,
	// DELETE on the group, READ on each topic.
	kmsg.OffsetDelete.Int16(): checkInHandler,
	// DESCRIBE on each group; a group with a member assigned a topic the principal may not
	// DESCRIBE is TOPIC_AUTHORIZATION_FAILED.
	kmsg.ConsumerGroupDescribe.Int16(): checkInHandler,
	// CREATE_TOKENS on the owner's USER resource for a token of another owner.
	kmsg.CreateDelegationToken.Int16(): checkInHandler,
	// The tokens the principal owns, requested or renews, or may DESCRIBE (DELEGATION_TOKEN)
	// or DESCRIBE_TOKENS (its owner's USER resource).
	kmsg.DescribeDelegationToken.Int16(): checkInHandler,
	// No ACL: the controller checks that the principal is the token's owner, requester or a
	// renewer (DELEGATION_TOKEN_OWNER_MISMATCH), as Kafka does.
	kmsg.RenewDelegationToken.Int16():  checkNone,
	kmsg.ExpireDelegationToken.Int16(): checkNone,
}

func init() {
	for key := range clusterOps {
		apiAuthorization[key] = checkCluster
	}
	for key := range groupOps {
		apiAuthorization[key] = checkGroup
	}
	apiAuthorization[kmsg.EndTxn.Int16()] = checkTxn
	apiAuthorization[kmsg.AddOffsetsToTxn.Int16()] = checkTxn
}

// aclCache holds the ACL bindings of the last image asked about, so that the bindings are
// listed once per image and not once per check.
type aclCache struct {
	img      *metadata.Image
	bindings []acl.Binding
}

func (b *Broker) aclBindings() []acl.Binding {
	img := b.ctrl.Image()
	if c := b.acls.Load(); c != nil && c.img == img {
		return c.bindings
	}
	c := &aclCache{img: img, bindings: img.ACLBindings()}
	b.acls.Store(c)
	return c.bindings
}

// principal returns the connection's principal (User:ANONYMOUS before any).
func (c *conn) authPrincipal() string {
	if c.principal == "" {
		return auth.Anonymous
	}
	return c.principal
}

// host is the client's address as ACLs name it (the IP, no port).
func (c *conn) host() string {
	h, _, err := net.SplitHostPort(c.remote())
	if err != nil {
		return c.remote()
	}
	return h
}

// authorize reports whether the request's principal may perform op on the resource; always
// true without an authorizer.
//
// The controller listener is not authorized per resource: it serves the nodes' own requests
// (registration, heartbeats, forwarded admin requests already authorized by the broker that
// forwards them). PLAINTEXT (User:ANONYMOUS), it must be reachable by the nodes alone; SSL
// (mutual TLS) or SASL, dispatch serves only principals with CLUSTER_ACTION there
// (controllerListenerAuthorize).
func (b *Broker) authorize(req *request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if b.authorizer == nil || req.conn.controllerPort {
		return true
	}
	return b.authorizer.Authorize(b.aclBindings(), acl.Request{Principal: req.conn.authPrincipal(), Host: req.conn.host(),
		Operation: op, ResourceType: rt, ResourceName: name})
}

// authorizedOperations is the bitfield of the operations the request's principal may perform
// on the resource, of those that apply to its type (Kafka's AuthHelper.authorizedOperations):
// all of them without an authorizer.
func (b *Broker) authorizedOperations(req *request, rt kmsg.ACLResourceType, name string) int32 {
	var allowed []kmsg.ACLOperation
	for _, op := range acl.SupportedOperations(rt) {
		if b.authorize(req, op, rt, name) {
			allowed = append(allowed, op)
		}
	}
	return acl.OperationsBitfield(allowed)
}

// clusterAuthorizedOperations is authorizedOperations on the cluster as Metadata v8-10 and
// DescribeCluster answer it: 0 for a principal that may not DESCRIBE the cluster.
func (b *Broker) clusterAuthorizedOperations(req *request) int32 {
	if !b.authorizeCluster(req, kmsg.ACLOperationDescribe) {
		return 0
	}
	return b.authorizedOperations(req, kmsg.ACLResourceTypeCluster, acl.ClusterName)
}

// authorizeAnyTopicWrite reports whether the principal may write to some topic.
func (b *Broker) authorizeAnyTopicWrite(req *request) bool {
	if b.authorizer == nil || req.conn.controllerPort {
		return true
	}
	return b.authorizer.AuthorizeAny(b.aclBindings(), acl.Request{Principal: req.conn.authPrincipal(), Host: req.conn.host(),
		Operation: kmsg.ACLOperationWrite, ResourceType: kmsg.ACLResourceTypeTopic})
}

// authorizeCluster is authorize on the CLUSTER resource.
func (b *Broker) authorizeCluster(req *request, op kmsg.ACLOperation) bool {
	return b.authorize(req, op, kmsg.ACLResourceTypeCluster, acl.ClusterName)
}

// dispatchAuthorize runs the checks of dispatch: nil when the request may go to its handler,
// else the refusal to send.
func (b *Broker) dispatchAuthorize(req *request) (kmsg.Response, error, bool) {
	if req.conn.controllerPort {
		return b.controllerListenerAuthorize(req)
	}
	switch apiAuthorization[req.hdr.Key] {
	case checkCluster:
		if !b.authorizeCluster(req, clusterOps[req.hdr.Key]) {
			resp, err := refuseWith(req, kerr.ClusterAuthorizationFailed, "")
			return resp, err, true
		}
	case checkTxn:
		v := reflect.ValueOf(req.kreq).Elem()
		if !b.authorize(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, v.FieldByName("TransactionalID").String()) {
			resp, err := refuseWith(req, kerr.TransactionalIDAuthorizationFailed, "")
			return resp, err, true
		}
		if g := v.FieldByName("Group"); g.IsValid() && !b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, g.String()) {
			resp, err := refuseWith(req, kerr.GroupAuthorizationFailed, "")
			return resp, err, true
		}
	case checkGroup:
		group := reflect.ValueOf(req.kreq).Elem().FieldByName("Group").String()
		if !b.authorize(req, groupOps[req.hdr.Key], kmsg.ACLResourceTypeGroup, group) {
			resp, err := refuseWith(req, kerr.GroupAuthorizationFailed, "")
			return resp, err, true
		}
	}
	return nil, nil, false
}

// controllerListenerAuthorize is dispatch's check on the controller listener. PLAINTEXT, it
// is not authorized (see authorize). An SSL one (mutual TLS) or a SASL one serves the
// principals that may CLUSTER_ACTION on the cluster: the nodes (their certificates' or logins'
// principals, super users or granted it) and super users; anyone else gets
// CLUSTER_AUTHORIZATION_FAILED (or the connection closes) but for ApiVersions and the SASL
// exchange.
func (b *Broker) controllerListenerAuthorize(req *request) (kmsg.Response, error, bool) {
	if b.cfg.ControllerProtocol == config.ProtocolPlaintext || b.authorizer == nil || apiAuthorization[req.hdr.Key] == checkNone {
		return nil, nil, false
	}
	if b.authorizer.Authorize(b.aclBindings(), acl.Request{Principal: req.conn.authPrincipal(), Host: req.conn.host(),
		Operation: kmsg.ACLOperationClusterAction, ResourceType: kmsg.ACLResourceTypeCluster, ResourceName: acl.ClusterName}) {
		return nil, nil, false
	}
	resp, err := refuseWith(req, kerr.ClusterAuthorizationFailed, "")
	return resp, err, true
}

// refuseWith answers a refused request with code in the response's top-level error code (and
// msg, if any, in its message); a response without one closes the connection.
func refuseWith(req *request, code *kerr.Error, msg string) (kmsg.Response, error) {
	resp := req.kreq.ResponseKind()
	resp.SetVersion(req.hdr.Version)
	v := reflect.ValueOf(resp).Elem()
	f := v.FieldByName("ErrorCode")
	noCode := fmt.Errorf("%s v%d refused (%s) and its response has no top-level error code", kmsg.NameForKey(req.hdr.Key), req.hdr.Version, code.Message)
	if !f.IsValid() || f.Kind() != reflect.Int16 {
		return nil, noCode
	}
	empty := resp.AppendTo(nil)
	f.SetInt(int64(code.Code))
	if bytes.Equal(empty, resp.AppendTo(nil)) { // the field is not in this version
		return nil, noCode
	}
	if m := v.FieldByName("ErrorMessage"); msg != "" && m.IsValid() && m.Type() == reflect.TypeOf((*string)(nil)) {
		m.Set(reflect.ValueOf(&msg))
	}
	return resp, nil
}
