package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Settings of TestSIGKILLDuringCleaning: a compacted topic whose cleaner works all the time.
const (
	cleanPartitions = 3
	cleanKeys       = 300
	cleanValueSize  = 512
	cleanRate       = 4000 // records per second
	// One update in cleanTombstoneEvery is a tombstone (a null value).
	cleanTombstoneEvery = 20
)

// cleanKillParams returns how many kills TestSIGKILLDuringCleaning makes and its time budget
// for them: 10 kills within 60 s, or SAMSA_CRASH_CLEAN=n kills (n × 6 s; "long": 100 kills).
func cleanKillParams(t *testing.T) (kills int, budget time.Duration) {
	kills = 10
	if v := os.Getenv("SAMSA_CRASH_CLEAN"); v != "" {
		if v == "long" {
			kills = 100
		} else if n, err := strconv.Atoi(v); err == nil && n > 0 {
			kills = n
		} else {
			t.Fatalf("SAMSA_CRASH_CLEAN=%q: want a number of kills or long", v)
		}
	}
	return kills, time.Duration(kills) * 6 * time.Second
}

// update is one record the producer sent: its sequence number (global, increasing in send
// order) and whether it is a tombstone.
type update struct {
	seq       int
	tombstone bool
}

// cleanLedger records what the producer sent and what was acknowledged, per key.
type cleanLedger struct {
	mu      sync.Mutex
	sent    map[string]map[int]update // key -> seq -> update
	acked   map[string]update         // key -> its acknowledged update of the highest seq
	nAcked  int
	failed  int
	lastErr error
}

func (l *cleanLedger) send(key string, u update) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent[key] == nil {
		l.sent[key] = map[int]update{}
	}
	l.sent[key][u.seq] = u
}

func (l *cleanLedger) ack(key string, u update, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		l.lastErr = err
		return
	}
	l.nAcked++
	if a, ok := l.acked[key]; !ok || u.seq > a.seq {
		l.acked[key] = u
	}
}

// cleanValue is the value of update seq of key (nil for a tombstone); every record also
// carries its seq in a header, so tombstones are identified too.
func cleanValue(key string, seq int) []byte {
	v := fmt.Appendf(nil, "%s:%d:", key, seq)
	for len(v) < cleanValueSize {
		v = append(v, 'x')
	}
	return v
}

func recordSeq(r *kgo.Record) (int, error) {
	for _, h := range r.Headers {
		if h.Key == "seq" {
			return strconv.Atoi(string(h.Value))
		}
	}
	return 0, fmt.Errorf("record at %d/%d has no seq header", r.Partition, r.Offset)
}

