package campaign

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echo serves an echo listener for the test's life.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes a byte and reads it back within the wait: false when it does not come.
func roundTrip(t *testing.T, c net.Conn, wait time.Duration) (bool, error) {
	t.Helper()
	if _, err := c.Write([]byte{7}); err != nil {
		return false, err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil
	}
	return err == nil && b[0] == 7, err
}

// TestProxyIsolate: the connections of this process, counted as node 2, pass through node 1's
// proxy until node 2 is isolated (existing and new ones blackholed), and again after Heal
// (blackholed ones closed); isolating node 3 changes nothing for them. The timeouts below only
// bound how long a blackholed connection is watched to stay silent.
func TestProxyIsolate(t *testing.T) {
	n := NewNet(func() map[int32]int { return map[int32]int{2: os.Getpid()} })
	defer n.Close()
	p, err := n.Listen(1, echo(t))
	if err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	old := dial()
	if ok, err := roundTrip(t, old, 10*time.Second); !ok {
		t.Fatalf("before isolation: %v", err)
	}
	n.Isolate(3)
	if ok, err := roundTrip(t, old, 10*time.Second); !ok {
		t.Fatalf("another node isolated: %v", err)
	}
	n.Heal()
	n.Isolate(2)
	if ok, _ := roundTrip(t, old, 200*time.Millisecond); ok {
		t.Fatal("an existing connection of the isolated node still forwards")
	}
	cut := dial()
	if ok, _ := roundTrip(t, cut, 200*time.Millisecond); ok {
		t.Fatal("a new connection of the isolated node forwards")
	}
	n.Heal()
	for _, c := range []net.Conn{old, cut} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a blackholed connection was not closed by Heal")
		}
	}
	if ok, err := roundTrip(t, dial(), 10*time.Second); !ok {
		t.Fatalf("after healing: %v", err)
	}
}

func TestProcAddr(t *testing.T) {
	if got := procAddr("127.0.0.1:8080"); got != "0100007F:1F90" {
		t.Fatal(got)
	}
}

// TestProxyDownUp: a proxy that is down refuses connections, and serves again on the same
// address once up.
func TestProxyDownUp(t *testing.T) {
	n := NewNet(nil)
	defer n.Close()
	p, err := n.Listen(1, echo(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Down()
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Fatal("a proxy that is down accepts connections")
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := roundTrip(t, c, 10*time.Second); !ok {
		t.Fatalf("after Up: %v", err)
	}
}
