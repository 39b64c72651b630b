// Package localcluster runs a multi-node Samsa cluster as background `samsa server` processes on
// one machine (`samsa cluster start|stop|status`). Everything lives in one cluster directory:
//
//	<dir>/cluster.id               the cluster id every node was formatted with
//	<dir>/nodeN/server.properties  the settings node N runs with (from the node's file, with
//	                               log.dirs=<dir>/nodeN/data, the --ports and --override changes)
//	<dir>/nodeN/data/              its log and metadata directory
//	<dir>/nodeN/server.log         its output (appended to across starts)
//	<dir>/nodeN/server.pid         the pid of its running process
//
// The processes are started in their own session, so they outlive the command that started
// them; stop finds them again through the pid files (checking that the pid still runs samsa
// with this node's settings, so a reused pid is never signalled).
package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/server"
)

// Node is one node of the cluster as its settings in the cluster directory describe it.
type Node struct {
	ID         int32
	Dir        string // <dir>/nodeN
	Props      string // <dir>/nodeN/server.properties
	Client     string // host:port of the first client listener
	Controller string // host:port of the controller listener ("" if none)
	Metrics    string // samsa.metrics.address ("" if none)
}

// LogFile returns the node's output file.
func (n Node) LogFile() string { return filepath.Join(n.Dir, "server.log") }

func (n Node) pidFile() string { return filepath.Join(n.Dir, "server.pid") }

// Spec is what Start needs: the node settings (one properties map per node, in node order) and
// where and how to run them.
type Spec struct {
	Dir       string              // the cluster directory
	Binary    string              // the samsa binary to run
	Nodes     []map[string]string // each node's settings before the cluster's changes
	Ports     []int               // optional: client and controller port of node 1, 2, ... replacing the files'
	Overrides []string            // key=value applied to every node
	Only      int32               // start only this node id (0: all)
	Timeout   time.Duration       // how long to wait for the nodes to serve
	Out       io.Writer           // progress lines
}

