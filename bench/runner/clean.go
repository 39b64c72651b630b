package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The clean workload group (log compaction, issue 12): how fast each broker's log cleaner
// compacts a dirty log, the memory it takes, and what a running cleaner costs producers.
const (
	cleanRecordSize = 1024
	// cleanKeyShare: one key per this many records, so 10% of the records' keys are unique
	// and each key is updated about 10 times.
	cleanKeyShare = 10
	// cleanSegmentBytes (the topics' segment.bytes) makes several segments seal, so that
	// every one but the active segment is cleanable.
	cleanSegmentBytes = 64 << 20
	// cleanBackoffMs is log.cleaner.backoff.ms of both brokers when the group runs (Kafka's
	// default is 15 s): how long an idle cleaner sleeps before looking for work again.
	cleanBackoffMs = 100
	// cleanWait bounds the wait for a cleaning to be logged.
	cleanWait = 3 * time.Minute
)

// cleanRecords is the record count of the dirty log cleaned at once: 512 MiB of values (256
// in quick mode).
func (e *env) cleanRecords() int64 { return e.count(512 << 10) }

// cleanProduceRecords is the record count of each produce-impact run: 1 GiB of values.
func (e *env) cleanProduceRecords() int64 { return e.count(1 << 20) }

// cleanBrokerSettings are the broker settings both brokers get when the clean group runs.
func (e *env) cleanBrokerSettings() []string {
	if !e.wants("clean") {
		return nil
	}
	return []string{fmt.Sprintf("log.cleaner.backoff.ms=%d", cleanBackoffMs)}
}

var (
	figCleanRate = figure{"clean/mb-per-s", "cleaning throughput, MiB of dirty log per second (1 KiB records, 10% unique keys)", "MiB/s", true}
	figCleanSecs = figure{"clean/seconds", "time of that cleaning, as each broker logs it", "s", false}
	figCleanRSS  = figure{"clean/rss", "max RSS from the cleanup.policy change to the cleaning's log line", "MiB", false}
	figCleanCPU  = figure{"clean/cpu", "broker CPU over the same span", "s", false}
	figCleanBase = figure{"clean/produce/delete", "produce 1 KiB keyed 1p acks=1 to a delete topic, samsa perf", "rec/s", true}
	figCleanLive = figure{"clean/produce/compact", "the same to a compacted topic, the cleaner running", "rec/s", true}
	figCleanDrop = figure{"clean/produce/ratio", "produce rate compacted topic ÷ delete topic (same broker)", "×", true}
	figCleanPRSS = figure{"clean/produce/rss", "max RSS during the produce to the compacted topic", "MiB", false}
)

// cleaning is one cleaning of a partition as a broker logged it.
//
// MiB is what the cleaning read and rewrote, as Kafka counts it ("MB of log processed": the
// segments rewritten, not the read that built the offset map). Samsa's line has bytes_read,
// both reads together, and its mb_per_s is over that: for a first cleaning whose map held
// every key (first_dirty_offset=0, map_full=false) the map read the same segments as the
// rewrite, so MiB is half of bytes_read; otherwise it is 0 (unknown). Logged is each broker's
// own MB/s figure, kept for the JSON.
type cleaning struct {
	Topic     string  `json:"topic"`
	Partition int     `json:"partition"`
	MiB       float64 `json:"mib"`
	Seconds   float64 `json:"seconds"`
	MiBPerSec float64 `json:"mib_per_sec"` // MiB / Seconds
	Logged    float64 `json:"logged_mb_per_sec"`
	// Sizes before and after, in MiB: Kafka's start and end sizes (of what it rewrote),
	// Samsa's bytes_before and bytes_after (the whole log).
	StartMiB float64 `json:"start_mib"`
	EndMiB   float64 `json:"end_mib"`
}

