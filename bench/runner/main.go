// Command runner is the engine of bench/run: it starts Apache Kafka and Samsa in turn, each
// fresh, on loopback, runs the same workloads against each (Kafka's own perf tools and
// `samsa perf`), alternating the two brokers for several rounds, measures the brokers' CPU and
// memory from /proc, and prints one comparison table (also written as JSON). bench/run fetches
// the jars, builds the binaries and calls it; see bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// env is the runner's configuration and what it has measured so far.
type env struct {
	samsa, profserver string // binaries
	batchload         string // bench/batchload: the broker-bound produce load
	java, jars        string // /usr/bin/java and the Kafka jar directory
	work              string // scratch directory for data and logs (removed by bench/run)
	outDir            string
	kafkaVersion      string
	rounds            int
	quick             bool
	scale             float64
	profileDir        string // profile mode: only Samsa, under CPU profiles written here
	only              map[string]bool
	profiles          int // CPU profiles taken so far (profile mode)
	// brokerCPUs, if set, is the CPU list (taskset -c) the brokers run on; bench/run --pin
	// runs the runner, and so the client tools it starts, on the other CPUs.
	brokerCPUs string
	// clientsPinned: the runner and its tools run on the other CPUs (bench/run --pin), not on
	// every CPU (--pin-broker).
	clientsPinned bool
	// brokers is the number of nodes of each broker: 1, or 3 for a cluster of three
	// combined KRaft nodes with RF=3 and min.insync.replicas=2 (bench/run --brokers 3).
	brokers int
	// tls: the tls group's certificates and client properties (nil when it does not run);
	// the brokers then get a SASL_SSL listener too.
	tls *tlsFiles

	results *results
}

