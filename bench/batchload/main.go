// Command batchload is the bench's broker-bound produce load: it sends record batches encoded
// once, before the clock starts, over several raw connections with several requests in flight
// on each, so that the broker, not the client, sets the rate.
//
// kafka-producer-perf-test and `samsa perf produce` build every record in the client: on a
// 2-core machine their own CPU bounds the rate they reach against either broker (see
// bench/README.md, "What bounds Samsa"). batchload does per request only what the network
// needs: it patches the correlation id of a prepared frame, writes it and reads the response.
// Each batch is a valid v2 record batch (CRC-32C, no producer id), one per partition per
// request, as a client with every partition ready would send; the broker validates, assigns
// offsets and appends it like any other.
//
// It prints, like `samsa perf produce --json`, a summary line and a JSON line whose latency is
// that of each request, from its write to its response.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/perf"
	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/wire"
)

// produceVersion is served by Kafka 4.x and by Samsa and still names topics (v13 uses ids).
const produceVersion = 9

type config struct {
	addr        string
	topic       string
	partitions  int
	records     int64
	recordSize  int
	batchBytes  int
	acks        int
	connections int
	inflight    int
}

func main() {
	var c config
	var acks string
	var asJSON bool
	flag.StringVar(&c.addr, "broker", "127.0.0.1:9092", "broker address (the leader of every partition)")
	flag.StringVar(&c.topic, "topic", "", "existing topic to write to (required)")
	flag.IntVar(&c.partitions, "partitions", 1, "partitions of the topic: each request carries one batch for each")
	flag.Int64Var(&c.records, "records", 1_000_000, "records to send at least (whole requests are sent)")
	flag.IntVar(&c.recordSize, "record-size", 100, "value size of each record")
	flag.IntVar(&c.batchBytes, "batch-bytes", 16384, "size of each batch at most (Kafka's batch.size)")
	flag.StringVar(&acks, "acks", "all", "acks: 1 or all")
	flag.IntVar(&c.connections, "connections", 4, "connections, each with its own requests in flight")
	flag.IntVar(&c.inflight, "inflight", 5, "requests in flight per connection")
	flag.BoolVar(&asJSON, "json", false, "also print the summary as one JSON line")
	flag.Parse()
	switch acks {
	case "1":
		c.acks = 1
	case "all", "-1":
		c.acks = -1
	default:
		fail(fmt.Errorf("invalid -acks %q: 1 or all", acks))
	}
	if c.topic == "" || c.partitions < 1 || c.records < 1 || c.recordSize < 0 || c.connections < 1 || c.inflight < 1 {
		fail(errors.New("need -topic and positive -partitions, -records, -connections and -inflight"))
	}
	res, err := run(c)
	if err != nil {
		fail(err)
	}
	fmt.Println(perf.SummaryLine("sent", res))
	if asJSON {
		b, _ := json.Marshal(map[string]any{"result": res})
		fmt.Println(string(b))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "batchload:", err)
	os.Exit(1)
}

// encodeBatch returns a v2 record batch of n records with values of size bytes, its CRC set.
func encodeBatch(n, size int, ts int64) []byte {
	value := make([]byte, size)
	for i := range value {
		value[i] = byte('A' + i%26)
	}
	b := make([]byte, 61, 61+n*(size+16))
	var body []byte
	for i := range n {
		body = body[:0]
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, -1)       // no key
		body = binary.AppendVarint(body, int64(size))
		body = append(body, value...)
		body = binary.AppendVarint(body, 0) // no headers
		b = binary.AppendVarint(b, int64(len(body)))
		b = append(b, body...)
	}
	be := binary.BigEndian
	be.PutUint64(b[0:], 0)                   // base offset (the broker assigns it)
	be.PutUint32(b[8:], uint32(len(b)-12))   // batch length
	be.PutUint32(b[12:], 0xffffffff)         // partition leader epoch -1
	b[16] = 2                                // magic
	be.PutUint16(b[21:], 0)                  // attributes: no compression, create time
	be.PutUint32(b[23:], uint32(n-1))        // last offset delta
	be.PutUint64(b[27:], uint64(ts))         // base timestamp
	be.PutUint64(b[35:], uint64(ts))         // max timestamp
	be.PutUint64(b[43:], 0xffffffffffffffff) // producer id -1
	be.PutUint16(b[51:], 0xffff)             // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff)         // base sequence -1
	be.PutUint32(b[57:], uint32(n))          // records
	be.PutUint32(b[17:], records.ComputeCRC(b))
	return b
}

