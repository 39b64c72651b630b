package campaign

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testbin"
)

var samsaBin string

func TestMain(m *testing.M) {
	testbin.Main("samsa-campaign-bin", &samsaBin, m.Run)
}

// node is one `samsa server` process (restartable) and the proxies in front of its listeners.
type node struct {
	id        int32
	dir       string
	config    string // properties file
	logPath   string // stdout and stderr of every run, appended
	client    *Proxy // PLAINTEXT, advertised
	ctrl      *Proxy // CONTROLLER, the voter address
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	stopped   bool // SIGSTOPped
	startedAt int  // runs so far
}

// cluster is three combined nodes, voters of one quorum, behind the campaign's proxies.
type cluster struct {
	t     *testing.T
	base  string
	net   *Net
	nodes []*node
	admin *kgo.Client
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startCluster formats and starts n nodes with the given extra settings and waits until each
// serves and the cluster has n brokers. The data and logs are removed when the test passes and
// kept (their path logged) when it fails.
func startCluster(t *testing.T, n int, settings ...string) *cluster {
	base, err := os.MkdirTemp("", "samsa-campaign")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, base: base}
	c.net = NewNet(c.pids)
	t.Cleanup(func() {
		c.killAll()
		c.net.Close()
		if c.admin != nil {
			c.admin.Close()
		}
		if t.Failed() || os.Getenv("SAMSA_CAMPAIGN_KEEP") != "" {
			t.Logf("data and node logs kept in %s", base)
		} else {
			os.RemoveAll(base)
		}
	})
	var voters []string
	for i := range n {
		nd := &node{id: int32(i + 1), dir: filepath.Join(base, fmt.Sprintf("node%d", i+1))}
		nd.logPath = filepath.Join(base, fmt.Sprintf("node%d.log", i+1))
		nd.config = filepath.Join(base, fmt.Sprintf("node%d.properties", i+1))
		cp, ctp := freePort(t), freePort(t)
		if nd.client, err = c.net.Listen(nd.id, fmt.Sprintf("127.0.0.1:%d", cp)); err != nil {
			t.Fatal(err)
		}
		if nd.ctrl, err = c.net.Listen(nd.id, fmt.Sprintf("127.0.0.1:%d", ctp)); err != nil {
			t.Fatal(err)
		}
		voters = append(voters, fmt.Sprintf("%d@%s", nd.id, nd.ctrl.Addr()))
		c.nodes = append(c.nodes, nd)
	}
	clusterID := strings.TrimSpace(c.samsa("storage", "random-uuid"))
	for _, nd := range c.nodes {
		props := []string{
			"node.id=" + fmt.Sprint(nd.id),
			"process.roles=broker,controller",
			"listeners=PLAINTEXT://" + nd.client.Target + ",CONTROLLER://" + nd.ctrl.Target,
			"advertised.listeners=PLAINTEXT://" + nd.client.Addr(),
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"log.dirs=" + nd.dir,
		}
		props = append(props, settings...)
		if err := os.WriteFile(nd.config, []byte(strings.Join(props, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.samsa("storage", "format", "--cluster-id", clusterID, "--config", nd.config)
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	var seeds []string
	for _, nd := range c.nodes {
		seeds = append(seeds, nd.client.Addr())
	}
	if c.admin, err = kgo.NewClient(kgo.SeedBrokers(seeds...)); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		c.waitServing(nd)
	}
	return c
}

// samsa runs a samsa subcommand to completion and returns its output.
func (c *cluster) samsa(args ...string) string {
	c.t.Helper()
	out, err := exec.Command(samsaBin, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("samsa %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c *cluster) seeds() []string {
	var s []string
	for _, nd := range c.nodes {
		s = append(s, nd.client.Addr())
	}
	return s
}

// pids maps the running nodes to their processes (for the proxies).
func (c *cluster) pids() map[int32]int {
	m := map[int32]int{}
	for _, nd := range c.nodes {
		nd.mu.Lock()
		if nd.cmd != nil {
			m[nd.id] = nd.cmd.Process.Pid
		}
		nd.mu.Unlock()
	}
	return m
}

// start starts nd's process (not running).
func (c *cluster) start(nd *node) {
	c.t.Helper()
	f, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	nd.startedAt++
	for _, p := range []*Proxy{nd.client, nd.ctrl} {
		if err := p.Up(); err != nil {
			f.Close()
			c.t.Fatalf("node %d: proxy %s: %v", nd.id, p.Addr(), err)
		}
	}
	fmt.Fprintf(f, "=== campaign: start %d at %s\n", nd.startedAt, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(samsaBin, "server", "--config", nd.config)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(exited)
	}()
	nd.mu.Lock()
	nd.cmd, nd.exited, nd.stopped = cmd, exited, false
	nd.mu.Unlock()
}

// signal sends sig to nd's process, if it runs.
func (c *cluster) signal(nd *node, sig syscall.Signal) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(sig)
	switch sig {
	case syscall.SIGSTOP:
		nd.stopped = true
	case syscall.SIGCONT:
		nd.stopped = false
	}
}

// wait waits until nd's process has exited, for at most d (then SIGQUIT, so Go writes every
// goroutine's stack to the node's log, and SIGKILL if that does not end it); it reports
// whether it exited by itself.
func (c *cluster) wait(nd *node, d time.Duration) bool {
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil {
		return true
	}
	byItself := true
	select {
	case <-exited:
	case <-time.After(d):
		byItself = false
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	nd.mu.Lock()
	nd.cmd = nil
	nd.mu.Unlock()
	nd.client.Down()
	nd.ctrl.Down()
	return byItself
}

// kill SIGKILLs nd and waits for the process to go. Its proxies stop listening first: a
// killed process's ports refuse connections the moment it dies, and the controller's probe
// of a broker whose connection closed must see that (not a proxy still accepting).
func (c *cluster) kill(nd *node) {
	nd.client.Down()
	nd.ctrl.Down()
	c.signal(nd, syscall.SIGKILL)
	c.wait(nd, time.Minute)
}

func (c *cluster) killAll() {
	for _, nd := range c.nodes {
		c.kill(nd)
	}
}

// running reports whether nd's process runs (stopped or not).
func (nd *node) running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

// request sends req to nd itself (not to whichever broker a client would pick).
func (c *cluster) request(ctx context.Context, nd *node, req kmsg.Request) (kmsg.Response, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(nd.client.Addr()), kgo.RequestRetries(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return cl.SeedBrokers()[0].Request(ctx, req)
}

// waitServing polls nd until it answers Metadata listing itself (a broker serves once
// unfenced).
func (c *cluster) waitServing(nd *node) {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.request(ctx, nd, kmsg.NewPtrMetadataRequest())
		cancel()
		if err == nil && slices.ContainsFunc(resp.(*kmsg.MetadataResponse).Brokers,
			func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == nd.id }) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d does not serve after 2 minutes (last error %v); log %s", nd.id, err, nd.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metadata asks any reachable node for topic's metadata.
func (c *cluster) metadata(ctx context.Context, topic string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	return req.RequestWith(ctx, c.admin)
}

// leaders returns partition -> (leader, isr) of topic, as a node that answers sees them.
func (c *cluster) leaders(ctx context.Context, topic string) (map[int32]int32, map[int32][]int32, error) {
	resp, err := c.metadata(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		return nil, nil, fmt.Errorf("metadata of %s: %+v", topic, resp.Topics)
	}
	leaders, isr := map[int32]int32{}, map[int32][]int32{}
	for _, p := range resp.Topics[0].Partitions {
		leaders[p.Partition] = p.Leader
		isr[p.Partition] = p.ISR
	}
	return leaders, isr, nil
}

// activeController returns the quorum leader's id as DescribeQuorum answers it.
func (c *cluster) activeController(ctx context.Context) (int32, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	var last error
	for _, nd := range c.nodes {
		if !nd.running() {
			continue
		}
		resp, err := c.request(ctx, nd, req)
		if err != nil {
			last = err
			continue
		}
		r := resp.(*kmsg.DescribeQuorumResponse)
		if r.ErrorCode != 0 || len(r.Topics) == 0 || len(r.Topics[0].Partitions) == 0 || r.Topics[0].Partitions[0].LeaderID < 0 {
			last = fmt.Errorf("DescribeQuorum from %d: %+v", nd.id, r)
			continue
		}
		return r.Topics[0].Partitions[0].LeaderID, nil
	}
	return -1, fmt.Errorf("no active controller: %v", last)
}

func (c *cluster) node(id int32) *node { return c.nodes[id-1] }
