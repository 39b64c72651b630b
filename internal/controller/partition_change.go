package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// This file holds the requests that change partitions directly: AlterPartition (a leader
// changing its ISR, after Kafka's ReplicationControlManager.alterPartition) and ElectLeaders
// (preferred and unclean elections, after ReplicationControlManager.electLeaders).

// AlterPartitionRequest is a partition leader's request to change ISRs (Kafka's
// AlterPartitionRequest v2+, topics by ID).
type AlterPartitionRequest struct {
	BrokerID    int32
	BrokerEpoch int64
	Topics      []AlterPartitionTopic
}

// AlterPartitionTopic is the part of an AlterPartitionRequest about one topic.
type AlterPartitionTopic struct {
	TopicID    metadata.UUID
	Partitions []AlterPartitionData
}

// AlterPartitionData asks for one partition's new ISR. LeaderEpoch and PartitionEpoch are the
// leader's view of the partition; the change applies only if they are current.
type AlterPartitionData struct {
	Partition      int32
	LeaderEpoch    int32
	PartitionEpoch int32
	NewISR         []int32
	// NewISRBrokerEpochs, when not nil, holds the broker epoch of each NewISR member as the
	// leader knows it (v3's NewIsrWithEpochs); -1 skips the check of that member.
	NewISRBrokerEpochs []int64
}

// AlterPartitionResult is the outcome for one partition, in request order. Err wraps a
// *kerr.Error; without an error Partition is the partition's state after the request.
type AlterPartitionResult struct {
	TopicID   metadata.UUID
	Partition metadata.Partition
	Err       error
}

// validateAlterPartition checks one partition of an AlterPartition request from broker against
// img, in Kafka's order, and returns the current partition and the change to commit (ok false:
// the ISR is already the requested one). The change completes the partition's reassignment
// when the new ISR allows it (reassign.go). Unlike Kafka, a request from a broker that is not the
// leader is NOT_LEADER_OR_FOLLOWER (Kafka answers INVALID_REQUEST).
func validateAlterPartition(img *metadata.Image, broker int32, topicID metadata.UUID, d AlterPartitionData) (cur metadata.Partition, rec metadata.PartitionChange, ok bool, err error) {
	t, found := img.TopicByID(topicID)
	if !found {
		return cur, rec, false, fmt.Errorf("%w: no topic with ID %s", kerr.UnknownTopicID, topicID)
	}
	if d.Partition < 0 || int(d.Partition) >= len(t.Partitions) {
		return cur, rec, false, fmt.Errorf("%w: no partition %s-%d", kerr.UnknownTopicOrPartition, t.Name, d.Partition)
	}
	cur = t.Partitions[d.Partition]
	switch {
	case d.LeaderEpoch > cur.LeaderEpoch || d.PartitionEpoch > cur.PartitionEpoch:
		// The requester knows a newer state: this node is likely no longer the controller.
		return cur, rec, false, fmt.Errorf("%w: %s-%d is at leader epoch %d, partition epoch %d here, the request has %d, %d",
			kerr.NotController, t.Name, d.Partition, cur.LeaderEpoch, cur.PartitionEpoch, d.LeaderEpoch, d.PartitionEpoch)
	case d.LeaderEpoch < cur.LeaderEpoch:
		return cur, rec, false, fmt.Errorf("%w: %s-%d is at leader epoch %d, not %d", kerr.FencedLeaderEpoch, t.Name, d.Partition, cur.LeaderEpoch, d.LeaderEpoch)
	case broker != cur.Leader:
		return cur, rec, false, fmt.Errorf("%w: the leader of %s-%d is %d, not %d", kerr.NotLeaderForPartition, t.Name, d.Partition, cur.Leader, broker)
	case d.PartitionEpoch < cur.PartitionEpoch:
		return cur, rec, false, fmt.Errorf("%w: %s-%d is at partition epoch %d, not %d", kerr.InvalidUpdateVersion, t.Name, d.Partition, cur.PartitionEpoch, d.PartitionEpoch)
	}
	if len(d.NewISR) == 0 {
		return cur, rec, false, fmt.Errorf("%w: empty ISR for %s-%d", kerr.InvalidRequest, t.Name, d.Partition)
	}
	for i, id := range d.NewISR {
		if slices.Contains(d.NewISR[:i], id) || !slices.Contains(cur.Replicas, id) {
			return cur, rec, false, fmt.Errorf("%w: invalid ISR %v for %s-%d (replicas %v)", kerr.InvalidRequest, d.NewISR, t.Name, d.Partition, cur.Replicas)
		}
	}
	if !slices.Contains(d.NewISR, cur.Leader) {
		return cur, rec, false, fmt.Errorf("%w: ISR %v of %s-%d does not hold the leader %d", kerr.InvalidRequest, d.NewISR, t.Name, d.Partition, cur.Leader)
	}
	if d.NewISRBrokerEpochs != nil && len(d.NewISRBrokerEpochs) != len(d.NewISR) {
		return cur, rec, false, fmt.Errorf("%w: %d broker epochs for %d ISR members", kerr.InvalidRequest, len(d.NewISRBrokerEpochs), len(d.NewISR))
	}
	for i, id := range d.NewISR {
		b, registered := img.Brokers[id]
		why := ""
		switch {
		case !registered:
			why = "not registered"
		case b.InControlledShutdown:
			why = "shutting down"
		case b.Fenced:
			why = "fenced"
		case d.NewISRBrokerEpochs != nil && d.NewISRBrokerEpochs[i] != -1 && d.NewISRBrokerEpochs[i] != b.Epoch:
			why = fmt.Sprintf("broker epoch mismatch: requested=%d VS expected=%d", d.NewISRBrokerEpochs[i], b.Epoch)
		}
		if why != "" {
			return cur, rec, false, fmt.Errorf("%w: replica %d in the new ISR %v of %s-%d is ineligible: %s", kerr.IneligibleReplica, id, d.NewISR, t.Name, d.Partition, why)
		}
	}
	if slices.Equal(d.NewISR, cur.ISR) {
		return cur, metadata.PartitionChange{TopicID: topicID, Partition: d.Partition, ISR: slices.Clone(d.NewISR)}, false, nil
	}
	// A grown ISR may complete the partition's reassignment, in the same record (Kafka's
	// PartitionChangeBuilder).
	next := cur
	next.ISR = slices.Clone(d.NewISR)
	rec, ok = reassignmentChange(topicID, cur, next, activeIn(img))
	return cur, rec, ok, nil
}

