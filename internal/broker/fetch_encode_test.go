package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/wire"
)

// The hand encoder must produce exactly kmsg's bytes for every served Fetch version.
func TestAppendFetchFrameMatchesKmsg(t *testing.T) {
	records := bytes.Repeat([]byte{0xab}, 300)
	for v := int16(4); v <= 16; v++ {
		for _, tc := range []struct {
			name    string
			batches [][]byte
			aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
		}{
			{"empty", [][]byte{{}, {}}, nil},
			{"records", [][]byte{records, {}}, nil},
			{"null and records", [][]byte{nil, records[:10]}, []kmsg.FetchResponseTopicPartitionAbortedTransaction{}},
			{"aborted", [][]byte{records, records}, []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 9}}},
		} {
			resp := kmsg.NewPtrFetchResponse()
			resp.SetVersion(v)
			resp.ThrottleMillis, resp.ErrorCode, resp.SessionID = 3, 0, 42
			for ti, name := range []string{"alpha", "beta-topic"} {
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic = name
				rt.TopicID = [16]byte{byte(ti + 1), 2, 3}
				for pi, b := range tc.batches {
					p := kmsg.NewFetchResponseTopicPartition()
					p.Partition = int32(pi)
					p.ErrorCode = int16(pi)
					p.HighWatermark, p.LastStableOffset, p.LogStartOffset = 100, 99, 5
					p.PreferredReadReplica = -1
					p.AbortedTransactions = tc.aborted
					p.RecordBatches = b
					rt.Partitions = append(rt.Partitions, p)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			if !fetchEncodable(resp) {
				t.Fatalf("v%d %s: not encodable", v, tc.name)
			}
			want := wire.AppendResponse(nil, 77, resp)
			got := bytes.Join(appendFetchFrame(nil, 77, resp), nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d %s: encodings differ\n got % x\nwant % x", v, tc.name, got, want)
			}
		}
	}
}

func TestFetchEncodableRejectsTaggedFields(t *testing.T) {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	rt := kmsg.NewFetchResponseTopic()
	p := kmsg.NewFetchResponseTopicPartition()
	p.DivergingEpoch.Epoch = 3
	rt.Partitions = append(rt.Partitions, p)
	resp.Topics = append(resp.Topics, rt)
	if fetchEncodable(resp) {
		t.Fatal("a diverging epoch must go through kmsg")
	}
}

func TestReadBuffersCarveChunksAndRelease(t *testing.T) {
	var r readBuffers
	a := r.alloc(100)
	b := r.alloc(200)
	if len(r.held) != 1 || &a[0] == &b[0] || cap(a) != 100 {
		t.Fatalf("small allocations should share one chunk: %d chunks, cap %d", len(r.held), cap(a))
	}
	if &b[0] != &(*r.held[0])[100] {
		t.Fatal("second allocation does not follow the first in the chunk")
	}
	r.alloc(readChunkSize - 250) // fits in the rest
	r.alloc(100)                 // needs a new chunk
	if len(r.held) != 2 {
		t.Fatalf("%d chunks, want 2", len(r.held))
	}
	if big := r.alloc(readChunkSize + 1); len(big) != readChunkSize+1 || len(r.held) != 2 {
		t.Fatal("a read larger than a chunk must come from the heap")
	}
	r.release()
	if len(r.held) != 0 || r.tail != nil {
		t.Fatal("release kept chunks")
	}
}
