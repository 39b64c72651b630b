package broker

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
)

// The controller listener serves Kafka clients the APIs Kafka's controllers serve them
// (KIP-919: admin clients with --bootstrap-controller, and brokers' requests to the active
// controller); other APIs close the connection there, as Kafka does for an API a listener does
// not enable. The node-to-controller APIs (registration, heartbeats, ISR changes, producer-id
// blocks) are served only there.
var controllerListenerAPIs = map[int16]bool{
	kmsg.ApiVersions.Int16():             true,
	kmsg.SASLHandshake.Int16():           true, // a SASL controller listener's login
	kmsg.SASLAuthenticate.Int16():        true,
	kmsg.CreateTopics.Int16():            true,
	kmsg.DeleteTopics.Int16():            true,
	kmsg.CreatePartitions.Int16():        true,
	kmsg.DescribeConfigs.Int16():         true,
	kmsg.AlterConfigs.Int16():            true,
	kmsg.IncrementalAlterConfigs.Int16(): true,
	kmsg.UpdateFeatures.Int16():          true,
	kmsg.DescribeCluster.Int16():         true,
	kmsg.DescribeQuorum.Int16():          true,
	kmsg.AllocateProducerIDs.Int16():     true,
	kmsg.BrokerRegistration.Int16():      true,
	kmsg.BrokerHeartbeat.Int16():         true,
	kmsg.AlterPartition.Int16():          true,
	kmsg.ElectLeaders.Int16():            true,
	kmsg.ControllerRegistration.Int16():  true,
	kmsg.AddRaftVoter.Int16():            true,
	kmsg.RemoveRaftVoter.Int16():         true,

	// Partition reassignment (KIP-455), which Kafka's controllers serve (KIP-919).
	kmsg.AlterPartitionAssignments.Int16():  true,
	kmsg.ListPartitionReassignments.Int16(): true,

	kmsg.AlterUserSCRAMCredentials.Int16():    true,
	kmsg.DescribeUserSCRAMCredentials.Int16(): true,

	kmsg.DescribeACLs.Int16(): true,
	kmsg.CreateACLs.Int16():   true,
	kmsg.DeleteACLs.Int16():   true,

	kmsg.AlterClientQuotas.Int16(): true,
	// Kafka's controllers do not serve DescribeClientQuotas (its admin client never asks them);
	// served here for tools that read back what they altered on the controller listener.
	kmsg.DescribeClientQuotas.Int16(): true,

	// Forwarded by brokers with the requester's principal (wire.RequesterPrincipalTag); Kafka's
	// controllers serve them (DescribeDelegationToken is the brokers' alone).
	kmsg.CreateDelegationToken.Int16(): true,
	kmsg.RenewDelegationToken.Int16():  true,
	kmsg.ExpireDelegationToken.Int16(): true,
}

// controllerOnlyAPIs are refused on client listeners: only nodes send them, to the active
// controller.
var controllerOnlyAPIs = map[int16]bool{
	kmsg.AllocateProducerIDs.Int16():    true,
	kmsg.BrokerRegistration.Int16():     true,
	kmsg.BrokerHeartbeat.Int16():        true,
	kmsg.AlterPartition.Int16():         true,
	kmsg.ControllerRegistration.Int16(): true,
}

// servedOn reports whether API key is served on a connection of the controller listener
// (controllerPort) or a client listener.
func servedOn(key int16, controllerPort bool) bool {
	if controllerPort {
		return controllerListenerAPIs[key]
	}
	return !controllerOnlyAPIs[key]
}

