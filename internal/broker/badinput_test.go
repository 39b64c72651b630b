package broker_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// rawRequest encodes a request frame with a v1 or v2 header as Kafka clients do.
func rawRequest(req kmsg.Request, corr int32) []byte {
	var b []byte
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// expectClosed reports whether the broker closed the connection (read returns EOF or reset)
// rather than answering within the deadline.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	_, err := c.Read(buf)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection still open (err %v)", err)
	}
}

func readResponse(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := readFrame(c)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return frame[4:]
}

var hugeTagCount = func() []byte {
	body := []byte("\x00\x16\x00\x040000\xff\xff\x00\x020Q000000N000\xb300\xdc\xfb\x90\x98\a\xf9qN000\xb3")
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}()

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	n := testcluster.Start(t, "socket.request.max.bytes=1048576")
	createTopic(t, n, "bad", 1, nil)

	huge := binary.BigEndian.AppendUint32(nil, 0x7ffffff0)
	negative := binary.BigEndian.AppendUint32(nil, 0xffffffff)
	unknownKey := rawRequest(kmsg.NewPtrMetadataRequest(), 1)
	binary.BigEndian.PutUint16(unknownKey[4:], 999)
	badVersion := rawRequest(kmsg.NewPtrMetadataRequest(), 1)
	binary.BigEndian.PutUint16(badVersion[6:], 99)
	truncatedBody := rawRequest(kmsg.NewPtrCreateTopicsRequest(), 1)
	truncatedBody = truncatedBody[:len(truncatedBody)-2]
	binary.BigEndian.PutUint32(truncatedBody, uint32(len(truncatedBody)-4))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"huge length prefix", huge},
		{"negative length", negative},
		{"unknown api key", unknownKey},
		{"unsupported version", badVersion},
		{"truncated body", truncatedBody},
		{"header too short", []byte{0, 0, 0, 3, 0, 3, 0}},
		// InitProducerId v4 whose tagged-field count claims billions of fields: unpatched
		// kmsg spun on it for 23 s before the broker could close (third_party/kmsg).
		{"huge tagged-field count", hugeTagCount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", n.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.data)
			expectClosed(t, c)
		})
	}

	t.Run("frame cut short then closed", func(t *testing.T) {
		c, _ := net.Dial("tcp", n.Addr())
		frame := rawRequest(kmsg.NewPtrMetadataRequest(), 7)
		c.Write(frame[:len(frame)/2])
		c.Close()
	})

	t.Run("ApiVersions too new gets UNSUPPORTED_VERSION", func(t *testing.T) {
		c, _ := net.Dial("tcp", n.Addr())
		defer c.Close()
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(3)
		frame := rawRequest(req, 5)
		binary.BigEndian.PutUint16(frame[6:], 42)
		c.Write(frame)
		body := readResponse(t, c)
		if corr := int32(binary.BigEndian.Uint32(body)); corr != 5 {
			t.Fatalf("correlation id %d", corr)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("error %d, %d api keys", resp.ErrorCode, len(resp.ApiKeys))
		}
	})

	t.Run("corrupt CRC gets CORRUPT_MESSAGE", func(t *testing.T) {
		c, _ := net.Dial("tcp", n.Addr())
		defer c.Close()
		batch := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 0, NumRecords: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
			Records: (&kmsg.Record{Value: []byte("x")}).AppendTo(nil)}
		raw := batch.AppendTo(nil)
		binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
		binary.BigEndian.PutUint32(raw[17:], 12345) // wrong CRC
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(7)
		req.Acks = 1
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "bad"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = raw
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		c.Write(rawRequest(req, 9))
		body := readResponse(t, c)
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(7)
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.CorruptMessage.Code {
			t.Fatalf("error code %d, want CORRUPT_MESSAGE", code)
		}
	})

	// After all of that the broker still serves a real client.
	cl := newClient(t, n, kgo.DefaultProduceTopic("bad"))
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("0|ok")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, n, "bad", 1); string(got[0].Value) != "0|ok" {
		t.Fatalf("got %q", got[0].Value)
	}
	_ = io.EOF
}