// leftovers returns the cleaner's temporary files (*.cleaned, *.swap) under dir (a running
// broker may rename files during the walk: what vanishes is skipped).
func leftovers(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(path, ".cleaned") || strings.HasSuffix(path, ".swap")) {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// waitPartitionsServe waits until every partition of topic answers ListOffsets, so that a
// log the open refused (a failed log) shows up as an error here.
func waitPartitionsServe(t *testing.T, p *proc, topic string, partitions int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(context.Background(), topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil && len(ends[topic]) == partitions {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions of %s do not serve after a restart: %v; stderr:\n%s", topic, err, p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSIGKILLDuringCleaning kills the broker (SIGKILL) again and again while its log cleaner
// compacts a topic that an idempotent producer keeps updating, and checks that every restart
// serves every partition and leaves no half-swapped files, and that the log read at the end
// holds for every key its latest acknowledged update (or a later one), each key's updates in
// send order, with offsets increasing.
func TestSIGKILLDuringCleaning(t *testing.T) {
	kills, budget := cleanKillParams(t)
	dir := t.TempDir()
	port, cport := freePort(t), freePort(t)
	settings := []string{"log.dirs=" + dir, "log.cleaner.backoff.ms=50",
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport)}
	start := func(extra ...string) *proc {
		p := spawnAt(t, port, cport, 0, append(slices.Clone(settings), extra...)...)
		p.waitServing(t)
		return p
	}
	p := start()
	const topic = "compacted"
	cfg := map[string]*string{}
	for k, v := range map[string]string{
		"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "segment.bytes": "262144",
		"delete.retention.ms": "100", "min.compaction.lag.ms": "0",
	} {
		cfg[k] = kadm.StringPtr(v)
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := kadm.NewClient(admCl).CreateTopic(context.Background(), cleanPartitions, 1, cfg, topic)
	admCl.Close()
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}

	// One idempotent producer (acks=all) for the whole test: it reconnects to each restart on
	// the same port and retries what was in flight, so its producer state must survive the
	// cleaning and the kills. Key i always goes to partition i % cleanPartitions.
	producer, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(2*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	ledger := &cleanLedger{sent: map[string]map[int]update{}, acked: map[string]update{}}
	// Records are produced without the loop's context, so that stopping the loop leaves the
	// buffered ones to be sent (Flush), not failed.
	produce := func(key string, part int32, u update) {
		r := &kgo.Record{Key: []byte(key), Partition: part, Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(u.seq))}}}
		if !u.tombstone {
			r.Value = cleanValue(key, u.seq)
		}
		ledger.send(key, u)
		producer.Produce(context.Background(), r, func(_ *kgo.Record, err error) { ledger.ack(key, u, err) })
	}
	ctx, stopProducing := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	seq := 0
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			for range cleanRate / 1000 {
				k := rand.IntN(cleanKeys)
				seq++
				produce(fmt.Sprintf("k%03d", k), int32(k%cleanPartitions), update{seq, seq%cleanTombstoneEvery == 0})
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	})

	// The kills, in turn: aimed, as soon as a cleaned segment is being written (a *.cleaned
	// or *.swap file exists, polled every millisecond), after 0-2 ms; or at a random moment
	// (0-300 ms) once this life's cleaner has logged a cleaning (it is at work).
	deadline := time.Now().Add(budget)
	var killed, withoutCleaning, aimed, aimedMissed, cleanings, leftCleaned, leftSwap int
	for killed < kills && time.Now().Before(deadline) {
		wait := time.Now().Add(5 * time.Second)
		if killed%2 == 0 {
			aimed++
			for len(leftovers(dir)) == 0 && time.Now().Before(wait) {
				time.Sleep(time.Millisecond)
			}
			if time.Now().After(wait) {
				aimedMissed++
			}
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		} else {
			for strings.Count(p.stderr.String(), `msg="log cleaned"`) == 0 && time.Now().Before(wait) {
				time.Sleep(10 * time.Millisecond)
			}
			if strings.Count(p.stderr.String(), `msg="log cleaned"`) == 0 {
				withoutCleaning++
			}
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		}
		p.kill(t)
		killed++
		cleanings += strings.Count(p.stderr.String(), `msg="log cleaned"`)
		var swap, cleaned bool
		for _, f := range leftovers(dir) {
			swap = swap || strings.HasSuffix(f, ".swap")
			cleaned = cleaned || strings.HasSuffix(f, ".cleaned")
		}
		if swap {
			leftSwap++
		}
		if cleaned {
			leftCleaned++
		}
		p = start()
		waitPartitionsServe(t, p, topic, cleanPartitions)
	}
	if killed < min(kills, 3) {
		t.Fatalf("only %d kills within %v", killed, budget)
	}

	// The end: stop producing, wait for every record to be answered, and write one marker per
	// partition (it stays in the active segment, which is never cleaned, so reading up to the
	// markers reads everything); then one more kill, and a start with the cleaner off, which
	// must have finished or removed every half-done swap by the time it serves.
	stopProducing()
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if err := producer.Flush(fctx); err != nil {
		t.Fatalf("flushing the producer: %v", err)
	}
	cancel()
	for part := range int32(cleanPartitions) {
		seq++
		key := fmt.Sprintf("end-%d", part)
		r := &kgo.Record{Key: []byte(key), Value: []byte("end"), Partition: part,
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(seq))}}}
		if err := producer.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("producing the end marker of partition %d: %v", part, err)
		}
	}
	time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
	p.kill(t)
	cleanings += strings.Count(p.stderr.String(), `msg="log cleaned"`)
	left := leftovers(dir)
	p = start("log.cleaner.enable=false")
	waitPartitionsServe(t, p, topic, cleanPartitions)
	if l := leftovers(dir); len(l) > 0 {
		t.Fatalf("after a start, the cleaner's temporary files remain: %v (before the start: %v)", l, left)
	}

	records := consumeToMarkers(t, p.addr, topic)
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if problems := compactedProblems(records, ledger); len(problems) > 0 {
		t.Fatalf("the compacted log after the kills:\n%s", strings.Join(problems, "\n"))
	}
	t.Logf("%d kills within %v (%d aimed at a pass writing, %d of them found none within 5 s; %d random ones before "+
		"the life's cleaner had logged a cleaning), %d cleanings logged; "+
		"kills that left .cleaned files: %d, .swap files: %d (%v before the last start); "+
		"%d updates sent, %d acknowledged, %d failed (last error: %v); %d records read at the end",
		killed, budget, aimed, aimedMissed, withoutCleaning, cleanings, leftCleaned, leftSwap, left, seq-cleanPartitions, ledger.nAcked, ledger.failed, ledger.lastErr, len(records))
	if cleanings == 0 {
		t.Fatal("the cleaner logged no cleaning: the kills did not hit a cleaner at work")
	}
}

