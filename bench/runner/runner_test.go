package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/xdg-go/scram"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/testcluster"
)

func TestParseProducerPerformance(t *testing.T) {
	out := "1000 records sent, 200.0 records/sec (0.02 MB/sec), 3.5 ms avg latency, 9.0 ms max latency.\n" +
		"500000 records sent, 150375.9 records/sec (14.34 MB/sec), 1235.65 ms avg latency, 1652.00 ms max latency, 1282 ms 50th, 1613 ms 95th, 1645 ms 99th, 1651 ms 99.9th.\n"
	r, err := parseProducerPerformance(out)
	if err != nil {
		t.Fatal(err)
	}
	want := toolResult{Records: 500000, RecordsPerSec: 150375.9, MBPerSec: 14.34, AvgMs: 1235.65, MaxMs: 1652, P50Ms: 1282, P95Ms: 1613, P99Ms: 1645, P999Ms: 1651}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	if _, err := parseProducerPerformance("org.apache.kafka.common.errors.TimeoutException"); err == nil {
		t.Fatal("no error for output without a summary")
	}
}

func TestParseConsumerPerformance(t *testing.T) {
	out := "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n" +
		"2026-11-22 03:20:05:229, 2026-11-22 03:20:06:547, 47.6837, 36.1788, 500000, 379362.6707, 625, 693, 68.8077, 721500.7215\n"
	fetch, total, err := parseConsumerPerformance(out)
	if err != nil {
		t.Fatal(err)
	}
	if fetch.Records != 500000 || fetch.RecordsPerSec != 721500.7215 || fetch.MBPerSec != 68.8077 {
		t.Fatalf("fetch %+v", fetch)
	}
	if total.RecordsPerSec != 379362.6707 || total.MBPerSec != 36.1788 {
		t.Fatalf("total %+v", total)
	}
	if _, _, err := parseConsumerPerformance("WARN nothing\n"); err == nil {
		t.Fatal("no error for output without a result")
	}
}