func main() {
	var e env
	var only string
	flag.StringVar(&e.samsa, "samsa", "", "samsa binary")
	flag.StringVar(&e.batchload, "batchload", "", "bench/batchload binary (broker-bound produce; skipped when empty)")
	flag.StringVar(&e.profserver, "profserver", "", "bench/profserver binary (profile mode)")
	flag.StringVar(&e.java, "java", "/usr/bin/java", "java 17+ binary")
	flag.StringVar(&e.jars, "jars", "", "directory of Kafka's broker and tools jars")
	flag.StringVar(&e.work, "work", "", "scratch directory")
	flag.StringVar(&e.outDir, "out", "bench/results", "where the JSON and table files go")
	flag.StringVar(&e.kafkaVersion, "kafka-version", "", "Kafka version of the jars (for the report)")
	flag.StringVar(&e.brokerCPUs, "broker-cpus", "", "run the brokers on these CPUs (taskset -c list)")
	flag.BoolVar(&e.clientsPinned, "clients-pinned", false, "the caller runs the runner (and so its tools) on the other CPUs (for the report)")
	flag.IntVar(&e.brokers, "brokers", 1, "nodes per broker: 1, or 3 (a cluster of each: RF=3, min.insync.replicas=2, acks=all produce and e2e)")
	flag.IntVar(&e.rounds, "rounds", 3, "rounds; each runs every workload against Kafka, then Samsa")
	flag.BoolVar(&e.quick, "quick", false, "one round of fewer, shorter workloads")
	flag.Float64Var(&e.scale, "scale", 1, "multiply every record count by this")
	flag.StringVar(&e.profileDir, "profile", "", "profile mode: run Samsa only, under CPU profiles written to this directory")
	flag.StringVar(&only, "only", "", "comma-separated workload groups to run: startup, produce, consume, e2e, clean, txn, tls (default all but tls)")
	flag.Parse()
	if e.samsa == "" || e.jars == "" || e.work == "" {
		fmt.Fprintln(os.Stderr, "runner: --samsa, --jars and --work are required (use bench/run)")
		os.Exit(2)
	}
	if e.quick {
		e.rounds = 1
		e.scale *= 0.5
	}
	if e.profileDir != "" {
		e.rounds = 1
		if e.profserver == "" {
			fmt.Fprintln(os.Stderr, "runner: --profile needs --profserver")
			os.Exit(2)
		}
	}
	if e.brokers != 1 && e.brokers != 3 {
		fmt.Fprintln(os.Stderr, "runner: --brokers must be 1 or 3")
		os.Exit(2)
	}
	if e.brokers > 1 && e.profileDir != "" {
		fmt.Fprintln(os.Stderr, "runner: --profile runs one node only")
		os.Exit(2)
	}
	if e.rounds < 1 || e.scale <= 0 {
		fmt.Fprintln(os.Stderr, "runner: --rounds and --scale must be positive")
		os.Exit(2)
	}
	if only != "" {
		e.only = map[string]bool{}
		for _, w := range strings.Split(only, ",") {
			e.only[strings.TrimSpace(w)] = true
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, &e)
	stop()
	killAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// wants says whether a workload group runs. A cluster runs startup, produce and e2e by
// default (issue 11 compares acks=all produce and e2e latency); --only consume adds it. The
// clean and tls groups run on one node only, tls only when asked (--only tls).
func (e *env) wants(group string) bool {
	if (group == "clean" || group == "tls") && (e.brokers > 1 || e.profileDir != "") {
		return false
	}
	if e.only == nil {
		return group != "tls" && (e.brokers == 1 || group != "consume")
	}
	return e.only[group]
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, e *env) error {
	e.results = newResults(machineInfo(e), e)
	if err := os.WriteFile(filepath.Join(e.work, "log4j2.properties"), []byte(log4j2Config), 0o644); err != nil {
		return err
	}
	if e.wants("tls") {
		f, err := writeTLSFiles(filepath.Join(e.work, "tls"))
		if err != nil {
			return fmt.Errorf("tls group: certificates: %w", err)
		}
		e.tls = f
	}
	start := time.Now()
	kinds := []brokerKind{{name: "kafka"}, {name: "samsa"}}
	if e.profileDir != "" {
		kinds = kinds[1:]
		if err := os.MkdirAll(e.profileDir, 0o755); err != nil {
			return err
		}
	}
	for round := 1; round <= e.rounds; round++ {
		for _, k := range kinds {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("round %d/%d: %s", round, e.rounds, k.name)
			if err := e.runBroker(ctx, round, k); err != nil {
				return fmt.Errorf("round %d, %s: %w", round, k.name, err)
			}
		}
	}
	e.results.Elapsed = time.Since(start).Round(time.Second).String()
	e.results.Machine.LoadAvgEnd = loadAvg()
	if e.profileDir != "" {
		return e.summarizeProfiles(ctx)
	}
	return e.results.write(e)
}

// runBroker starts a fresh broker of kind k, runs every workload against it and stops it.
func (e *env) runBroker(ctx context.Context, round int, k brokerKind) error {
	dir := filepath.Join(e.work, fmt.Sprintf("%s-%d", k.name, round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Join(dir, "data"))
	// Fresh loopback ports for every start: other engineers' brokers may hold any fixed
	// port on a shared machine, and a probe that reached one of those would measure it.
	ports, err := freePorts(2*e.brokers + 1)
	if err != nil {
		return err
	}
	if e.tls != nil {
		k.tlsPort = ports[len(ports)-1]
	}
	var r *running
	switch {
	case e.brokers > 1:
		nodes := make([]brokerKind, e.brokers)
		for i := range nodes {
			nodes[i] = brokerKind{name: k.name, port: ports[2*i], cport: ports[2*i+1]}
		}
		r, err = e.startCluster(ctx, k.name, nodes, dir)
	case k.name == "kafka":
		k.port, k.cport = ports[0], ports[1]
		r, err = e.startKafka(ctx, k, dir)
	default:
		k.port, k.cport = ports[0], ports[1]
		r, err = e.startSamsa(ctx, k, dir)
	}
	if err != nil {
		return err
	}
	defer r.stop()
	p, err := waitFirstAck(ctx, r, 90*time.Second)
	if err != nil {
		return err
	}
	if err := r.checkOwnsPort(); err != nil {
		return err
	}
	rss, _, _ := r.memStatus()
	logf("  %s: listening after %.0f ms, first ack after %.0f ms, RSS %.0f MiB", k.name, p.ListenMs, p.FirstAckMs, rss)
	res := e.results
	if e.wants("startup") {
		res.add(round, k.name, figStartup, p.FirstAckMs)
		res.add(round, k.name, figListen, p.ListenMs)
		res.add(round, k.name, figIdleRSS, rss)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(r.seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	b := &target{e: e, r: r, round: round, adm: kadm.NewClient(cl), groups: p.Groups}

	if e.profileDir == "" {
		if err := b.warmUp(ctx); err != nil {
			return err
		}
	}
	if e.wants("produce") {
		if err := b.produceAll(ctx); err != nil {
			return err
		}
	}
	if e.wants("consume") {
		if err := b.consume(ctx); err != nil {
			return err
		}
	}
	if e.wants("e2e") {
		if err := b.e2e(ctx); err != nil {
			return err
		}
	}
	if e.wants("txn") {
		if err := b.txn(ctx); err != nil {
			return err
		}
	}
	if e.tls != nil {
		if err := b.tlsRun(ctx); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	// The peak over the round is read before the clean group, whose dedupe buffer would set
	// it: the figure stays comparable with runs before that group existed, and the clean
	// group reports its own RSS.
	if _, hwm, err := r.memStatus(); err == nil {
		res.add(round, k.name, figPeakRSS, hwm)
	}
	if e.wants("clean") {
		if err := b.clean(ctx); err != nil {
			return err
		}
	}
	if n := r.exitedNode(); n != nil {
		return fmt.Errorf("%s exited during the workloads (log: %s)", k.name, n.logPath)
	}
	d := r.stop()
	logf("  %s stopped in %v", k.name, d.Round(time.Millisecond))
	return nil
}

// count returns a workload's record count, scaled.
func (e *env) count(n int64) int64 {
	c := int64(float64(n) * e.scale)
	return max(c, 1000)
}

// javaToolOpts are the JVM options of the Kafka tools (kafka-run-class.sh's default heap is
// 256 MiB; the producer perf test's 32 MiB buffer fits either way).
func (e *env) javaToolOpts() []string {
	return []string{"-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true", e.log4jOpt(), "-cp", e.classpath()}
}

func (e *env) classpath() string { return filepath.Join(e.jars, "*") }

func (e *env) log4jOpt() string {
	return "-Dlog4j2.configurationFile=" + filepath.Join(e.work, "log4j2.properties")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