// kafkaCleanedLine matches the statistics LogCleaner logs after each cleaning (Kafka 4.1,
// org.apache.kafka.storage.internals.log.LogCleaner$CleanerThread.recordStats; numbers
// formatted with %,.1f, MB meaning MiB):
//
//	Log cleaner thread 0 cleaned log T-0 (dirty section = [0, 524288])
//		504.9 MB of log processed in 5.1 seconds (98.7 MB/sec).
//		...
//		Start size: 504.9 MB (524,288 messages)
//		End size: 53.1 MB (51,200 messages)
var (
	kafkaCleanedLine = regexp.MustCompile(`Log cleaner thread \d+ cleaned log (\S+)-(\d+) \(dirty section = \[\d+, \d+\]\)\s*` +
		`([\d,.]+) MB of log processed in ([\d,.]+) seconds \(([\d,.]+) MB/sec\)`)
	kafkaSizesLine = regexp.MustCompile(`Start size: ([\d,.]+) MB \([\d,]+ messages\)\s*End size: ([\d,.]+) MB`)
)

// parseKafkaCleanings returns the cleanings in a Kafka log.
func parseKafkaCleanings(text string) []cleaning {
	var out []cleaning
	locs := kafkaCleanedLine.FindAllStringSubmatchIndex(text, -1)
	for i, loc := range locs {
		m := func(g int) string { return text[loc[2*g]:loc[2*g+1]] }
		c := cleaning{Topic: m(1), MiB: kafkaNum(m(3)), Seconds: kafkaNum(m(4)), MiBPerSec: kafkaNum(m(5)), Logged: kafkaNum(m(5))}
		c.Partition, _ = strconv.Atoi(m(2))
		rest := text[loc[1]:]
		if i+1 < len(locs) {
			rest = text[loc[1]:locs[i+1][0]]
		}
		if s := kafkaSizesLine.FindStringSubmatch(rest); s != nil {
			c.StartMiB, c.EndMiB = kafkaNum(s[1]), kafkaNum(s[2])
		}
		out = append(out, c)
	}
	return out
}

func kafkaNum(s string) float64 {
	v, _ := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	return v
}

// slogAttr matches one key=value of a slog text line.
var slogAttr = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`)

// parseSamsaCleanings returns the cleanings in a Samsa log: its "log cleaned" lines (slog text:
// topic, partition, bytes_before, bytes_after, duration, mb_per_s).
func parseSamsaCleanings(text string) []cleaning {
	var out []cleaning
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, `msg="log cleaned"`) {
			continue
		}
		attrs := map[string]string{}
		for _, m := range slogAttr.FindAllStringSubmatch(line, -1) {
			attrs[m[1]] = strings.Trim(m[2], `"`)
		}
		num := func(k string) float64 { v, _ := strconv.ParseFloat(attrs[k], 64); return v }
		c := cleaning{Topic: attrs["topic"], StartMiB: num("bytes_before") / (1 << 20), EndMiB: num("bytes_after") / (1 << 20), Logged: num("mb_per_s")}
		c.Partition, _ = strconv.Atoi(attrs["partition"])
		if d, err := time.ParseDuration(attrs["duration"]); err == nil {
			c.Seconds = d.Seconds()
		}
		if attrs["first_dirty_offset"] == "0" && attrs["map_full"] == "false" {
			c.MiB = num("bytes_read") / 2 / (1 << 20)
		}
		if c.Seconds > 0 {
			c.MiBPerSec = c.MiB / c.Seconds
		}
		out = append(out, c)
	}
	return out
}