func TestParseSamsaPerf(t *testing.T) {
	out := "10 records sent, 5.0 records/sec (0.00 MB/sec).\n" +
		`{"result":{"records":10,"bytes":1000,"seconds":2,"records_per_sec":5,"mb_per_sec":0.0005,"latency":{"avg_ms":1,"max_ms":4,"p50_ms":1,"p95_ms":2,"p99_ms":3,"p99_9_ms":4}}}` + "\n"
	r, err := parseSamsaPerf(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Records != 10 || r.RecordsPerSec != 5 || r.P99Ms != 3 || r.P999Ms != 4 {
		t.Fatalf("got %+v", r)
	}
	if _, err := parseSamsaPerf("no json"); err == nil {
		t.Fatal("no error without JSON")
	}
}

func TestTableRatiosFavorSamsaAboveOne(t *testing.T) {
	r := &results{samples: map[string]map[string][]float64{}, Skipped: map[string]string{}}
	up := figure{"x/rate", "rate", "rec/s", true}
	down := figure{"x/lat", "latency", "ms", false}
	for _, v := range []float64{100, 300, 200} {
		r.add(0, "kafka", up, v)
		r.add(0, "kafka", down, v)
	}
	for _, v := range []float64{400, 400, 500, 300} {
		r.add(0, "samsa", up, v)
		r.add(0, "samsa", down, v/4)
	}
	r.buildTable()
	if len(r.Table) != 2 {
		t.Fatalf("%d rows", len(r.Table))
	}
	rate, lat := r.Table[0], r.Table[1]
	if rate.Kafka.Median != 200 || rate.Kafka.Min != 100 || rate.Kafka.Max != 300 || rate.Samsa.Median != 400 {
		t.Fatalf("rate stats %+v %+v", rate.Kafka, rate.Samsa)
	}
	if rate.Ratio != 2 || rate.RatioLabel != "Samsa/Kafka" {
		t.Fatalf("rate ratio %v %s", rate.Ratio, rate.RatioLabel)
	}
	if lat.Ratio != 2 || lat.RatioLabel != "Kafka/Samsa" {
		t.Fatalf("latency ratio %v %s", lat.Ratio, lat.RatioLabel)
	}
	var md bytes.Buffer
	r.writeMarkdown(&md)
	if !strings.Contains(md.String(), "| rate | rec/s ↑ | 200 (100–300) | 400 (300–500) | 2.00× Samsa/Kafka |") {
		t.Fatalf("markdown:\n%s", md.String())
	}
}

func TestFmtNum(t *testing.T) {
	for v, want := range map[float64]string{1234567: "1,234,567", 999: "999", 12.34: "12.3", 0.123: "0.12", 100000: "100,000"} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestKafkaPropertiesMatchSamsaSettings(t *testing.T) {
	p := kafkaProperties(1, brokerKind{name: "kafka", port: 19092, cport: 19093}, []int{19093}, "/d")
	for _, want := range []string{"listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
		"controller.quorum.voters=1@127.0.0.1:19093", "log.dirs=/d", "log.segment.bytes=1073741824", "num.partitions=1"} {
		if !strings.Contains(p, want+"\n") {
			t.Errorf("properties lack %q:\n%s", want, p)
		}
	}
	if strings.Contains(p, "flush") {
		t.Error("Kafka gets a flush setting; neither broker should force flushes")
	}
	for range 1000 { // a "-" first happens once in 64 draws
		if id := randomClusterID(); len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q is not 22 base64 characters, or starts with '-'", id)
		}
	}
}

func TestClusterPropertiesMatch(t *testing.T) {
	cports := []int{1002, 2002, 3002}
	k := brokerKind{port: 2001, cport: 2002}
	kp := kafkaProperties(2, k, cports, "/d2")
	sp := samsaProperties(2, k, cports, "/d2")
	for _, want := range []string{"node.id=2", "process.roles=broker,controller",
		"controller.quorum.voters=1@127.0.0.1:1002,2@127.0.0.1:2002,3@127.0.0.1:3002",
		"listeners=PLAINTEXT://127.0.0.1:2001,CONTROLLER://127.0.0.1:2002", "advertised.listeners=PLAINTEXT://127.0.0.1:2001",
		"log.dirs=/d2", "log.segment.bytes=1073741824", "num.partitions=1",
		"default.replication.factor=3", "min.insync.replicas=2", "offsets.topic.replication.factor=3"} {
		for name, p := range map[string]string{"kafka": kp, "samsa": sp} {
			if !strings.Contains(p, want+"\n") {
				t.Errorf("%s properties lack %q:\n%s", name, want, p)
			}
		}
	}
	if strings.Contains(kp+sp, "flush") {
		t.Error("a flush setting; neither broker should force flushes")
	}
}

func TestProcReadersOnSelf(t *testing.T) {
	cpu, err := cpuSeconds(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("cpu %v, %v", cpu, err)
	}
	rss, hwm, err := memStatus(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("rss %v hwm %v, %v", rss, hwm, err)
	}
}

func TestCheckOwnsPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	self, _ := os.FindProcess(os.Getpid())
	r := &running{kind: brokerKind{name: "self", port: ln.Addr().(*net.TCPAddr).Port}, cmd: &exec.Cmd{Process: self}, exited: make(chan struct{})}
	if err := r.checkOwnsPort(); err != nil {
		t.Fatalf("own listener: %v", err)
	}
	ps, err := freePorts(2)
	if err != nil || ps[0] == ps[1] || ps[0] == 0 {
		t.Fatalf("freePorts %v %v", ps, err)
	}
	p1 := ps[0]
	r.kind.port = p1
	if err := r.checkOwnsPort(); err == nil {
		t.Fatal("no error for a port nothing listens on")
	}
}

