package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
)

// The topic admin APIs: CreateTopics, DeleteTopics and CreatePartitions.
func init() {
	register(kmsg.CreateTopics.Int16(), 2, 7, handleCreateTopics)
	register(kmsg.DeleteTopics.Int16(), 1, 6, handleDeleteTopics)
	register(kmsg.CreatePartitions.Int16(), 0, 3, handleCreatePartitions)
}

func handleCreateTopics(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	count := map[string]int{}
	for _, rt := range r.Topics {
		count[rt.Topic]++
	}
	var creates []controller.CreateTopic
	// CREATE on the cluster, or on each topic.
	createAll := b.authorizeCluster(req, kmsg.ACLOperationCreate)
	denied := map[string]bool{}
	for _, rt := range r.Topics {
		if count[rt.Topic] > 1 {
			continue
		}
		if !createAll && !b.authorize(req, kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, rt.Topic) {
			denied[rt.Topic] = true
			continue
		}
		ct := controller.CreateTopic{
			Name:              rt.Topic,
			NumPartitions:     rt.NumPartitions,
			ReplicationFactor: rt.ReplicationFactor,
			Configs:           map[string]string{},
		}
		if len(rt.ReplicaAssignment) > 0 {
			ct.Assignments = make(map[int32][]int32, len(rt.ReplicaAssignment))
			for _, a := range rt.ReplicaAssignment {
				ct.Assignments[a.Partition] = a.Replicas
			}
		}
		for _, c := range rt.Configs {
			if c.Value != nil {
				ct.Configs[c.Name] = *c.Value
			}
		}
		creates = append(creates, ct)
	}
	img := b.ctrl.Image()
	mq := b.newMutationQuota(req, createTopicsStrictSince)
	creates, results := mq.chargeCreates(img, creates)
	if results == nil {
		results = map[string]controller.TopicResult{}
	}
	if len(creates) > 0 {
		for _, res := range b.createTopics(mq.context(req.conn.ctx), creates, r.ValidateOnly) {
			results[res.Name] = res
		}
	}
	mq.refundCreates(img, creates, results)
	mq.finish(req, resp)
	img = b.ctrl.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if count[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			msg := "topic " + rt.Topic + " appears more than once in the request"
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if denied[rt.Topic] {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		res := results[rt.Topic]
		if res.Err != nil {
			st.ErrorCode = errCode(res.Err)
			st.ErrorMessage = errMessage(res.Err)
		} else {
			st.TopicID = res.ID
			st.NumPartitions = res.NumPartitions
			st.ReplicationFactor = res.ReplicationFactor
			configs := map[string]string{}
			for _, c := range rt.Configs {
				if c.Value != nil {
					configs[c.Name] = *c.Value
				}
			}
			for _, c := range b.describeTopicConfigs(img, configs, nil, false, false) {
				cc := kmsg.NewCreateTopicsResponseTopicConfig()
				cc.Name, cc.Value, cc.ReadOnly, cc.Source, cc.IsSensitive = c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive
				st.Configs = append(st.Configs, cc)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	b.awaitMetadata(req)
	return resp, nil
}

func handleDeleteTopics(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	mq := b.newMutationQuota(req, deleteTopicsStrictSince)
	defer mq.finish(req, resp)
	if r.Version >= 6 {
		for _, t := range r.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range r.TopicNames {
			targets = append(targets, target{name: &r.TopicNames[i]})
		}
	}
	for _, t := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = t.name, t.id
		var err error
		// DELETE on the topic, by name or by the name of its id.
		name := t.name
		if name == nil {
			if mt, ok := b.ctrl.Image().TopicByID(metadata.UUID(t.id)); ok {
				name = &mt.Name
			}
		}
		var partitions, charged int64 // the controller mutation quota's charge (quotas_mutation.go)
		if name != nil {
			partitions = topicPartitions(b.ctrl.Image(), *name)
		}
		switch {
		case name != nil && !b.authorize(req, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, *name):
			err = kerr.TopicAuthorizationFailed
		case !b.cfg.DeleteTopicEnable:
			err = kerr.TopicDeletionDisabled
		case t.name != nil && isInternalTopic(*t.name):
			err = kerr.InvalidTopicException
		case mq.record(partitions) != nil:
			err = kerr.ThrottlingQuotaExceeded
		case t.name != nil:
			charged = partitions
			res := b.ctrl.DeleteTopics(mq.context(req.conn.ctx), []string{*t.name}, nil)
			err = res[0].Err
			st.TopicID = res[0].ID
		default:
			charged = partitions
			res := b.ctrl.DeleteTopics(mq.context(req.conn.ctx), nil, [][16]byte{t.id})
			err = res[0].Err
			if res[0].Name != "" {
				name := res[0].Name
				st.Topic = &name
			}
		}
		if err != nil {
			mq.refund(charged)
		}
		st.ErrorCode = errCode(err)
		if r.Version >= 5 {
			st.ErrorMessage = errMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	b.awaitMetadata(req)
	return resp, nil
}

// maxNewPartitionsPerRequest caps the partitions one CreatePartitions request adds in all, as
// createTopics creates topics through the controller, unless the log directory's free space
// is below its floor (samsa.log.dir.min.free.bytes): then every topic gets
// KAFKA_STORAGE_ERROR naming the directory, instead of partitions whose partition.metadata
// cannot be written, which would be offline until space returns.
func (b *Broker) createTopics(ctx context.Context, creates []controller.CreateTopic, validateOnly bool) []controller.TopicResult {
	if err := b.spaceForPartitions(); err != nil {
		results := make([]controller.TopicResult, len(creates))
		for i, ct := range creates {
			results[i] = controller.TopicResult{Name: ct.Name, Err: err}
		}
		return results
	}
	return b.ctrl.CreateTopics(ctx, creates, validateOnly)
}

// spaceForPartitions checks the log directory's free space (a fresh statfs) against its floor
// before new partitions are placed there: KAFKA_STORAGE_ERROR with the storage message
// (directory, free space, floor) when it is below.
func (b *Broker) spaceForPartitions() error {
	if err := b.replicas.SpaceFloor().Check(); err != nil {
		return kerrMsg(kerr.KafkaStorageError, err.Error())
	}
	return nil
}

// Kafka caps it (KAFKA-19673, the CreateTopics limit of KAFKA-17870): past it every topic of
// the request fails with POLICY_VIOLATION.
const maxNewPartitionsPerRequest = 10_000

func handleCreatePartitions(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	img := b.ctrl.Image()
	mq := b.newMutationQuota(req, createPartitionsStrictSince)
	defer mq.finish(req, resp)
	var added int64
	for _, rt := range r.Topics {
		added += addedPartitions(img, rt.Topic, rt.Count)
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		switch {
		case !b.authorize(req, kmsg.ACLOperationAlter, kmsg.ACLResourceTypeTopic, rt.Topic):
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		case added > maxNewPartitionsPerRequest:
			st.ErrorCode = kerr.PolicyViolation.Code
			st.ErrorMessage = errMessage(errors.New("Excessively large number of partitions per request."))
			resp.Topics = append(resp.Topics, st)
			continue
		case isInternalTopic(rt.Topic):
			// The group coordinator maps a group to a partition of __consumer_offsets by the
			// partition count: more partitions would move groups away from their offsets.
			// (Kafka's kafka-topics refuses this on the client side.)
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = errMessage(fmt.Errorf("the number of partitions of the internal topic %s cannot be changed", rt.Topic))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		var assignment [][]int32
		for _, a := range rt.Assignment {
			assignment = append(assignment, a.Replicas)
		}
		err := b.spaceForPartitions()
		newPartitions := addedPartitions(img, rt.Topic, rt.Count)
		if err == nil {
			err = mq.record(newPartitions)
			if err == nil {
				err = b.ctrl.CreatePartitions(mq.context(req.conn.ctx), rt.Topic, rt.Count, assignment, r.ValidateOnly)
				if err != nil {
					mq.refund(newPartitions)
				}
			}
		}
		st.ErrorCode = errCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	b.awaitMetadata(req)
	return resp, nil
}

// addedPartitions is how many partitions raising topic to count partitions adds (0 for a
// topic img does not have or a count not above its own).
func addedPartitions(img *metadata.Image, topic string, count int32) int64 {
	if t, ok := img.Topic(topic); ok && int(count) > len(t.Partitions) {
		return int64(int(count) - len(t.Partitions))
	}
	return 0
}
