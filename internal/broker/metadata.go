package broker

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
)

func init() { register(kmsg.Metadata.Int16(), 0, 12, handleMetadata) }

// authorizedOperationsOmitted is Kafka's value for "not requested" authorized operations.
const authorizedOperationsOmitted = -2147483648

func handleMetadata(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.MetadataRequest)
	resp := metadataResponse(b, req, r)
	// Authorized operations (v8+), as Kafka: each topic the principal may describe and that
	// is named or found (not an unknown id); the cluster's only in v8-10.
	if r.Version >= 8 && r.IncludeTopicAuthorizedOperations {
		for i := range resp.Topics {
			mt := &resp.Topics[i]
			if mt.Topic != nil && mt.ErrorCode != kerr.TopicAuthorizationFailed.Code && mt.ErrorCode != kerr.UnknownTopicID.Code {
				mt.AuthorizedOperations = b.authorizedOperations(req, kmsg.ACLResourceTypeTopic, *mt.Topic)
			}
		}
	}
	if r.Version >= 8 && r.Version <= 10 && r.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = b.clusterAuthorizedOperations(req)
	}
	return resp, nil
}

// metadataResponse answers a Metadata request, without the authorized operations.
func metadataResponse(b *Broker, req *request, r *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	img := b.ctrl.Image()

	allTopics := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	allowCreate := b.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)

	// Auto-create the unknown topics asked for by name, all in one controller call. A topic
	// whose creation failed gets the creation's error (POLICY_VIOLATION past the partition
	// budget, KAFKA_STORAGE_ERROR below the free-space floor), not UNKNOWN_TOPIC_OR_PARTITION,
	// which clients would retry until their timeout.
	createErrs := map[string]error{}
	// describable reports whether the principal may see a topic: the others are left out of
	// a listing of all topics and are TOPIC_AUTHORIZATION_FAILED when named.
	describable := func(name string) bool {
		return b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name)
	}
	if !allTopics && allowCreate {
		var create []controller.CreateTopic
		seen := map[string]bool{}
		createAll := b.authorizeCluster(req, kmsg.ACLOperationCreate)
		for _, t := range r.Topics {
			if t.Topic == nil || seen[*t.Topic] || !describable(*t.Topic) {
				continue
			}
			seen[*t.Topic] = true
			if _, ok := img.Topic(*t.Topic); !ok && !isInternalTopic(*t.Topic) {
				// Auto-creation needs CREATE on the cluster or on the topic.
				if !createAll && !b.authorize(req, kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, *t.Topic) {
					createErrs[*t.Topic] = kerr.TopicAuthorizationFailed
					continue
				}
				create = append(create, controller.CreateTopic{Name: *t.Topic, NumPartitions: -1, ReplicationFactor: -1})
			}
		}
		if len(create) > 0 {
			var created int
			var firstErr error
			// The partitions created are charged to the client's controller mutation quota,
			// permissive as in Kafka: never refused, and given back for a creation that
			// failed. The Metadata response carries no throttle of it (Kafka's neither); the
			// client's next CreateTopics finds the bucket emptied.
			mq := b.newPermissiveMutationQuota(req)
			mq.chargeCreates(img, create)
			results := b.createTopics(mq.context(req.conn.ctx), create, false)
			byName := make(map[string]controller.TopicResult, len(results))
			for _, res := range results {
				byName[res.Name] = res
			}
			mq.refundCreates(img, create, byName)
			for _, res := range results {
				switch {
				case res.Err == nil:
					created++
				case !errors.Is(res.Err, kerr.TopicAlreadyExists):
					createErrs[res.Name] = res.Err
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: %w", res.Name, res.Err)
					}
				}
			}
			if created > 0 {
				b.log.Info("auto-created topics", "count", created)
			}
			if len(createErrs) > 0 {
				b.log.Info("auto topic creation failed", "count", len(createErrs), "err", firstErr)
			}
			b.awaitMetadata(req)
			img = b.ctrl.Image()
		}
	}

	resp.Brokers = brokerList(img, req.conn.listener)
	resp.ClusterID = &img.ClusterID
	resp.ControllerID = b.cfg.NodeID
	resp.AuthorizedOperations = authorizedOperationsOmitted

	if allTopics {
		for _, name := range img.TopicNames() {
			if !describable(name) {
				continue
			}
			t, _ := img.Topic(name)
			resp.Topics = append(resp.Topics, b.metadataTopic(img, t, r.Version))
		}
		return resp
	}
	for _, rt := range r.Topics {
		var t *metadata.Topic
		var ok bool
		switch {
		case rt.Topic != nil && !describable(*rt.Topic):
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.ErrorCode, mt.AuthorizedOperations = rt.Topic, kerr.TopicAuthorizationFailed.Code, authorizedOperationsOmitted
			resp.Topics = append(resp.Topics, mt)
			continue
		case rt.Topic != nil:
			t, ok = img.Topic(*rt.Topic)
		default:
			t, ok = img.TopicByID(metadata.UUID(rt.TopicID))
			ok = ok && describable(t.Name)
		}
		if !ok {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.TopicID = rt.TopicID
			mt.AuthorizedOperations = authorizedOperationsOmitted
			switch {
			case rt.Topic == nil:
				mt.ErrorCode = kerr.UnknownTopicID.Code
			case controller.ValidateTopicName(*rt.Topic) != nil:
				mt.ErrorCode = kerr.InvalidTopicException.Code
			case createErrs[*rt.Topic] != nil:
				mt.ErrorCode = errCode(createErrs[*rt.Topic])
			default:
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.metadataTopic(img, t, r.Version))
	}
	return resp
}

