package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers (API key 61, KIP-664): a partition leader lists the producers of the
// partition's producer state — epoch, last sequence and timestamp, the coordinator epoch of
// the last marker, and the first offset of the ongoing transaction, by which
// kafka-transactions find-hanging finds a transaction that holds the last stable offset.
// A partition this broker does not lead gets NOT_LEADER_OR_FOLLOWER, an unknown one
// UNKNOWN_TOPIC_OR_PARTITION, one of a topic the principal may not READ
// TOPIC_AUTHORIZATION_FAILED.
func init() { register(kmsg.DescribeProducers.Int16(), 0, 0, handleDescribeProducers) }

func handleDescribeProducers(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeProducersRequest)
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		readable := b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic)
		for _, part := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = part
			p, kerrv := b.partitionFor(rt.Topic, part)
			if !readable {
				p, kerrv = nil, kerr.TopicAuthorizationFailed // READ on the topic, as Kafka
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, pi := range p.Log().Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = pi.ProducerID, int32(pi.Epoch)
				ap.LastSequence, ap.LastTimestamp = pi.LastSequence, pi.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.CoordinatorEpoch, pi.TxnStartOffset
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
