package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
)

// DescribeTopicPartitions (KIP-966), as Kafka's DescribeTopicPartitionsRequestHandler and
// KRaftMetadataCache.describeTopicResponse answer it: the named topics, or every topic when
// none is named, sorted by name; at most min(max.request.partition.size.limit, the request's
// ResponsePartitionLimit) partitions, the rest left to the next request through NextCursor
// (topic and partition to start from). Kafka 4.x's kafka-topics --describe uses it.

func init() {
	register(kmsg.DescribeTopicPartitions.Int16(), 0, 0, handleDescribeTopicPartitions)
}

func handleDescribeTopicPartitions(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeTopicPartitionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	img := b.ctrl.Image()

	all := len(r.Topics) == 0
	cursorTopic, cursorPartition := "", int32(0)
	if r.Cursor != nil {
		cursorTopic, cursorPartition = r.Cursor.Topic, r.Cursor.Partition
	}
	// The topics at or after the cursor's, each once, by name.
	var names []string
	if all {
		for _, name := range img.TopicNames() {
			// Topics the principal may not DESCRIBE are left out.
			if name >= cursorTopic && b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name) {
				names = append(names, name)
			}
		}
	} else {
		for _, t := range r.Topics {
			if t.Topic >= cursorTopic {
				names = append(names, t.Topic)
			}
		}
		slices.Sort(names)
		names = slices.Compact(names)
		if r.Cursor != nil && !slices.Contains(names, cursorTopic) {
			// Kafka's InvalidRequestException: every requested topic gets the error.
			for _, t := range r.Topics {
				rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
				rt.ErrorCode = kerr.InvalidRequest.Code
				rt.Topic = kmsg.StringPtr(t.Topic)
				rt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
	}

	remaining := min(b.partitionSizeLimit, r.ResponsePartitionLimit)
	for _, name := range names {
		if remaining == 0 {
			// The previous topics were described whole: the next request starts at this one.
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name}
			break
		}
		if remaining < 0 {
			continue // Kafka describes nothing then, and sets no cursor
		}
		t, ok := img.Topic(name)
		// (the names of a listing of all topics are the describable ones already)
		allowed := all || b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name)
		if !ok || !allowed {
			if all {
				continue
			}
			rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			switch {
			case !allowed:
				rt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case controller.ValidateTopicName(name) != nil:
				rt.ErrorCode = kerr.InvalidTopicException.Code
			}
			rt.Topic = kmsg.StringPtr(name)
			rt.IsInternal = isInternalTopic(name)
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		start := int32(0)
		if name == cursorTopic {
			start = cursorPartition
		}
		rt, next := b.describeTopicPartitions(img, t, start, remaining)
		resp.Topics = append(resp.Topics, rt)
		remaining -= int32(len(rt.Partitions))
		if next >= 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: next}
			break
		}
	}
	// Kafka always fills the authorized operations of the topics the principal may describe.
	for i := range resp.Topics {
		if rt := &resp.Topics[i]; rt.ErrorCode != kerr.TopicAuthorizationFailed.Code && rt.Topic != nil {
			rt.AuthorizedOperations = b.authorizedOperations(req, kmsg.ACLResourceTypeTopic, *rt.Topic)
		}
	}
	return resp, nil
}

// describeTopicPartitions describes the partitions of t from index start, at most limit of
// them, and returns the index of the first partition left out (-1: none), as Kafka's
// getPartitionMetadataForDescribeTopicResponse. Eligible leader replicas are empty lists, not
// null: Samsa has no ELR (eligible.leader.replicas.version 0), and Kafka's admin client reads
// the lists without a null check.
func (b *Broker) describeTopicPartitions(img *metadata.Image, t *metadata.Topic, start, limit int32) (kmsg.DescribeTopicPartitionsResponseTopic, int32) {
	rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	rt.Topic = kmsg.StringPtr(t.Name)
	rt.TopicID = t.ID
	rt.IsInternal = isInternalTopic(t.Name)
	rt.AuthorizedOperations = authorizedOperationsOmitted
	rt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
	n := int64(len(t.Partitions))
	upper := min(n, int64(start)+int64(limit))
	for i := max(int64(start), 0); i < upper; i++ {
		p := t.Partitions[i]
		rp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		rp.Partition = p.Partition
		rp.LeaderID, rp.OfflineReplicas = b.partitionLeader(img, t.Name, p)
		if rp.OfflineReplicas == nil {
			rp.OfflineReplicas = []int32{}
		}
		rp.LeaderEpoch = p.LeaderEpoch
		rp.Replicas = p.Replicas
		rp.ISR = p.ISR
		rp.EligibleLeaderReplicas = []int32{}
		rp.LastKnownELR = []int32{}
		rt.Partitions = append(rt.Partitions, rp)
	}
	if upper < n {
		return rt, int32(upper)
	}
	return rt, -1
}
