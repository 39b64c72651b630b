package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/samsa-io/samsa/internal/wire"
)

// rawConn speaks the Kafka protocol over one TCP connection with pre-encoded requests, so
// that a benchmark measures the broker (frame, decode, handler, encode, write) and not a
// client library.
type rawConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func dialRaw(b *testing.B, addr string) *rawConn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &rawConn{c: c, r: bufio.NewReaderSize(c, 1<<20)}
}

// encodeRequest returns a complete request frame.
func encodeRequest(req kmsg.Request, corr int32) []byte { return rawRequest(req, corr) }

// roundTrip writes a request frame and returns the response body (after the header).
func (rc *rawConn) roundTrip(b *testing.B, frame []byte, flexible bool) []byte {
	if _, err := rc.c.Write(frame); err != nil {
		b.Fatal(err)
	}
	resp, err := wire.ReadFrame(rc.r, 200<<20, rc.buf, nil)
	rc.buf = resp[:0]
	if err != nil {
		b.Fatal(err)
	}
	resp = resp[4:] // correlation id
	if flexible {
		resp = resp[1:] // no tagged fields in our responses
	}
	return resp
}

// benchRecordBatch builds a valid uncompressed, non-idempotent v2 batch of n records.
func benchRecordBatch(n, valueSize int) []byte {
	value := bytes.Repeat([]byte{'v'}, valueSize)
	var recs []byte
	for i := 0; i < n; i++ {
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, 0)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1)
		body = binary.AppendVarint(body, int64(len(value)))
		body = append(body, value...)
		body = binary.AppendVarint(body, 0)
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), NumRecords: int32(n),
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: recs}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], records.ComputeCRC(raw))
	return raw
}

func benchNode(b *testing.B, topic string, partitions int32) *testcluster.Node {
	b.Helper()
	var settings []string
	if os.Getenv("SAMSA_BENCH_METRICS") == "1" {
		// The request path with its metrics (samsa.metrics.address set), to compare.
		settings = append(settings, "samsa.metrics.address=127.0.0.1:0")
	}
	n := testcluster.Start(b, settings...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkProduceHandler sends acks=1 produce requests with one 16 KiB batch (150 records of
// 100 bytes) over one connection and waits for each response: decode, validation, append and
// the response, one request at a time.
func BenchmarkProduceHandler(b *testing.B) {
	n := benchNode(b, "bench", 1)
	rc := dialRaw(b, n.Addr())
	batch := benchRecordBatch(150, 100)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = 1
	req.TimeoutMillis = 30000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = batch
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	frame := encodeRequest(req, 1)

	first := rc.roundTrip(b, frame, true)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	if err := resp.ReadFrom(first); err != nil {
		b.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		b.Fatalf("produce error code %d", code)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		rc.roundTrip(b, frame, true)
	}
}

// BenchmarkFetchHandler fetches up to 1 MiB per partition from a log of 16 KiB batches, one
// request at a time over one connection: the fetch handler's assembly of the response from
// the log (reads, offsets, the response encoding) and its write.
func BenchmarkFetchHandler(b *testing.B) {
	for _, parts := range []int32{1, 16} {
		b.Run(fmt.Sprintf("%dp", parts), func(b *testing.B) {
			n := benchNode(b, "bench", parts)
			rc := dialRaw(b, n.Addr())
			batch := benchRecordBatch(150, 100)
			// Fill every partition with 4 MiB.
			perPart := (4 << 20) / len(batch)
			prod := kmsg.NewPtrProduceRequest()
			prod.Version = 9
			prod.Acks = 1
			prod.TimeoutMillis = 30000
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = "bench"
			for p := int32(0); p < parts; p++ {
				pp := kmsg.NewProduceRequestTopicPartition()
				pp.Partition = p
				pp.Records = batch
				pt.Partitions = append(pt.Partitions, pp)
			}
			prod.Topics = append(prod.Topics, pt)
			pframe := encodeRequest(prod, 1)
			for i := 0; i < perPart; i++ {
				rc.roundTrip(b, pframe, true)
			}
			end := int64(perPart * 150)

			fetchFrame := func(offset int64) []byte {
				req := kmsg.NewPtrFetchRequest()
				req.Version = 12
				req.ReplicaID = -1
				req.MaxWaitMillis = 0
				req.MinBytes = 1
				req.MaxBytes = 50 << 20
				req.SessionEpoch = -1
				ft := kmsg.NewFetchRequestTopic()
				ft.Topic = "bench"
				for p := int32(0); p < parts; p++ {
					fp := kmsg.NewFetchRequestTopicPartition()
					fp.Partition = p
					fp.FetchOffset = offset
					fp.PartitionMaxBytes = 1 << 20
					fp.CurrentLeaderEpoch = -1
					fp.LastFetchedEpoch = -1
					fp.LogStartOffset = -1
					ft.Partitions = append(ft.Partitions, fp)
				}
				req.Topics = append(req.Topics, ft)
				return encodeRequest(req, 2)
			}
			// 16 request frames at offsets spread over the log.
			var frames [][]byte
			for i := int64(0); i < 16; i++ {
				frames = append(frames, fetchFrame(i*end/20))
			}
			body := rc.roundTrip(b, frames[0], true)
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 12
			if err := resp.ReadFrom(body); err != nil {
				b.Fatal(err)
			}
			got := 0
			for _, p := range resp.Topics[0].Partitions {
				if p.ErrorCode != 0 {
					b.Fatalf("fetch error code %d", p.ErrorCode)
				}
				got += len(p.RecordBatches)
			}
			if got < int(parts)*(1<<20)*9/10 {
				b.Fatalf("fetch returned %d bytes for %d partitions", got, parts)
			}
			b.SetBytes(int64(got))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rc.roundTrip(b, frames[i%len(frames)], true)
				i++
			}
		})
	}
}
