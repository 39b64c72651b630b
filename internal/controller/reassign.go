package controller

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
)

// This file holds partition reassignment (KIP-455) as Kafka's KRaft controller runs it
// (ReplicationControlManager.alterPartitionReassignments and listPartitionReassignments, the
// rules of PartitionReassignmentReplicas, PartitionReassignmentRevert and
// PartitionChangeBuilder's completion):
//
//   - A reassignment to target sets the replicas to target ++ (current − target), adding =
//     target − current, removing = current − target; the ISR and leader stay.
//   - It completes once every target replica is in the ISR (less the removing replicas, never
//     empty): replicas = target, ISR = ISR − removing, adding and removing cleared, and a
//     leader that is being removed hands over to the first target replica in the ISR. That is
//     checked when the reassignment is made and whenever a leader grows the ISR
//     (AlterPartition), in the same record as the ISR change.
//   - Cancelling (null replicas) reverts to the original replicas (current − adding) with
//     ISR − adding; an ISR left empty takes the first original replica, an unclean election
//     refused unless unclean.leader.election.enable.
//
// Brokers act on the image: a node added to a partition's replicas opens the log and follows
// the leader, a node removed from them deletes its log (replica.Manager.Apply).

// Reassignment asks for one partition's replicas to become Replicas; nil Replicas cancels the
// partition's reassignment in progress.
type Reassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32
}

// ReassignmentResult is the outcome for one partition, in request order. Err wraps a
// *kerr.Error.
type ReassignmentResult struct {
	Topic     string
	Partition int32
	Err       error
}

// OngoingReassignment is a partition with a reassignment in progress, as
// ListPartitionReassignments describes it.
type OngoingReassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32
	Adding    []int32
	Removing  []int32
}

// AlterPartitionReassignments starts or cancels the given reassignments; all the accepted ones
// are committed in one proposal. allowRFChange false (KIP-860) refuses a target whose length is
// not the partition's replication factor. The error is the whole request's (NOT_CONTROLLER, a
// failed proposal) and wraps a *kerr.Error.
func (c *Controller) AlterPartitionReassignments(ctx context.Context, reqs []Reassignment, allowRFChange bool) ([]ReassignmentResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return nil, err
	}
	plan := recordPlan{img: c.Image()}
	results := make([]ReassignmentResult, 0, len(reqs))
	for _, r := range reqs {
		rec, changed, err := planReassignment(plan.img, r, allowRFChange, c.cfg.UncleanLeaderElection)
		if err == nil && changed {
			if err := plan.add(rec); err != nil {
				return nil, err
			}
		}
		results = append(results, ReassignmentResult{Topic: r.Topic, Partition: r.Partition, Err: err})
	}
	if len(plan.recs) == 0 {
		return results, nil
	}
	if _, err := c.proposeLocked(ctx, plan.recs...); err != nil {
		return nil, err
	}
	c.logger.Info("altered partition reassignments", "changes", len(plan.recs))
	return results, nil
}

// ListPartitionReassignments returns the reassignments in progress of the given partitions
// (by topic name), or of every partition when partitions is nil, sorted by topic and
// partition. Unknown topics and partitions are left out, as Kafka does. It reads this node's
// image; the active controller's is the one to ask.
func ListPartitionReassignments(img *metadata.Image, partitions map[string][]int32) []OngoingReassignment {
	var out []OngoingReassignment
	add := func(t *metadata.Topic, p metadata.Partition) {
		if p.Reassigning() {
			out = append(out, OngoingReassignment{Topic: t.Name, Partition: p.Partition,
				Replicas: slices.Clone(p.Replicas), Adding: slices.Clone(p.AddingReplicas), Removing: slices.Clone(p.RemovingReplicas)})
		}
	}
	if partitions == nil {
		for _, t := range sortedTopics(img) {
			for _, p := range t.Partitions {
				add(t, p)
			}
		}
		return out
	}
	for _, name := range sortedKeys(partitions) {
		t, ok := img.Topic(name)
		if !ok {
			continue
		}
		for _, i := range dedupSorted(partitions[name]) {
			if i >= 0 && int(i) < len(t.Partitions) {
				add(t, t.Partitions[i])
			}
		}
	}
	return out
}

