package campaign

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recorder is the campaign's history: every acknowledgement and every read, from every client.
type recorder struct {
	mu     sync.Mutex
	acks   []Ack
	reads  []Read
	failed map[string]int // producer -> records that failed for good
	sent   map[string]int64
}

func newRecorder() *recorder {
	return &recorder{failed: map[string]int{}, sent: map[string]int64{}}
}

func (r *recorder) ack(a Ack) {
	r.mu.Lock()
	r.acks = append(r.acks, a)
	r.mu.Unlock()
}

func (r *recorder) fail(producer string) {
	r.mu.Lock()
	r.failed[producer]++
	r.mu.Unlock()
}

func (r *recorder) read(rd Read) {
	r.mu.Lock()
	r.reads = append(r.reads, rd)
	r.mu.Unlock()
}

// client is a running producer or consumer; stop ends it and waits (producers flush first).
type client struct {
	name string
	stop func()
}

// kgoProducer produces id-0, id-1, ... (record seq to partition seq % partitions) every
// interval with an idempotent acks=all franz-go client until stopped, then flushes (bounded).
func kgoProducer(t *testing.T, seeds []string, topic string, partitions int, id string, interval time.Duration, rec *recorder) client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var seq int64
		for {
			select {
			case <-ctx.Done():
				rec.mu.Lock()
				rec.sent[id] = seq
				rec.mu.Unlock()
				return
			case <-tick.C:
			}
			v := Value{id, seq}.String()
			r := &kgo.Record{Topic: topic, Partition: int32(seq % int64(partitions)), Value: []byte(v)}
			seq++
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				if err != nil {
					rec.fail(id)
					return
				}
				rec.ack(Ack{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value), At: time.Now(), Sent: r.Timestamp})
			})
		}
	}()
	return client{name: id, stop: func() {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := cl.Flush(fctx); err != nil {
			t.Logf("producer %s: flush: %v (unflushed records count as failed)", id, err)
		}
		fcancel()
		cl.Close()
	}}
}

// venvPython is confluent-kafka's interpreter, if the compat venv exists.
func venvPython() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	py := filepath.Join(home, ".cache", "samsa", "venv", "bin", "python")
	if out, err := exec.Command(py, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s cannot import confluent_kafka: %v %s", py, err, out)
	}
	return py, nil
}

// pyProducer runs testdata/producer.py (librdkafka) until stopped: it closes the script's
// stdin, and the script flushes and exits.
func pyProducer(t *testing.T, py string, seeds []string, topic string, partitions int, id string, interval time.Duration, rec *recorder, logPath string) (client, error) {
	cmd := exec.Command(py, "testdata/producer.py", strings.Join(seeds, ","), topic, fmt.Sprint(partitions), id,
		fmt.Sprintf("%.3f", interval.Seconds()))
	logf, err := os.Create(logPath)
	if err != nil {
		return client{}, err
	}
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return client{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return client{}, err
	}
	if err := cmd.Start(); err != nil {
		return client{}, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l struct {
				P int32   `json:"p"`
				O int64   `json:"o"`
				V string  `json:"v"`
				T float64 `json:"t"`
				S int64   `json:"s"` // create time, ms
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("producer %s: bad line %q: %v", id, sc.Text(), err)
				continue
			}
			sec := int64(l.T)
			rec.ack(Ack{Partition: l.P, Offset: l.O, Value: l.V, At: time.Unix(sec, int64((l.T-float64(sec))*1e9)),
				Sent: time.UnixMilli(l.S)})
		}
		io.Copy(io.Discard, stdout)
	}()
	return client{name: id, stop: func() {
		stdin.Close()
		<-done
		cmd.Wait()
		logf.Close()
		if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
			t.Logf("producer %s (librdkafka) stderr, last lines:\n%s", id, tail(string(b), 8))
		}
	}}, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// consumer reads every partition of topic from the start at isolation level iso until
// stopped, recording every record it sees; after an out-of-range offset it starts over from
// the start. Its close is bounded (closeBounded).
func consumer(t *testing.T, seeds []string, topic string, partitions int, name string, iso kgo.IsolationLevel, rec *recorder) client {
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[int32(p)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				rec.read(Read{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
			})
		}
	}()
	return client{name: name, stop: func() { cancel(); <-done; closeBounded(cl.Close) }}
}

// readAll reads every partition of topic from offset 0 to its end with a fresh client.
func readAll(ctx context.Context, seeds []string, topic string) (map[int32][]Record, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := ends.Error(); err != nil {
		return nil, err
	}
	final := map[int32][]Record{}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		final[o.Partition] = nil
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().At(0)
		}
	})
	if len(want) == 0 {
		return final, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("final read: %w (partitions not read to their end: %v)", ctx.Err(), want)
		}
		fs.EachError(func(_ string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "final read: partition %d: %v\n", p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			final[r.Partition] = append(final[r.Partition], Record{Offset: r.Offset, Value: string(r.Value)})
			if w, ok := want[r.Partition]; ok && r.Offset+1 >= w {
				delete(want, r.Partition)
			}
		})
	}
	return final, nil
}
