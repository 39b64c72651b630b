package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Tools.
const (
	toolKafkaProducer = "kafka-producer-perf-test"
	toolKafkaConsumer = "kafka-consumer-perf-test"
	toolSamsaProduce  = "samsa perf produce"
	toolSamsaConsume  = "samsa perf consume"
	toolSamsaE2E      = "samsa perf e2e"
	// toolBatchLoad sends pre-encoded batches over several connections: the broker's own rate.
	toolBatchLoad = "batchload"
)

// Settings of the broker-bound produce load: as many producers as these connections with five
// requests in flight each, every request a full batch for every partition.
const (
	batchLoadConnections = 4
	batchLoadInflight    = 5
)

// produceCase is one produce workload.
type produceCase struct {
	size  int
	acks  string
	parts int32
}

func (c produceCase) String() string {
	size := fmt.Sprintf("%d B", c.size)
	if c.size == 1024 {
		size = "1 KiB"
	}
	return fmt.Sprintf("%s acks=%s %dp", size, c.acks, c.parts)
}

// produceCases returns the produce matrix: record size x acks x partitions (quick mode: two
// corners of it).
func (e *env) produceCases() []produceCase {
	if e.brokers > 1 {
		// A cluster is measured with acks=all only (issue 11): replication is what it adds.
		if e.quick {
			return []produceCase{{100, "all", 1}, {1024, "all", 16}}
		}
		return []produceCase{{100, "all", 1}, {100, "all", 16}, {1024, "all", 1}, {1024, "all", 16}}
	}
	if e.quick || e.profileDir != "" {
		return []produceCase{{100, "1", 1}, {1024, "all", 16}}
	}
	var cs []produceCase
	for _, size := range []int{100, 1024} {
		for _, acks := range []string{"1", "all"} {
			for _, parts := range []int32{1, 16} {
				cs = append(cs, produceCase{size, acks, parts})
			}
		}
	}
	return cs
}

// resourceCase is the produce workload whose broker CPU and RSS are reported on their own.
var resourceCase = produceCase{1024, "all", 16}

// produceRecords is the record count of a produce run, chosen so that a run against Kafka
// takes about 4-8 s on the reference machine (2 cores, shared), and one against Samsa 2-5 s
// (the Java tool is slower than the Go one, and small records cost more per byte), and the
// whole bench stays under 15 minutes on a fresh machine.
//
// A 3-node cluster with RF=3 writes every record three times on the same 2 cores: Kafka's
// acks=all rates drop to a fifth or less of its single-node ones (100 B, 1 partition: 22 k
// records/s with kafka-producer-perf-test, 61 k with samsa perf produce), so the cluster mode
// sends a fifth of the records, which keeps a run against Kafka at 5-20 s; a full 3-round
// cluster run took 18 minutes with other tests running on the machine.
func (e *env) produceRecords(tool string, size int) int64 {
	n := e.produceRecordsOneNode(tool, size)
	if e.brokers > 1 {
		n = max(n/clusterRecordDivisor, 1000)
	}
	return n
}

// clusterRecordDivisor divides the produce record counts in the cluster mode.
const clusterRecordDivisor = 5

func (e *env) produceRecordsOneNode(tool string, size int) int64 {
	switch {
	case tool == toolKafkaProducer && size < 1024:
		return e.count(1_000_000)
	case tool == toolKafkaProducer:
		return e.count(320_000)
	case tool == toolBatchLoad && size < 1024:
		return e.count(6_000_000)
	case tool == toolBatchLoad:
		return e.count(600_000)
	case size < 1024:
		return e.count(2_800_000)
	default:
		return e.count(800_000)
	}
}

// Consume and e2e settings.
const (
	consumeSize  = 1024
	consumeParts = 16
	e2eRate      = 5000
	e2eSize      = 100
)

func (e *env) consumeRecords() int64 { return e.count(800_000) }

func (e *env) e2eRecords() int64 {
	secs := 8.0
	if e.quick {
		secs = 5 / e.scale // 5 s whatever the scale
	}
	return int64(float64(e2eRate) * secs * e.scale)
}

// target is one running broker in one round.
type target struct {
	e      *env
	r      *running
	round  int
	adm    *kadm.Client
	groups bool

	produceCPU   float64 // broker CPU seconds over every produce run
	produceBytes float64
}

func (t *target) logPath() string { return filepath.Join(t.r.dir, "tools.log") }

