package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// segmentBytes is the segment size given to both brokers (Kafka's default).
const segmentBytes = 1 << 30

// brokerKind describes how to start one of the two brokers.
type brokerKind struct {
	name  string // "kafka" or "samsa"
	port  int    // client listener
	cport int    // controller listener
	// tlsPort, when not 0, is a SASL_SSL listener (the tls group; one node only).
	tlsPort int
}

// clientListeners returns the listeners and advertised.listeners of the client listeners of
// k: PLAINTEXT, and SASL_SSL with the tls group.
func (k brokerKind) clientListeners() (listeners, advertised string) {
	advertised = fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", k.port)
	if k.tlsPort != 0 {
		advertised += fmt.Sprintf(",SASL_SSL://127.0.0.1:%d", k.tlsPort)
	}
	return fmt.Sprintf("%s,CONTROLLER://127.0.0.1:%d", advertised, k.cport), advertised
}

// running is a started broker.
type running struct {
	kind    brokerKind
	cmd     *exec.Cmd
	dir     string
	addr    string
	started time.Time // just before the process was started
	exited  chan struct{}
	logPath string
	// A cluster is started as node 1, its peers the other nodes; addr is then the bootstrap
	// list of every node (as the tools take it) and seeds the same as a slice.
	peers []*running
	seeds []string
}

func (r *running) pid() int { return r.cmd.Process.Pid }

// clusterSettings are the settings of an n-node cluster given to both brokers: with one node,
// replication factor 1; with three, RF=3 and min.insync.replicas=2 (issue 11).
func clusterSettings(n int) []string {
	if n <= 1 {
		return []string{"default.replication.factor=1"}
	}
	return []string{
		fmt.Sprintf("default.replication.factor=%d", n),
		"min.insync.replicas=2",
		fmt.Sprintf("offsets.topic.replication.factor=%d", n),
	}
}

// voters is controller.quorum.voters for nodes 1..n whose controller ports are cports.
func voters(cports []int) string {
	var v []string
	for i, p := range cports {
		v = append(v, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	return strings.Join(v, ",")
}

// kafkaProperties is the server.properties of Kafka node id (1-based) of a cluster of
// len(cports) KRaft nodes, each both broker and controller, on loopback, with the settings
// Samsa gets too. One node is the single-node mode.
func kafkaProperties(id int, k brokerKind, cports []int, dataDir string) string {
	n := len(cports)
	listeners, advertised := k.clientListeners()
	lines := []string{
		"process.roles=broker,controller",
		fmt.Sprintf("node.id=%d", id),
		"controller.quorum.voters=" + voters(cports),
		"listeners=" + listeners,
		"advertised.listeners=" + advertised,
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
		"inter.broker.listener.name=PLAINTEXT",
		"log.dirs=" + dataDir,
		"num.partitions=1",
	}
	lines = append(lines, clusterSettings(n)...)
	if n <= 1 {
		lines = append(lines, "offsets.topic.replication.factor=1",
			"transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1")
	} else {
		lines = append(lines, fmt.Sprintf("transaction.state.log.replication.factor=%d", n),
			"transaction.state.log.min.isr=2")
	}
	lines = append(lines,
		"group.initial.rebalance.delay.ms=0",
		fmt.Sprintf("log.segment.bytes=%d", segmentBytes),
		// Deleted topics' files go at once rather than after a minute, so that the disk
		// does not fill over a run (Samsa deletes them at once).
		"file.delete.delay.ms=1000",
	)
	return strings.Join(lines, "\n") + "\n"
}

// samsaProperties is the properties file of Samsa node id of a cluster of len(cports) nodes
// (the keys of config/cluster/node1.properties, without racks, as Kafka gets none).
func samsaProperties(id int, k brokerKind, cports []int, dataDir string) string {
	lines := []string{
		fmt.Sprintf("node.id=%d", id),
		"process.roles=broker,controller",
		"controller.quorum.voters=" + voters(cports),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", k.port, k.cport),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", k.port),
		"controller.listener.names=CONTROLLER",
		"log.dirs=" + dataDir,
		"num.partitions=1",
		fmt.Sprintf("log.segment.bytes=%d", segmentBytes),
	}
	lines = append(lines, clusterSettings(len(cports))...)
	return strings.Join(lines, "\n") + "\n"
}

// log4j2Config keeps the Kafka processes quiet: warnings, the broker's "started" line, and the
// log cleaner's statistics after each cleaning (the clean group reads them; Kafka's own
// log4j2.yaml sends them to log-cleaner.log).
const log4j2Config = `status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
logger.cleaner.name = org.apache.kafka.storage.internals.log.LogCleaner
logger.cleaner.level = INFO
logger.cleanerthread.name = org.apache.kafka.storage.internals.log.LogCleaner$CleanerThread
logger.cleanerthread.level = INFO
`

// kafkaJVMOpts are the heap and GC settings of kafka-server-start.sh (KAFKA_HEAP_OPTS and
// KAFKA_JVM_PERFORMANCE_OPTS), with the heap fixed at 1 GiB.
var kafkaJVMOpts = []string{
	"-Xms1g", "-Xmx1g",
	"-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
	"-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
}

// randomClusterID returns a Kafka cluster id: 16 random bytes, URL-safe base64 without padding,
// never starting with "-" (which kafka-storage's argument parser takes for an option; Kafka's
// Uuid.randomUuid draws again in that case too).
func randomClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40 // as Uuid.randomUuid: a version-4 UUID
		b[8] = b[8]&0x3f | 0x80
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// startKafka formats a fresh KRaft store in dir and starts the Kafka node.
func (e *env) startKafka(ctx context.Context, k brokerKind, dir string) (*running, error) {
	data := filepath.Join(dir, "data")
	props := filepath.Join(dir, "server.properties")
	text := kafkaProperties(1, k, []int{k.cport}, data)
	for _, s := range append(e.cleanBrokerSettings(), e.tlsBrokerSettings("kafka")...) {
		text += s + "\n"
	}
	if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "kafka.log")
	if _, err := runTool(ctx, 2*time.Minute, logPath, e.java, append(e.javaToolOpts(),
		"kafka.tools.StorageTool", "format", "-t", randomClusterID(), "-c", props)...); err != nil {
		return nil, fmt.Errorf("formatting the Kafka store: %w", err)
	}
	args := append(append([]string{}, kafkaJVMOpts...), e.log4jOpt(), "-cp", e.classpath(), "kafka.Kafka", props)
	return e.startBroker(k, dir, logPath, e.java, args...)
}