// Quorum is the node's member of the metadata quorum, as the controller-listener APIs need
// it. The server sets it (SetQuorum); nil on a broker built without one (tests).
type Quorum interface {
	IsLeader() bool
	Leader() (id int32, addr string, ok bool)
	Voters() []controller.Voter
	QuorumInfo() (controller.QuorumInfo, error)
	ReportMetadataOffset(id int32, offset int64)
	// BrokerConnectionLost is told that the connection a broker heartbeated on closed.
	BrokerConnectionLost(id int32, epoch int64) bool
	// Forward sends a request to the active controller and returns its answer.
	Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// SetQuorum sets the node's quorum member; call it before Serve.
func (b *Broker) SetQuorum(q Quorum) { b.quorum = q }

func init() {
	register(kmsg.DescribeQuorum.Int16(), 0, 2, handleDescribeQuorum)
}

// metadataTopic is the name Kafka gives the metadata log in DescribeQuorum.
const metadataTopic = "__cluster_metadata"

// handleDescribeQuorum answers from the active controller's knowledge: a node that is not it
// asks it (Kafka's brokers forward DescribeQuorum too); a request for another topic or
// partition gets UNKNOWN_TOPIC_OR_PARTITION.
func handleDescribeQuorum(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeQuorumRequest)
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	if b.quorum == nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil
	}
	if !b.quorum.IsLeader() {
		ctx, cancel := context.WithTimeout(req.conn.ctx, 10*time.Second)
		defer cancel()
		fwd := kmsg.NewPtrDescribeQuorumRequest()
		fwd.Topics = r.Topics
		fr, err := b.quorum.Forward(ctx, fwd)
		if err != nil {
			resp.ErrorCode = errCode(err)
			resp.ErrorMessage = errMessage(err)
			return resp, nil
		}
		out := fr.(*kmsg.DescribeQuorumResponse)
		out.SetVersion(r.Version)
		return out, nil
	}
	info, err := b.quorum.QuorumInfo()
	if err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		resp.ErrorMessage = errMessage(err)
		return resp, nil
	}
	for _, rt := range r.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			if rt.Topic != metadataTopic || rp.Partition != 0 {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				t.Partitions = append(t.Partitions, p)
				continue
			}
			p.LeaderID, p.LeaderEpoch, p.HighWatermark = info.LeaderID, info.LeaderEpoch, info.HighWatermark
			p.CurrentVoters = quorumReplicas(info.Voters)
			p.Observers = quorumReplicas(info.Observers)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	// Nodes: the voters' endpoints, as Kafka's leader answers (v2).
	for _, v := range info.Voters {
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = v.ID
		for _, e := range v.Endpoints {
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = e.Listener, e.Host, uint16(e.Port)
			n.Listeners = append(n.Listeners, l)
		}
		if len(n.Listeners) == 0 {
			host, portStr, err := net.SplitHostPort(v.Addr)
			if err != nil {
				continue
			}
			port, _ := strconv.Atoi(portStr)
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = b.cfg.ControllerListener, host, uint16(port)
			n.Listeners = append(n.Listeners, l)
		}
		resp.Nodes = append(resp.Nodes, n)
	}
	return resp, nil
}

func quorumReplicas(rs []controller.QuorumReplica) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	out := make([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState, 0, len(rs))
	for _, r := range rs {
		s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		s.ReplicaID, s.ReplicaDirectoryID, s.LogEndOffset = r.ID, r.DirectoryID, r.LogEndOffset
		if !r.LastFetch.IsZero() {
			s.LastFetchTimestamp = r.LastFetch.UnixMilli()
		}
		if !r.LastCaughtUp.IsZero() {
			s.LastCaughtUpTimestamp = r.LastCaughtUp.UnixMilli()
		}
		out = append(out, s)
	}
	return out
}

// describeControllers answers DescribeCluster with EndpointType 2 (controllers, KIP-919), as a
// controller does: the voters' controller listeners and the active controller's id.
func (b *Broker) describeControllers(resp *kmsg.DescribeClusterResponse) {
	resp.EndpointType = 2
	resp.ControllerID = -1
	if b.quorum == nil {
		return
	}
	if id, _, ok := b.quorum.Leader(); ok {
		resp.ControllerID = id
	}
	voters := b.quorum.Voters()
	if len(voters) == 0 { // a single node: itself
		if _, addr, ok := b.quorum.Leader(); ok {
			voters = []controller.Voter{{ID: b.cfg.NodeID, Addr: addr}}
		}
	}
	for _, v := range voters {
		host, portStr, err := net.SplitHostPort(v.Addr)
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(portStr)
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port = v.ID, host, int32(port)
		resp.Brokers = append(resp.Brokers, db)
	}
}

func init() {
	register(kmsg.AllocateProducerIDs.Int16(), 0, 0, handleAllocateProducerIDs)
}

// handleAllocateProducerIDs hands a broker a block of producer ids (Kafka's
// AllocateProducerIds), on the active controller.
func handleAllocateProducerIDs(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AllocateProducerIDsRequest)
	resp := r.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	first, err := b.ctrl.AllocateProducerIDs(req.conn.ctx, producerIDBlock)
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	resp.ProducerIDStart, resp.ProducerIDLen = first, producerIDBlock
	return resp, nil
}