func (t *target) createTopic(ctx context.Context, topic string, parts int32) error {
	return t.createTopicConfigs(ctx, topic, parts, nil)
}

// createTopicConfigs creates a topic with configs (topic config name → value) and waits until
// it serves.
func (t *target) createTopicConfigs(ctx context.Context, topic string, parts int32, configs map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := t.adm.CreateTopic(ctx, parts, int16(t.e.brokers), cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating %s: %w", topic, err)
	}
	// Kafka lists a new topic before its partition leaders serve it; a produce that meets
	// NOT_LEADER_FOR_PARTITION on some partitions backs off on them and skews the run. Wait
	// until every partition answers ListOffsets.
	for {
		ends, err := t.adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil && len(ends[topic]) == int(parts) {
			if t.e.brokers <= 1 {
				return nil
			}
			// A cluster's topic is ready once every partition's ISR has every replica, so
			// that no run starts while followers are still joining.
			var ok bool
			if ok, err = t.fullISR(ctx, topic, parts); ok {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("topic %s not ready: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fullISR says whether every partition of topic has a leader and all its replicas in sync.
func (t *target) fullISR(ctx context.Context, topic string, parts int32) (bool, error) {
	td, err := t.adm.ListTopics(ctx, topic)
	if err != nil {
		return false, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil || len(d.Partitions) != int(parts) {
		return false, fmt.Errorf("metadata of %s: %v", topic, d.Err)
	}
	for _, p := range d.Partitions {
		if p.Err != nil || p.Leader < 0 || len(p.ISR) < t.e.brokers {
			return false, fmt.Errorf("partition %d: leader %d, ISR %v (%v)", p.Partition, p.Leader, p.ISR, p.Err)
		}
	}
	return true, nil
}

// deleteTopic removes a run's topic so that the disk does not fill over the bench.
func (t *target) deleteTopic(ctx context.Context, topic string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := t.adm.DeleteTopics(ctx, topic); err != nil {
		logf("  warning: deleting %s: %v", topic, err)
	}
}

// measured runs fn while measuring the broker's CPU and RSS.
func (t *target) measured(fn func() (toolResult, error)) (toolResult, float64, float64, error) {
	u := startUsage(t.r.pids()...)
	res, err := fn()
	cpu, rss := u.finish()
	return res, cpu, rss, err
}

// warmUp runs a short produce and consume that is not measured, so that the first measured
// run does not pay for the JVM's JIT compilation (or for first-use costs in Samsa).
func (t *target) warmUp(ctx context.Context) error {
	topic := "bench-warmup"
	if err := t.createTopic(ctx, topic, 16); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	n := itoa(t.e.count(300_000))
	if _, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, "perf", "produce", "--brokers", t.r.addr,
		"--topic", topic, "--records", n, "--record-size", "1024", "--acks", "all", "--report-interval", "1h"); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, "perf", "consume", "--brokers", t.r.addr,
		"--topic", topic, "--records", n, "--report-interval", "1h"); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

func (t *target) produceAll(ctx context.Context) error {
	// The client tools go through the whole matrix first, as before batchload existed, so
	// that its runs (the fastest writes of the bench) do not precede theirs.
	for _, tools := range [][]string{{toolKafkaProducer, toolSamsaProduce}, {toolBatchLoad}} {
		for _, c := range t.e.produceCases() {
			for _, tool := range tools {
				// batchload sends every partition's batch to one broker, the leader of all of
				// them on one node: not a cluster's partitions.
				if t.e.profileDir != "" && tool == toolKafkaProducer || tool == toolBatchLoad && (t.e.batchload == "" || t.e.brokers > 1) {
					continue
				}
				if err := t.produce(ctx, c, tool); err != nil {
					return err
				}
			}
		}
	}
	if t.produceBytes > 0 {
		t.e.results.add(t.round, t.r.kind.name, figCPUPerGiB, t.produceCPU/(t.produceBytes/(1<<30)))
	}
	return nil
}

func (t *target) produce(ctx context.Context, c produceCase, tool string) error {
	name := fmt.Sprintf("produce-%d-acks%s-%dp-%s", c.size, c.acks, c.parts, map[string]string{toolKafkaProducer: "java", toolSamsaProduce: "go", toolBatchLoad: "batches"}[tool])
	topic := "bench-" + name
	if err := t.createTopic(ctx, topic, c.parts); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	n := t.e.produceRecords(tool, c.size)
	stopProfile := t.profile(name)
	res, cpu, rss, err := t.measured(func() (toolResult, error) {
		if tool == toolKafkaProducer {
			out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.java, append(t.e.javaToolOpts(),
				"org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
				"--num-records", itoa(n), "--record-size", itoa(int64(c.size)), "--throughput", "-1",
				"--producer-props", "bootstrap.servers="+t.r.addr, "acks="+c.acks, "batch.size=16384", "linger.ms=5")...)
			if err != nil {
				return toolResult{}, err
			}
			return parseProducerPerformance(out)
		}
		if tool == toolBatchLoad {
			out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.batchload, "-broker", t.r.addr,
				"-topic", topic, "-partitions", itoa(int64(c.parts)), "-records", itoa(n), "-record-size", itoa(int64(c.size)),
				"-acks", c.acks, "-batch-bytes", "16384", "-connections", itoa(batchLoadConnections),
				"-inflight", itoa(batchLoadInflight), "-json")
			if err != nil {
				return toolResult{}, err
			}
			return parseSamsaPerf(out)
		}
		out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, "perf", "produce", "--brokers", t.r.addr,
			"--topic", topic, "--records", itoa(n), "--record-size", itoa(int64(c.size)), "--throughput", "-1",
			"--acks", c.acks, "--batch-max-bytes", "16384", "--linger", "5ms", "--report-interval", "1h", "--json")
		if err != nil {
			return toolResult{}, err
		}
		return parseSamsaPerf(out)
	})
	stopProfile()
	if err != nil {
		return fmt.Errorf("produce %v with %s: %w", c, tool, err)
	}
	logf("  produce %-18s %-26s %10.0f rec/s %8.1f MB/s  p99 %7.2f ms  broker CPU %5.1f s", c, tool, res.RecordsPerSec, res.MBPerSec, res.P99Ms, cpu)
	res2 := t.e.results
	res2.addRun(t.round, t.r.kind.name, "produce "+c.String(), tool, res, cpu, rss)
	res2.add(t.round, t.r.kind.name, produceFigure(c, tool, "rate"), res.RecordsPerSec)
	if tool == toolSamsaProduce {
		res2.add(t.round, t.r.kind.name, produceFigure(c, tool, "p99"), res.P99Ms)
	}
	if c == resourceCase && tool == toolSamsaProduce {
		res2.add(t.round, t.r.kind.name, figCPU, cpu)
		res2.add(t.round, t.r.kind.name, figLoadRSS, rss)
	}
	t.produceCPU += cpu
	t.produceBytes += float64(res.Records) * float64(c.size)
	return nil
}

// fillConsumeTopic creates the consume workloads' topic (consumeParts partitions) and writes n
// records of consumeSize to it with samsa perf produce over the PLAINTEXT listener.
func (t *target) fillConsumeTopic(ctx context.Context, topic string, n int64) error {
	if err := t.createTopic(ctx, topic, consumeParts); err != nil {
		return err
	}
	if _, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, "perf", "produce", "--brokers", t.r.addr,
		"--topic", topic, "--records", itoa(n), "--record-size", itoa(consumeSize), "--acks", "1", "--report-interval", "1h"); err != nil {
		t.deleteTopic(ctx, topic)
		return fmt.Errorf("filling %s: %w", topic, err)
	}
	return nil
}

func (t *target) consume(ctx context.Context) error {
	topic := "bench-consume"
	n := t.e.consumeRecords()
	if err := t.fillConsumeTopic(ctx, topic, n); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	res := t.e.results
	if t.e.profileDir == "" {
		if !t.groups {
			logf("  consume: %s skipped: %s serves no consumer groups", toolKafkaConsumer, t.r.kind.name)
			res.skip(t.r.kind.name, toolKafkaConsumer, "no consumer groups")
		} else {
			var total toolResult
			fetch, cpu, rss, err := t.measured(func() (toolResult, error) {
				out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.java, append(t.e.javaToolOpts(),
					"org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", t.r.addr, "--topic", topic,
					"--messages", itoa(n), "--timeout", "30000", "--group", fmt.Sprintf("bench-consumer-perf-%d", t.round))...)
				if err != nil {
					return toolResult{}, err
				}
				f, tot, err := parseConsumerPerformance(out)
				total = tot
				return f, err
			})
			if err != nil {
				// A broker that lists the group APIs may not serve them well enough yet;
				// the figure is left out rather than the whole bench failing.
				logf("  consume: %s failed on %s: %v", toolKafkaConsumer, t.r.kind.name, err)
				res.skip(t.r.kind.name, toolKafkaConsumer, "failed: "+err.Error())
			} else {
				logf("  consume %-26s %10.0f rec/s %8.1f MB/s (with group join: %.0f rec/s)  broker CPU %5.1f s", toolKafkaConsumer, fetch.RecordsPerSec, fetch.MBPerSec, total.RecordsPerSec, cpu)
				res.addRun(t.round, t.r.kind.name, "consume", toolKafkaConsumer, fetch, cpu, rss)
				res.add(t.round, t.r.kind.name, consumeFigure(toolKafkaConsumer, "rate"), fetch.RecordsPerSec)
				res.add(t.round, t.r.kind.name, consumeFigure(toolKafkaConsumer, "mb"), fetch.MBPerSec)
			}
		}
	}
	stopProfile := t.profile("fetch")
	out, cpu, rss, err := t.measured(func() (toolResult, error) {
		out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, "perf", "consume", "--brokers", t.r.addr,
			"--topic", topic, "--records", itoa(n), "--report-interval", "1h", "--json")
		if err != nil {
			return toolResult{}, err
		}
		return parseSamsaPerf(out)
	})
	stopProfile()
	if err != nil {
		return fmt.Errorf("consume with %s: %w", toolSamsaConsume, err)
	}
	logf("  consume %-26s %10.0f rec/s %8.1f MB/s  broker CPU %5.1f s", toolSamsaConsume, out.RecordsPerSec, out.MBPerSec, cpu)
	res.addRun(t.round, t.r.kind.name, "consume", toolSamsaConsume, out, cpu, rss)
	res.add(t.round, t.r.kind.name, consumeFigure(toolSamsaConsume, "rate"), out.RecordsPerSec)
	res.add(t.round, t.r.kind.name, consumeFigure(toolSamsaConsume, "mb"), out.MBPerSec)
	res.add(t.round, t.r.kind.name, figConsumeCPU, cpu)
	return nil
}

