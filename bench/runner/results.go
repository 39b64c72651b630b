package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// figure is one line of the comparison table.
type figure struct {
	ID     string `json:"id"`
	Label  string `json:"label"`
	Unit   string `json:"unit"`
	Higher bool   `json:"higher_is_better"`
}

var (
	figStartup    = figure{"startup/first-ack", "start → first acked produce", "ms", false}
	figListen     = figure{"startup/listen", "start → accepting connections", "ms", false}
	figIdleRSS    = figure{"rss/idle", "RSS after startup (VmRSS)", "MiB", false}
	figPeakRSS    = figure{"rss/peak", "peak RSS over the round before the clean group (VmHWM)", "MiB", false}
	figLoadRSS    = figure{"rss/produce", fmt.Sprintf("max RSS during produce %v (samsa perf)", resourceCase), "MiB", false}
	figCPU        = figure{"cpu/produce", fmt.Sprintf("broker CPU, produce %v (samsa perf, same records)", resourceCase), "s", false}
	figCPUPerGiB  = figure{"cpu/produce-per-gib", "broker CPU per GiB produced (all produce runs)", "s/GiB", false}
	figConsumeCPU = figure{"cpu/consume", "broker CPU, consume (samsa perf, same records)", "s", false}
	figE2E50      = figure{"e2e/p50", fmt.Sprintf("e2e latency p50 at %d rec/s (%d B, acks=all)", e2eRate, e2eSize), "ms", false}
	figE2E99      = figure{"e2e/p99", fmt.Sprintf("e2e latency p99 at %d rec/s", e2eRate), "ms", false}
	figE2E999     = figure{"e2e/p99.9", fmt.Sprintf("e2e latency p99.9 at %d rec/s", e2eRate), "ms", false}
	figE2ECPU     = figure{"cpu/e2e", fmt.Sprintf("broker CPU, e2e at %d rec/s", e2eRate), "s", false}
)

func produceFigure(c produceCase, tool, what string) figure {
	id := fmt.Sprintf("produce/%d/acks=%s/%dp/%s/%s", c.size, c.acks, c.parts, tool, what)
	if what == "p99" {
		return figure{id, fmt.Sprintf("produce %v, %s: p99 ack latency", c, tool), "ms", false}
	}
	return figure{id, fmt.Sprintf("produce %v, %s", c, tool), "rec/s", true}
}

func consumeFigure(tool, what string) figure {
	id := fmt.Sprintf("consume/%s/%s", tool, what)
	label := fmt.Sprintf("consume 1 KiB %dp, %s", consumeParts, tool)
	if what == "mb" {
		return figure{id, label, "MiB/s", true}
	}
	return figure{id, label, "rec/s", true}
}

