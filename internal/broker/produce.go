package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/storage"
)

// Produce v3 is the first version that carries v2 record batches; v12 and v13 (topic ids,
// transactions v2) are not served yet.
func init() { register(kmsg.Produce.Int16(), 3, 12, handleProduce) }

func handleProduce(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	b.recordProduce(req)
	img := b.ctrl.Image()
	acksOK := r.Acks == 0 || r.Acks == 1 || r.Acks == -1
	failed := false
	leaders := leaderHints{}
	var waits []produceWait
	// A transactional produce needs WRITE on its transactional id, every produce WRITE on
	// the topic (KIP-679: that covers idempotence too).
	txnAllowed := r.TransactionID == nil || b.authorize(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionID)
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		topicAllowed := b.authorize(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, rt.Topic)
		t, topicOK := img.Topic(rt.Topic)
		var limits produceLimits
		if topicOK {
			limits = b.produceLimits(img, t)
			limits.transactionalID = r.TransactionID
			limits.addToTxn = r.Version >= 12
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			var err error
			var wait *produceWait
			switch {
			case !acksOK:
				err = kerr.InvalidRequiredAcks
			case !txnAllowed:
				err = kerr.TransactionalIDAuthorizationFailed
			case !topicAllowed:
				err = kerr.TopicAuthorizationFailed
			case !topicOK:
				err = kerr.UnknownTopicOrPartition
			case isInternalTopic(rt.Topic):
				err = kerr.InvalidTopicException
			default:
				wait, err = b.producePartition(t, &limits, r.Acks, rp.Records, &sp)
			}
			if wait != nil {
				wait.topic, wait.partition = len(resp.Topics), len(st.Partitions)
				waits = append(waits, *wait)
			}
			if err != nil {
				failed = true
				sp.ErrorCode = errCode(err)
				if sp.ErrorCode == kerr.NotLeaderForPartition.Code && r.Version >= 10 {
					// KIP-951: where the partition's leader is.
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leaders.note(img, t, rp.Partition)
				}
				switch sp.ErrorCode {
				case kerr.UnknownServerError.Code, kerr.CorruptMessage.Code, kerr.InvalidRecord.Code,
					kerr.KafkaStorageError.Code: // e.g. "no space left on device in <dir> (free 0 B)"
					sp.ErrorMessage = errMessage(err)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.Version >= 10 {
		for _, id := range leaders.ids {
			if ep, ok := brokerEndpoint(img, id, req.conn.listener); ok {
				rb := kmsg.NewProduceResponseBroker()
				rb.NodeID, rb.Host, rb.Port, rb.Rack = id, ep.host, ep.port, ep.rack
				resp.Brokers = append(resp.Brokers, rb)
			}
		}
	}
	if len(waits) > 0 {
		b.awaitReplication(req, r.TimeoutMillis, waits, resp)
	}
	if r.Acks == 0 {
		if failed {
			// A producer that asks for no response learns of errors only by the connection
			// closing, as with Kafka, and then refreshes its metadata.
			return nil, errors.New("acks=0 produce failed; closing so the client refreshes")
		}
		return nil, nil
	}
	return resp, nil
}

// produceWait is an acks=all append to a replicated partition waiting for its high
// watermark: the response partition (by index) and the offset after the appended batches.
type produceWait struct {
	p                *replica.Partition
	end              int64
	minISR           int
	topic, partition int
}

// awaitReplication waits, after every partition of the request has been appended, until each
// waiting partition's records are committed or the request's timeout passes, and sets the
// partitions' errors. A slow partition holds up only this request's answer.
func (b *Broker) awaitReplication(req *request, timeoutMs int32, waits []produceWait, resp *kmsg.ProduceResponse) {
	deadline, cancel := context.WithTimeout(context.Background(), time.Duration(max(timeoutMs, 0))*time.Millisecond)
	defer cancel()
	defer req.waitedSince(time.Now())
	for _, w := range waits {
		err := w.p.WaitReplicated(req.conn.waitCtx, w.end, w.minISR, deadline.Done())
		if err == nil {
			continue
		}
		code := replicaErr(err)
		if code == nil {
			code = kerr.RequestTimedOut // the connection or the broker is closing
		}
		resp.Topics[w.topic].Partitions[w.partition].ErrorCode = code.Code
	}
}

// producePartition validates and appends one partition's records and fills in sp. An acks=all
// append to a replicated partition returns what to wait for before answering.
func (b *Broker) producePartition(t *metadata.Topic, limits *produceLimits, acks int16, data []byte, sp *kmsg.ProduceResponseTopicPartition) (*produceWait, error) {
	if sp.Partition < 0 || int(sp.Partition) >= len(t.Partitions) {
		return nil, kerr.UnknownTopicOrPartition
	}
	mp := &t.Partitions[sp.Partition]
	if mp.Leader != b.cfg.NodeID {
		return nil, kerr.NotLeaderForPartition
	}
	p := b.replicas.Partition(t.Name, sp.Partition)
	if p == nil {
		return nil, b.unopenedErr(t.Name, sp.Partition)
	}
	replicated := p.Replicated()
	isr := len(mp.ISR)
	if replicated {
		isr = len(p.ISR()) // the leader's committed ISR, which may be ahead of the image
	}
	if acks == -1 && int64(isr) < limits.minInsyncReplicas {
		return nil, kerr.NotEnoughReplicas
	}
	var last int64
	err := b.appendPartition(p, limits, data, sp, &last)
	if err != nil || acks != -1 || !replicated {
		return nil, err
	}
	return &produceWait{p: p, end: last + 1, minISR: int(limits.minInsyncReplicas)}, nil
}

// appendPartition validates, recompresses and appends a partition's batches, setting *last to
// the last offset appended.
func (b *Broker) appendPartition(p *replica.Partition, limits *produceLimits, data []byte, sp *kmsg.ProduceResponseTopicPartition, last *int64) error {
	if len(data) == 0 {
		return kerrMsg(kerr.CorruptMessage, "produce request carries no record batch")
	}
	nowMs := b.now().UnixMilli()
	rest, err := records.Split(data, func(batch []byte) error {
		if int64(len(batch)) > limits.maxMessageBytes {
			return kerr.MessageTooLarge
		}
		h, err := records.Validate(batch)
		if err != nil {
			if errors.Is(err, records.ErrMagic) {
				return kerrMsg(kerr.InvalidRecord, "produce v3+ requires record batches of magic v2")
			}
			return kerrMsg(kerr.CorruptMessage, err.Error())
		}
		if h.IsControl() {
			return kerrMsg(kerr.InvalidRecord, "producers may not send control batches")
		}
		// Only a transaction's first batch on the partition is verified with the coordinator:
		// the later ones belong to the transaction the log already has open (Kafka's rule).
		if h.IsTransactional() && !p.Log().HasOngoingTransaction(h.ProducerID, h.ProducerEpoch) {
			if err := b.verifyTransaction(p.TP, limits.transactionalID, &h, limits.addToTxn); err != nil {
				return err
			}
		}
		if err := checkTimestamps(&h, limits, nowMs); err != nil {
			return err
		}
		if limits.compacted {
			return checkKeys(batch, &h, p.TP)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rest != 0 {
		// A frame cut inside a batch, or a length prefix that does not fit: Kafka rejects the
		// whole partition's data as corrupt.
		if n, ok := records.PeekSize(data[len(data)-rest:]); ok && int64(n) > limits.maxMessageBytes {
			return kerr.MessageTooLarge
		}
		return kerrMsg(kerr.CorruptMessage, "trailing bytes do not form a whole record batch")
	}
	received := len(data) // BytesIn counts the bytes as the producer sent them, as Kafka's
	if limits.compression >= 0 {
		if data, err = records.Recompress(data, limits.compression); err != nil {
			return kerrMsg(kerr.CorruptMessage, err.Error())
		}
	}
	res, err := p.AppendAsLeader(data)
	if err != nil {
		return storageErr(err)
	}
	*last = res.LastOffset
	countProduced(p, received, res.BaseOffset, res.LastOffset)
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	return nil
}

// kerrMsg returns a Kafka error with a message for the client.
func kerrMsg(code *kerr.Error, msg string) error {
	return &controller.KafkaError{Code: code, Message: msg}
}

// storageErr maps storage errors to Kafka errors.
func storageErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch
	case errors.Is(err, storage.ErrInvalidTxnState):
		return kerrMsg(kerr.InvalidTxnState, err.Error())
	case errors.Is(err, storage.ErrTransactionCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced
	case errors.Is(err, storage.ErrUnknownProducerID):
		return kerr.UnknownProducerID
	case errors.Is(err, storage.ErrRecordBatchTooLarge):
		return kerr.RecordListTooLarge
	case errors.Is(err, storage.ErrCorrupt):
		return kerr.CorruptMessage
	case errors.Is(err, storage.ErrClosed):
		return kerr.NotLeaderForPartition
	}
	if ke := replicaErr(err); ke != nil {
		return ke
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return err
	}
	return kerrMsg(kerr.KafkaStorageError, err.Error())
}

// checkKeys refuses a batch holding a record without a key, in a topic whose cleanup.policy
// compacts (the cleaner would drop it), with Kafka's error and message. Compressed batches are
// decompressed to see the keys.
func checkKeys(batch []byte, h *records.Header, tp replica.TopicPartition) error {
	err := records.EachRecord(batch, h, func(r *records.Record) error {
		if !r.HasKey {
			return kerrMsg(kerr.InvalidRecord, fmt.Sprintf("Compacted topic cannot accept message without key in topic partition %s-%d.", tp.Topic, tp.Partition))
		}
		return nil
	})
	var ke *controller.KafkaError
	if err != nil && !errors.As(err, &ke) {
		return kerrMsg(kerr.CorruptMessage, err.Error())
	}
	return err
}

// checkTimestamps enforces message.timestamp.before.max.ms and message.timestamp.after.max.ms
// on CreateTime batches, using the batch's first and largest timestamps.
func checkTimestamps(h *records.Header, limits *produceLimits, nowMs int64) error {
	if h.Attributes&records.AttrTimestampType != 0 {
		return nil
	}
	if limits.timestampBefore < nowMs && h.BaseTimestamp < nowMs-limits.timestampBefore {
		return kerrMsg(kerr.InvalidTimestamp, "record timestamp is older than message.timestamp.before.max.ms allows")
	}
	if limits.timestampAfter < math.MaxInt64-nowMs && h.MaxTimestamp > nowMs+limits.timestampAfter {
		return kerrMsg(kerr.InvalidTimestamp, "record timestamp is further in the future than message.timestamp.after.max.ms allows")
	}
	return nil
}