// planReassignment checks one reassignment against img and returns the change it makes
// (changed false: none, e.g. the partition already has the target replicas).
func planReassignment(img *metadata.Image, r Reassignment, allowRFChange, uncleanDefault bool) (metadata.PartitionChange, bool, error) {
	t, ok := img.Topic(r.Topic)
	if !ok {
		return metadata.PartitionChange{}, false, kafkaErrorf(kerr.UnknownTopicOrPartition, "Unable to find topic %s", r.Topic)
	}
	if r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
		return metadata.PartitionChange{}, false, kafkaErrorf(kerr.UnknownTopicOrPartition, "Unable to find partition %s:%d.", r.Topic, r.Partition)
	}
	cur := t.Partitions[r.Partition]
	active := activeIn(img)
	var next metadata.Partition
	if r.Replicas == nil {
		if !cur.Reassigning() {
			return metadata.PartitionChange{}, false, kafkaErrorf(kerr.NoReassignmentInProgress, "No ongoing reassignment for partition %s:%d.", r.Topic, r.Partition)
		}
		var unclean bool
		next, unclean = revertReassignment(cur)
		if unclean && !uncleanAllowed(img, t, uncleanDefault) {
			return metadata.PartitionChange{}, false, kafkaErrorf(kerr.InvalidReplicaAssignment,
				"Unable to revert partition assignment for %s:%d because it would require an unclean leader election.", r.Topic, r.Partition)
		}
		kind := electOnline
		if unclean {
			kind = electUnclean
		}
		var outside bool
		if next.Leader, outside = electLeader(next, next.ISR, kind, active); outside {
			next.ISR = []int32{next.Leader} // an unclean leader is the whole ISR (as changePartition)
		}
	} else {
		if err := checkReassignmentTarget(img, r.Replicas); err != nil {
			return metadata.PartitionChange{}, false, err
		}
		if rf := len(cur.ReassignmentTarget()); !allowRFChange && len(r.Replicas) != rf {
			return metadata.PartitionChange{}, false, kafkaErrorf(kerr.InvalidReplicationFactor,
				"The replication factor is changed from %d to %d", rf, len(r.Replicas))
		}
		next = startReassignment(cur, r.Replicas)
	}
	rec, changed := reassignmentChange(t.ID, cur, next, active)
	return rec, changed, nil
}

// checkReassignmentTarget validates target replicas as Kafka's
// validateManualPartitionAssignment (non-empty, registered brokers, each once), and refuses a
// target whose brokers are all fenced or shutting down, which could never complete.
func checkReassignmentTarget(img *metadata.Image, target []int32) error {
	if len(target) == 0 {
		return kafkaErrorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	sorted := slices.Clone(target)
	slices.Sort(sorted)
	for i, id := range sorted {
		if _, ok := img.Brokers[id]; !ok {
			return kafkaErrorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", id)
		}
		if i > 0 && sorted[i-1] == id {
			return kafkaErrorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", id)
		}
	}
	if !slices.ContainsFunc(target, activeIn(img)) {
		return kafkaErrorf(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment are fenced or in controlled shutdown.")
	}
	return nil
}

// startReassignment returns p reassigned to target (PartitionReassignmentReplicas): replicas
// target ++ (current − target), adding target − current, removing current − target.
func startReassignment(p metadata.Partition, target []int32) metadata.Partition {
	next := p
	next.Replicas = slices.Clone(target)
	next.AddingReplicas, next.RemovingReplicas = nil, nil
	for _, r := range p.Replicas {
		if !slices.Contains(target, r) {
			next.Replicas = append(next.Replicas, r)
			next.RemovingReplicas = append(next.RemovingReplicas, r)
		}
	}
	for _, r := range target {
		if !slices.Contains(p.Replicas, r) {
			next.AddingReplicas = append(next.AddingReplicas, r)
		}
	}
	return next
}

// revertReassignment returns p with its reassignment cancelled (PartitionReassignmentRevert):
// the original replicas, the ISR without the adding replicas; unclean when that ISR would be
// empty and so holds the first original replica instead.
func revertReassignment(p metadata.Partition) (next metadata.Partition, unclean bool) {
	next = p
	next.Replicas = p.OriginalReplicas()
	next.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return slices.Contains(p.AddingReplicas, r) })
	next.AddingReplicas, next.RemovingReplicas = nil, nil
	if len(next.ISR) == 0 && len(next.Replicas) > 0 { // no replicas: the image's check refuses it
		next.ISR = []int32{next.Replicas[0]}
		unclean = true
	}
	return next, unclean
}