// startCluster formats and starts a cluster of len(nodes) nodes of kind name, each both
// broker and voter of the metadata quorum, every node's store formatted with one new cluster
// id (Kafka: kafka.tools.StorageTool format; Samsa: samsa storage format), the formats in
// parallel and not counted in the startup figures. It returns node 1, whose peers are the
// others and whose addr is the bootstrap list of all.
func (e *env) startCluster(ctx context.Context, name string, nodes []brokerKind, dir string) (*running, error) {
	id := randomClusterID()
	cports := make([]int, len(nodes))
	for i, k := range nodes {
		cports[i] = k.cport
	}
	props := make([]string, len(nodes))
	logs := make([]string, len(nodes))
	errs := make(chan error, len(nodes))
	for i, k := range nodes {
		data := filepath.Join(dir, "data", fmt.Sprintf("node%d", i+1))
		props[i] = filepath.Join(dir, fmt.Sprintf("node%d.properties", i+1))
		logs[i] = filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, i+1))
		text := samsaProperties(i+1, k, cports, data)
		if name == "kafka" {
			text = kafkaProperties(i+1, k, cports, data)
		}
		if err := os.WriteFile(props[i], []byte(text), 0o644); err != nil {
			return nil, err
		}
		go func(i int) {
			var err error
			if name == "kafka" {
				_, err = runTool(ctx, 2*time.Minute, logs[i], e.java, append(e.javaToolOpts(),
					"kafka.tools.StorageTool", "format", "-t", id, "-c", props[i])...)
			} else {
				_, err = runTool(ctx, 2*time.Minute, logs[i], e.samsa, "storage", "format", "--cluster-id", id, "--config", props[i])
			}
			if err != nil {
				err = fmt.Errorf("formatting %s node %d: %w", name, i+1, err)
			}
			errs <- err
		}(i)
	}
	for range nodes {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	var head *running
	for i, k := range nodes {
		var r *running
		var err error
		if name == "kafka" {
			r, err = e.startBroker(k, dir, logs[i], e.java, append(append([]string{}, kafkaJVMOpts...),
				e.log4jOpt(), "-cp", e.classpath(), "kafka.Kafka", props[i])...)
		} else {
			r, err = e.startBroker(k, dir, logs[i], e.samsa, "server", "--config", props[i], "--log-level", "warn")
		}
		if err != nil {
			if head != nil {
				head.stop()
			}
			return nil, err
		}
		if head == nil {
			head = r
		} else {
			head.peers = append(head.peers, r)
		}
	}
	var addrs []string
	for _, r := range head.nodes() {
		addrs = append(addrs, r.addr)
	}
	head.seeds = addrs
	head.addr = strings.Join(addrs, ",")
	return head, nil
}

