package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/metadata"
)

// Committed offsets. From v10 (KIP-848) OffsetCommit and OffsetFetch name topics by id.
func init() {
	register(kmsg.OffsetCommit.Int16(), 0, 10, handleOffsetCommit)
	register(kmsg.OffsetFetch.Int16(), 0, 10, handleOffsetFetch)
	register(kmsg.OffsetDelete.Int16(), 0, 0, handleOffsetDelete)
}

// offsetsTopicIDVersion is the first OffsetCommit and OffsetFetch version that names topics by
// id instead of by name.
const offsetsTopicIDVersion = 10

// partitionExists reports whether the image has the topic and partition.
func partitionExists(img *metadata.Image, topic string, partition int32) bool {
	t, ok := img.Topic(topic)
	return ok && partition >= 0 && int(partition) < len(t.Partitions)
}

// topicByID returns the image's topic with this id. The zero id names no topic.
func topicByID(img *metadata.Image, id [16]byte) (*metadata.Topic, bool) {
	if id == ([16]byte{}) {
		return nil, false
	}
	return img.TopicByID(metadata.UUID(id))
}

// commitResponse builds OffsetCommit's topics the way Kafka's OffsetCommitResponse.Builder
// does: the partitions refused before the coordinator (unknown topic or partition) come first,
// in request order; the coordinator's results are merged after them, appended to a refused
// topic's entry when the topic has both. Topics are matched by id from v10, by name before.
type commitResponse struct {
	byID   bool
	topics []kmsg.OffsetCommitResponseTopic
	index  map[string]int // topic key -> position in topics
}

func (c *commitResponse) key(name string, id [16]byte) string {
	if c.byID {
		return string(id[:])
	}
	return name
}

// topic returns the position of the topic's entry, adding it if it has none.
func (c *commitResponse) topic(name string, id [16]byte) int {
	k := c.key(name, id)
	if i, ok := c.index[k]; ok {
		return i
	}
	t := kmsg.NewOffsetCommitResponseTopic()
	t.Topic, t.TopicID = name, id
	c.topics = append(c.topics, t)
	c.index[k] = len(c.topics) - 1
	return len(c.topics) - 1
}

func (c *commitResponse) refuse(name string, id [16]byte, partition int32, err *kerr.Error) {
	i := c.topic(name, id)
	p := kmsg.NewOffsetCommitResponseTopicPartition()
	p.Partition, p.ErrorCode = partition, err.Code
	c.topics[i].Partitions = append(c.topics[i].Partitions, p)
}

// merge adds the coordinator's results. Like Kafka, results replace an empty response as they
// are (a topic named twice in the request keeps two entries).
func (c *commitResponse) merge(results []kmsg.OffsetCommitResponseTopic) {
	if len(c.topics) == 0 {
		c.topics = results
		return
	}
	for _, t := range results {
		i := c.topic(t.Topic, t.TopicID)
		c.topics[i].Partitions = append(c.topics[i].Partitions, t.Partitions...)
	}
}

