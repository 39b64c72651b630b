package broker_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// produceRequest is a Produce v7 of one record to partition 0 of topic.
func produceRequest(topic string, acks int16, value string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(7)
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = valueBatch(value)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// valueBatch is a record batch of one record with value, readable by clients (rawBatch leaves
// the record's length 0).
func valueBatch(value string) []byte {
	rec := kmsg.Record{Value: []byte(value)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // less the one-byte varint of length 0
	b := kmsg.RecordBatch{Magic: 2, NumRecords: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		Records: rec.AppendTo(nil)}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], records.ComputeCRC(raw))
	return raw
}

// TestConnPipelinedRequestsAnsweredInOrder: requests sent back to back on one connection,
// more than the pipeline holds, with acks=0 produces (no response) and a fetch that waits for
// its max wait among them, are handled in order and answered in order, whether or not a handler
// was running when each arrived.
func TestConnPipelinedRequestsAnsweredInOrder(t *testing.T) {
	n := testcluster.Start(t)
	longPoll := func(topic string) kmsg.Request {
		f := newFetchRequest(topic, 0)
		f.SetVersion(11)
		f.MaxWaitMillis, f.MinBytes = 300, 1<<20 // never reached: the fetch waits 300 ms
		return f
	}
	for _, tc := range []struct {
		name string
		// reqs builds the requests in the order sent; values are the records produced.
		reqs func(topic string) []kmsg.Request
	}{
		{"many small requests", func(string) []kmsg.Request {
			var reqs []kmsg.Request
			for i := range 30 {
				if i%3 == 0 {
					reqs = append(reqs, kmsg.NewPtrMetadataRequest())
				} else {
					reqs = append(reqs, kmsg.NewPtrApiVersionsRequest())
				}
			}
			return reqs
		}},
		{"acks=0 among answered produces", func(topic string) []kmsg.Request {
			var reqs []kmsg.Request
			for i := range 24 {
				acks := int16(1)
				if i%2 == 0 {
					acks = 0
				}
				reqs = append(reqs, produceRequest(topic, acks, fmt.Sprint(i)))
			}
			return reqs
		}},
		{"acks=0 last", func(topic string) []kmsg.Request {
			return []kmsg.Request{produceRequest(topic, 1, "0"), produceRequest(topic, 0, "1"), produceRequest(topic, 0, "2")}
		}},
		{"long poll first", func(topic string) []kmsg.Request {
			return []kmsg.Request{longPoll(topic), kmsg.NewPtrApiVersionsRequest(), produceRequest(topic, 0, "0"),
				kmsg.NewPtrMetadataRequest(), produceRequest(topic, 1, "1"), longPoll(topic), kmsg.NewPtrApiVersionsRequest()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("pipelined-%d", len(tc.name))
			createTopic(t, n, topic, 1, nil)
			reqs := tc.reqs(topic)
			var out []byte
			var answered []int32
			var values []string
			for i, req := range reqs {
				out = append(out, rawRequest(req, int32(i))...)
				if p, ok := req.(*kmsg.ProduceRequest); ok {
					var rec kmsg.RecordBatch
					rec.ReadFrom(p.Topics[0].Partitions[0].Records)
					var r kmsg.Record
					r.ReadFrom(rec.Records)
					values = append(values, string(r.Value))
					if p.Acks == 0 {
						continue
					}
				}
				answered = append(answered, int32(i))
			}
			c, err := net.Dial("tcp", n.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(out); err != nil {
				t.Fatal(err)
			}
			for _, want := range answered {
				body := readResponse(t, c)
				if got := int32(binary.BigEndian.Uint32(body)); got != want {
					t.Fatalf("response with correlation id %d, want %d", got, want)
				}
				if p, ok := reqs[want].(*kmsg.ProduceRequest); ok {
					resp := p.ResponseKind().(*kmsg.ProduceResponse)
					if err := resp.ReadFrom(body[4:]); err != nil {
						t.Fatal(err)
					}
					if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
						t.Fatalf("request %d: produce error code %d", want, code)
					}
				}
			}
			if len(values) == 0 {
				return
			}
			for i, rec := range consumeAll(t, n, topic, len(values)) {
				if string(rec.Value) != values[i] {
					t.Fatalf("record %d is %q, want %q (appended out of order)", i, rec.Value, values[i])
				}
			}
		})
	}
}
