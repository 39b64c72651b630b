package broker

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/samsa-io/samsa/internal/auth/authtest"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestTLSWriteBatcher: over a real TLS session, a 1 MiB response written while gathering
// reaches the socket in a few writes (one per tlsBatchBytes, not one per 16 KiB record) and
// arrives whole and in order after flush; with gathering off (the handshake, after stop)
// every record is written at once, so nothing waits for a flush.
func TestTLSWriteBatcher(t *testing.T) {
	ca, _ := authtest.NewCA("ca")
	is, _ := ca.Issue("broker", "", "127.0.0.1")
	kp, err := is.KeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	small := []byte("after the batch")
	type result struct {
		writes, afterStop int
		err               error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		cc := &countingConn{Conn: nc}
		b := &tlsWriteBatcher{Conn: cc}
		tc := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{kp}})
		defer tc.Close()
		if err := tc.Handshake(); err != nil { // gathering off: the handshake is not held back
			done <- result{err: err}
			return
		}
		before := cc.count()
		b.start()
		if _, err := tc.Write(payload); err != nil {
			done <- result{err: err}
			return
		}
		if err := b.flush(true); err != nil {
			done <- result{err: err}
			return
		}
		writes := cc.count() - before
		if _, err := tc.Write(small); err != nil { // off again: straight to the socket
			done <- result{err: err}
			return
		}
		done <- result{writes: writes, afterStop: cc.count() - before - writes}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, len(payload)+len(small))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(payload)], payload) || !bytes.Equal(got[len(payload):], small) {
		t.Fatal("the bytes read are not the bytes written")
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	// 1 MiB is 64 records of 16 KiB; gathered, it is one write per 256 KiB and the rest.
	if max := len(payload)/tlsBatchBytes + 1; r.writes < 1 || r.writes > max {
		t.Errorf("1 MiB took %d socket writes while gathering, want 1 to %d", r.writes, max)
	}
	if r.afterStop != 1 {
		t.Errorf("a small write after stop took %d socket writes, want 1", r.afterStop)
	}
}