func handleOffsetCommit(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	img := b.ctrl.Image()
	cr := group.CommitRequest{
		Group:         r.Group,
		MemberID:      r.MemberID,
		Generation:    r.Generation,
		RetentionTime: -1,
		APIVersion:    r.Version,
	}
	if r.Version >= 7 {
		cr.InstanceID = r.InstanceID
	}
	if r.Version >= 2 && r.Version <= 4 && r.RetentionTimeMillis >= 0 {
		cr.RetentionTime = time.Duration(r.RetentionTimeMillis) * time.Millisecond
	}
	out := commitResponse{byID: r.Version >= offsetsTopicIDVersion, index: map[string]int{}}
	// The offsets sent to the coordinator, as response topics whose error codes are filled in
	// from its answer (one error per offset, in order).
	var sent []kmsg.OffsetCommitResponseTopic
	// READ on the group, then on each topic.
	groupOK := b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group)
	for _, rt := range r.Topics {
		name, id := rt.Topic, rt.TopicID
		var refuse *kerr.Error
		if out.byID {
			if t, ok := topicByID(img, id); ok {
				name = t.Name
			} else {
				refuse = kerr.UnknownTopicID
			}
		} else if _, ok := img.Topic(name); !ok {
			refuse = kerr.UnknownTopicOrPartition
		}
		switch {
		case !groupOK:
			refuse = kerr.GroupAuthorizationFailed
		case refuse != kerr.UnknownTopicID && !b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, name):
			refuse = kerr.TopicAuthorizationFailed
		}
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic, st.TopicID = name, id
		for _, rp := range rt.Partitions {
			switch {
			case refuse != nil:
				out.refuse(name, id, rp.Partition, refuse)
			case !partitionExists(img, name, rp.Partition):
				out.refuse(name, id, rp.Partition, kerr.UnknownTopicOrPartition)
			default:
				cr.Offsets = append(cr.Offsets, group.CommitOffset{
					TopicPartition:  group.TopicPartition{Topic: name, Partition: rp.Partition},
					Offset:          rp.Offset,
					LeaderEpoch:     rp.LeaderEpoch,
					Metadata:        rp.Metadata,
					CommitTimestamp: rp.Timestamp,
				})
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				st.Partitions = append(st.Partitions, sp)
			}
		}
		if len(st.Partitions) > 0 {
			sent = append(sent, st)
		}
	}
	if len(cr.Offsets) > 0 {
		errs := b.groups.CommitOffsets(cr)
		k := 0
		for i := range sent {
			for j := range sent[i].Partitions {
				sent[i].Partitions[j].ErrorCode = errCode(errs[k])
				k++
			}
		}
		out.merge(sent)
	}
	resp.Topics = out.topics
	return resp, nil
}

func handleOffsetFetch(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	img := b.ctrl.Image()
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			resp.Groups = append(resp.Groups, b.authorizedGroupOffsets(req, img, r.Version, rg, r.RequireStable))
		}
		return resp, nil
	}
	// v0-v7 name one group at the top level: it is answered as a group of v8, then flattened,
	// as Kafka's OffsetFetchResponse.Builder does.
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = r.Group
	if r.Topics != nil || r.Version < 2 { // "all partitions" (null topics) exists from v2
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		for _, t := range r.Topics {
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = t.Topic, t.Partitions
			rg.Topics = append(rg.Topics, gt)
		}
	}
	g := b.authorizedGroupOffsets(req, img, r.Version, rg, r.Version >= 7 && r.RequireStable)
	if g.ErrorCode != 0 && r.Version < 2 {
		// v0 and v1 have no group-level error: each partition carries it.
		g.Topics = noOffsets(rg.Topics, g.ErrorCode)
	}
	resp.ErrorCode = g.ErrorCode
	for _, gt := range g.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = gt.Topic
		for _, p := range gt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.OffsetFetchResponseTopicPartition{
				Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
			})
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// fetchGroupOffsets answers one group of OffsetFetch v8+ as Kafka's KafkaApis does. From v10
// topics are named by id: an id the image does not have (or the zero id) is answered with
// UNKNOWN_TOPIC_ID on each of its partitions, after the coordinator's topics, without asking
// the coordinator; a group error drops every topic. When all the group's offsets are asked
// for (null topics), those of topics the image does not have are left out: they have no id
// to name them by.
func (b *Broker) fetchGroupOffsets(img *metadata.Image, version int16, rg kmsg.OffsetFetchRequestGroup, requireStable bool) kmsg.OffsetFetchResponseGroup {
	byID := version >= offsetsTopicIDVersion
	sg := kmsg.NewOffsetFetchResponseGroup()
	sg.Group = rg.Group
	var tps []group.TopicPartition // nil: all of the group's offsets
	var unknown []kmsg.OffsetFetchResponseGroupTopic
	if rg.Topics != nil {
		tps = []group.TopicPartition{}
		for _, t := range rg.Topics {
			name := t.Topic
			if byID {
				mt, ok := topicByID(img, t.TopicID)
				if !ok {
					unknown = append(unknown, noOffsets([]kmsg.OffsetFetchRequestGroupTopic{t}, kerr.UnknownTopicID.Code)...)
					continue
				}
				name = mt.Name
			}
			for _, p := range t.Partitions {
				tps = append(tps, group.TopicPartition{Topic: name, Partition: p})
			}
		}
	}
	offsets, err := b.groups.FetchOffsetsForMember(rg.Group, rg.MemberID, rg.MemberEpoch, tps, requireStable)
	if err != nil {
		sg.ErrorCode = errCode(err)
		return sg
	}
	for _, ft := range groupFetched(offsets) {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic = ft[0].Topic
		if byID {
			t, ok := img.Topic(st.Topic)
			if !ok {
				continue
			}
			st.TopicID = t.ID
		}
		for _, f := range ft {
			sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			md := f.Metadata
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = f.Partition, f.Offset, f.LeaderEpoch, &md
			sp.ErrorCode = errCode(f.Err)
			st.Partitions = append(st.Partitions, sp)
		}
		sg.Topics = append(sg.Topics, st)
	}
	sg.Topics = append(sg.Topics, unknown...)
	return sg
}