// startSamsa starts a Samsa node with data in dir.
func (e *env) startSamsa(_ context.Context, k brokerKind, dir string) (*running, error) {
	listeners, _ := k.clientListeners()
	args := []string{"server",
		"--override", "listeners=" + listeners,
		"--override", "log.dirs=" + filepath.Join(dir, "data"),
		"--override", "num.partitions=1",
		"--override", "default.replication.factor=1",
		"--override", fmt.Sprintf("log.segment.bytes=%d", segmentBytes),
		"--log-level", "warn",
	}
	if cs := e.cleanBrokerSettings(); len(cs) > 0 {
		// The clean group reads the cleaner's "log cleaned" line, logged at INFO.
		args[len(args)-1] = "info"
		for _, s := range cs {
			args = append(args, "--override", s)
		}
	}
	for _, s := range e.tlsBrokerSettings("samsa") {
		args = append(args, "--override", s)
	}
	// SAMSA_BENCH_SAMSA_OVERRIDES adds settings to Samsa only (space-separated key=value),
	// for A/B runs of a Samsa setting, e.g. log.cleaner.io.max.bytes.per.second=52428800.
	for _, s := range strings.Fields(os.Getenv("SAMSA_BENCH_SAMSA_OVERRIDES")) {
		args = append(args, "--override", s)
	}
	bin := e.samsa
	if e.profileDir != "" {
		bin = e.profserver
		args = append([]string{"--cpuprofile-prefix", filepath.Join(e.profileDir, "samsa")}, args[1:]...)
	}
	return e.startBroker(k, dir, filepath.Join(dir, "samsa.log"), bin, args...)
}

func (e *env) startBroker(k brokerKind, dir, logPath, bin string, args ...string) (*running, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	if e.brokerCPUs != "" {
		// taskset sets the affinity and execs the broker: the pid stays the broker's.
		cmd = exec.Command("taskset", append([]string{"-c", e.brokerCPUs, bin}, args...)...)
	}
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	addr := fmt.Sprintf("127.0.0.1:%d", k.port)
	r := &running{kind: k, cmd: cmd, dir: dir, addr: addr, seeds: []string{addr}, exited: make(chan struct{}), logPath: logPath}
	r.started = time.Now()
	if err := startProc(cmd); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		forget(cmd)
		close(r.exited)
	}()
	return r, nil
}

// freePorts returns n distinct loopback ports that nothing listens on (the kernel's choice).
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// nodes returns r and its peers (one node, or every node of a cluster).
func (r *running) nodes() []*running { return append([]*running{r}, r.peers...) }

// pids returns the process ids of every node.
func (r *running) pids() []int {
	var p []int
	for _, n := range r.nodes() {
		p = append(p, n.pid())
	}
	return p
}

// exitedNode returns a node that has exited, or nil.
func (r *running) exitedNode() *running {
	for _, n := range r.nodes() {
		select {
		case <-n.exited:
			return n
		default:
		}
	}
	return nil
}

// memStatus returns VmRSS and VmHWM summed over every node, in MiB.
func (r *running) memStatus() (rss, hwm float64, err error) {
	for _, n := range r.nodes() {
		a, b, err := memStatus(n.pid())
		if err != nil {
			return 0, 0, err
		}
		rss, hwm = rss+a, hwm+b
	}
	return rss, hwm, nil
}

