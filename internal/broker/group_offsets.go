package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/metadata"
)

// Committed offsets. OffsetCommit and OffsetFetch v10 name topics by id and are not served.
func init() {
	register(kmsg.OffsetCommit.Int16(), 0, 9, handleOffsetCommit)
	register(kmsg.OffsetFetch.Int16(), 0, 9, handleOffsetFetch)
	register(kmsg.OffsetDelete.Int16(), 0, 0, handleOffsetDelete)
}

// partitionExists reports whether the image has the topic and partition.
func partitionExists(img *metadata.Image, topic string, partition int32) bool {
	t, ok := img.Topic(topic)
	return ok && partition >= 0 && int(partition) < len(t.Partitions)
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
	// Positions of the offsets sent to the coordinator, to put their errors back.
	type pos struct{ t, p int }
	var sent []pos
	for i, rt := range r.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for j, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			if !partitionExists(img, rt.Topic, rp.Partition) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				cr.Offsets = append(cr.Offsets, group.CommitOffset{
					TopicPartition:  group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition},
					Offset:          rp.Offset,
					LeaderEpoch:     rp.LeaderEpoch,
					Metadata:        rp.Metadata,
					CommitTimestamp: rp.Timestamp,
				})
				sent = append(sent, pos{i, j})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(cr.Offsets) > 0 {
		for k, err := range b.groups.CommitOffsets(cr) {
			resp.Topics[sent[k].t].Partitions[sent[k].p].ErrorCode = errCode(err)
		}
	}
	return resp, nil
}

func handleOffsetFetch(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			var tps []group.TopicPartition
			if rg.Topics != nil {
				tps = []group.TopicPartition{}
				for _, t := range rg.Topics {
					for _, p := range t.Partitions {
						tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p})
					}
				}
			}
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			offsets, err := b.groups.FetchOffsetsForMember(rg.Group, rg.MemberID, rg.MemberEpoch, tps)
			sg.ErrorCode = errCode(err)
			for _, ft := range groupFetched(offsets) {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = ft[0].Topic
				for _, f := range ft {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch = f.Partition, f.Offset, f.LeaderEpoch
					md := f.Metadata
					sp.Metadata = &md
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp, nil
	}
	var tps []group.TopicPartition
	if r.Topics != nil || r.Version < 2 { // "all partitions" (null topics) exists from v2
		tps = []group.TopicPartition{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	offsets, err := b.groups.FetchOffsets(r.Group, tps)
	if err != nil {
		if r.Version >= 2 {
			resp.ErrorCode = errCode(err)
			return resp, nil
		}
		// v0 and v1 have no group-level error: each partition carries it.
		for _, tp := range tps {
			offsets = append(offsets, group.FetchedOffset{TopicPartition: tp, Offset: -1, LeaderEpoch: -1, Err: err})
		}
	}
	for _, ft := range groupFetched(offsets) {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = ft[0].Topic
		for _, f := range ft {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch = f.Partition, f.Offset, f.LeaderEpoch
			md := f.Metadata
			sp.Metadata = &md
			sp.ErrorCode = errCode(f.Err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
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
	img := b.ctrl.Image()
	type pos struct{ t, p int }
	var tps []group.TopicPartition
	var sent []pos
	for i, rt := range r.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for j, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			if !partitionExists(img, rt.Topic, rp.Partition) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
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
