package campaign

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Net is the campaign's network: one TCP proxy in front of each listener of each node. Nodes
// advertise the proxies' addresses (advertised.listeners, controller.quorum.voters), so every
// byte between nodes, and between clients and nodes, passes through them.
//
// Isolate(n) cuts node n off: connections to n's proxies, and connections n opens to the other
// nodes' proxies, are blackholed (held open, nothing forwarded either way, as a network that
// drops packets); new ones are accepted and held the same way. Heal closes every blackholed
// connection (bytes were dropped mid-stream) and lets new ones through.
//
// Loopback connections all come from 127.0.0.1, so a proxy finds which node opened a
// connection by its socket: the inode of the client end in /proc/net/tcp, found among the
// nodes' file descriptors (Pids). A connection from no node (a test client) is only cut when it
// goes to the isolated node. That lookup reads every descriptor of every node (thousands, with
// the storage file cache), so it is made only while it matters: a connection accepted while
// no node is isolated goes through at once with its source unknown, and Isolate looks up the
// sources of those still open in one pass. Looked up per connection, it delayed each new
// connection by up to hundreds of milliseconds on a loaded machine: a new Raft leader's first
// heartbeats came after its lease had run out, and the quorum went from election to election.
type Net struct {
	// Pids returns the process id of each running node, by node id.
	Pids func() map[int32]int

	mu       sync.Mutex
	isolated map[int32]bool
	conns    map[*proxyConn]struct{}
	// pending are the connections accepted while a node is isolated whose source is being
	// looked up: held (nothing forwarded), and closed by Heal or Close like the blackholed.
	pending map[net.Conn]struct{}
	proxies []*Proxy

	// lookups are the source lookups of connections accepted while a node is isolated,
	// made in batches by one goroutine at a time (see source).
	lookups struct {
		sync.Mutex
		pending []*sourceLookup
		running bool
	}
}

// sourceLookup is one connection waiting for its source.
type sourceLookup struct {
	pc   *proxyConn
	done chan int32
}

// NewNet returns an empty network.
func NewNet(pids func() map[int32]int) *Net {
	return &Net{Pids: pids, isolated: map[int32]bool{}, conns: map[*proxyConn]struct{}{}, pending: map[net.Conn]struct{}{}}
}

// Proxy forwards connections to one listener of node Node.
type Proxy struct {
	net    *Net
	Node   int32
	Target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener // nil while Down
	wg     sync.WaitGroup
}

// unknownSource is the source of a connection accepted while no node was isolated, not looked
// up (yet); it is cut as one from no node would be.
const unknownSource int32 = -1

type proxyConn struct {
	src, dst int32 // src 0: not a node; unknownSource: not looked up; guarded by Net.mu
	a, b     net.Conn
	once     sync.Once
	closed   chan struct{} // closed by close
	cut      chan struct{} // closed when the connection is blackholed
	cutOnce  sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		c.a.Close()
		c.b.Close()
		close(c.closed)
	})
}

func (c *proxyConn) blackhole() { c.cutOnce.Do(func() { close(c.cut) }) }

// Listen starts a proxy on a free loopback port for target, a listener of node.
func (n *Net) Listen(node int32, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{net: n, Node: node, Target: target, ln: ln, addr: ln.Addr().String()}
	n.mu.Lock()
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the proxy's address, the one to advertise.
func (p *Proxy) Addr() string { return p.addr }

// Down closes the proxy's listener while its node's process is gone, so connections to the
// node are refused as they would be without a proxy (the controller fences a broker whose
// listener refuses at once). Connections already open end with the node's.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

// Up listens again on the proxy's address (before its node starts again).
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *Proxy) serve(a net.Conn) {
	n := p.net
	src := unknownSource
	n.mu.Lock()
	held := len(n.isolated) > 0
	if held {
		n.pending[a] = struct{}{}
	}
	n.mu.Unlock()
	if held {
		src = n.source(a)
		n.mu.Lock()
		_, still := n.pending[a]
		delete(n.pending, a)
		n.mu.Unlock()
		if !still {
			return // closed by Heal or Close while held
		}
	}
	pc := &proxyConn{src: src, dst: p.Node, a: a, cut: make(chan struct{}), closed: make(chan struct{})}
	n.mu.Lock()
	cut := n.cutLocked(src, p.Node)
	n.mu.Unlock()
	if !cut {
		b, err := net.Dial("tcp", p.Target)
		if err != nil {
			a.Close()
			return
		}
		pc.b = b
	} else {
		pc.b = nopConn{a}
		pc.blackhole()
	}
	n.mu.Lock()
	n.conns[pc] = struct{}{}
	lookup := pc.src == unknownSource && len(n.isolated) > 0 // isolated since it was accepted
	n.mu.Unlock()
	if lookup {
		src := n.source(a)
		n.mu.Lock()
		if pc.src == unknownSource {
			pc.src = src
		}
		n.mu.Unlock()
	}
	n.mu.Lock()
	if n.cutLocked(pc.src, p.Node) {
		pc.blackhole()
	}
	n.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pump(pc, pc.b, pc.a) }()
	go func() { defer wg.Done(); pump(pc, pc.a, pc.b) }()
	wg.Wait()
	n.mu.Lock()
	delete(n.conns, pc)
	n.mu.Unlock()
}

// pump copies src to dst until either closes; once the connection is blackholed it stops
// forwarding and waits for Heal (or Close) to close it.
func pump(pc *proxyConn, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-pc.cut:
			<-pc.closed
			return
		default:
		}
		k, err := src.Read(buf)
		if k > 0 {
			select {
			case <-pc.cut:
				continue // dropped
			default:
			}
			if _, werr := dst.Write(buf[:k]); werr != nil {
				pc.close()
				return
			}
		}
		if err != nil {
			pc.close()
			return
		}
	}
}