// Start formats the nodes' storage on the first start (one cluster id for all, kept in
// <dir>/cluster.id), writes each node's settings, starts the nodes that are not running and
// waits until every node serves clients and sees all the cluster's brokers. On failure the
// nodes it started are stopped again and the error quotes the failing node's log.
func Start(ctx context.Context, s Spec) ([]Node, error) {
	if len(s.Nodes) == 0 {
		return nil, errors.New("no nodes")
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	props, err := s.nodeSettings()
	if err != nil {
		return nil, err
	}
	clusterID, err := s.clusterID()
	if err != nil {
		return nil, err
	}
	var nodes []Node
	for i, p := range props {
		// A node started before keeps the settings it ran with (its ports are in the quorum's
		// configuration) unless this start changes them (--ports, --override).
		if len(s.Ports) == 0 && len(s.Overrides) == 0 {
			if kept, err := readProperties(filepath.Join(s.Dir, fmt.Sprintf("node%d", i+1), "server.properties")); err == nil {
				p = kept
			}
		}
		cfg, err := config.LoadServer(p)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		n := nodeOf(s.Dir, cfg)
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return nil, err
		}
		if s.Only != 0 && n.ID != s.Only {
			nodes = append(nodes, n)
			continue
		}
		if _, running := runningPid(n); running {
			nodes = append(nodes, n)
			continue
		}
		if err := writeProperties(n.Props, p); err != nil {
			return nil, err
		}
		dirs, err := server.Format(cfg, clusterID, true)
		if err != nil {
			return nil, fmt.Errorf("node %d: formatting storage: %w", n.ID, err)
		}
		for _, d := range dirs {
			fmt.Fprintf(s.Out, "Formatting %s with cluster.id %s and node.id %d\n", d, clusterID, n.ID)
		}
		nodes = append(nodes, n)
	}
	if s.Only != 0 && !slices.ContainsFunc(nodes, func(n Node) bool { return n.ID == s.Only }) {
		return nil, fmt.Errorf("there is no node %d (nodes 1-%d)", s.Only, len(nodes))
	}

	var started []*startedNode
	alreadyRunning := 0
	for _, n := range nodes {
		pid, running := runningPid(n)
		if running {
			alreadyRunning++
		}
		if s.Only != 0 && n.ID != s.Only {
			continue
		}
		if running {
			fmt.Fprintf(s.Out, "node %d is already running (pid %d)\n", n.ID, pid)
			continue
		}
		sn, err := spawn(s.Binary, n)
		if err != nil {
			stopStarted(started)
			return nil, err
		}
		started = append(started, sn)
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	// Every running node must show up in the metadata once the started ones serve.
	for _, sn := range started {
		if err := sn.waitServing(ctx, alreadyRunning+len(started)); err != nil {
			stopStarted(started)
			return nil, err
		}
		metrics := ""
		if sn.Metrics != "" {
			metrics = ", metrics on http://" + sn.Metrics + "/metrics"
		}
		fmt.Fprintf(s.Out, "started node %d (pid %d): clients on %s, controller on %s%s, log %s\n",
			sn.ID, sn.cmd.Process.Pid, sn.Client, sn.Controller, metrics, sn.LogFile())
	}
	for _, sn := range started {
		sn.cmd.Process.Release()
	}
	return nodes, nil
}

// nodeSettings returns each node's settings as it will run: log.dirs in the cluster directory,
// the ports replaced, the overrides applied.
func (s Spec) nodeSettings() ([]map[string]string, error) {
	var remap map[string]string
	if len(s.Ports) > 0 {
		if len(s.Ports) != 2*len(s.Nodes) {
			return nil, fmt.Errorf("--ports: %d ports given, want %d (the client and controller port of each node)", len(s.Ports), 2*len(s.Nodes))
		}
		remap = map[string]string{}
		for i, p := range s.Nodes {
			cfg, err := config.LoadServer(p)
			if err != nil {
				return nil, fmt.Errorf("node %d: %w", i+1, err)
			}
			cl := cfg.ClientListeners()
			ctl, ok := cfg.ControllerListenerAddr()
			if len(cl) == 0 || !ok {
				return nil, fmt.Errorf("--ports: node %d needs a client and a controller listener", i+1)
			}
			remap[strconv.Itoa(cl[0].Port)] = strconv.Itoa(s.Ports[2*i])
			remap[strconv.Itoa(ctl.Port)] = strconv.Itoa(s.Ports[2*i+1])
		}
	}
	var out []map[string]string
	for i, p := range s.Nodes {
		q := map[string]string{}
		for k, v := range p {
			q[k] = v
		}
		for _, k := range []string{"listeners", "advertised.listeners", "controller.quorum.voters", "controller.quorum.bootstrap.servers"} {
			if v, ok := q[k]; ok && remap != nil {
				q[k] = remapPorts(v, remap)
			}
		}
		if remap != nil {
			// The files' metrics ports are beside their default listener ports; moved
			// listeners (another cluster on this machine) leave the endpoint off rather than
			// collide (--override samsa.metrics.address=... sets it on every node).
			delete(q, "samsa.metrics.address")
		}
		q["log.dirs"] = filepath.Join(s.Dir, fmt.Sprintf("node%d", i+1), "data")
		delete(q, "log.dir")
		delete(q, "metadata.log.dir")
		for _, o := range s.Overrides {
			k, v, err := config.ParseOverride(o)
			if err != nil {
				return nil, err
			}
			q[k] = v
		}
		out = append(out, q)
	}
	return out, nil
}

var portRE = regexp.MustCompile(`:(\d+)\b`)

// remapPorts replaces every :port in v that remap names.
func remapPorts(v string, remap map[string]string) string {
	return portRE.ReplaceAllStringFunc(v, func(m string) string {
		if to, ok := remap[m[1:]]; ok {
			return ":" + to
		}
		return m
	})
}

// clusterID reads <dir>/cluster.id, or makes one and writes it there on the first start.
func (s Spec) clusterID() (string, error) {
	path := filepath.Join(s.Dir, "cluster.id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if err := server.ValidateClusterID(id); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	id := server.RandomUUID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return id, nil
}

// writeProperties writes props as a properties file, sorted by key.
func writeProperties(path string, props map[string]string) error {
	var b bytes.Buffer
	b.WriteString("# Written by `samsa cluster start`; rewritten on every start of this node.\n")
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// nodeOf describes the node cfg configures, in cluster directory dir.
func nodeOf(dir string, cfg *config.Server) Node {
	n := Node{ID: cfg.NodeID, Dir: filepath.Join(dir, fmt.Sprintf("node%d", cfg.NodeID))}
	n.Props = filepath.Join(n.Dir, "server.properties")
	if cl := cfg.ClientListeners(); len(cl) > 0 {
		n.Client = cl[0].Addr()
	}
	if l, ok := cfg.ControllerListenerAddr(); ok {
		n.Controller = l.Addr()
	}
	n.Metrics = cfg.MetricsAddress()
	return n
}

// Nodes reads the nodes of the cluster directory dir from their server.properties, by id.
func Nodes(dir string) ([]Node, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "node*", "server.properties"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no cluster in %s (no node*/server.properties): start one with samsa cluster start --dir %s", dir, dir)
	}
	var nodes []Node
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		props, err := config.ParseProperties(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		cfg, err := config.LoadServer(props)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		nodes = append(nodes, nodeOf(dir, cfg))
	}
	slices.SortFunc(nodes, func(a, b Node) int { return int(a.ID - b.ID) })
	return nodes, nil
}

// Bootstrap returns the nodes' client addresses, comma-separated.
func Bootstrap(nodes []Node) string {
	var out []string
	for _, n := range nodes {
		if n.Client != "" {
			out = append(out, n.Client)
		}
	}
	return strings.Join(out, ",")
}

// startedNode is a node process this command started.
type startedNode struct {
	Node
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func spawn(binary string, n Node) (*startedNode, error) {
	logf, err := os.OpenFile(n.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(binary, "server", "--config", n.Props)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node %d: starting %s: %w", n.ID, binary, err)
	}
	sn := &startedNode{Node: n, cmd: cmd, exited: make(chan struct{})}
	go func() {
		sn.err = cmd.Wait()
		close(sn.exited)
	}()
	if err := os.WriteFile(n.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	return sn, nil
}

// waitServing waits until the node answers Metadata with brokers brokers, or its process exits,
// or ctx ends.
func (sn *startedNode) waitServing(ctx context.Context, brokers int) error {
	for {
		select {
		case <-sn.exited:
			return fmt.Errorf("node %d exited at start-up (%v); the end of %s:\n%s", sn.ID, sn.err, sn.LogFile(), tail(sn.LogFile(), 10))
		default:
		}
		if n, err := brokerCount(ctx, sn.Client); err == nil && n >= brokers {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %d does not serve %d brokers on %s yet (%v); the end of %s:\n%s",
				sn.ID, brokers, sn.Client, context.Cause(ctx), sn.LogFile(), tail(sn.LogFile(), 10))
		case <-sn.exited:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// brokerCount asks addr for its metadata and returns the number of brokers listed.
func brokerCount(ctx context.Context, addr string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return 0, err
	}
	return len(meta.Brokers), nil
}

// stopStarted stops the nodes this command started, for a failed start.
func stopStarted(started []*startedNode) {
	for _, sn := range started {
		sn.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, sn := range started {
		select {
		case <-sn.exited:
		case <-time.After(60 * time.Second):
			sn.cmd.Process.Kill()
			<-sn.exited
		}
		os.Remove(sn.pidFile())
	}
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// runningPid returns the pid of the node's running process, if it runs: the pid file's process
// exists, is not a zombie, and runs with this node's settings file.
func runningPid(n Node) (int, bool) {
	b, err := os.ReadFile(n.pidFile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, alive(pid, n.Props)
}

// alive reports whether pid runs and (where /proc tells) runs with props on its command line and
// is not a zombie.
func alive(pid int, props string) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		// No /proc (not Linux), or the process just ended.
		_, statErr := os.Stat("/proc/self")
		return statErr != nil
	}
	if !slices.Contains(strings.Split(string(cmdline), "\x00"), props) {
		return false // the pid was reused
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// Status is one node's state.
type Status struct {
	Node
	Pid     int  // from the pid file, 0 if none
	Running bool // the process runs
}

// Statuses returns the state of every node of the cluster in dir.
func Statuses(dir string) ([]Status, error) {
	nodes, err := Nodes(dir)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, n := range nodes {
		pid, running := runningPid(n)
		out = append(out, Status{Node: n, Pid: pid, Running: running})
	}
	return out, nil
}

// Stop sends SIGTERM to the running nodes (only to node only if not 0), one at a time from the
// highest id, and waits up to timeout for each to exit: each then completes a controlled
// shutdown while the others still form a quorum.
func Stop(dir string, only int32, timeout time.Duration, out io.Writer) error {
	nodes, err := Nodes(dir)
	if err != nil {
		return err
	}
	if only != 0 && !slices.ContainsFunc(nodes, func(n Node) bool { return n.ID == only }) {
		return fmt.Errorf("there is no node %d in %s", only, dir)
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if only != 0 && n.ID != only {
			continue
		}
		pid, running := runningPid(n)
		if !running {
			fmt.Fprintf(out, "node %d is not running\n", n.ID)
			os.Remove(n.pidFile())
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("node %d (pid %d): %w", n.ID, pid, err)
		}
		deadline := time.Now().Add(timeout)
		for alive(pid, n.Props) {
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d (pid %d) did not stop within %v after SIGTERM; see %s", n.ID, pid, timeout, n.LogFile())
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.Remove(n.pidFile())
		fmt.Fprintf(out, "stopped node %d (pid %d)\n", n.ID, pid)
	}
	return nil
}

// readProperties reads a node's server.properties.
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return config.ParseProperties(f)
}
