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
// goes to the isolated node.
type Net struct {
	// Pids returns the process id of each running node, by node id.
	Pids func() map[int32]int

	mu       sync.Mutex
	isolated map[int32]bool
	conns    map[*proxyConn]struct{}
	proxies  []*Proxy
}

// NewNet returns an empty network.
func NewNet(pids func() map[int32]int) *Net {
	return &Net{Pids: pids, isolated: map[int32]bool{}, conns: map[*proxyConn]struct{}{}}
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

type proxyConn struct {
	src, dst int32 // src 0: not a node
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
	src := p.net.source(a)
	pc := &proxyConn{src: src, dst: p.Node, a: a, cut: make(chan struct{}), closed: make(chan struct{})}
	n := p.net
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
	if n.cutLocked(src, p.Node) {
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
	return n.isolated[dst] || (src != 0 && n.isolated[src])
}

// Isolate cuts node off the network, existing connections included.
func (n *Net) Isolate(node int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[node] = true
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
	for pc := range n.conns {
		select {
		case <-pc.cut:
			pc.close()
		default:
		}
	}
}

// Close stops every proxy and closes every connection.
func (n *Net) Close() {
	n.mu.Lock()
	proxies := n.proxies
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

// source returns the node whose process owns the other end of c, or 0.
func (n *Net) source(c net.Conn) int32 {
	if n.Pids == nil {
		return 0
	}
	inode := socketInode(c.RemoteAddr().String(), c.LocalAddr().String())
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	for id, pid := range n.Pids() {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name())); err == nil && l == want {
				return id
			}
		}
	}
	return 0
}

// socketInode finds in /proc/net/tcp the socket whose local address is local and remote
// address remote (IPv4), and returns its inode.
func socketInode(local, remote string) string {
	l, r := procAddr(local), procAddr(remote)
	if l == "" || r == "" {
		return ""
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 9 && fs[1] == l && fs[2] == r {
			return fs[9]
		}
	}
	return ""
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