// logSize is the size of a broker's log file, where a wait for new lines starts.
func (t *target) logSize() int64 {
	fi, err := os.Stat(t.r.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// cleaningsSince returns the cleanings of topic logged since offset from of the broker's log.
func (t *target) cleaningsSince(from int64, topic string) ([]cleaning, error) {
	f, err := os.Open(t.r.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	all := parseSamsaCleanings(string(b))
	if t.r.kind.name == "kafka" {
		all = parseKafkaCleanings(string(b))
	}
	var out []cleaning
	for _, c := range all {
		if c.Topic == topic {
			out = append(out, c)
		}
	}
	return out, nil
}

// waitCleaning waits until the broker logs a cleaning of topic after offset from.
func (t *target) waitCleaning(ctx context.Context, from int64, topic string) (cleaning, error) {
	ctx, cancel := context.WithTimeout(ctx, cleanWait)
	defer cancel()
	for {
		cs, err := t.cleaningsSince(from, topic)
		if err != nil {
			return cleaning{}, err
		}
		if len(cs) > 0 {
			return cs[0], nil
		}
		if n := t.r.exitedNode(); n != nil {
			return cleaning{}, fmt.Errorf("%s exited (log: %s)", n.kind.name, n.logPath)
		}
		select {
		case <-ctx.Done():
			return cleaning{}, fmt.Errorf("no cleaning of %s logged within %v (log: %s)", topic, cleanWait, t.r.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logDirSize is the size of topic's partitions as DescribeLogDirs reports them, in MiB.
func (t *target) logDirSize(ctx context.Context, topic string) (float64, error) {
	dirs, err := t.adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		return 0, err
	}
	var size int64
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) { size += p.Size })
	})
	return float64(size) / (1 << 20), nil
}

// produceKeyed runs samsa perf produce of n 1 KiB records with keys (10% unique) to topic.
func (t *target) produceKeyed(ctx context.Context, topic string, n int64) (toolResult, error) {
	out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, "perf", "produce", "--brokers", t.r.addr,
		"--topic", topic, "--records", itoa(n), "--record-size", itoa(cleanRecordSize), "--keys", itoa(max(n/cleanKeyShare, 1)),
		"--throughput", "-1", "--acks", "1", "--batch-max-bytes", "16384", "--linger", "5ms", "--report-interval", "1h", "--json")
	if err != nil {
		return toolResult{}, err
	}
	return parseSamsaPerf(out)
}

// clean runs the clean group: one big cleaning, then the produce impact.
func (t *target) clean(ctx context.Context) error {
	if err := t.cleanOnce(ctx); err != nil {
		return err
	}
	return t.cleanProduceImpact(ctx)
}

// cleanOnce measures one big cleaning (fillAndClean of cleanRecords), after an unmeasured
// one of 32 MiB in 8 MiB segments, so that Kafka's cleaner code is compiled by the JIT
// before the measured run, as the warm-up does for produce and consume.
func (t *target) cleanOnce(ctx context.Context) error {
	if _, err := t.fillAndClean(ctx, "bench-clean-warmup", 32<<10, 8<<20); err != nil {
		return fmt.Errorf("cleaner warm-up: %w", err)
	}
	n := t.e.cleanRecords()
	m, err := t.fillAndClean(ctx, "bench-clean", n, cleanSegmentBytes)
	if err != nil {
		return err
	}
	c := m.cleaning
	logf("  clean %d records (%.0f MiB on disk): %.1f MiB in %.2f s, %.1f MiB/s (logged: %.1f MB/s; %.1f → %.1f MiB); on disk after: %.0f MiB; max RSS %.0f MiB, broker CPU %.1f s",
		n, m.before, c.MiB, c.Seconds, c.MiBPerSec, c.Logged, c.StartMiB, c.EndMiB, m.after, m.rss, m.cpu)
	if c.MiB == 0 {
		return fmt.Errorf("the cleaning of bench-clean did not log how much it cleaned (a partial first pass?): %+v", c)
	}
	res := t.e.results
	res.addRun(t.round, t.r.kind.name, "clean", t.r.kind.name+" log cleaner",
		toolResult{Records: n, MBPerSec: c.MiBPerSec}, m.cpu, m.rss)
	res.addCleaning(t.round, t.r.kind.name, c, m.before, m.after)
	res.add(t.round, t.r.kind.name, figCleanRate, c.MiBPerSec)
	res.add(t.round, t.r.kind.name, figCleanSecs, c.Seconds)
	res.add(t.round, t.r.kind.name, figCleanRSS, m.rss)
	res.add(t.round, t.r.kind.name, figCleanCPU, m.cpu)
	return nil
}

// cleanMeasure is what fillAndClean measured.
type cleanMeasure struct {
	cleaning
	before, after float64 // the topic's size (DescribeLogDirs), MiB
	cpu, rss      float64 // broker CPU seconds and max RSS (MiB) from the policy change to the line
}

// fillAndClean fills a new topic with n keyed records while its cleanup.policy is delete, so
// that nothing cleans it during the fill, then sets cleanup.policy=compact and waits for the
// cleaning: the whole log but its active segment is dirty, so one cleaning compacts it. The
// topic is deleted at the end.
func (t *target) fillAndClean(ctx context.Context, topic string, n int64, segBytes int) (cleanMeasure, error) {
	var m cleanMeasure
	if err := t.createTopicConfigs(ctx, topic, 1, map[string]string{
		"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": itoa(int64(segBytes)),
	}); err != nil {
		return m, err
	}
	defer t.deleteTopic(ctx, topic)
	if _, err := t.produceKeyed(ctx, topic, n); err != nil {
		return m, fmt.Errorf("filling %s: %w", topic, err)
	}
	var err error
	if m.before, err = t.logDirSize(ctx, topic); err != nil {
		return m, fmt.Errorf("DescribeLogDirs: %w", err)
	}
	from := t.logSize()
	u := startUsage(t.r.pids()...)
	resps, err := t.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, topic)
	for _, r := range resps {
		if err == nil && r.Err != nil {
			err = r.Err
		}
	}
	if err != nil {
		u.finish()
		return m, fmt.Errorf("setting cleanup.policy=compact on %s: %w", topic, err)
	}
	m.cleaning, err = t.waitCleaning(ctx, from, topic)
	m.cpu, m.rss = u.finish()
	if err != nil {
		return m, err
	}
	m.after, _ = t.logDirSize(ctx, topic)
	return m, nil
}