func (t *target) e2e(ctx context.Context) error {
	if t.e.profileDir != "" {
		return nil
	}
	topic := "bench-e2e"
	if err := t.createTopic(ctx, topic, 1); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	n := t.e.e2eRecords()
	res, cpu, rss, err := t.measured(func() (toolResult, error) {
		out, err := runTool(ctx, 3*time.Minute, t.logPath(), t.e.samsa, "perf", "e2e", "--brokers", t.r.addr,
			"--topic", topic, "--records", itoa(n), "--record-size", itoa(e2eSize), "--throughput", itoa(e2eRate),
			"--acks", "all", "--warmup", "1s", "--report-interval", "1h", "--json")
		if err != nil {
			return toolResult{}, err
		}
		return parseSamsaPerf(out)
	})
	if err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	logf("  e2e at %d rec/s: p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  broker CPU %.1f s", e2eRate, res.P50Ms, res.P99Ms, res.P999Ms, res.MaxMs, cpu)
	r := t.e.results
	r.addRun(t.round, t.r.kind.name, fmt.Sprintf("e2e %d rec/s", e2eRate), toolSamsaE2E, res, cpu, rss)
	r.add(t.round, t.r.kind.name, figE2E50, res.P50Ms)
	r.add(t.round, t.r.kind.name, figE2E99, res.P99Ms)
	r.add(t.round, t.r.kind.name, figE2E999, res.P999Ms)
	r.add(t.round, t.r.kind.name, figE2ECPU, cpu)
	return nil
}

// profile starts a CPU profile of the broker in profile mode (the profserver toggles profiling
// on SIGUSR1); the returned function stops it and names the file after the workload.
func (t *target) profile(name string) func() {
	if t.e.profileDir == "" {
		return func() {}
	}
	t.e.profiles++
	n := t.e.profiles
	_ = syscall.Kill(t.r.pid(), syscall.SIGUSR1)
	return func() {
		_ = syscall.Kill(t.r.pid(), syscall.SIGUSR1)
		src := filepath.Join(t.e.profileDir, fmt.Sprintf("samsa-%d.pprof", n))
		dst := filepath.Join(t.e.profileDir, name+".pprof")
		for i := 0; i < 100; i++ { // the profile is written asynchronously
			if fi, err := os.Stat(src + ".done"); err == nil && !fi.IsDir() {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = os.Remove(src + ".done")
		if err := os.Rename(src, dst); err != nil {
			logf("  warning: profile %s: %v", name, err)
		}
	}
}
