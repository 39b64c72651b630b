package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/replica"
)

// The log-offset APIs: ListOffsets, OffsetForLeaderEpoch and DeleteRecords.
func init() {
	register(kmsg.ListOffsets.Int16(), 1, 8, handleListOffsets)
	register(kmsg.OffsetForLeaderEpoch.Int16(), 0, 4, handleOffsetForLeaderEpoch)
	register(kmsg.DeleteRecords.Int16(), 0, 2, handleDeleteRecords)
}

// ListOffsets special timestamps.
const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3
	listEarliestLocal = -4
)

// partitionFor resolves a partition this broker leads, or the Kafka error to answer with.
func (b *Broker) partitionFor(topic string, partition int32) (*replica.Partition, *kerr.Error) {
	img := b.ctrl.Image()
	t, ok := img.Topic(topic)
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, kerr.UnknownTopicOrPartition
	}
	if t.Partitions[partition].Leader != b.cfg.NodeID {
		return nil, kerr.NotLeaderForPartition
	}
	p := b.replicas.Partition(topic, partition)
	if p == nil {
		return nil, b.unopenedErr(topic, partition)
	}
	if !p.IsLeader() {
		return nil, kerr.NotLeaderForPartition // the replica manager has not caught up yet
	}
	return p, nil
}

// unopenedErr is the answer for a partition of the image that this broker leads but does not
// have open: KAFKA_STORAGE_ERROR when its log failed to open (Kafka's answer for a replica on
// an offline log directory), else NOT_LEADER_OR_FOLLOWER (not opened yet, or being deleted).
// Both make clients refresh metadata and retry.
func (b *Broker) unopenedErr(topic string, partition int32) *kerr.Error {
	if b.replicas.Offline(topic, partition) {
		return kerr.KafkaStorageError
	}
	return kerr.NotLeaderForPartition
}

func handleListOffsets(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	// A consumer needs DESCRIBE on the topic, a replica CLUSTER_ACTION.
	replicaAllowed := r.ReplicaID < 0 || b.authorizeCluster(req, kmsg.ACLOperationClusterAction)
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		allowed := replicaAllowed && (r.ReplicaID >= 0 || b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			if !allowed {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, kerrv := b.partitionFor(rt.Topic, rp.Partition)
			if kerrv == nil {
				kerrv = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch())
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.LeaderEpoch = p.LeaderEpoch()
			log := p.Log()
			switch rp.Timestamp {
			case listLatest:
				sp.Offset = p.HighWatermark()
				if r.IsolationLevel == 1 {
					sp.Offset = p.LastStableOffset(sp.Offset) // read_committed: the last stable offset
				}
				if r.ReplicaID >= 0 {
					// A follower asks for the leader's log end (Kafka: no isolation level).
					sp.Offset = log.LogEndOffset()
				}
			case listEarliest, listEarliestLocal:
				sp.Offset = log.LogStartOffset()
			case listMaxTimestamp:
				sp.Offset, sp.Timestamp = log.MaxTimestamp()
			default:
				if rp.Timestamp < 0 {
					sp.ErrorCode = kerr.UnsupportedVersion.Code
					break
				}
				upTo := p.HighWatermark()
				if r.IsolationLevel == 1 {
					upTo = p.LastStableOffset(upTo)
				}
				if off, ts, ok := log.OffsetForTimestamp(rp.Timestamp); ok && off < upTo {
					sp.Offset, sp.Timestamp = off, ts
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func handleOffsetForLeaderEpoch(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	// A consumer needs DESCRIBE on the topic, a replica CLUSTER_ACTION.
	replicaAllowed := r.ReplicaID < 0 || b.authorizeCluster(req, kmsg.ACLOperationClusterAction)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		allowed := replicaAllowed && (r.ReplicaID >= 0 || b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			if !allowed {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, kerrv := b.partitionFor(rt.Topic, rp.Partition)
			if kerrv == nil {
				kerrv = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch())
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
			} else {
				sp.LeaderEpoch, sp.EndOffset = p.Log().EndOffsetForEpoch(rp.LeaderEpoch)
				if sp.EndOffset > p.HighWatermark() && rp.LeaderEpoch == p.LeaderEpoch() {
					sp.EndOffset = p.Log().LogEndOffset()
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func handleDeleteRecords(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		allowed := b.authorize(req, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if !allowed {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if isInternalTopic(rt.Topic) {
				// As Kafka: the groups' offsets are not the client's to delete.
				sp.ErrorCode = kerr.InvalidTopicException.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, kerrv := b.partitionFor(rt.Topic, rp.Partition)
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
			} else if low, err := p.DeleteRecordsBefore(rp.Offset); err != nil {
				sp.ErrorCode = errCode(storageErr(err))
			} else {
				sp.LowWatermark = low
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
