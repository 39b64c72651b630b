package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/wire"
)

// produceFrame returns a complete size-prefixed Produce v9 request frame (flexible header)
// carrying one partition with a batchSize-byte record batch (its contents are opaque here).
func produceFrame(batchSize int) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = 1
	req.TimeoutMillis = 30000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition = 0
	p.Records = bytes.Repeat([]byte{'x'}, batchSize)
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)

	var frame []byte
	frame = append(frame, 0, 0, 0, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Version))
	frame = binary.BigEndian.AppendUint32(frame, 42)
	client := "bench-client"
	frame = binary.BigEndian.AppendUint16(frame, uint16(len(client)))
	frame = append(frame, client...)
	frame = append(frame, 0) // no tagged fields
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// BenchmarkReadFrame reads a 16 KiB produce frame from a reader into a reused buffer.
func BenchmarkReadFrame(b *testing.B) {
	frame := produceFrame(16 << 10)
	r := bytes.NewReader(frame)
	buf := make([]byte, len(frame))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		if _, err := wire.ReadFrame(r, 100<<20, buf, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestHeader decodes a flexible (v2) request header.
func BenchmarkParseRequestHeader(b *testing.B) {
	body := produceFrame(16 << 10)[4:]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := wire.ParseRequestHeader(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeProduceRequest is the broker's whole decode path for one produce request: read
// the frame, parse the header, decode the body with kmsg (as broker.conn.decode does).
func BenchmarkDecodeProduceRequest(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			frame := produceFrame(size)
			r := bytes.NewReader(frame)
			buf := make([]byte, len(frame))
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(frame)
				f, err := wire.ReadFrame(r, 100<<20, buf, nil)
				if err != nil {
					b.Fatal(err)
				}
				hdr, body, err := wire.ParseRequestHeader(f)
				if err != nil {
					b.Fatal(err)
				}
				req := kmsg.RequestForKey(hdr.Key)
				req.SetVersion(hdr.Version)
				if err := req.ReadFrom(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// BenchmarkReadFrameFreshBuffer reads small frames (a fetch request's size) into a new buffer
// each time, through a bufio.Reader as the broker does: the frame arrived whole, so it must
// cost one allocation of its size.
func BenchmarkReadFrameFreshBuffer(b *testing.B) {
	frame := produceFrame(100)
	r := bytes.NewReader(frame)
	br := bufio.NewReader(r)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		br.Reset(r)
		if _, err := wire.ReadFrame(br, 100<<20, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