func TestGoals(t *testing.T) {
	r := &results{samples: map[string]map[string][]float64{}, Skipped: map[string]string{}}
	// Client-tool ratios 1, 2, 3 and 4 (median 2.5); one batchload ratio of 1.2.
	for i, tool := range []string{toolKafkaProducer, toolSamsaProduce, toolKafkaProducer, toolSamsaProduce} {
		c := produceCase{100, "1", int32(i + 1)}
		r.add(0, "kafka", produceFigure(c, tool, "rate"), 100)
		r.add(0, "samsa", produceFigure(c, tool, "rate"), float64(100*(i+1)))
		// p99 rows do not count towards the produce goal.
		r.add(0, "kafka", produceFigure(c, tool, "p99"), 1)
		r.add(0, "samsa", produceFigure(c, tool, "p99"), 100)
	}
	r.add(0, "kafka", produceFigure(produceCase{100, "1", 1}, toolBatchLoad, "rate"), 100)
	r.add(0, "samsa", produceFigure(produceCase{100, "1", 1}, toolBatchLoad, "rate"), 120)
	r.add(0, "kafka", figE2E99, 4)
	r.add(0, "samsa", figE2E99, 1) // 0.25× Kafka: met
	r.add(0, "kafka", figStartup, 1000)
	r.add(0, "samsa", figStartup, 200) // 0.2× Kafka: not met
	r.buildTable()
	r.computeGoals()
	want := []struct {
		got float64
		met bool
	}{{2.5, true}, {1.2, false}, {4, true}, {5, false}}
	if len(r.Goals) != len(want) {
		t.Fatalf("goals %+v", r.Goals)
	}
	for i, w := range want {
		if g := r.Goals[i]; g.Got != w.got || g.Met != w.met {
			t.Errorf("goal %q: got %v met %v, want %v %v", g.Name, g.Got, g.Met, w.got, w.met)
		}
	}
	var md bytes.Buffer
	r.writeGoals(&md)
	if !strings.Contains(md.String(), "| 2.50× (1.00–4.00 over 4) | ≥ 1.50× | yes |") {
		t.Fatalf("markdown:\n%s", md.String())
	}
}