// machine describes where the bench ran.
type machine struct {
	Host         string `json:"host"`
	CPUs         int    `json:"nproc"`
	CPUModel     string `json:"cpu_model"`
	MemoryGiB    string `json:"memory_gib"`
	Kernel       string `json:"kernel"`
	Go           string `json:"go"`
	Java         string `json:"java"`
	Kafka        string `json:"kafka"`
	SamsaCommit  string `json:"samsa_commit"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
	Shared       string `json:"note"`
	// Pinning says which CPUs the brokers and the client tools ran on ("" when unpinned).
	Pinning string `json:"pinning,omitempty"`
	// Nodes is the number of nodes of each broker (3: a cluster of each).
	Nodes int `json:"nodes"`
}

// runRecord is one tool run, kept in the JSON for whoever wants more than the table.
type runRecord struct {
	Round     int        `json:"round"`
	Broker    string     `json:"broker"`
	Workload  string     `json:"workload"`
	Tool      string     `json:"tool"`
	Result    toolResult `json:"result"`
	BrokerCPU float64    `json:"broker_cpu_s"`
	BrokerRSS float64    `json:"broker_max_rss_mib"`
}

// stat is the median and spread of one figure over the rounds.
type stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// row is one table line.
type row struct {
	figure
	Kafka      *stat   `json:"kafka,omitempty"`
	Samsa      *stat   `json:"samsa,omitempty"`
	Ratio      float64 `json:"ratio,omitempty"`
	RatioLabel string  `json:"ratio_label,omitempty"`
	Note       string  `json:"note,omitempty"`
}

type results struct {
	Date     string            `json:"date"`
	Machine  machine           `json:"machine"`
	Settings map[string]any    `json:"settings"`
	Elapsed  string            `json:"elapsed"`
	Table    []row             `json:"table"`
	Goals    []goal            `json:"targets,omitempty"`
	Runs     []runRecord       `json:"runs"`
	Skipped  map[string]string `json:"skipped,omitempty"`
	// Cleanings are the clean group's cleanings as each broker logged them.
	Cleanings []cleaningRecord `json:"cleanings,omitempty"`

	order   []figure
	samples map[string]map[string][]float64 // figure id -> broker -> one value per round
}

func newResults(m machine, e *env) *results {
	r := &results{
		Date:    time.Now().Format(time.RFC3339),
		Machine: m,
		Settings: map[string]any{
			"rounds": e.rounds, "quick": e.quick, "scale": e.scale,
			"segment_bytes": segmentBytes, "flush": "none forced (page cache), both brokers",
			"kafka_heap": "1 GiB (-Xms1g -Xmx1g, G1)", "listeners": "loopback",
			"producer": "batch 16384 B, linger 5 ms, no compression, 5 requests in flight",
			"order":    "each round: a fresh Kafka, every workload, stop; then a fresh Samsa, the same",
		},
		samples: map[string]map[string][]float64{},
		Skipped: map[string]string{},
	}
	if e.wants("clean") {
		r.Settings["clean"] = fmt.Sprintf("log.cleaner.backoff.ms=%d on both brokers (other cleaner settings at their defaults: 1 thread, "+
			"128 MiB dedupe buffer, no I/O limit); Samsa logs at INFO for its \"log cleaned\" line; topics of 1 partition, "+
			"segment.bytes=%d, 1 KiB records with keys drawn from one tenth as many keys (samsa perf produce --keys, acks=1)",
			cleanBackoffMs, cleanSegmentBytes)
	}
	if e.wants("tls") {
		r.Settings["tls"] = fmt.Sprintf("a SASL_SSL listener on both brokers besides PLAINTEXT (admin calls, filling the consume topic): "+
			"TLS with an ECDSA P-256 certificate for 127.0.0.1 (PEM key store), SCRAM-SHA-512 only, the user made with "+
			"AlterUserScramCredentials (%d iterations); the tools read one client properties file (security.protocol=SASL_SSL, "+
			"PEM trust store); connection setup: %d franz-go clients in parallel for %v, each connection new "+
			"(no TLS session resumption), the client's SCRAM keys cached", tlsIterations, tlsConnectClients, tlsConnectTime)
	}
	if e.brokers > 1 {
		r.Settings["nodes"] = e.brokers
		r.Settings["cluster"] = fmt.Sprintf("%d combined KRaft nodes per broker (broker and controller), one cluster id, "+
			"RF=%d topics, min.insync.replicas=2, acks=all producers; batchload and consume not run; "+
			"broker CPU and RSS figures are sums over the %d nodes", e.brokers, e.brokers, e.brokers)
		r.Settings["order"] = "each round: a fresh Kafka cluster, every workload, stop; then a fresh Samsa cluster, the same"
	}
	return r
}

func (r *results) add(_ int, broker string, f figure, v float64) {
	if r.samples[f.ID] == nil {
		r.samples[f.ID] = map[string][]float64{}
		r.order = append(r.order, f)
	}
	r.samples[f.ID][broker] = append(r.samples[f.ID][broker], v)
}

func (r *results) addRun(round int, broker, workload, tool string, res toolResult, cpu, rss float64) {
	r.Runs = append(r.Runs, runRecord{round, broker, workload, tool, res, cpu, rss})
}

// cleaningRecord is one measured cleaning, with the topic's size (DescribeLogDirs) before and
// after it.
type cleaningRecord struct {
	Round     int      `json:"round"`
	Broker    string   `json:"broker"`
	Cleaning  cleaning `json:"cleaning"`
	BeforeMiB float64  `json:"log_dir_size_before_mib"`
	AfterMiB  float64  `json:"log_dir_size_after_mib"`
}

func (r *results) addCleaning(round int, broker string, c cleaning, before, after float64) {
	r.Cleanings = append(r.Cleanings, cleaningRecord{round, broker, c, before, after})
}

func (r *results) skip(broker, tool, why string) { r.Skipped[broker+" / "+tool] = why }

func summarize(vals []float64) *stat {
	if len(vals) == 0 {
		return nil
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &stat{Median: med, Min: s[0], Max: s[len(s)-1], Values: vals}
}

// buildTable computes each figure's median and spread per broker and the ratio of medians,
// oriented so that above 1 means Samsa did better: Samsa/Kafka where higher is better,
// Kafka/Samsa where lower is better.
func (r *results) buildTable() {
	r.Table = nil
	for _, f := range r.order {
		rw := row{figure: f, Kafka: summarize(r.samples[f.ID]["kafka"]), Samsa: summarize(r.samples[f.ID]["samsa"])}
		if rw.Kafka != nil && rw.Samsa != nil {
			k, s := rw.Kafka.Median, rw.Samsa.Median
			switch {
			case f.Higher && k > 0:
				rw.Ratio, rw.RatioLabel = s/k, "Samsa/Kafka"
			case !f.Higher && s > 0:
				rw.Ratio, rw.RatioLabel = k/s, "Kafka/Samsa"
			}
		}
		r.Table = append(r.Table, rw)
	}
	for k, why := range r.Skipped {
		broker, tool, _ := strings.Cut(k, " / ")
		for i := range r.Table {
			if strings.Contains(r.Table[i].ID, "/"+tool+"/") && strings.EqualFold(broker, "samsa") && r.Table[i].Samsa == nil {
				r.Table[i].Note = "Samsa: " + why
			}
			if strings.Contains(r.Table[i].ID, "/"+tool+"/") && strings.EqualFold(broker, "kafka") && r.Table[i].Kafka == nil {
				r.Table[i].Note = "Kafka: " + why
			}
		}
	}
}

// fmtNum prints a figure with a precision that suits its size.
func fmtNum(v float64) string {
	switch {
	case v >= 1000:
		return groupThousands(fmt.Sprintf("%.0f", v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func groupThousands(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtStat(s *stat) string {
	if s == nil {
		return "n/a"
	}
	if len(s.Values) == 1 {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

// writeMarkdown writes the table as Markdown.
func (r *results) writeMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| figure | unit | Kafka: median (min–max) | Samsa: median (min–max) | ratio (>1: Samsa better) |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|")
	for _, rw := range r.Table {
		ratio := rw.Note
		if rw.RatioLabel != "" {
			ratio = fmt.Sprintf("%.2f× %s", rw.Ratio, rw.RatioLabel)
		}
		arrow := "↑"
		if !rw.Higher {
			arrow = "↓"
		}
		fmt.Fprintf(w, "| %s | %s %s | %s | %s | %s |\n", rw.Label, rw.Unit, arrow, fmtStat(rw.Kafka), fmtStat(rw.Samsa), ratio)
	}
}

// write prints the table and writes the JSON and Markdown files.
func (r *results) write(e *env) error {
	r.buildTable()
	r.computeGoals()
	fmt.Println()
	fmt.Printf("Samsa vs Apache Kafka %s — %d round(s), %s, %d CPUs, %s GiB, load %s → %s\n",
		r.Machine.Kafka, e.rounds, r.Machine.Host, r.Machine.CPUs, r.Machine.MemoryGiB, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd)
	if r.Machine.Pinning != "" {
		fmt.Printf("pinned: %s\n", r.Machine.Pinning)
	}
	if e.brokers > 1 {
		fmt.Printf("%d-node clusters of each (RF=%d, min.insync.replicas=2, acks=all); broker CPU and RSS are sums over the nodes\n", e.brokers, e.brokers)
	}
	fmt.Println()
	r.writeMarkdown(os.Stdout)
	fmt.Println("\n↑ higher is better, ↓ lower is better; the ratio is of the medians.")
	fmt.Println()
	r.writeGoals(os.Stdout)

	dir := e.outDir
	name := time.Now().Format("2006-01-02") + "-" + r.Machine.Host
	if e.brokerCPUs != "" {
		name += "-pinned"
		if !e.clientsPinned {
			name += "-broker"
		}
	}
	if e.brokers > 1 {
		name += fmt.Sprintf("-%dnodes", e.brokers)
	}
	// The tls group runs only when asked: a run of it alone is its full run.
	tlsOnly := len(e.only) == 1 && e.only["tls"]
	if tlsOnly {
		name += "-tls"
	}
	if e.quick || e.only != nil && !tlsOnly || e.scale != 1 {
		dir = filepath.Join(e.outDir, "tmp") // not a full run: kept out of git
		name += "-partial"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	jsonPath := filepath.Join(dir, name+".json")
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, name+".md"))
	if err != nil {
		return err
	}
	if e.brokers > 1 {
		fmt.Fprintf(f, "%d-node clusters of each (combined KRaft nodes, RF=%d, min.insync.replicas=2, acks=all); broker CPU and RSS are sums over the nodes.\n\n", e.brokers, e.brokers)
	}
	r.writeMarkdown(f)
	fmt.Fprintln(f)
	r.writeGoals(f)
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("\nwritten: %s (and .md); took %s\n", jsonPath, r.Elapsed)
	return nil
}

// onlineCPUs counts the machine's CPUs (runtime.NumCPU counts only those this process may run
// on, one when bench/run --pin pins the runner).
func onlineCPUs() int {
	n := 0
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "processor") {
				n++
			}
		}
	}
	if n == 0 {
		n = runtime.NumCPU()
	}
	return n
}

// machineInfo describes this machine and the software under test.
func machineInfo(e *env) machine {
	m := machine{CPUs: onlineCPUs(), Go: runtime.Version(), Kafka: e.kafkaVersion, Nodes: e.brokers,
		Shared: "shared machine: other builds and tests may run at the same time (see loadavg)"}
	if e.brokerCPUs != "" {
		m.Pinning = fmt.Sprintf("brokers on CPUs %s (taskset), the runner and the client tools on the others", e.brokerCPUs)
		if !e.clientsPinned {
			m.Pinning = fmt.Sprintf("brokers on CPUs %s (taskset), the runner and the client tools on any CPU", e.brokerCPUs)
		}
	}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb float64
			if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %f kB", &kb); n == 1 {
				m.MemoryGiB = fmt.Sprintf("%.1f", kb/(1<<20))
				break
			}
		}
		f.Close()
	}
	if out, err := exec.Command(e.java, "-version").CombinedOutput(); err == nil {
		m.Java = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.SamsaCommit = strings.TrimSpace(string(out))
	}
	m.LoadAvgStart = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// summarizeProfiles writes `go tool pprof -top` of each profile next to it and prints the
// heads.
func (e *env) summarizeProfiles(ctx context.Context) error {
	files, _ := filepath.Glob(filepath.Join(e.profileDir, "*.pprof"))
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=40", f).CombinedOutput()
		if err != nil {
			logf("pprof %s: %v", f, err)
			continue
		}
		txt := strings.TrimSuffix(f, ".pprof") + ".top.txt"
		if err := os.WriteFile(txt, out, 0o644); err != nil {
			return err
		}
		lines := strings.Split(string(out), "\n")
		fmt.Printf("\n== %s\n%s\n", f, strings.Join(lines[:min(len(lines), 25)], "\n"))
	}
	b, err := json.MarshalIndent(e.results.Runs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.profileDir, "runs.json"), b, 0o644)
}
