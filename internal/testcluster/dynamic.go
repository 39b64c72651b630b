package testcluster

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/server"
)

// A dynamic quorum (KIP-853) in one process: StartStandalone starts node 1 as its only
// initial voter (StartInitialControllers: n initial voters), AddController adds nodes that
// join it as observers (kafka-storage format --no-initial-controllers; AddRaftVoter makes them
// voters), AddDynamicBroker broker-only nodes. The nodes have fixed loopback
// ports, so a stopped node restarts where its peers expect it.

// StartStandalone starts one combined node (node 1) formatted with --standalone: the only
// initial voter of a dynamic quorum whose controller.quorum.bootstrap.servers is its own
// controller listener. Settings (key=value) go on top of the test defaults.
func StartStandalone(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, ClusterID: server.RandomUUID()}
	base := t.TempDir() // before the Cleanup that stops the nodes: cleanups run last first
	t.Cleanup(c.Stop)
	c.addDynamicNode(base, nil, server.FormatOptions{Standalone: true}, settings)
	return c
}

// StartInitialControllers starts n combined nodes formatted with the same
// --initial-controllers list naming all of them: a dynamic quorum of n initial voters.
func StartInitialControllers(t testing.TB, n int, settings ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, ClusterID: server.RandomUUID()}
	base := t.TempDir()
	var list, bootstrap []string
	for i := range n {
		ports := freePorts(t, 2)
		ctrl := fmt.Sprintf("127.0.0.1:%d", ports[1])
		c.Nodes = append(c.Nodes, c.dynamicNode(base, i, fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://%s", ports[0], ctrl), settings))
		list = append(list, fmt.Sprintf("%d@%s:%s", i+1, ctrl, server.RandomUUID()))
		bootstrap = append(bootstrap, ctrl)
	}
	for _, node := range c.Nodes {
		node.props["controller.quorum.bootstrap.servers"] = strings.Join(bootstrap, ",")
		c.format(node, server.FormatOptions{InitialControllers: strings.Join(list, ",")})
	}
	t.Cleanup(c.Stop)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, node := range c.Nodes {
		wg.Go(func() { errs[i] = node.tryStart() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("initial controller %d: %v", i+1, err)
		}
	}
	c.WaitBrokers(n)
	return c
}

// AddController starts a node (the next node id; broker and controller unless settings give
// process.roles) formatted with --no-initial-controllers, whose bootstrap servers are the
// controller listeners of the cluster's controllers so far. It joins the quorum as an
// observer and serves once it has caught up. It returns the node's index in Nodes.
func (c *Cluster) AddController(settings ...string) int {
	c.t.Helper()
	return c.addDynamicNode(filepath.Dir(c.Nodes[0].Dir), c.controllerAddrs(), server.FormatOptions{NoInitialControllers: true}, settings)
}

// AddDynamicBroker starts a broker-only node (the next node id) of the dynamic quorum: its
// bootstrap servers are the cluster's controllers so far, and it is formatted with no quorum
// option, as Kafka's brokers are. It returns the node's index in Nodes.
func (c *Cluster) AddDynamicBroker(settings ...string) int {
	c.t.Helper()
	return c.addDynamicNode(filepath.Dir(c.Nodes[0].Dir), c.controllerAddrs(), server.FormatOptions{}, append([]string{"process.roles=broker"}, settings...))
}

func (c *Cluster) controllerAddrs() []string {
	var out []string
	for i := range c.Nodes {
		if addr := c.ControllerAddr(i); addr != "" {
			out = append(out, addr)
		}
	}
	return out
}

// addDynamicNode formats and starts the next node of a dynamic quorum in base; bootstrap nil
// means its own controller listener.
func (c *Cluster) addDynamicNode(base string, bootstrap []string, opts server.FormatOptions, settings []string) int {
	c.t.Helper()
	i := len(c.Nodes)
	ports := freePorts(c.t, 2)
	ctrl := fmt.Sprintf("127.0.0.1:%d", ports[1])
	if bootstrap == nil {
		bootstrap = []string{ctrl}
	}
	node := c.dynamicNode(base, i, fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://%s", ports[0], ctrl), settings)
	node.props["controller.quorum.bootstrap.servers"] = strings.Join(bootstrap, ",")
	switch roles := node.props["process.roles"]; {
	case !strings.Contains(roles, "broker"):
		node.props["listeners"] = "CONTROLLER://" + ctrl
	case !strings.Contains(roles, "controller"):
		node.props["listeners"] = fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", ports[0])
	}
	c.format(node, opts)
	c.Nodes = append(c.Nodes, node)
	if err := node.tryStart(); err != nil {
		c.t.Fatalf("node %d of the dynamic quorum: %v", i+1, err)
	}
	c.WaitBrokers(c.brokerNodes())
	return i
}

// dynamicNode describes node i+1 of a dynamic quorum in base: combined, on listeners, with
// settings on top.
func (c *Cluster) dynamicNode(base string, i int, listeners string, settings []string) *Node {
	node := &Node{t: c.t, Dir: filepath.Join(base, fmt.Sprintf("node%d", i+1)), Logger: testLogger().With("node", i+1)}
	node.props = map[string]string{
		"node.id":       fmt.Sprint(i + 1),
		"process.roles": "broker,controller",
		"listeners":     listeners,
		"log.dirs":      node.Dir,
	}
	applySettings(c.t, node.props, settings)
	return node
}

// format formats node's storage for the cluster with opts.
func (c *Cluster) format(node *Node, opts server.FormatOptions) {
	c.t.Helper()
	cfg, err := config.LoadServer(node.props)
	if err != nil {
		c.t.Fatal(err)
	}
	opts.ClusterID = c.ClusterID
	if _, err := server.FormatWith(cfg, opts); err != nil {
		c.t.Fatal(err)
	}
}

// brokerNodes counts the running nodes with the broker role.
func (c *Cluster) brokerNodes() int {
	n := 0
	for i, node := range c.Nodes {
		if c.Running(i) && strings.Contains(node.props["process.roles"], "broker") {
			n++
		}
	}
	return n
}

// ControllerAddr returns node i's controller listener (host:port), "" for a broker-only node.
func (c *Cluster) ControllerAddr(i int) string {
	for _, l := range strings.Split(c.Nodes[i].props["listeners"], ",") {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(l), "CONTROLLER://"); ok {
			return addr
		}
	}
	return ""
}

// DirectoryID returns the directory.id of node i's metadata directory (meta.properties), the
// id AddRaftVoter and RemoveRaftVoter name it by.
func (c *Cluster) DirectoryID(i int) metadata.UUID {
	c.t.Helper()
	cfg, err := config.LoadServer(c.Nodes[i].props)
	if err != nil {
		c.t.Fatal(err)
	}
	mp, ok, err := server.ReadMetaProperties(cfg.MetadataLogDir)
	if err != nil || !ok {
		c.t.Fatalf("node %d: meta.properties: %v %v", i+1, ok, err)
	}
	id, err := metadata.ParseUUID(mp.DirectoryID)
	if err != nil {
		c.t.Fatalf("node %d: directory.id: %v", i+1, err)
	}
	return id
}
