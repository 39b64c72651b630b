package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
)

// This file translates the node-to-controller Kafka requests (kmsg) to the typed operations
// and back, for the controller listener to call.

// securityProtocols maps Kafka's security protocol IDs to their names.
var securityProtocols = map[int16]string{0: "PLAINTEXT", 1: "SSL", 2: "SASL_PLAINTEXT", 3: "SASL_SSL"}

// HandleBrokerRegistration serves a BrokerRegistration request: INCONSISTENT_CLUSTER_ID when
// the broker belongs to another cluster, INVALID_REQUEST for an unknown security protocol,
// else RegisterBroker's outcome and the broker epoch.
func (c *Controller) HandleBrokerRegistration(ctx context.Context, req *kmsg.BrokerRegistrationRequest) *kmsg.BrokerRegistrationResponse {
	resp := kmsg.NewPtrBrokerRegistrationResponse()
	resp.Version = req.Version
	resp.BrokerEpoch = -1
	if id := c.Image().ClusterID; req.ClusterID != id {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp
	}
	b := metadata.Broker{ID: req.BrokerID, IncarnationID: req.IncarnationID}
	if req.Rack != nil {
		b.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		proto, ok := securityProtocols[l.SecurityProtocol]
		if !ok {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
		b.Endpoints = append(b.Endpoints, metadata.Endpoint{Listener: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: proto})
	}
	epoch, err := c.RegisterBroker(ctx, b)
	if err == nil {
		if err = c.ensureNonVoter(b); err != nil {
			c.logger.Warn("adding a broker-only node to the metadata quorum failed", "broker", b.ID, "err", err)
			err = fmt.Errorf("%w: adding broker %d to the metadata quorum: %w", kerr.NotController, b.ID, err)
		}
	}
	if resp.ErrorCode = ErrorCode(err); err == nil {
		resp.BrokerEpoch = epoch
	}
	return resp
}

// HandleBrokerHeartbeat serves a BrokerHeartbeat request with BrokerHeartbeat. On an error the
// broker is told it is fenced and not caught up, as Kafka's defaults.
func (c *Controller) HandleBrokerHeartbeat(ctx context.Context, req *kmsg.BrokerHeartbeatRequest) *kmsg.BrokerHeartbeatResponse {
	resp := kmsg.NewPtrBrokerHeartbeatResponse()
	resp.Version = req.Version
	res, err := c.BrokerHeartbeat(ctx, HeartbeatRequest{
		BrokerID:              req.BrokerID,
		BrokerEpoch:           req.BrokerEpoch,
		CurrentMetadataOffset: req.CurrentMetadataOffset,
		WantFence:             req.WantFence,
		WantShutDown:          req.WantShutdown,
	})
	resp.ErrorCode = ErrorCode(err)
	resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = res.IsCaughtUp, res.IsFenced, res.ShouldShutDown
	if err != nil {
		resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = false, true, false
	}
	return resp
}

// HandleAlterPartition serves an AlterPartition request, v0-v1 by topic name, v2+ by topic
// ID, v3's ISR with broker epochs. Unknown topics get UNKNOWN_TOPIC_OR_PARTITION (by name) or
// UNKNOWN_TOPIC_ID; a request-wide error goes in the top-level error code.
func (c *Controller) HandleAlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) *kmsg.AlterPartitionResponse {
	resp := kmsg.NewPtrAlterPartitionResponse()
	resp.Version = req.Version
	img := c.Image()
	typed := AlterPartitionRequest{BrokerID: req.BrokerID, BrokerEpoch: req.BrokerEpoch}
	// unknown[i]: request topic i was given by a name (v0-v1) that no topic has.
	unknown := make(map[int]bool)
	for i, t := range req.Topics {
		topic := AlterPartitionTopic{TopicID: t.TopicID}
		if req.Version < 2 {
			if known, ok := img.Topic(t.Topic); ok {
				topic.TopicID = known.ID
			} else {
				unknown[i] = true
			}
		}
		for _, p := range t.Partitions {
			d := AlterPartitionData{Partition: p.Partition, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: p.NewISR}
			if req.Version >= 3 {
				d.NewISR = make([]int32, len(p.NewEpochISR))
				d.NewISRBrokerEpochs = make([]int64, len(p.NewEpochISR))
				for j, m := range p.NewEpochISR {
					d.NewISR[j], d.NewISRBrokerEpochs[j] = m.BrokerID, m.BrokerEpoch
				}
			}
			topic.Partitions = append(topic.Partitions, d)
		}
		if !unknown[i] {
			typed.Topics = append(typed.Topics, topic)
		}
	}
	results, err := c.AlterPartition(ctx, typed)
	if err != nil {
		resp.ErrorCode = ErrorCode(err)
		return resp
	}
	next := 0
	for i, t := range req.Topics {
		rt := kmsg.NewAlterPartitionResponseTopic()
		rt.Topic, rt.TopidID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterPartitionResponseTopicPartition()
			rp.Partition = p.Partition
			if unknown[i] {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				r := results[next]
				next++
				rp.ErrorCode = ErrorCode(r.Err)
				if r.Err == nil {
					rp.LeaderID, rp.LeaderEpoch, rp.PartitionEpoch = r.Partition.Leader, r.Partition.LeaderEpoch, r.Partition.PartitionEpoch
					rp.ISR = r.Partition.ISR
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// HandleElectLeaders serves an ElectLeaders request (v0 is always a preferred election; null
// topics mean every partition). v0 has no top-level error code: a request-wide error is then
// given to every requested partition.
func (c *Controller) HandleElectLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	resp := kmsg.NewPtrElectLeadersResponse()
	resp.Version = req.Version
	electionType := ElectionPreferred
	if req.Version >= 1 {
		electionType = req.ElectionType
	}
	var partitions map[string][]int32
	if req.Topics != nil {
		partitions = make(map[string][]int32, len(req.Topics))
		for _, t := range req.Topics {
			partitions[t.Topic] = append(partitions[t.Topic], t.Partitions...)
		}
	}
	results, err := c.ElectLeaders(ctx, electionType, partitions)
	if err != nil {
		resp.ErrorCode = ErrorCode(err)
		if req.Version >= 1 {
			return resp
		}
		for _, name := range sortedKeys(partitions) {
			for _, p := range dedupSorted(partitions[name]) {
				results = append(results, ElectionResult{Topic: name, Partition: p, Err: err})
			}
		}
	}
	for _, r := range results {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != r.Topic {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = r.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = r.Partition
		rp.ErrorCode = ErrorCode(r.Err)
		if r.Err != nil {
			msg := fmt.Sprint(r.Err)
			rp.ErrorMessage = &msg
		}
		t := &resp.Topics[len(resp.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	return resp
}

// raftVoterTimeout is how long AddRaftVoter waits for the new voter to catch up and the change
// to commit when the request gives no timeout, and RemoveRaftVoter's bound.
const raftVoterTimeout = 15 * time.Second

// errorMessage is the message of a refusal: a *KafkaError's own, else the error's text.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	msg := err.Error()
	return &msg
}

// checkClusterID refuses a request for another cluster (a nil id is not checked), as Kafka's
// Raft requests do.
func (c *Controller) checkClusterID(id *string) error {
	if id != nil && *id != c.Image().ClusterID {
		return &KafkaError{kerr.InconsistentClusterID, fmt.Sprintf("The cluster id %s in the request is not the cluster's id %s", *id, c.Image().ClusterID)}
	}
	return nil
}

// HandleAddRaftVoter serves AddRaftVoter (KIP-853) with AddVoter, waiting at most the
// request's timeout.
func (c *Controller) HandleAddRaftVoter(ctx context.Context, req *kmsg.AddRaftVoterRequest) *kmsg.AddRaftVoterResponse {
	resp := kmsg.NewPtrAddRaftVoterResponse()
	resp.Version = req.Version
	err := c.checkClusterID(req.ClusterID)
	if err == nil {
		timeout := raftVoterTimeout
		if req.TimeoutMillis > 0 {
			timeout = time.Duration(req.TimeoutMillis) * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var endpoints []metadata.Endpoint
		for _, l := range req.Listeners {
			endpoints = append(endpoints, metadata.Endpoint{Listener: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: "PLAINTEXT"})
		}
		err = c.AddVoter(ctx, req.VoterID, req.VoterDirectoryID, endpoints)
	}
	resp.ErrorCode, resp.ErrorMessage = ErrorCode(err), errorMessage(err)
	return resp
}

// HandleRemoveRaftVoter serves RemoveRaftVoter (KIP-853) with RemoveVoter.
func (c *Controller) HandleRemoveRaftVoter(ctx context.Context, req *kmsg.RemoveRaftVoterRequest) *kmsg.RemoveRaftVoterResponse {
	resp := kmsg.NewPtrRemoveRaftVoterResponse()
	resp.Version = req.Version
	err := c.checkClusterID(req.ClusterID)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, raftVoterTimeout)
		defer cancel()
		err = c.RemoveVoter(ctx, req.VoterID, req.VoterDirectoryID)
	}
	resp.ErrorCode, resp.ErrorMessage = ErrorCode(err), errorMessage(err)
	return resp
}

// HandleControllerRegistration serves ControllerRegistration (Kafka's controllers register
// with the active controller; Samsa's do in a dynamic quorum) with RegisterController.
func (c *Controller) HandleControllerRegistration(ctx context.Context, req *kmsg.ControllerRegistrationRequest) *kmsg.ControllerRegistrationResponse {
	resp := kmsg.NewPtrControllerRegistrationResponse()
	resp.Version = req.Version
	var endpoints []metadata.Endpoint
	for _, l := range req.Listeners {
		proto, ok := securityProtocols[l.SecurityProtocol]
		if !ok {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
		endpoints = append(endpoints, metadata.Endpoint{Listener: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: proto})
	}
	err := c.RegisterController(ctx, req.ControllerID, endpoints)
	resp.ErrorCode, resp.ErrorMessage = ErrorCode(err), errorMessage(err)
	return resp
}