// AlterPartition applies a leader's ISR changes: every accepted partition changes in one
// proposal. The error (STALE_BROKER_EPOCH, NOT_CONTROLLER, or a failed proposal) is the whole
// request's; otherwise each partition has a result, in request order. The error wraps a
// *kerr.Error.
func (c *Controller) AlterPartition(ctx context.Context, req AlterPartitionRequest) ([]AlterPartitionResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return nil, err
	}
	img := c.Image()
	if b, ok := img.Brokers[req.BrokerID]; !ok || b.Epoch != req.BrokerEpoch {
		return nil, fmt.Errorf("%w: broker %d with epoch %d is not registered", kerr.StaleBrokerEpoch, req.BrokerID, req.BrokerEpoch)
	}
	plan := recordPlan{img: img}
	var results []AlterPartitionResult
	var changed []int
	for _, t := range req.Topics {
		for _, d := range t.Partitions {
			cur, rec, ok, err := validateAlterPartition(plan.img, req.BrokerID, t.TopicID, d)
			res := AlterPartitionResult{TopicID: t.TopicID, Partition: cur, Err: err}
			if err == nil && ok {
				if err := plan.add(rec); err != nil {
					return nil, err
				}
				changed = append(changed, len(results))
			}
			results = append(results, res)
		}
	}
	if len(plan.recs) == 0 {
		return results, nil
	}
	next, err := c.proposeLocked(ctx, plan.recs...)
	if err != nil {
		return nil, err
	}
	for _, i := range changed {
		r := &results[i]
		if t, ok := next.TopicByID(r.TopicID); ok {
			r.Partition = t.Partitions[r.Partition.Partition]
		}
	}
	c.logger.Info("altered partitions", "broker", req.BrokerID, "changes", len(plan.recs))
	return results, nil
}

