package controller

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/samsa-io/samsa/internal/metadata"
)

// The controller listener carries two protocols. Raft connections (dialled by this package)
// open with raftPreamble and the cluster id; every other connection is a Kafka client, handed
// to the Kafka side (KafkaListener). No Kafka frame can start with the preamble: its first
// four bytes are the frame size, and 0xFF... is negative.
var raftPreamble = [4]byte{0xFF, 'S', 'R', 'F'}

// maxClusterIDLen bounds the cluster id a dialler may announce.
const maxClusterIDLen = 64

// classifyTimeout bounds the wait for a new connection's first four bytes.
const classifyTimeout = 10 * time.Second

// muxListener accepts connections on the controller listener and sorts them: Raft
// connections go to Raft's transport (it is the raft.StreamLayer), the others to the Kafka
// listener. One goroutine accepts; each new connection is classified on a goroutine of its
// own, so a silent client holds up nobody.
type muxListener struct {
	ln        net.Listener
	advertise net.Addr
	logger    *slog.Logger
	// clusterID is checked against what a dialler announces; "" (a single node that has not
	// generated its id yet) accepts any.
	clusterID string

	refusedMu     sync.Mutex
	refusedLogged map[string]time.Time // foreign cluster id or refused principal -> when its refusal was last logged

	// serverTLS and clientTLS secure the listener (an SSL controller listener, mutual TLS):
	// every accepted connection's handshake, and the Raft connections this node dials. Nil:
	// PLAINTEXT.
	serverTLS, clientTLS *tls.Config
	// raftSASL is this node's login on a SASL listener (nil: none), and saslAcceptor the
	// check of the Raft connections it accepts (raftsasl.go).
	raftSASL     *RaftSASL
	saslAcceptor *raftSASLAcceptor

	raftConns  chan net.Conn
	kafka      *chanListener
	closeOnce  sync.Once
	done       chan struct{}
	acceptDone chan struct{}
}

// newMuxListener listens on bindAddr. advertise is the address other voters dial (from
// controller.quorum.voters); empty means the bound address, with loopback for an unspecified
// host.
// raftSASL, when set, authenticates the Raft connections (a SASL listener), with the SCRAM
// credentials and ACLs of image.
func newMuxListener(bindAddr, advertise, clusterID string, serverTLS, clientTLS *tls.Config, raftSASL *RaftSASL,
	image func() *metadata.Image, logger *slog.Logger) (*muxListener, error) {
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("controller: listen on %q: %w", bindAddr, err)
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("controller: listener address %v is not TCP", ln.Addr())
	}
	var adv net.Addr
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("controller: advertised address %q: %w", advertise, err)
		}
		if a.Port == 0 { // the port bound
			a.Port = addr.Port
		}
		adv = a
	} else {
		a := *addr
		if a.IP == nil || a.IP.IsUnspecified() {
			a.IP = net.IPv4(127, 0, 0, 1)
			a.Zone = ""
		}
		adv = &a
	}
	m := &muxListener{
		ln: ln, advertise: adv, logger: logger, clusterID: clusterID, serverTLS: serverTLS, clientTLS: clientTLS,
		raftSASL:   raftSASL,
		raftConns:  make(chan net.Conn),
		done:       make(chan struct{}),
		acceptDone: make(chan struct{}),
	}
	if raftSASL != nil {
		m.saslAcceptor = newRaftSASLAcceptor(raftSASL, image)
	}
	m.kafka = &chanListener{conns: make(chan net.Conn), done: make(chan struct{}), parent: m.done, addr: ln.Addr()}
	go m.acceptLoop()
	return m, nil
}

func (m *muxListener) acceptLoop() {
	defer close(m.acceptDone)
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			m.logger.Warn("controller listener: accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go m.classify(c)
	}
}