// NodeLifecycle is the active controller's side of the node-to-controller APIs; the node's
// quorum member implements it.
type NodeLifecycle interface {
	HandleBrokerRegistration(ctx context.Context, r *kmsg.BrokerRegistrationRequest) *kmsg.BrokerRegistrationResponse
	HandleBrokerHeartbeat(ctx context.Context, r *kmsg.BrokerHeartbeatRequest) *kmsg.BrokerHeartbeatResponse
	HandleAlterPartition(ctx context.Context, r *kmsg.AlterPartitionRequest) *kmsg.AlterPartitionResponse
	HandleElectLeaders(ctx context.Context, r *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse
	HandleControllerRegistration(ctx context.Context, r *kmsg.ControllerRegistrationRequest) *kmsg.ControllerRegistrationResponse
	HandleAddRaftVoter(ctx context.Context, r *kmsg.AddRaftVoterRequest) *kmsg.AddRaftVoterResponse
	HandleRemoveRaftVoter(ctx context.Context, r *kmsg.RemoveRaftVoterRequest) *kmsg.RemoveRaftVoterResponse
}

func init() {
	register(kmsg.BrokerRegistration.Int16(), 0, 4, handleBrokerRegistration)
	register(kmsg.BrokerHeartbeat.Int16(), 0, 1, handleBrokerHeartbeat)
	register(kmsg.AlterPartition.Int16(), 0, 3, handleAlterPartition)
	register(kmsg.ElectLeaders.Int16(), 0, 2, handleElectLeaders)
}

func handleAlterPartition(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AlterPartitionRequest)
	nl := b.lifecycle()
	if nl == nil {
		resp := r.ResponseKind().(*kmsg.AlterPartitionResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	return nl.HandleAlterPartition(req.conn.ctx, r), nil
}

// handleElectLeaders runs on the active controller; another node forwards it there (Kafka's
// brokers forward ElectLeaders too), so kafka-leader-election works with --bootstrap-server.
func handleElectLeaders(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ElectLeadersRequest)
	nl := b.lifecycle()
	if nl == nil || b.quorum == nil {
		resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	if !b.quorum.IsLeader() {
		ctx, cancel := context.WithTimeout(req.conn.ctx, time.Duration(max(r.TimeoutMillis, 1000))*time.Millisecond)
		defer cancel()
		fwd := *r
		resp, err := b.quorum.Forward(ctx, &fwd)
		if err != nil {
			out := r.ResponseKind().(*kmsg.ElectLeadersResponse)
			out.ErrorCode = errCode(err)
			return out, nil
		}
		resp.SetVersion(r.Version)
		b.awaitMetadata(req)
		return resp, nil
	}
	return nl.HandleElectLeaders(req.conn.ctx, r), nil
}

func (b *Broker) lifecycle() NodeLifecycle {
	if nl, ok := b.quorum.(NodeLifecycle); ok {
		return nl
	}
	return nil
}

func handleBrokerRegistration(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.BrokerRegistrationRequest)
	nl := b.lifecycle()
	if nl == nil {
		resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	return nl.HandleBrokerRegistration(req.conn.ctx, r), nil
}

func handleBrokerHeartbeat(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.BrokerHeartbeatRequest)
	nl := b.lifecycle()
	if nl == nil {
		resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	resp := nl.HandleBrokerHeartbeat(req.conn.ctx, r)
	if resp.ErrorCode == 0 {
		b.quorum.ReportMetadataOffset(r.BrokerID, r.CurrentMetadataOffset)
		req.conn.heartbeatOf = &brokerRef{id: r.BrokerID, epoch: r.BrokerEpoch}
	}
	return resp, nil
}

// brokerRef names a broker registration: the connection it heartbeats on remembers it, so
// that the connection's end can be reported (Quorum.BrokerConnectionLost).
type brokerRef struct {
	id    int32
	epoch int64
}

// connectionEnded reports the end of a connection that carried broker heartbeats.
func (b *Broker) connectionEnded(c *conn) {
	if c.heartbeatOf == nil || b.quorum == nil || b.ctx.Err() != nil {
		return
	}
	ref := *c.heartbeatOf
	go b.quorum.BrokerConnectionLost(ref.id, ref.epoch)
}
