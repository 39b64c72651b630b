package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/replica"
)

// TxnOffsetCommit (API key 28): a transactional producer commits a group's offsets in its
// transaction. The group's coordinator validates the group (generation and member from v3),
// the transaction coordinator must have the group's __consumer_offsets partition in the
// producer's ongoing transaction (AddOffsetsToTxn before v5; from v5, transaction.version 2,
// KIP-890 part 2, the coordinator adds it here), and the offsets are written as one
// transactional batch of the producer, pending until the transaction's marker reaches the
// partition (WriteTxnMarkers, completeOffsetsTxn).
func init() { register(kmsg.TxnOffsetCommit.Int16(), 0, 5, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	img := b.ctrl.Image()
	cr := group.TxnCommitRequest{
		CommitRequest: group.CommitRequest{
			Group: r.Group, MemberID: r.MemberID, Generation: r.Generation,
			RetentionTime: -1, APIVersion: r.Version,
		},
		TransactionalID: r.TransactionalID,
		ProducerID:      r.ProducerID,
		ProducerEpoch:   r.ProducerEpoch,
	}
	if r.Version >= 3 {
		cr.InstanceID = r.InstanceID
	} else {
		cr.Generation, cr.MemberID = -1, ""
	}
	// Authorization as Kafka's: WRITE on the transactional id and READ on the group, else
	// every partition gets the error; READ on each topic, else its partitions do.
	var all *kerr.Error
	switch {
	case !b.authorize(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, r.TransactionalID):
		all = kerr.TransactionalIDAuthorizationFailed
	case !b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group):
		all = kerr.GroupAuthorizationFailed
	}
	type pos struct{ t, p int }
	var sent []pos
	for i, rt := range r.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		topicDenied := all == nil && !b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic)
		for j, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case all != nil:
				sp.ErrorCode = all.Code
			case topicDenied:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case !partitionExists(img, rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				cr.Offsets = append(cr.Offsets, group.CommitOffset{
					TopicPartition: group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition},
					Offset:         rp.Offset, LeaderEpoch: rp.LeaderEpoch, Metadata: rp.Metadata,
					CommitTimestamp: -1,
				})
				sent = append(sent, pos{i, j})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(cr.Offsets) == 0 {
		return resp, nil
	}
	var errs []error
	if err := b.verifyTxnOffsets(r); err != nil {
		errs = make([]error, len(cr.Offsets))
		for i := range errs {
			errs[i] = err
		}
	} else {
		errs = b.groups.CommitTxnOffsets(cr)
	}
	for k, err := range errs {
		resp.Topics[sent[k].t].Partitions[sent[k].p].ErrorCode = errCode(err)
	}
	return resp, nil
}

// verifyTxnOffsets checks that the producer's ongoing transaction has the group's
// __consumer_offsets partition (added by AddOffsetsToTxn).
func (b *Broker) verifyTxnOffsets(r *kmsg.TxnOffsetCommitRequest) error {
	if b.txnVerifier == nil {
		return kerr.InvalidTxnState
	}
	tp := replica.TopicPartition{Topic: group.OffsetsTopic, Partition: b.groups.PartitionFor(r.Group)}
	err := b.txnVerifier.VerifyTransaction(tp, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version >= 5)
	if errors.Is(err, kerr.NotEnoughReplicas) {
		// The verification could not complete: retriable for the producer.
		return kerr.CoordinatorLoadInProgress
	}
	return err
}

// completeOffsetsTxn tells the group coordinator that a transaction marker was written to a
// __consumer_offsets partition, which applies (commit) or drops (abort) the producer's
// pending offsets there. markerOffset is the marker's offset in the partition.
func (b *Broker) completeOffsetsTxn(topic string, partition int32, producerID int64, commit bool, markerOffset int64) {
	if topic == group.OffsetsTopic {
		b.groups.CompleteTransaction(partition, producerID, commit, markerOffset)
	}
}