// completeReassignment completes p's reassignment when its ISR allows it: every target
// replica is in the ISR without the removing replicas, which must not be empty. ok is false
// when there is nothing to complete yet. The leader is not changed here.
func completeReassignment(p metadata.Partition) (next metadata.Partition, ok bool) {
	if !p.Reassigning() {
		return p, false
	}
	target := p.ReassignmentTarget()
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) })
	if len(isr) == 0 {
		return p, false
	}
	for _, r := range target {
		if !slices.Contains(isr, r) {
			return p, false
		}
	}
	next = p
	next.Replicas, next.ISR = target, isr
	next.AddingReplicas, next.RemovingReplicas = nil, nil
	return next, true
}

// reassignmentChange completes next's reassignment if it can, elects a leader when next's
// leader is no longer in its ISR (the first replica in the ISR that may lead, as Kafka's
// PartitionChangeBuilder), and returns the record taking cur to the result; changed is false
// when the result is cur.
func reassignmentChange(topicID metadata.UUID, cur, next metadata.Partition, active func(int32) bool) (metadata.PartitionChange, bool) {
	next, _ = completeReassignment(next)
	if !slices.Contains(next.ISR, next.Leader) {
		next.Leader, _ = electLeader(next, next.ISR, electOnline, active)
	}
	rec := metadata.PartitionChange{TopicID: topicID, Partition: cur.Partition}
	if !slices.Equal(cur.Replicas, next.Replicas) {
		rec.Replicas = slices.Clone(next.Replicas)
	}
	if !slices.Equal(cur.ISR, next.ISR) {
		rec.ISR = slices.Clone(next.ISR)
	}
	if cur.Leader != next.Leader {
		rec.Leader = ptrTo(next.Leader)
	}
	if !slices.Equal(cur.AddingReplicas, next.AddingReplicas) || !slices.Equal(cur.RemovingReplicas, next.RemovingReplicas) {
		rec.Reassignment = &metadata.Reassignment{Adding: slices.Clone(next.AddingReplicas), Removing: slices.Clone(next.RemovingReplicas)}
	}
	return rec, rec.Replicas != nil || rec.ISR != nil || rec.Leader != nil || rec.Reassignment != nil
}

// HandleAlterPartitionReassignments serves AlterPartitionReassignments v0–1 (v1: KIP-860's
// allow_replication_factor_change, echoed in the answer; v0 always allows it). A request-wide
// error goes in the top-level error code, with no partitions.
func (c *Controller) HandleAlterPartitionReassignments(ctx context.Context, req *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse {
	resp := kmsg.NewPtrAlterPartitionAssignmentsResponse()
	resp.Version = req.Version
	allowRFChange := req.Version < 1 || req.AllowReplicationFactorChange
	resp.AllowReplicationFactorChange = allowRFChange
	var reqs []Reassignment
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			reqs = append(reqs, Reassignment{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas})
		}
	}
	results, err := c.AlterPartitionReassignments(ctx, reqs, allowRFChange)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = ErrorCode(err), errorMessage(err)
		return resp
	}
	i := 0
	for _, t := range req.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		for range t.Partitions {
			r := results[i]
			i++
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = r.Partition
			rp.ErrorCode, rp.ErrorMessage = ErrorCode(r.Err), errorMessage(r.Err)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// HandleListPartitionReassignments serves ListPartitionReassignments v0 from this node's
// image: the requested partitions (every partition when topics is null) that have a
// reassignment in progress.
func (c *Controller) HandleListPartitionReassignments(req *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	resp := kmsg.NewPtrListPartitionReassignmentsResponse()
	resp.Version = req.Version
	var partitions map[string][]int32
	if req.Topics != nil {
		partitions = make(map[string][]int32, len(req.Topics))
		for _, t := range req.Topics {
			partitions[t.Topic] = append(partitions[t.Topic], t.Partitions...)
		}
	}
	for _, r := range ListPartitionReassignments(c.Image(), partitions) {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != r.Topic {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = r.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas = r.Partition, r.Replicas, r.Adding, r.Removing
		t := &resp.Topics[len(resp.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	return resp
}