// noOffsets answers the partitions of topics with an error and no offset (-1, no leader epoch,
// empty metadata), as Kafka answers the topics it refuses.
func noOffsets(topics []kmsg.OffsetFetchRequestGroupTopic, code int16) []kmsg.OffsetFetchResponseGroupTopic {
	var out []kmsg.OffsetFetchResponseGroupTopic
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic, st.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			sp.Partition, sp.Offset = p, -1
			sp.Metadata = new(string)
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}

// groupFetched splits offsets into runs of the same topic, keeping their order (the
// coordinator returns them in request order, or sorted for "all partitions").
func groupFetched(offsets []group.FetchedOffset) [][]group.FetchedOffset {
	var out [][]group.FetchedOffset
	index := map[string]int{}
	for _, f := range offsets {
		i, ok := index[f.Topic]
		if !ok {
			i = len(out)
			index[f.Topic] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], f)
	}
	return out
}

func handleOffsetDelete(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.OffsetDeleteRequest)
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	// Kafka's checks: DELETE on the group (the top-level error), then READ on each topic
	// (each of its partitions TOPIC_AUTHORIZATION_FAILED, before "unknown").
	if !b.authorize(req, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, r.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	img := b.ctrl.Image()
	type pos struct{ t, p int }
	var tps []group.TopicPartition
	var sent []pos
	for i, rt := range r.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		readable := b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic)
		for j, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !readable:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case !partitionExists(img, rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				tps = append(tps, group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
				sent = append(sent, pos{i, j})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	gerr, errs := b.groups.DeleteOffsets(r.Group, tps)
	if gerr != nil {
		resp.ErrorCode = errCode(gerr)
		resp.Topics = nil
		return resp, nil
	}
	for k, err := range errs {
		resp.Topics[sent[k].t].Partitions[sent[k].p].ErrorCode = errCode(err)
	}
	return resp, nil
}

// authorizedGroupOffsets is fetchGroupOffsets with Kafka's checks: DESCRIBE on the group
// (GROUP_AUTHORIZATION_FAILED), then on each topic (a topic named in the request is
// TOPIC_AUTHORIZATION_FAILED, one of "all topics" is left out).
func (b *Broker) authorizedGroupOffsets(req *request, img *metadata.Image, version int16, rg kmsg.OffsetFetchRequestGroup, stable bool) kmsg.OffsetFetchResponseGroup {
	if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, rg.Group) {
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, kerr.GroupAuthorizationFailed.Code
		return g
	}
	g := b.fetchGroupOffsets(img, version, rg, stable)
	if b.authorizer == nil {
		return g
	}
	kept := g.Topics[:0]
	for _, gt := range g.Topics {
		if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, gt.Topic) {
			if rg.Topics == nil {
				continue
			}
			for i := range gt.Partitions {
				gt.Partitions[i].Offset, gt.Partitions[i].LeaderEpoch, gt.Partitions[i].Metadata = -1, -1, nil
				gt.Partitions[i].ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
		}
		kept = append(kept, gt)
	}
	g.Topics = kept
	return g
}