// brokerList returns every registered broker's endpoint on the given listener.
func brokerList(img *metadata.Image, listener string) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, id := range img.BrokerIDs() {
		br := img.Brokers[id]
		if br.Fenced {
			continue // Kafka lists only the live (unfenced) brokers
		}
		for _, ep := range br.Endpoints {
			if ep.Listener != listener {
				continue
			}
			mb := kmsg.NewMetadataResponseBroker()
			mb.NodeID = br.ID
			mb.Host = ep.Host
			mb.Port = ep.Port
			if br.Rack != "" {
				rack := br.Rack
				mb.Rack = &rack
			}
			out = append(out, mb)
		}
	}
	return out
}

// metadataTopic describes t. A partition this broker leads but whose log it could not open
// is shown as Kafka shows a replica on an offline log directory: no leader
// (LEADER_NOT_AVAILABLE) and this broker among the offline replicas.
func (b *Broker) metadataTopic(img *metadata.Image, t *metadata.Topic, version int16) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = isInternalTopic(t.Name)
	mt.AuthorizedOperations = authorizedOperationsOmitted
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Partition
		mp.Leader, mp.OfflineReplicas = b.partitionLeader(img, t.Name, p)
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		if mp.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// partitionLeader returns the leader and the offline replicas of partition p of topic as this
// broker shows them (Metadata, DescribeTopicPartitions): the image's leader, and the replicas
// on brokers that are not alive. A partition this broker leads but whose log it could not open
// has no leader and this broker among its offline replicas.
func (b *Broker) partitionLeader(img *metadata.Image, topic string, p metadata.Partition) (leader int32, offline []int32) {
	leader, offline = p.Leader, offlineReplicas(img, p.Replicas)
	if p.Leader == b.cfg.NodeID && b.replicas.Offline(topic, p.Partition) {
		leader = -1
		if !slices.Contains(offline, b.cfg.NodeID) {
			offline = append(offline, b.cfg.NodeID)
		}
	}
	return leader, offline
}

// offlineReplicas are the replicas on brokers that are not alive (fenced or not registered),
// as Kafka's KRaft brokers report them (kafka-topics shows them as "Offline").
func offlineReplicas(img *metadata.Image, replicas []int32) []int32 {
	var out []int32
	for _, id := range replicas {
		if br, ok := img.Brokers[id]; !ok || br.Fenced {
			out = append(out, id)
		}
	}
	return out
}

func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}