// Election types of ElectLeaders, as Kafka's ElectionType.
const (
	ElectionPreferred int8 = 0
	ElectionUnclean   int8 = 1
)

// ElectionResult is the outcome of electing one partition's leader. Err wraps a *kerr.Error.
type ElectionResult struct {
	Topic     string
	Partition int32
	Err       error
}

// electOne plans the election of one partition of topic t (Kafka's
// ReplicationControlManager.electLeader): ELECTION_NOT_NEEDED when the preferred replica leads
// already (preferred) or there is a leader (unclean); PREFERRED_LEADER_NOT_AVAILABLE or
// ELIGIBLE_LEADERS_NOT_AVAILABLE when the election would change nothing.
func electOne(img *metadata.Image, t *metadata.Topic, partition int32, electionType int8) (metadata.PartitionChange, error) {
	if partition < 0 || int(partition) >= len(t.Partitions) {
		return metadata.PartitionChange{}, fmt.Errorf("%w: No such partition as %s-%d", kerr.UnknownTopicOrPartition, t.Name, partition)
	}
	p := t.Partitions[partition]
	kind := electPreferred
	if electionType == ElectionUnclean {
		kind = electUnclean
	}
	switch {
	case kind == electPreferred && len(p.Replicas) > 0 && p.Leader == p.Replicas[0],
		kind == electUnclean && p.Leader != metadata.NoLeader:
		return metadata.PartitionChange{}, fmt.Errorf("%w: %s-%d", kerr.ElectionNotNeeded, t.Name, partition)
	}
	rec, ok := changePartition(t.ID, p, p.ISR, kind, activeIn(img))
	if !ok {
		if kind == electPreferred {
			return rec, fmt.Errorf("%w: the preferred leader of %s-%d is not available", kerr.PreferredLeaderNotAvailable, t.Name, partition)
		}
		return rec, fmt.Errorf("%w: no replica of %s-%d can lead", kerr.EligibleLeadersNotAvailable, t.Name, partition)
	}
	return rec, nil
}

// ElectLeaders runs preferred (ElectionPreferred) or unclean (ElectionUnclean) elections for
// the given partitions by topic name, or for every partition when partitions is nil (results
// then omit the partitions that need no election, as Kafka). Every election that changes a
// leader is committed in one proposal. Results are sorted by topic and partition. The error is
// the whole request's (NOT_CONTROLLER, INVALID_REQUEST, a failed proposal) and wraps a
// *kerr.Error.
func (c *Controller) ElectLeaders(ctx context.Context, electionType int8, partitions map[string][]int32) ([]ElectionResult, error) {
	if electionType != ElectionPreferred && electionType != ElectionUnclean {
		return nil, fmt.Errorf("%w: unknown election type %d", kerr.InvalidRequest, electionType)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return nil, err
	}
	img := c.Image()
	all := partitions == nil
	if all {
		partitions = make(map[string][]int32, len(img.Topics))
		for name, t := range img.Topics {
			for i := range t.Partitions {
				partitions[name] = append(partitions[name], int32(i))
			}
		}
	}
	var results []ElectionResult
	var recs []metadata.Record
	for _, name := range sortedKeys(partitions) {
		t, ok := img.Topic(name)
		for _, part := range dedupSorted(partitions[name]) {
			res := ElectionResult{Topic: name, Partition: part}
			if !ok {
				res.Err = fmt.Errorf("%w: No such topic as %s", kerr.UnknownTopicOrPartition, name)
			} else {
				var rec metadata.PartitionChange
				rec, res.Err = electOne(img, t, part, electionType)
				if res.Err == nil {
					recs = append(recs, rec)
				}
			}
			if all && ErrorCode(res.Err) == kerr.ElectionNotNeeded.Code {
				continue
			}
			results = append(results, res)
		}
	}
	if len(recs) > 0 {
		if _, err := c.proposeLocked(ctx, recs...); err != nil {
			return nil, err
		}
		c.logger.Info("elected leaders", "type", electionType, "changes", len(recs))
	}
	return results, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dedupSorted returns the distinct values of s in ascending order.
func dedupSorted(s []int32) []int32 {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b int32) int { return cmp.Compare(a, b) })
	return slices.Compact(out)
}