// checkOwnsPort verifies that the client port is served by this broker process: it is still
// running and one of its sockets listens on the port (from /proc/net/tcp and its fds).
func (r *running) checkOwnsPort() error {
	for _, p := range r.peers {
		if err := p.checkOwnsPort(); err != nil {
			return err
		}
	}
	select {
	case <-r.exited:
		return fmt.Errorf("%s exited during startup; another process answered on port %d (log: %s)", r.kind.name, r.kind.port, r.logPath)
	default:
	}
	inode, err := listeningInode(r.kind.port)
	if err != nil {
		return err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.pid()))
	if err != nil {
		return err
	}
	want := fmt.Sprintf("socket:[%s]", inode)
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", r.pid(), fd.Name())); err == nil && l == want {
			return nil
		}
	}
	return fmt.Errorf("%s (pid %d) does not own the socket listening on port %d (log: %s)", r.kind.name, r.pid(), r.kind.port, r.logPath)
}

// listeningInode returns the inode of the socket listening on 127.0.0.1:port.
func listeningInode(port int) (string, error) {
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is hex ip:port; state 0A is LISTEN; the inode is field 9.
			if len(f) < 10 || f[3] != "0A" {
				continue
			}
			_, hexPort, ok := strings.Cut(f[1], ":")
			if !ok {
				continue
			}
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				return f[9], nil
			}
		}
	}
	return "", fmt.Errorf("nothing listens on port %d", port)
}

// stop ends the broker (every node of a cluster, at once) with SIGTERM (a clean shutdown),
// then SIGKILL after a grace period.
func (r *running) stop() time.Duration {
	t0 := time.Now()
	for _, n := range r.nodes() {
		_ = syscall.Kill(n.pid(), syscall.SIGTERM)
	}
	// A cluster's data is thrown away: its nodes stopping at once may wait for a quorum
	// that is going too, so they get a shorter grace period than a single node.
	grace := 30 * time.Second
	if len(r.peers) > 0 {
		grace = 10 * time.Second
	}
	deadline := time.After(grace)
	for _, n := range r.nodes() {
		select {
		case <-n.exited:
		case <-deadline:
			for _, m := range r.nodes() {
				_ = syscall.Kill(-m.pid(), syscall.SIGKILL)
			}
			<-n.exited
		}
	}
	return time.Since(t0)
}

// probe is what waitFirstAck learned about a freshly started broker.
type probe struct {
	ListenMs   float64 // process start to the first accepted TCP connection
	FirstAckMs float64 // process start to the first acknowledged produce
	Groups     bool    // the broker serves FindCoordinator and JoinGroup
}

// waitFirstAck retries until the broker (every node of a cluster) accepts a connection and
// then acknowledges one produced record (to an auto-created topic), measuring both from the
// process start (of node 1).
func waitFirstAck(ctx context.Context, r *running, limit time.Duration) (probe, error) {
	var p probe
	listening := 0 // nodes accepting connections so far
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		if ctx.Err() != nil {
			return p, fmt.Errorf("%s did not accept connections within %v (log: %s)", r.kind.name, limit, r.logPath)
		}
		if n := r.exitedNode(); n != nil {
			return p, fmt.Errorf("%s exited during startup (log: %s)", n.kind.name, n.logPath)
		}
		// Every node of a cluster: the figure is when the last one accepts.
		c, err := net.DialTimeout("tcp", r.seeds[listening], 200*time.Millisecond)
		if err == nil {
			c.Close()
			if listening++; listening == len(r.seeds) {
				break
			}
			continue
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.ListenMs = ms(time.Since(r.started))
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(r.seeds...),
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(0),
		kgo.MetadataMinAge(10*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.DialTimeout(time.Second),
	)
	if err != nil {
		return p, err
	}
	defer cl.Close()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err := cl.ProduceSync(pctx, &kgo.Record{Topic: "startup-probe", Value: []byte("x")}).FirstErr()
		pcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return p, fmt.Errorf("%s acknowledged no produce within %v: %v (log: %s)", r.kind.name, limit, err, r.logPath)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.FirstAckMs = ms(time.Since(r.started))

	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return p, fmt.Errorf("ApiVersions: %w", err)
	}
	has := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		has[k.ApiKey] = true
	}
	p.Groups = has[kmsg.FindCoordinator.Int16()] && has[kmsg.JoinGroup.Int16()] && has[kmsg.SyncGroup.Int16()]
	return p, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var errSkipped = errors.New("skipped")