// classify reads a connection's first four bytes and hands it on. On a TLS listener the
// handshake comes first, within the same deadline.
func (m *muxListener) classify(c net.Conn) {
	if m.serverTLS != nil {
		c = tls.Server(c, m.serverTLS)
	}
	c.SetReadDeadline(time.Now().Add(classifyTimeout))
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		c.Close()
		return
	}
	if head != raftPreamble {
		c.SetReadDeadline(time.Time{})
		select {
		case m.kafka.conns <- &prefixConn{Conn: c, prefix: head[:]}:
		case <-m.kafka.done:
			c.Close()
		case <-m.done:
			c.Close()
		}
		return
	}
	if m.saslAcceptor != nil {
		principal, err := m.saslAcceptor.authenticate(c)
		if err != nil {
			m.logRaftAuthFailure(c, err)
			c.Close()
			return
		}
		m.logger.Debug("Raft connection authenticated", "remote", c.RemoteAddr().String(), "principal", principal)
	}
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil || n[0] > maxClusterIDLen {
		c.Close()
		return
	}
	id := make([]byte, n[0])
	if _, err := io.ReadFull(c, id); err != nil {
		c.Close()
		return
	}
	if m.clusterID != "" && len(id) > 0 && string(id) != m.clusterID {
		if m.shouldLogRefusal(string(id)) {
			m.logger.Error("refused metadata quorum connections from another cluster (logged once a minute per cluster id)",
				"remote", c.RemoteAddr().String(), "their_cluster_id", string(id), "cluster_id", m.clusterID)
		}
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	select {
	case m.raftConns <- c:
	case <-m.done:
		c.Close()
	}
}

// Dial implements raft.StreamLayer: it connects (TLS on an SSL or SASL_SSL listener), announces
// Raft, logs in on a SASL listener, and announces the cluster id.
func (m *muxListener) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	if m.clientTLS != nil {
		cfg := m.clientTLS
		if host, _, err := net.SplitHostPort(string(address)); err == nil && cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			tc.Close()
			return nil, fmt.Errorf("controller: TLS handshake with %s: %w", address, err)
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	var hello bytes.Buffer
	hello.Write(raftPreamble[:])
	if m.raftSASL != nil {
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write(hello.Bytes()); err != nil {
			c.Close()
			return nil, err
		}
		if err := dialRaftSASL(c, m.raftSASL, string(address)); err != nil {
			c.Close()
			return nil, fmt.Errorf("controller: SASL with %s: %w", address, err)
		}
		c.SetDeadline(time.Time{})
		hello.Reset()
	}
	hello.WriteByte(byte(len(m.clusterID)))
	hello.WriteString(m.clusterID)
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(hello.Bytes()); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// Accept implements net.Listener for Raft's transport.
func (m *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.raftConns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it closes the socket and both sides.
func (m *muxListener) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

// Addr implements net.Listener; it returns the advertised address.
func (m *muxListener) Addr() net.Addr { return m.advertise }

// chanListener is the Kafka side of the controller listener. Closing it stops handing Kafka
// connections on (new ones are closed); Raft keeps the socket until the controller closes.
type chanListener struct {
	conns     chan net.Conn
	done      chan struct{}
	parent    chan struct{}
	addr      net.Addr
	closeOnce sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.parent:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// prefixConn replays the bytes read to classify a connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// ConnectionState is the TLS state of a connection of a TLS controller listener
// (HandshakeComplete false on a PLAINTEXT one): the broker names its principal from it.
func (c *prefixConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// logRaftAuthFailure logs a Raft connection closed because its login failed or its principal
// was refused (once a minute per principal and host, see shouldLogRefusal), or because its
// exchange broke off or was not SASL (once a minute per host: a misconfigured peer redials
// every few hundred milliseconds).
func (m *muxListener) logRaftAuthFailure(c net.Conn, err error) {
	var ae *raftAuthError
	if !errors.As(err, &ae) {
		if m.shouldLogRefusal("sasl exchange " + remoteHost(c)) {
			m.logger.Warn("closing Raft connection: SASL exchange failed (logged once a minute per host)",
				"remote", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	if m.shouldLogRefusal("sasl " + ae.principal + " " + remoteHost(c)) {
		m.logger.Error("refused Raft connection on the SASL controller listener (logged once a minute per principal and host)",
			"remote", c.RemoteAddr().String(), "principal", ae.principal, "err", ae.err)
	}
}

// shouldLogRefusal limits the refusal log line to one a minute per key (a foreign cluster id,
// a refused principal): Raft redials every few hundred milliseconds.
func (m *muxListener) shouldLogRefusal(id string) bool {
	m.refusedMu.Lock()
	defer m.refusedMu.Unlock()
	if m.refusedLogged == nil {
		m.refusedLogged = map[string]time.Time{}
	}
	if last, ok := m.refusedLogged[id]; ok && time.Since(last) < time.Minute {
		return false
	}
	m.refusedLogged[id] = time.Now()
	return true
}
