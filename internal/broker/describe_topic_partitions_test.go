package broker_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// describeTopicPartitions sends one DescribeTopicPartitions request.
func describeTopicPartitions(t *testing.T, cl *kgo.Client, topics []string, limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor) *kmsg.DescribeTopicPartitionsResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	for _, name := range topics {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = name
		req.Topics = append(req.Topics, rt)
	}
	req.ResponsePartitionLimit = limit
	req.Cursor = cursor
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// dtpSummary renders a response as "topic:partitions|...>cursor", e.g. "a:0,1>a/2": topics in
// response order with their error when not 0 ("nope!UNKNOWN_TOPIC_OR_PARTITION"), and the next
// cursor ("" when none).
func dtpSummary(resp *kmsg.DescribeTopicPartitionsResponse) string {
	s := ""
	for i, rt := range resp.Topics {
		if i > 0 {
			s += "|"
		}
		s += *rt.Topic
		if rt.ErrorCode != 0 {
			s += "!" + kerr.ErrorForCode(rt.ErrorCode).Error()
			continue
		}
		s += ":"
		for j, p := range rt.Partitions {
			if j > 0 {
				s += ","
			}
			s += fmt.Sprint(p.Partition)
		}
	}
	if c := resp.NextCursor; c != nil {
		s += fmt.Sprintf(">%s/%d", c.Topic, c.Partition)
	}
	return s
}

// TestDescribeTopicPartitions: topics a (3 partitions), b (1) and c (4) on a broker whose
// max.request.partition.size.limit is 5. Every answer is sorted by name, pages at the smaller
// of the broker's and the request's limits, and continues from the cursor, mid-topic or at a
// topic's start, as Kafka's broker does.
func TestDescribeTopicPartitions(t *testing.T) {
	n := testcluster.Start(t, "max.request.partition.size.limit=5")
	createTopic(t, n, "c", 4, nil)
	createTopic(t, n, "a", 3, nil)
	createTopic(t, n, "b", 1, nil)
	cl := newClient(t, n)
	cursor := func(topic string, p int32) *kmsg.DescribeTopicPartitionsRequestCursor {
		return &kmsg.DescribeTopicPartitionsRequestCursor{Topic: topic, Partition: p}
	}
	for _, tc := range []struct {
		name   string
		topics []string
		limit  int32
		cursor *kmsg.DescribeTopicPartitionsRequestCursor
		want   string
	}{
		{"all topics, broker limit", nil, 2000, nil, "a:0,1,2|b:0|c:0>c/1"},
		{"all topics from a mid-topic cursor", nil, 2000, cursor("c", 1), "c:1,2,3"},
		{"request limit below the broker's", nil, 2, nil, "a:0,1>a/2"},
		{"cursor mid-topic, page ends at a topic's end", nil, 2, cursor("a", 2), "a:2|b:0>c/0"},
		{"cursor at a topic's start", nil, 2, cursor("c", 0), "c:0,1>c/2"},
		{"last page", nil, 2, cursor("c", 2), "c:2,3"},
		{"cursor past the last topic", nil, 2, cursor("d", 0), ""},
		{"named, sorted, each once", []string{"c", "a", "c"}, 2000, nil, "a:0,1,2|c:0,1>c/2"},
		{"named from a cursor", []string{"c", "a"}, 2000, cursor("c", 2), "c:2,3"},
		{"unknown and invalid names", []string{"nope", "b", "bad/name"}, 2000, nil,
			"b:0|bad/name!" + kerr.InvalidTopicException.Error() + "|nope!" + kerr.UnknownTopicOrPartition.Error()},
		{"unknown topics take no room", []string{"b", "bb", "c"}, 2, nil, "b:0|bb!" + kerr.UnknownTopicOrPartition.Error() + "|c:0>c/1"},
		{"cursor not among the named topics", []string{"a", "b"}, 2000, cursor("c", 0),
			"a!" + kerr.InvalidRequest.Error() + "|b!" + kerr.InvalidRequest.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := describeTopicPartitions(t, cl, tc.topics, tc.limit, tc.cursor)
			if got := dtpSummary(resp); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	// Following the cursors with a limit of 1 visits every partition once, in order.
	var got []string
	var next *kmsg.DescribeTopicPartitionsRequestCursor
	for range 20 {
		resp := describeTopicPartitions(t, cl, nil, 1, next)
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				got = append(got, fmt.Sprintf("%s-%d", *rt.Topic, p.Partition))
			}
		}
		if resp.NextCursor == nil {
			break
		}
		next = cursor(resp.NextCursor.Topic, resp.NextCursor.Partition)
	}
	want := []string{"a-0", "a-1", "a-2", "b-0", "c-0", "c-1", "c-2", "c-3"}
	if !slices.Equal(got, want) {
		t.Errorf("paging by 1: %v, want %v", got, want)
	}
}

// TestDescribeTopicPartitionsFields: a described partition carries what Metadata says of it,
// the topic its id, and the fields Samsa has no data for are Kafka's empty values: eligible
// leader replicas and last known ELR are empty lists (not null, which Kafka's admin client
// cannot read), authorized operations the "not requested" value.
func TestDescribeTopicPartitionsFields(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "f", 2, nil)
	cl := newClient(t, n)
	resp := describeTopicPartitions(t, cl, []string{"f"}, 2000, nil)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("response %s", dtpSummary(resp))
	}
	rt := resp.Topics[0]
	meta, err := newAdmin(t, n).Metadata(ctxT(t), "f")
	if err != nil {
		t.Fatal(err)
	}
	mt := meta.Topics["f"]
	// Without an authorizer every operation on a topic is allowed: READ, WRITE, CREATE, DELETE,
	// ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (bits 3-8, 10, 11), always filled in.
	if rt.TopicID != mt.ID || rt.TopicID == [16]byte{} || rt.IsInternal || rt.AuthorizedOperations != 0b110111111000 {
		t.Errorf("topic id %x (Metadata %x), internal %v, authorized operations %d", rt.TopicID, mt.ID, rt.IsInternal, rt.AuthorizedOperations)
	}
	for _, p := range rt.Partitions {
		mp := mt.Partitions[p.Partition]
		if p.ErrorCode != 0 || p.LeaderID != mp.Leader || p.LeaderEpoch != mp.LeaderEpoch ||
			!slices.Equal(p.Replicas, mp.Replicas) || !slices.Equal(p.ISR, mp.ISR) || len(p.OfflineReplicas) != 0 {
			t.Errorf("partition %+v, Metadata %+v", p, mp)
		}
		if p.EligibleLeaderReplicas == nil || len(p.EligibleLeaderReplicas) != 0 || p.LastKnownELR == nil || len(p.LastKnownELR) != 0 {
			t.Errorf("partition %d: ELR %v (nil %v), last known ELR %v (nil %v): want empty lists",
				p.Partition, p.EligibleLeaderReplicas, p.EligibleLeaderReplicas == nil, p.LastKnownELR, p.LastKnownELR == nil)
		}
	}
}
