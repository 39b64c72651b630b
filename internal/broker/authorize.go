package broker

import (
	"net"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/auth"
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
	// checkSuperUserOnly: not checked per resource yet; with an authorizer, only super users
	// are served (the others get CLUSTER_AUTHORIZATION_FAILED where the response has a
	// top-level error, else the connection closes), so no API is open by mistake.
	checkSuperUserOnly
)

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
}

// notCheckedYet are the served APIs whose per-resource checks are still to come: with an
// authorizer they are served to super users only.
var notCheckedYet = []kmsg.Key{
	kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.Heartbeat,
	kmsg.LeaveGroup, kmsg.SyncGroup, kmsg.DescribeGroups, kmsg.ListGroups, kmsg.CreateTopics,
	kmsg.DeleteTopics, kmsg.DeleteRecords, kmsg.OffsetForLeaderEpoch, kmsg.AddPartitionsToTxn,
	kmsg.AddOffsetsToTxn, kmsg.EndTxn, kmsg.WriteTxnMarkers, kmsg.TxnOffsetCommit,
	kmsg.DescribeConfigs, kmsg.AlterConfigs, kmsg.DescribeLogDirs, kmsg.CreatePartitions,
	kmsg.DeleteGroups, kmsg.ElectLeaders, kmsg.IncrementalAlterConfigs, kmsg.OffsetDelete,
	kmsg.DescribeUserSCRAMCredentials, kmsg.AlterUserSCRAMCredentials, kmsg.DescribeQuorum,
	kmsg.AlterPartition, kmsg.UpdateFeatures, kmsg.DescribeCluster, kmsg.DescribeProducers,
	kmsg.BrokerRegistration, kmsg.BrokerHeartbeat, kmsg.DescribeTransactions,
	kmsg.ListTransactions, kmsg.AllocateProducerIDs, kmsg.ConsumerGroupHeartbeat,
	kmsg.ConsumerGroupDescribe, kmsg.ControllerRegistration, kmsg.DescribeTopicPartitions,
	kmsg.AddRaftVoter, kmsg.RemoveRaftVoter,
}

func init() {
	for _, k := range notCheckedYet {
		if _, dup := apiAuthorization[k.Int16()]; !dup {
			apiAuthorization[k.Int16()] = checkSuperUserOnly
		}
	}
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
func (b *Broker) authorize(req *request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if b.authorizer == nil {
		return true
	}
	return b.authorizer.Authorize(b.aclBindings(), acl.Request{Principal: req.conn.authPrincipal(), Host: req.conn.host(),
		Operation: op, ResourceType: rt, ResourceName: name})
}

// authorizeAnyTopicWrite reports whether the principal may write to some topic.
func (b *Broker) authorizeAnyTopicWrite(req *request) bool {
	if b.authorizer == nil {
		return true
	}
	return b.authorizer.AuthorizeAny(b.aclBindings(), acl.Request{Principal: req.conn.authPrincipal(), Host: req.conn.host(),
		Operation: kmsg.ACLOperationWrite, ResourceType: kmsg.ACLResourceTypeTopic})
}

// authorizeCluster is authorize on the CLUSTER resource.
func (b *Broker) authorizeCluster(req *request, op kmsg.ACLOperation) bool {
	return b.authorize(req, op, kmsg.ACLResourceTypeCluster, acl.ClusterName)
}

// isSuperUser reports whether the request's principal is a super user (always true without
// an authorizer).
func (b *Broker) isSuperUser(req *request) bool {
	return b.authorizer == nil || b.authorizer.SuperUsers[req.conn.authPrincipal()]
}

// errNotAuthorized closes the connection of a request refused by an API that has no top-level
// error code to answer with.
type errNotAuthorized struct{ api string }

func (e errNotAuthorized) Error() string {
	return e.api + " is served to super users only while authorization of its resources is not implemented"
}

// refuseUnchecked answers a request of a checkSuperUserOnly API from a principal that is not
// a super user: CLUSTER_AUTHORIZATION_FAILED in the response's top-level error code.
func refuseUnchecked(req *request) (kmsg.Response, error) {
	resp := req.kreq.ResponseKind()
	resp.SetVersion(req.hdr.Version)
	v := reflect.ValueOf(resp).Elem()
	f := v.FieldByName("ErrorCode")
	if !f.IsValid() || f.Kind() != reflect.Int16 {
		return nil, errNotAuthorized{kmsg.NameForKey(req.hdr.Key)}
	}
	f.SetInt(int64(kerr.ClusterAuthorizationFailed.Code))
	if m := v.FieldByName("ErrorMessage"); m.IsValid() && m.Type() == reflect.TypeOf((*string)(nil)) {
		msg := errNotAuthorized{kmsg.NameForKey(req.hdr.Key)}.Error()
		m.Set(reflect.ValueOf(&msg))
	}
	return resp, nil
}
