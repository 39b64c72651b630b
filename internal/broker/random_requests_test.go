package broker_test

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/samsa-io/samsa/internal/wire"
)

// requestFiller fills kmsg request structs with random but well-formed values: edge integers,
// names of things that exist and of things that do not, short arrays, valid and broken record
// batches. Every field a handler reads gets values a careless handler would trip over.
type requestFiller struct {
	rng   *rand.Rand
	batch []byte // a valid record batch
}

var int64Edges = []int64{0, 1, -1, 2, -2, 3, 16, 1000, math.MaxInt8, math.MaxInt16, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}

func (f *requestFiller) int(bits int) int64 {
	if f.rng.IntN(3) == 0 {
		return f.rng.Int64N(8) - 1
	}
	v := int64Edges[f.rng.IntN(len(int64Edges))]
	switch bits { // wrap to the field's width, as the wire would
	case 8:
		return int64(int8(v))
	case 16:
		return int64(int16(v))
	case 32:
		return int64(int32(v))
	}
	return v
}

var fillerStrings = []string{"", "fz", "fz2", "g", "missing", "__consumer_offsets", "cleanup.policy",
	"retention.ms", "-1", "consumer", "range", "\x00", "a/b", "0123456789012345678901234567890123456789"}

func (f *requestFiller) string() string { return fillerStrings[f.rng.IntN(len(fillerStrings))] }

func (f *requestFiller) fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(f.rng.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(f.int(v.Type().Bits()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.int(v.Type().Bits())))
	case reflect.Float64:
		v.SetFloat([]float64{0, 1, -1, 0.5, math.MaxFloat64}[f.rng.IntN(5)])
	case reflect.String:
		v.SetString(f.string())
	case reflect.Array: // topic ids and other uuids
		if f.rng.IntN(2) == 0 {
			for i := range v.Len() {
				v.Index(i).SetUint(uint64(f.rng.IntN(256)))
			}
		}
	case reflect.Pointer: // nullable fields
		if f.rng.IntN(3) == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes: records, metadata, assignments
			switch f.rng.IntN(4) {
			case 0:
				v.SetZero()
			case 1:
				v.SetBytes(append([]byte(nil), f.batch...))
			case 2:
				b := append([]byte(nil), f.batch...)
				b[f.rng.IntN(len(b))] ^= byte(1 + f.rng.IntN(255))
				v.SetBytes(b)
			default:
				b := make([]byte, f.rng.IntN(64))
				for i := range b {
					b[i] = byte(f.rng.IntN(256))
				}
				v.SetBytes(b)
			}
			return
		}
		n := 0
		if depth < 4 {
			n = f.rng.IntN(4)
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			f.fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[kmsg.Tags]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(v.Field(i), depth+1)
			}
		}
	}
}

// TestRandomRequestsDoNotCrash sends every API the broker advertises, at every version, filled
// with random well-formed values (and some with a byte of the body flipped), and checks that
// the broker answers or closes the connection, never crashes, and still serves a client after.
// A panic in any handler kills this test's process, so the check is the test surviving.
func TestRandomRequestsDoNotCrash(t *testing.T) {
	n := testcluster.Start(t, "socket.request.max.bytes=1048576")
	createTopic(t, n, "fz", 2, nil)
	// SAMSA_RANDOM_REQUESTS=rounds,seed searches longer, or elsewhere, than CI's fixed run.
	rounds, seed := 12, uint64(1)
	if testing.Short() {
		rounds = 3
	}
	if env := os.Getenv("SAMSA_RANDOM_REQUESTS"); env != "" {
		if _, err := fmt.Sscanf(env, "%d,%d", &rounds, &seed); err != nil {
			t.Fatalf("SAMSA_RANDOM_REQUESTS=%q: want rounds,seed", env)
		}
	}
	f := &requestFiller{rng: rand.New(rand.NewPCG(seed, 2)), batch: benchRecordBatch(3, 20)}
	versions := advertisedVersions(t, n)
	adm := newAdmin(t, n)
	var c *fuzzConn
	defer func() {
		if c != nil {
			c.nc.Close()
		}
	}()
	sent, answered := 0, 0
	for round := range rounds {
		for _, kv := range versions {
			for v := kv.MinVersion; v <= kv.MaxVersion; v++ {
				req := kmsg.RequestForKey(kv.ApiKey)
				f.fill(reflect.ValueOf(req).Elem(), 0)
				limitPartitions(req)
				req.SetVersion(v)
				frame := rawRequest(req, int32(sent))
				// A flipped byte past the header, but not in the topic admin requests,
				// where it would ask for thousands of partitions (legal, up to 10,000 per
				// request, but a test of the machine's file limit).
				if round%3 == 2 && len(frame) > 16 && kv.ApiKey != kmsg.CreateTopics.Int16() && kv.ApiKey != kmsg.CreatePartitions.Int16() {
					frame[16+f.rng.IntN(len(frame)-16)] ^= byte(1 + f.rng.IntN(255))
				}
				if c == nil {
					c = dialFuzz(t, n)
				}
				sent++
				ok, err := c.roundTrip(frame)
				if err != nil {
					// Closed (a protocol error) or a request that waits (a long poll, a
					// join): either way, the next request gets a fresh connection.
					c.nc.Close()
					c = nil
					continue
				}
				if ok {
					answered++
				}
			}
		}
		// The broker still serves a real client.
		if _, err := adm.ListTopics(ctxT(t)); err != nil {
			t.Fatalf("round %d: broker no longer answers: %v", round, err)
		}
	}
	if answered == 0 || answered == sent {
		t.Fatalf("%d of %d random requests answered: the filler is not exercising both paths", answered, sent)
	}
	t.Logf("%d random requests, %d answered", sent, answered)
}

// limitPartitions keeps the topics the random requests create small: thousands of partitions
// are legal (up to 10,000 per request) but would only measure the machine's file limit.
func limitPartitions(req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		for i := range r.Topics {
			r.Topics[i].NumPartitions = min(r.Topics[i].NumPartitions, 8)
		}
	case *kmsg.CreatePartitionsRequest:
		for i := range r.Topics {
			r.Topics[i].Count = min(r.Topics[i].Count, 8)
		}
	}
}

func advertisedVersions(t *testing.T, n *testcluster.Node) []kmsg.ApiVersionsResponseApiKey {
	t.Helper()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t), newClient(t, n))
	if err != nil {
		t.Fatal(err)
	}
	return resp.ApiKeys
}

type fuzzConn struct {
	nc  net.Conn
	r   *bufio.Reader
	buf []byte
}

func dialFuzz(t *testing.T, n *testcluster.Node) *fuzzConn {
	t.Helper()
	nc, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatalf("broker not accepting connections: %v", err)
	}
	return &fuzzConn{nc: nc, r: bufio.NewReader(nc)}
}

// roundTrip writes frame and reads one response. It reports false without error for an
// acks=0 produce (no response is due) and an error when the connection closed or no answer
// came within a short deadline.
func (c *fuzzConn) roundTrip(frame []byte) (bool, error) {
	if _, err := c.nc.Write(frame); err != nil {
		return false, err
	}
	c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	resp, err := wire.ReadFrame(c.r, 64<<20, c.buf, nil)
	c.buf = resp[:0]
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, fmt.Errorf("no answer: %w", err)
		}
		return false, err
	}
	if len(resp) < 4 {
		return false, fmt.Errorf("response of %d bytes", len(resp))
	}
	return true, nil
}
