package broker_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// fdConn is a client connection on a blocking socket used through raw system calls: it costs
// this process no goroutine and no heap, so what idle connections add to the process (the
// broker runs in it) is the broker's side alone.
type fdConn int

func dialFD(t *testing.T, addr string) fdConn {
	t.Helper()
	tcp, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Port: tcp.Port}
	copy(sa.Addr[:], tcp.IP.To4())
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	// A broker that stops answering must fail the test, not hang it.
	tv := syscall.Timeval{Sec: 30}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	c := fdConn(fd)
	t.Cleanup(func() { syscall.Close(int(c)) })
	return c
}

func (c fdConn) Read(p []byte) (int, error) {
	n, err := syscall.Read(int(c), p)
	for err == syscall.EINTR { // the Go runtime's preemption signal (SIGURG) interrupts blocking calls
		n, err = syscall.Read(int(c), p)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("read: %w", err)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c fdConn) Write(p []byte) (int, error) {
	for done := 0; done < len(p); {
		n, err := syscall.Write(int(c), p[done:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, fmt.Errorf("write: %w", err)
		}
		done += n
	}
	return len(p), nil
}

// brokerMemory is what the process holds in goroutines, their stacks and live heap.
type brokerMemory struct{ goroutines, stack, heap int64 }

func measureMemory() brokerMemory {
	runtime.GC()
	runtime.GC() // the second cycle shrinks the stacks the first found mostly unused
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return brokerMemory{int64(runtime.NumGoroutine()), int64(ms.StackInuse), int64(ms.HeapAlloc)}
}

// TestIdleConnectionsHaveNoHandler: a connection that did one request and went idle keeps one
// goroutine, its reader; the handler runs only while requests are queued. So the broker's side
// of an idle connection costs well under 10 KiB.
func TestIdleConnectionsHaveNoHandler(t *testing.T) {
	n := testcluster.Start(t)
	const conns = 300
	before := measureMemory()
	for i := range conns {
		c := dialFD(t, n.Addr())
		var req kmsg.Request = kmsg.NewPtrApiVersionsRequest()
		if i%2 == 1 {
			req = kmsg.NewPtrMetadataRequest()
		}
		if _, err := c.Write(rawRequest(req, int32(i))); err != nil {
			t.Fatal(err)
		}
		resp, err := readFrame(c)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if corr := int32(binary.BigEndian.Uint32(resp[4:])); corr != int32(i) {
			t.Fatalf("connection %d: correlation id %d", i, corr)
		}
	}
	// Each connection's reader stays; its handler ends once its response is written. A few
	// goroutines of the broker come and go meanwhile (timers, raft).
	var idle brokerMemory
	waitUntil(t, 30*time.Second, "the idle connections keep one goroutine each", func() bool {
		idle = measureMemory()
		return idle.goroutines-before.goroutines <= conns+conns/10
	})
	perConn := func(a, b int64) int64 { return (a - b) / conns }
	t.Logf("per idle connection: %.2f goroutines, %d B of stack, %d B of heap",
		float64(idle.goroutines-before.goroutines)/conns, perConn(idle.stack, before.stack), perConn(idle.heap, before.heap))
}
