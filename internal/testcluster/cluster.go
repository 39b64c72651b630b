package testcluster

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/server"
)

// Cluster is n combined (broker and controller) nodes in one process: node i+1 of
// Nodes[i], all voters of one metadata quorum, each with its own data directory and fixed
// loopback ports (so a stopped node restarts where clients and peers expect it).
type Cluster struct {
	t         testing.TB
	ClusterID string
	Nodes     []*Node
}

// freePorts returns n loopback ports that were free a moment ago: the voters' addresses must
// be known before any node listens.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// StartCluster starts n combined nodes forming one cluster, with the given settings
// (key=value) on top of the test defaults, formatted with one cluster id, and returns once
// every node serves. Logs go to stderr when SAMSA_TEST_LOG=1, prefixed by node.
func StartCluster(t testing.TB, n int, settings ...string) *Cluster {
	t.Helper()
	return StartClusterListeners(t, n, nil, settings...)
}

// StartClusterListeners is StartCluster with more listeners on every node: each name of
// extra (e.g. SASL_SSL) listens on its own loopback port after the PLAINTEXT one.
func StartClusterListeners(t testing.TB, n int, extra []string, settings ...string) *Cluster {
	t.Helper()
	return StartClusterFormatted(t, n, server.FormatOptions{}, extra, settings...)
}

// StartClusterFormatted is StartClusterListeners with every node formatted with opts (its
// ClusterID is the cluster's, generated).
func StartClusterFormatted(t testing.TB, n int, opts server.FormatOptions, extra []string, settings ...string) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n+n*len(extra))
	extraPorts := ports[2*n:]
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, ports[2*i+1]))
	}
	c := &Cluster{t: t, ClusterID: server.RandomUUID()}
	base := t.TempDir()
	for i := range n {
		node := &Node{t: t, Dir: filepath.Join(base, fmt.Sprintf("node%d", i+1))}
		node.props = map[string]string{
			"node.id":                  fmt.Sprint(i + 1),
			"process.roles":            "broker,controller",
			"listeners":                fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,%sCONTROLLER://127.0.0.1:%d", ports[2*i], extraListeners(extra, extraPorts[i*len(extra):]), ports[2*i+1]),
			"controller.quorum.voters": strings.Join(voters, ","),
			"log.dirs":                 node.Dir,
		}
		applySettings(t, node.props, settings)
		node.Logger = testLogger().With("node", i+1)
		cfg, err := config.LoadServer(node.props)
		if err != nil {
			t.Fatal(err)
		}
		opts.ClusterID = c.ClusterID
		if _, err := server.FormatWith(cfg, opts); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, node)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, node := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = node.tryStart()
		}()
	}
	wg.Wait()
	t.Cleanup(c.Stop)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	c.WaitBrokers(n)
	return c
}

// extraListeners formats NAME://127.0.0.1:port, for each name with its port, each followed by
// a comma.
func extraListeners(names []string, ports []int) string {
	var b strings.Builder
	for i, name := range names {
		fmt.Fprintf(&b, "%s://127.0.0.1:%d,", name, ports[i])
	}
	return b.String()
}

// liveBrokers counts the unfenced brokers of node i's image (Metadata lists only those).
func (c *Cluster) liveBrokers(i int) int {
	n := 0
	for _, b := range c.Server(i).Image().Brokers {
		if !b.Fenced {
			n++
		}
	}
	return n
}

// WaitBrokers waits until every running node's image has n live (registered and unfenced)
// brokers.
func (c *Cluster) WaitBrokers(n int) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i := range c.Nodes {
		for c.Running(i) && c.liveBrokers(i) < n {
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d sees %d live brokers, want %d", i+1, c.liveBrokers(i), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// AddBroker starts a broker-only node (process.roles=broker, the next node id) that joins the
// cluster's metadata quorum as a non-voter, and returns its index in Nodes.
func (c *Cluster) AddBroker(settings ...string) int {
	c.t.Helper()
	first := c.Nodes[0].props
	i := len(c.Nodes)
	node := &Node{t: c.t, Dir: filepath.Join(filepath.Dir(c.Nodes[0].Dir), fmt.Sprintf("node%d", i+1))}
	port := freePorts(c.t, 1)[0]
	node.props = map[string]string{
		"node.id":                  fmt.Sprint(i + 1),
		"process.roles":            "broker",
		"listeners":                fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port),
		"controller.quorum.voters": first["controller.quorum.voters"],
		"log.dirs":                 node.Dir,
	}
	applySettings(c.t, node.props, settings)
	node.Logger = testLogger().With("node", i+1)
	cfg, err := config.LoadServer(node.props)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := server.Format(cfg, c.ClusterID, false); err != nil {
		c.t.Fatal(err)
	}
	c.Nodes = append(c.Nodes, node)
	if err := node.tryStart(); err != nil {
		c.t.Fatalf("broker-only node %d: %v", i+1, err)
	}
	c.WaitBrokers(len(c.Nodes))
	return i
}

// tryStart starts the node, returning the error instead of failing the test (nodes of a
// cluster start concurrently: each waits for the quorum).
func (n *Node) tryStart() error {
	cfg, err := config.LoadServer(n.props)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg, n.Logger)
	if err != nil {
		return err
	}
	n.srv = srv
	n.stopOnce = false
	return nil
}

// StartNode starts node i (0-based) again after StopNode, on the same ports and data.
func (c *Cluster) StartNode(i int) {
	c.t.Helper()
	if err := c.Nodes[i].tryStart(); err != nil {
		c.t.Fatalf("restarting node %d: %v", i+1, err)
	}
}

// StopNode stops node i (0-based) cleanly.
func (c *Cluster) StopNode(i int) { c.Nodes[i].Stop() }

// KillNode stops node i without a controlled shutdown (see server.Server.Kill): the controller
// learns of it only when its session expires.
func (c *Cluster) KillNode(i int) {
	n := c.Nodes[i]
	if n.stopOnce || n.srv == nil {
		return
	}
	n.stopOnce = true
	if err := n.srv.Kill(); err != nil {
		c.t.Errorf("killing node %d: %v", i+1, err)
	}
}

// Running reports whether node i is running.
func (c *Cluster) Running(i int) bool { return c.Nodes[i].srv != nil && !c.Nodes[i].stopOnce }

// Stop stops every running node, the last first.
func (c *Cluster) Stop() {
	for i := len(c.Nodes) - 1; i >= 0; i-- {
		c.Nodes[i].Stop()
	}
}

// Addrs returns the client addresses of the running nodes (bootstrap servers).
func (c *Cluster) Addrs() []string {
	var out []string
	for i, n := range c.Nodes {
		if c.Running(i) {
			out = append(out, n.Addr())
		}
	}
	return out
}

// Server returns node i's server.
func (c *Cluster) Server(i int) *server.Server { return c.Nodes[i].srv }