// recordsPerBatch is how many records of size bytes fill a batch of at most batchBytes.
// Records grow by a byte once their offset delta needs a longer varint, so the estimate from
// the first record is trimmed until the whole batch fits.
func recordsPerBatch(size, batchBytes int) int {
	n := max(1, (batchBytes-61)/(len(encodeBatch(1, size, 0))-61))
	for n > 1 && len(encodeBatch(n, size, 0)) > batchBytes {
		n--
	}
	return n
}

// prepare returns the request frame (size prefix included) and how many records it carries.
func prepare(c config) ([]byte, int, error) {
	n := recordsPerBatch(c.recordSize, c.batchBytes)
	batch := encodeBatch(n, c.recordSize, time.Now().UnixMilli())
	if _, err := records.Validate(batch); err != nil {
		return nil, 0, fmt.Errorf("encoded batch does not validate: %w", err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = produceVersion
	req.Acks = int16(c.acks)
	req.TimeoutMillis = 30_000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = c.topic
	for p := range c.partitions {
		pr := kmsg.NewProduceRequestTopicPartition()
		pr.Partition = int32(p)
		pr.Records = batch
		t.Partitions = append(t.Partitions, pr)
	}
	req.Topics = append(req.Topics, t)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("samsa-batchload")).AppendRequest(nil, req, 0)
	return frame, n * c.partitions, nil
}

func run(c config) (perf.Result, error) {
	frame, perRequest, err := prepare(c)
	if err != nil {
		return perf.Result{}, err
	}
	requests := (c.records + int64(perRequest) - 1) / int64(perRequest)
	conns := make([]net.Conn, c.connections)
	for i := range conns {
		if conns[i], err = net.DialTimeout("tcp", c.addr, 10*time.Second); err != nil {
			return perf.Result{}, err
		}
		defer conns[i].Close()
	}
	var (
		next     atomic.Int64 // requests handed out
		mu       sync.Mutex
		lat      perf.Histogram
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for _, nc := range conns {
		wg.Go(func() {
			h, err := drive(nc, frame, c.inflight, func() bool { return next.Add(1) <= requests })
			mu.Lock()
			defer mu.Unlock()
			lat.Merge(&h)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return perf.Result{}, firstErr
	}
	recs := requests * int64(perRequest)
	// Latency here is per request; the histogram stands for the records' ack latency.
	return perf.NewResult(recs, recs*int64(c.recordSize), elapsed, &lat), nil
}

// drive keeps up to inflight requests outstanding on nc while take grants another, and returns
// the latencies of its requests.
func drive(nc net.Conn, frame []byte, inflight int, take func() bool) (perf.Histogram, error) {
	var h perf.Histogram
	sent := make(chan time.Time, inflight)
	readErr := make(chan error, 1)
	go func() {
		readErr <- readResponses(nc, sent, &h)
	}()
	own := append([]byte(nil), frame...)
	var corr uint32
	for take() {
		binary.BigEndian.PutUint32(own[8:], corr) // size(4) key(2) version(2) correlation id
		corr++
		select {
		case sent <- time.Now():
		case err := <-readErr:
			return h, err
		}
		if _, err := nc.Write(own); err != nil {
			nc.Close()
			<-readErr
			return h, err
		}
	}
	close(sent)
	return h, <-readErr
}

// readResponses reads one response per entry of sent, in order, and fails on any error code.
func readResponses(nc net.Conn, sent <-chan time.Time, h *perf.Histogram) error {
	r := bufio.NewReaderSize(nc, 64<<10)
	var buf []byte
	var corr uint32
	for at := range sent {
		frame, err := wire.ReadFrame(r, 64<<20, buf, nil)
		buf = frame[:0]
		if err != nil {
			return fmt.Errorf("reading response: %w", err)
		}
		h.Record(time.Since(at))
		if len(frame) < 5 {
			return fmt.Errorf("response of %d bytes", len(frame))
		}
		if got := binary.BigEndian.Uint32(frame); got != corr {
			return fmt.Errorf("response to correlation id %d, expected %d", got, corr)
		}
		corr++
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = produceVersion
		// The flexible response header: correlation id, then an empty tag buffer.
		if err := resp.ReadFrom(frame[5:]); err != nil {
			return fmt.Errorf("decoding produce response: %w", err)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	}
	return nil
}
