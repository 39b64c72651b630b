package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Partition reassignment (KIP-455): AlterPartitionReassignments v0–1 (v1: KIP-860) and
// ListPartitionReassignments v0, which kafka-reassign-partitions and the admin client send.
// The active controller serves them (controller/reassign.go); any other node forwards them
// there, as Kafka's brokers do, and the controller listener serves them too (KIP-919).
// Authorization (ALTER, DESCRIBE on CLUSTER) is dispatch's (clusterOps).
func init() {
	register(kmsg.AlterPartitionAssignments.Int16(), 0, 1, handleAlterPartitionReassignments)
	register(kmsg.ListPartitionReassignments.Int16(), 0, 0, handleListPartitionReassignments)
}

// Reassigner is the active controller's side of the reassignment APIs; the node's quorum
// member implements it.
type Reassigner interface {
	HandleAlterPartitionReassignments(ctx context.Context, r *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse
	HandleListPartitionReassignments(r *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse
}

func handleAlterPartitionReassignments(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	return b.onActiveController(req, r.TimeoutMillis, true, func(rs Reassigner) kmsg.Response {
		return rs.HandleAlterPartitionReassignments(req.conn.ctx, r)
	})
}

func handleListPartitionReassignments(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ListPartitionReassignmentsRequest)
	return b.onActiveController(req, r.TimeoutMillis, false, func(rs Reassigner) kmsg.Response {
		return rs.HandleListPartitionReassignments(r)
	})
}

// onActiveController runs handle when this node is the active controller, and otherwise sends
// the request there (bounded by timeoutMs, at least a second) and answers with its answer; a
// request that could not be sent gets the error in its top-level error code. A change
// (awaitChange) answered by another node waits until this node's image has it.
func (b *Broker) onActiveController(req *request, timeoutMs int32, awaitChange bool, handle func(Reassigner) kmsg.Response) (kmsg.Response, error) {
	rs, ok := b.quorum.(Reassigner)
	if !ok || b.quorum == nil {
		return refuseWith(req, kerr.NotController, "")
	}
	if b.quorum.IsLeader() {
		return handle(rs), nil
	}
	ctx, cancel := context.WithTimeout(req.conn.ctx, time.Duration(max(timeoutMs, 1000))*time.Millisecond)
	defer cancel()
	resp, err := b.quorum.Forward(ctx, req.kreq)
	if err != nil {
		ke := kerr.UnknownServerError
		errors.As(err, &ke)
		return refuseWith(req, ke, *errMessage(err))
	}
	resp.SetVersion(req.hdr.Version)
	if awaitChange {
		b.awaitMetadata(req)
	}
	return resp, nil
}