// consumeToMarkers reads topic from the start until every partition's end marker.
func consumeToMarkers(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	cl := reader(t, addr, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	markers := 0
	for markers < cleanPartitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records and %d of %d end markers within 60 s", len(out), markers, cleanPartitions)
		}
		fs.EachError(func(topic string, part int32, err error) { t.Logf("fetch %s/%d: %v", topic, part, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if strings.HasPrefix(string(r.Key), "end-") {
				markers++
				return
			}
			out = append(out, r)
		})
	}
	return out
}

// laterTombstone says whether one of the updates sent after seq is a tombstone.
func laterTombstone(sent map[int]update, seq int) bool {
	for s, u := range sent {
		if s > seq && u.tombstone {
			return true
		}
	}
	return false
}

// compactedProblems checks the records read at the end against what was sent and
// acknowledged, and returns what is wrong (at most 20 lines).
func compactedProblems(records []*kgo.Record, l *cleanLedger) []string {
	lastOffset := map[int32]int64{}
	last := map[string]update{} // key -> the last update read, in offset order
	var problems []string
	fail := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range records {
		if o, ok := lastOffset[r.Partition]; ok && r.Offset <= o {
			fail("partition %d: offset %d after %d", r.Partition, r.Offset, o)
		}
		lastOffset[r.Partition] = r.Offset
		key := string(r.Key)
		seq, err := recordSeq(r)
		if err != nil {
			fail("%v", err)
			continue
		}
		u, ok := l.sent[key][seq]
		switch {
		case !ok:
			fail("%d/%d: key %s seq %d was never sent", r.Partition, r.Offset, key, seq)
			continue
		case u.tombstone != (r.Value == nil):
			fail("%d/%d: key %s seq %d: tombstone %v, read value %q", r.Partition, r.Offset, key, seq, u.tombstone, r.Value)
		case !u.tombstone && string(r.Value) != string(cleanValue(key, seq)):
			fail("%d/%d: key %s seq %d: value %.40q", r.Partition, r.Offset, key, seq, r.Value)
		}
		if prev, ok := last[key]; ok && seq <= prev.seq {
			fail("%d/%d: key %s: update %d after update %d", r.Partition, r.Offset, key, seq, prev.seq)
		}
		last[key] = u
	}
	for key, a := range l.acked {
		got, ok := last[key]
		switch {
		case !ok && !a.tombstone && !laterTombstone(l.sent[key], a.seq):
			// A key may be gone only after a tombstone (acknowledged, or sent later).
			fail("key %s: nothing read, its latest acknowledged update is %d", key, a.seq)
		case ok && got.seq < a.seq:
			fail("key %s: last update read %d, older than the latest acknowledged %d", key, got.seq, a.seq)
		}
	}
	return problems
}

// TestCompactedChecker: the checker of TestSIGKILLDuringCleaning finds a lost update, an
// older update after a newer one, a resurrected key and offsets out of order.
func TestCompactedChecker(t *testing.T) {
	l := &cleanLedger{sent: map[string]map[int]update{}, acked: map[string]update{}}
	rec := func(part int32, off int64, key string, seq int) *kgo.Record {
		r := &kgo.Record{Partition: part, Offset: off, Key: []byte(key),
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(seq))}}}
		if !l.sent[key][seq].tombstone {
			r.Value = cleanValue(key, seq)
		}
		return r
	}
	for _, s := range []struct {
		key       string
		seq       int
		tombstone bool
		acked     bool
	}{{"a", 1, false, true}, {"a", 4, false, true}, {"b", 2, false, true}, {"b", 5, true, true}, {"c", 3, false, true}, {"c", 6, false, false}} {
		l.send(s.key, update{s.seq, s.tombstone})
		if s.acked {
			l.ack(s.key, update{s.seq, s.tombstone}, nil)
		}
	}
	// Compacted as allowed: a's latest, b gone after its tombstone, c's unacknowledged later update.
	if p := compactedProblems([]*kgo.Record{rec(0, 3, "a", 4), rec(0, 5, "c", 6)}, l); len(p) > 0 {
		t.Fatalf("a valid log: %v", p)
	}
	for name, records := range map[string][]*kgo.Record{
		"lost":           {rec(0, 0, "a", 1), rec(0, 5, "c", 6)},
		"out of order":   {rec(0, 3, "a", 4), rec(0, 4, "a", 1), rec(0, 5, "c", 6)},
		"resurrected":    {rec(0, 2, "b", 2), rec(0, 3, "a", 4), rec(0, 5, "c", 6)},
		"offsets repeat": {rec(0, 3, "a", 4), rec(0, 3, "c", 6)},
	} {
		if p := compactedProblems(records, l); len(p) == 0 {
			t.Errorf("%s: no problem found", name)
		}
	}
}