func TestParseCleanings(t *testing.T) {
	kafka := "[2026-12-03 06:47:38,268] INFO [kafka-log-cleaner-thread-0]: \n" +
		"\tLog cleaner thread 0 cleaned log bench-clean-0 (dirty section = [0, 127920])\n" +
		"\t1,128.0 MB of log processed in 1.4 seconds (93.7 MB/sec).\n" +
		"\tIndexed 128.0 MB in 0.8 seconds (167.1 Mb/sec, 56.1% of total time)\n" +
		"\tBuffer utilization: 0.2%\n" +
		"\tCleaned 128.0 MB in 0.6 seconds (213.3 Mb/sec, 43.9% of total time)\n" +
		"\tStart size: 1,128.0 MB (127,920 messages)\n" +
		"\tEnd size: 13.2 MB (13,104 messages)\n" +
		"\t89.7% size reduction (89.8% fewer messages)\n" +
		" (org.apache.kafka.storage.internals.log.LogCleaner$CleanerThread)\n" +
		"[2026-12-03 06:47:48,194] INFO [kafka-log-cleaner-thread-0]: \n" +
		"\tLog cleaner thread 0 cleaned log bench-clean-compact-12 (dirty section = [0, 63960])\n" +
		"\t64.0 MB of log processed in 0.7 seconds (93.8 MB/sec).\n"
	got := parseKafkaCleanings(kafka)
	want := []cleaning{
		{Topic: "bench-clean", Partition: 0, MiB: 1128, Seconds: 1.4, MiBPerSec: 93.7, Logged: 93.7, StartMiB: 1128, EndMiB: 13.2},
		{Topic: "bench-clean-compact", Partition: 12, MiB: 64, Seconds: 0.7, MiBPerSec: 93.8, Logged: 93.8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Kafka:\n got %+v\nwant %+v", got, want)
	}

	samsa := `time=2026-12-03T07:00:00.000Z level=INFO msg="log cleaned" component=cleaner topic=bench-clean partition=0 bytes_before=570425344 bytes_after=60000000 records_read=524288 records_kept=51200 segments_before=9 segments_after=2 first_dirty_offset=0 end_offset=500000 map_full=false bytes_read=1073741824 bytes_written=50000000 duration=2.5s mb_per_s=409.6 thread=0
time=2026-12-03T07:00:01.000Z level=INFO msg="topic created" topic=x
time=2026-12-03T07:00:02.000Z level=INFO msg="log cleaned" topic=bench-clean-compact partition=3 bytes_before=1048576 bytes_after=524288 first_dirty_offset=100 map_full=false bytes_read=2097152 duration=500ms mb_per_s=4
`
	got = parseSamsaCleanings(samsa)
	want = []cleaning{
		{Topic: "bench-clean", Partition: 0, MiB: 512, Seconds: 2.5, MiBPerSec: 512 / 2.5, Logged: 409.6, StartMiB: 544, EndMiB: 60000000.0 / (1 << 20)},
		// Not a first cleaning: how much it rewrote is unknown.
		{Topic: "bench-clean-compact", Partition: 3, Seconds: 0.5, Logged: 4, StartMiB: 1, EndMiB: 0.5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Samsa:\n got %+v\nwant %+v", got, want)
	}
}

// TestTLSLogin: with the tls group's certificates and settings a Samsa node serves SASL_SSL;
// the runner creates the SCRAM user and logs in with its cached SCRAM-SHA-512 client, the
// client properties are ones samsa perf takes, and a wrong password is refused.
func TestTLSLogin(t *testing.T) {
	files, err := writeTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{tls: files}
	n := testcluster.Start(t, append([]string{"listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0"},
		e.tlsBrokerSettings("samsa")...)...)
	_, port, err := net.SplitHostPort(n.Server().ListenerAddr("SASL_SSL"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tlsPort, _ := strconv.Atoi(port)
	tg := &target{e: e, r: &running{kind: brokerKind{name: "samsa", tlsPort: tlsPort}}, adm: kadm.NewClient(cl)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	props, err := os.ReadFile(files.clientProp)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := config.ParseProperties(bytes.NewReader(props))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ClientSecurity(parsed); err != nil {
		t.Fatalf("samsa perf --command-config would refuse the client properties: %v", err)
	}

	for _, tc := range []struct {
		password string
		ok       bool
	}{{tlsPassword, true}, {"wrong", false}} {
		sc, err := scram.SHA512.NewClient(tlsUser, tc.password, "")
		if err != nil {
			t.Fatal(err)
		}
		if tc.ok {
			err = tg.tlsUserReady(ctx, scramSHA512{sc})
		} else {
			err = tg.tlsLogin(ctx, scramSHA512{sc})
		}
		if (err == nil) != tc.ok {
			t.Fatalf("password %q: login error %v, want success %v", tc.password, err, tc.ok)
		}
	}
}

// TestResultsFileName: a run of the tls group alone is that group's full run, written as
// <date>-<host>-tls in the results directory; with other groups, or quick, it is partial.
func TestResultsFileName(t *testing.T) {
	for _, tc := range []struct {
		only  []string
		quick bool
		want  string // path under the output directory, after the date
	}{
		{[]string{"tls"}, false, "-h-tls.json"},
		{[]string{"tls", "produce"}, false, "tmp/*-h-partial.json"},
		{[]string{"tls"}, true, "tmp/*-h-tls-partial.json"},
		{[]string{"produce"}, false, "tmp/*-h-partial.json"},
	} {
		out := t.TempDir()
		e := &env{outDir: out, rounds: 1, scale: 1, quick: tc.quick, brokers: 1, only: map[string]bool{}}
		for _, g := range tc.only {
			e.only[g] = true
		}
		e.results = newResults(machine{Host: "h", Nodes: 1}, e)
		e.results.add(1, "kafka", tlsFigure("x/rate", "x", "rec/s", true), 1)
		if err := e.results.write(e); err != nil {
			t.Fatal(err)
		}
		pattern := filepath.Join(out, "*"+tc.want)
		if strings.HasPrefix(tc.want, "tmp/") {
			pattern = filepath.Join(out, tc.want)
		}
		if m, _ := filepath.Glob(pattern); len(m) != 1 {
			all, _ := filepath.Glob(filepath.Join(out, "*", "*"))
			top, _ := filepath.Glob(filepath.Join(out, "*"))
			t.Errorf("only %v quick %v: no file %s; have %v %v", tc.only, tc.quick, pattern, top, all)
		}
	}
}
