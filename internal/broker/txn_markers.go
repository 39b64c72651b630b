package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/replica"
)

// The partition side of transactions that the transaction coordinator drives: the check of
// a producer's transactional batches (TxnVerifier) and WriteTxnMarkers (API key 27), by
// which the coordinator ends a transaction on each partition leader.

func init() { register(kmsg.WriteTxnMarkers.Int16(), 0, 1, handleWriteTxnMarkers) }

// TxnVerifier decides whether a transactional batch of a producer may be appended to a
// partition: it answers nil when the producer's transaction is ongoing and includes the
// partition (the coordinator's state; KIP-890 part 1 verification goes here), or the Kafka
// error to refuse the batch with. With add (a client of transaction.version 2, KIP-890 part
// 2) a partition not in the transaction yet is added to it first, as the client no longer
// sends AddPartitionsToTxn. Without one (Broker.SetTxnVerifier never called) the broker
// refuses every transactional batch, as before there was a coordinator.
type TxnVerifier interface {
	VerifyTransaction(tp replica.TopicPartition, transactionalID string, producerID int64, producerEpoch int16, add bool) error
}

// SetTxnVerifier installs the verifier of transactional produce (the transaction
// coordinator); nil refuses transactional batches again. Call it before serving.
func (b *Broker) SetTxnVerifier(v TxnVerifier) { b.txnVerifier = v }

// verifyTransaction is the produce path's check of a transactional batch.
func (b *Broker) verifyTransaction(tp replica.TopicPartition, transactionalID *string, h *records.Header, add bool) error {
	if b.txnVerifier == nil {
		return kerrMsg(kerr.InvalidRecord, "transactional produce is not supported yet")
	}
	id := ""
	if transactionalID != nil {
		id = *transactionalID
	}
	return b.txnVerifier.VerifyTransaction(tp, id, h.ProducerID, h.ProducerEpoch, add)
}

// markerReplicationTimeout bounds the wait for a marker to be committed by the ISR.
const markerReplicationTimeout = 30 * time.Second

// handleWriteTxnMarkers appends, on each named partition this broker leads, a control batch
// ending the producer's transaction (COMMIT or ABORT, with the coordinator epoch), and
// answers per partition once the marker is committed, as Kafka's leader does (acks=all):
// UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, INVALID_PRODUCER_EPOCH (a producer
// epoch older than the partition's), TRANSACTION_COORDINATOR_FENCED (an older coordinator
// epoch than the producer's last marker), KAFKA_STORAGE_ERROR, or a replication error.
func handleWriteTxnMarkers(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type pending struct {
		p          *replica.Partition
		end        int64 // the marker's offset + 1
		mi, ti, pi int   // the answer's place in resp
	}
	var waits []pending
	// CLUSTER_ACTION on the cluster, else every partition is CLUSTER_AUTHORIZATION_FAILED
	// (Kafka's error response of the request).
	clusterAction := b.authorizeCluster(req, kmsg.ACLOperationClusterAction)
	for mi, m := range r.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		marker := records.EndTxnMarker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
			CoordinatorEpoch: m.CoordinatorEpoch, Commit: m.Committed}
		for ti, mt := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = mt.Topic
			for pi, part := range mt.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = part
				if !clusterAction {
					rp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
					rt.Partitions = append(rt.Partitions, rp)
					continue
				}
				p, kerrv := b.partitionFor(mt.Topic, part)
				if kerrv != nil {
					rp.ErrorCode = kerrv.Code
				} else if res, err := p.AppendAsLeader(marker.Batch(b.now().UnixMilli())); err != nil {
					rp.ErrorCode = errCode(storageErr(err))
				} else if p.Replicated() {
					waits = append(waits, pending{p: p, end: res.LastOffset + 1, mi: mi, ti: ti, pi: pi})
				} else {
					b.completeOffsetsTxn(mt.Topic, part, m.ProducerID, m.Committed, res.LastOffset)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	if len(waits) == 0 {
		return resp, nil
	}
	ctx, cancel := context.WithTimeout(req.conn.waitCtx, markerReplicationTimeout)
	defer cancel()
	for _, w := range waits {
		if err := w.p.WaitReplicated(ctx, w.end, 1, ctx.Done()); err != nil {
			resp.Markers[w.mi].Topics[w.ti].Partitions[w.pi].ErrorCode = errCode(storageErr(err))
			continue
		}
		m := r.Markers[w.mi]
		b.completeOffsetsTxn(m.Topics[w.ti].Topic, m.Topics[w.ti].Partitions[w.pi], m.ProducerID, m.Committed, w.end-1)
	}
	return resp, nil
}