// cutLocked reports whether traffic from src to dst is cut. A node reaching itself through
// its own proxy is never cut.
func (n *Net) cutLocked(src, dst int32) bool {
	if src == dst {
		return false
	}
	return n.isolated[dst] || (src > 0 && n.isolated[src])
}

func (n *Net) anyIsolated() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.isolated) > 0
}

// Isolate cuts node off the network, existing connections included: those to it at once,
// those it opened once the sources not yet known are looked up (one pass over the nodes'
// descriptors). Connections accepted from now on look up their source themselves.
func (n *Net) Isolate(node int32) {
	n.mu.Lock()
	n.isolated[node] = true
	n.cutAllLocked()
	var unknown []*proxyConn
	for pc := range n.conns {
		if pc.src == unknownSource {
			unknown = append(unknown, pc)
		}
	}
	n.mu.Unlock()
	srcs := n.sources(unknown)
	n.mu.Lock()
	defer n.mu.Unlock()
	for pc, src := range srcs {
		if pc.src == unknownSource {
			pc.src = src
		}
	}
	n.cutAllLocked()
}

// cutAllLocked blackholes every open connection that is cut now.
func (n *Net) cutAllLocked() {
	for pc := range n.conns {
		if n.cutLocked(pc.src, pc.dst) {
			pc.blackhole()
		}
	}
}

// Heal reconnects every node: blackholed connections are closed.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.isolated)
	n.closePendingLocked()
	for pc := range n.conns {
		select {
		case <-pc.cut:
			pc.close()
		default:
		}
	}
}

// closePendingLocked closes the connections held while their source is looked up.
func (n *Net) closePendingLocked() {
	for c := range n.pending {
		c.Close()
	}
	clear(n.pending)
}

// Close stops every proxy and closes every connection.
func (n *Net) Close() {
	n.mu.Lock()
	proxies := n.proxies
	n.closePendingLocked()
	for pc := range n.conns {
		pc.close()
	}
	n.mu.Unlock()
	for _, p := range proxies {
		p.Down()
	}
	n.mu.Lock()
	for pc := range n.conns {
		pc.close()
	}
	n.mu.Unlock()
	for _, p := range proxies {
		p.wg.Wait()
	}
}

// nopConn stands for the upstream of a connection accepted while cut: it is never dialed.
type nopConn struct{ net.Conn }

func (nopConn) Read([]byte) (int, error)    { return 0, io.EOF }
func (nopConn) Write(b []byte) (int, error) { return len(b), nil }
func (nopConn) Close() error                { return nil }

// source returns the node whose process owns the other end of c, or 0. The lookups of the
// connections accepted meanwhile are made together, one pass at a time: a Raft node cut off
// redials its peers every few milliseconds, and a pass per connection, each reading every
// descriptor of every node and the whole /proc/net/tcp (tens of thousands of sockets while
// other test packages run), piled up into a CPU storm that starved the proxies well after the
// network was healed.
func (n *Net) source(c net.Conn) int32 {
	l := &sourceLookup{pc: &proxyConn{a: c}, done: make(chan int32, 1)}
	n.lookups.Lock()
	n.lookups.pending = append(n.lookups.pending, l)
	start := !n.lookups.running
	n.lookups.running = true
	n.lookups.Unlock()
	if start {
		go n.lookupBatches()
	}
	return <-l.done
}

// lookupBatches looks up the pending connections' sources, all of them in each pass, until
// none is left.
func (n *Net) lookupBatches() {
	for {
		n.lookups.Lock()
		batch := n.lookups.pending
		n.lookups.pending = nil
		if len(batch) == 0 {
			n.lookups.running = false
			n.lookups.Unlock()
			return
		}
		n.lookups.Unlock()
		pcs := make([]*proxyConn, len(batch))
		for i, l := range batch {
			pcs[i] = l.pc
		}
		srcs := n.sources(pcs)
		for _, l := range batch {
			l.done <- srcs[l.pc]
		}
	}
}

// sources returns the node whose process owns the other end of each connection (0: none), in
// one pass over /proc/net/tcp and the nodes' descriptors.
func (n *Net) sources(pcs []*proxyConn) map[*proxyConn]int32 {
	out := make(map[*proxyConn]int32, len(pcs))
	if len(pcs) == 0 {
		return out
	}
	for _, pc := range pcs {
		out[pc] = 0
	}
	if n.Pids == nil {
		return out
	}
	inodes := socketInodes()
	want := map[string][]*proxyConn{} // "socket:[inode]" of each connection's client end
	for _, pc := range pcs {
		// The client end's local address is the proxy's remote one.
		key := procAddr(pc.a.RemoteAddr().String()) + " " + procAddr(pc.a.LocalAddr().String())
		if inode := inodes[key]; inode != "" {
			want["socket:["+inode+"]"] = append(want["socket:["+inode+"]"], pc)
		}
	}
	if len(want) == 0 {
		return out
	}
	for id, pid := range n.Pids() {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil {
				for _, pc := range want[l] {
					out[pc] = id
				}
			}
		}
	}
	return out
}

// socketInodes reads /proc/net/tcp (IPv4): the inode of each socket, by its local and remote
// addresses as procAddr writes them ("local remote").
func socketInodes() map[string]string {
	out := map[string]string{}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return out
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 9 {
			out[fs[1]+" "+fs[2]] = fs[9]
		}
	}
	return out
}

// procAddr writes an IPv4 host:port as /proc/net/tcp does: the address as a little-endian
// 32-bit hex number, the port in hex.
func procAddr(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	ip := net.ParseIP(host).To4()
	pn, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], pn)
}
