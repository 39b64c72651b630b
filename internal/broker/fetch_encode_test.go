package broker

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/storage"
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
			got := joinSegs(t, appendFetchFrame(nil, 77, resp, nil))
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

// joinSegs concatenates a frame's segments, reading file regions.
func joinSegs(t *testing.T, segs []outSeg) []byte {
	t.Helper()
	var out []byte
	for _, s := range segs {
		if s.region == nil {
			out = append(out, s.mem...)
			continue
		}
		b := make([]byte, s.region.Len)
		if _, err := s.region.File.ReadAt(b, s.region.Pos); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// Partitions sent from file regions encode exactly as if their bytes were in memory, and go
// out intact through writeSegments (sendfile on a real TCP connection).
func TestFetchFrameWithFileRegions(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "segment")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	content := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int16{4, 11, 12, 16} {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(v)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = "t"
		for i := 0; i < 3; i++ {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = int32(i)
			p.RecordBatches = emptyRecords
			rt.Partitions = append(rt.Partitions, p)
		}
		resp.Topics = append(resp.Topics, rt)
		regions := map[*kmsgPartition]*storage.Region{
			&resp.Topics[0].Partitions[0]: {File: f, Pos: 5, Len: 70000},
			&resp.Topics[0].Partitions[2]: {File: f, Pos: 100000, Len: 3},
		}
		segs := appendFetchFrame(nil, 9, resp, regions)

		// The same response with the bytes in memory, encoded by kmsg.
		mem := kmsg.NewPtrFetchResponse()
		mem.SetVersion(v)
		mt := kmsg.NewFetchResponseTopic()
		mt.Topic = "t"
		for i, b := range [][]byte{content[5:70005], {}, content[100000:100003]} {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = int32(i)
			p.RecordBatches = b
			mt.Partitions = append(mt.Partitions, p)
		}
		mem.Topics = append(mem.Topics, mt)
		want := wire.AppendResponse(nil, 9, mem)
		if got := joinSegs(t, segs); !bytes.Equal(got, want) {
			t.Fatalf("v%d: frame with regions differs from kmsg's encoding", v)
		}

		// Over a real TCP connection.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			b, _ := io.ReadAll(c)
			got <- b
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := writeSegments(c, segs); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("v%d: %d bytes arrived over TCP, want %d identical", v, len(b), len(want))
		}
		ln.Close()
	}
}
