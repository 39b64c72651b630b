package broker_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// cuttingProxy forwards Kafka connections to the broker and, the first few times it sees a
// Produce response, drops it and cuts the connection instead: the broker has appended the
// batch but the producer never hears so and must retry.
type cuttingProxy struct {
	ln       net.Listener
	upstream atomic.Value // string
	cuts     atomic.Int32
	maxCuts  int32
	wg       sync.WaitGroup
}

func newCuttingProxy(t *testing.T, maxCuts int32) *cuttingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, maxCuts: maxCuts}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cuttingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream.Load().(string))
		if err != nil {
			c.Close()
			continue
		}
		var mu sync.Mutex
		produceIDs := map[int32]bool{}
		p.wg.Add(2)
		go func() { // client -> broker: note Produce correlation ids
			defer p.wg.Done()
			defer u.Close()
			for {
				frame, err := readFrame(c)
				if err != nil {
					return
				}
				if len(frame) >= 12 && binary.BigEndian.Uint16(frame[4:]) == 0 {
					mu.Lock()
					produceIDs[int32(binary.BigEndian.Uint32(frame[8:]))] = true
					mu.Unlock()
				}
				if _, err := u.Write(frame); err != nil {
					return
				}
			}
		}()
		go func() { // broker -> client: drop the first Produce responses
			defer p.wg.Done()
			defer c.Close()
			for {
				frame, err := readFrame(u)
				if err != nil {
					return
				}
				mu.Lock()
				isProduce := len(frame) >= 8 && produceIDs[int32(binary.BigEndian.Uint32(frame[4:]))]
				mu.Unlock()
				if isProduce && p.cuts.Add(1) <= p.maxCuts {
					u.Close()
					return
				}
				if _, err := c.Write(frame); err != nil {
					return
				}
			}
		}()
	}
}

// readFrame reads one size-prefixed frame, returned with its prefix.
func readFrame(r io.Reader) ([]byte, error) {
	var pre [4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(pre[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame too large")
	}
	buf := make([]byte, 4+n)
	copy(buf, pre[:])
	_, err := io.ReadFull(r, buf[4:])
	return buf, err
}

func TestIdempotentRetryAfterLostResponseLeavesNoDuplicates(t *testing.T) {
	proxy := newCuttingProxy(t, 3)
	n := testcluster.Start(t, "advertised.listeners=PLAINTEXT://"+proxy.ln.Addr().String())
	proxy.upstream.Store(n.Addr())
	createTopic(t, n, "idem", 1, nil)

	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.ln.Addr().String()), kgo.DefaultProduceTopic("idem"),
		kgo.RecordRetries(20), kgo.ProducerLinger(0), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const total = 50
	for i := 0; i < total; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte("k"), Value: []byte(fmt.Sprintf("%d|v", i))}).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if got := proxy.cuts.Load(); got < 3 {
		t.Fatalf("proxy cut %d produce responses, want at least 3 (the test did not exercise retries)", got)
	}
	got := consumeAll(t, n, "idem", total)
	checkPerKeyOrder(t, got, total)
	// Nothing beyond the total: the log end offset equals the number of records.
	offs, err := newAdmin(t, n).ListEndOffsets(ctxT(t), "idem")
	if err != nil {
		t.Fatal(err)
	}
	if end, _ := offs.Lookup("idem", 0); end.Offset != total {
		t.Fatalf("log end offset %d, want %d (a retry was appended twice)", end.Offset, total)
	}
}

// rawBatch builds an uncompressed v2 batch of one record for an idempotent producer.
func rawBatch(pid int64, epoch int16, seq int32, value string) []byte {
	rec := kmsg.Record{Value: []byte(value)}
	recBytes := rec.AppendTo(nil)
	b := kmsg.RecordBatch{Magic: 2, NumRecords: 1, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, Records: recBytes}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], records.ComputeCRC(raw))
	return raw
}

func produceRaw(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// The broker's producer state survives a restart: a retried batch is still recognised as a
// duplicate, and sequence gaps are still refused.
func TestIdempotenceStateSurvivesRestart(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "idem-restart", 1, nil)
	cl := newClient(t, n)
	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.TransactionTimeoutMillis = 60000
	initResp, err := initReq.RequestWith(ctxT(t), cl)
	if err != nil || initResp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %d", err, initResp.ErrorCode)
	}
	pid := initResp.ProducerID

	for seq := int32(0); seq < 3; seq++ {
		r := produceRaw(t, cl, "idem-restart", rawBatch(pid, 0, seq, fmt.Sprint(seq)))
		if r.ErrorCode != 0 || r.BaseOffset != int64(seq) {
			t.Fatalf("seq %d: error %d offset %d", seq, r.ErrorCode, r.BaseOffset)
		}
	}
	n.Restart()
	cl2 := newClient(t, n)
	for _, tc := range []struct {
		name       string
		seq        int32
		wantCode   int16
		wantOffset int64
	}{
		{"retry of seq 2 is a duplicate", 2, 0, 2},
		{"retry of seq 1 is a duplicate", 1, 0, 1},
		{"gap is out of order", 5, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"next sequence appends", 3, 0, 3},
	} {
		r := produceRaw(t, cl2, "idem-restart", rawBatch(pid, 0, tc.seq, "again"))
		if r.ErrorCode != tc.wantCode || (tc.wantCode == 0 && r.BaseOffset != tc.wantOffset) {
			t.Errorf("%s: error %d offset %d, want error %d offset %d", tc.name, r.ErrorCode, r.BaseOffset, tc.wantCode, tc.wantOffset)
		}
	}
	// Fenced: an older epoch after a newer one.
	if r := produceRaw(t, cl2, "idem-restart", rawBatch(pid, 1, 0, "new epoch")); r.ErrorCode != 0 {
		t.Fatalf("epoch bump: error %d", r.ErrorCode)
	}
	if r := produceRaw(t, cl2, "idem-restart", rawBatch(pid, 0, 4, "old epoch")); r.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old epoch: error %d, want INVALID_PRODUCER_EPOCH", r.ErrorCode)
	}
}