// cleanProduceImpact produces the same keyed records to a delete topic and to a compacted
// topic whose cleaner runs while the records arrive (min.cleanable.dirty.ratio 0.5, Kafka's
// default: after its first cleaning a 64 MiB segment sealed is enough dirt), in alternating
// order from round to round, and reports both rates and their ratio.
func (t *target) cleanProduceImpact(ctx context.Context) error {
	n := t.e.cleanProduceRecords()
	cases := []struct {
		policy string
		fig    figure
	}{{"delete", figCleanBase}, {"compact", figCleanLive}}
	if t.round%2 == 0 {
		cases[0], cases[1] = cases[1], cases[0]
	}
	rates := map[string]float64{}
	for _, c := range cases {
		topic := "bench-clean-" + c.policy
		if err := t.createTopicConfigs(ctx, topic, 1, map[string]string{
			"cleanup.policy": c.policy, "retention.ms": "-1", "segment.bytes": itoa(cleanSegmentBytes),
		}); err != nil {
			return err
		}
		from := t.logSize()
		res, cpu, rss, err := t.measured(func() (toolResult, error) { return t.produceKeyed(ctx, topic, n) })
		if err != nil {
			t.deleteTopic(ctx, topic)
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
		cs, _ := t.cleaningsSince(from, topic)
		var busy float64
		for _, c := range cs {
			busy += c.Seconds
		}
		t.deleteTopic(ctx, topic)
		secs := float64(res.Records) / res.RecordsPerSec
		logf("  produce keyed to a %-7s topic %10.0f rec/s %8.1f MB/s  broker CPU %5.1f s, max RSS %.0f MiB; %d cleanings logged during the %.1f s (%.1f s of cleaning)",
			c.policy, res.RecordsPerSec, res.MBPerSec, cpu, rss, len(cs), secs, busy)
		r := t.e.results
		r.addRun(t.round, t.r.kind.name, "produce keyed, cleanup.policy="+c.policy, toolSamsaProduce, res, cpu, rss)
		r.add(t.round, t.r.kind.name, c.fig, res.RecordsPerSec)
		if c.policy == "compact" {
			r.add(t.round, t.r.kind.name, figCleanPRSS, rss)
		}
		rates[c.policy] = res.RecordsPerSec
	}
	if rates["delete"] > 0 {
		t.e.results.add(t.round, t.r.kind.name, figCleanDrop, rates["compact"]/rates["delete"])
	}
	return nil
}
