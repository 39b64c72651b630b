package broker

import (
	"bufio"
	"sync"
	"syscall"
	"time"
)

// readBufferSize is the size of the pooled read buffers a connection holds while it has bytes
// buffered: one read takes in several pipelined requests.
const readBufferSize = 64 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// connReader is a connection's reader side: an io.Reader for wire.ReadFrame that holds a
// pooled read buffer only while bytes are buffered in it (before a read that may block it gives
// the buffer back and waits for the socket to be readable without one, so an idle connection,
// or one trickling a frame, holds no read buffer), the wire.Grower that gives frames pooled
// buffers within the broker's budget, and the read deadlines: connections.max.idle.ms between
// frames, samsa.request.read.timeout.ms from a frame's first byte to its last.
type connReader struct {
	c   *conn
	raw syscall.RawConn // nil when the connection is not a socket: the buffer is then kept
	br  *bufio.Reader
	// frame is the buffer of the frame being read; its capacity is charged to the budget.
	frame []byte
	// inFrame says a frame has started arriving; deadline is when it must be complete.
	inFrame  bool
	deadline time.Time
}

func newConnReader(c *conn) *connReader {
	r := &connReader{c: c}
	if sc, ok := c.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	return r
}

// nextFrame arms the idle deadline before a frame's first byte.
func (r *connReader) nextFrame() {
	r.inFrame = false
	if idle := r.c.b.idleTimeout; idle > 0 {
		r.c.nc.SetReadDeadline(time.Now().Add(idle))
	} else {
		r.c.nc.SetReadDeadline(time.Time{})
	}
}

// Read reads through the pooled buffer, taking one only once the socket has bytes to read.
func (r *connReader) Read(p []byte) (int, error) {
	if r.br != nil && r.br.Buffered() == 0 && r.raw != nil {
		r.releaseBuffer()
	}
	if r.br == nil {
		if err := r.waitReadable(); err != nil {
			return 0, err
		}
		r.br = readerPool.Get().(*bufio.Reader)
		r.br.Reset(r.c.nc)
	}
	n, err := r.br.Read(p)
	if n > 0 && !r.inFrame {
		r.inFrame = true
		if t := r.c.b.requestReadTimeout; t > 0 {
			r.deadline = time.Now().Add(t)
			r.c.nc.SetReadDeadline(r.deadline)
		}
	}
	return n, err
}

// Buffered reports the bytes received and not read yet (wire.ReadFrame grows a frame's
// buffer at once to them).
func (r *connReader) Buffered() int {
	if r.br == nil {
		return 0
	}
	return r.br.Buffered()
}

// waitReadable waits, holding no buffer, until the socket has a byte to read, has been closed
// by the peer, or fails (the read that follows reports it); the read deadline applies.
func (r *connReader) waitReadable() error {
	if r.raw == nil {
		return nil
	}
	return r.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait for the poller
			}
			return true
		}
	})
}

func (r *connReader) releaseBuffer() {
	r.br.Reset(nil)
	readerPool.Put(r.br)
	r.br = nil
}

// Grow gives the frame being read a pooled buffer of at least n bytes, once the broker's
// budget grants it; the time spent waiting for the budget extends the frame's deadline (the
// client was not slow then).
func (r *connReader) Grow(b []byte, n int) ([]byte, error) {
	class, size := frameClass(n), n // beyond the pooled sizes, exactly what is asked
	if n <= maxPooledFrame {
		size = 1 << (class + minFrameClass)
	}
	waited, err := r.c.b.budget.acquire(r.c.ctx, int64(cap(r.frame)), int64(size))
	if err != nil {
		return nil, err
	}
	if waited > 0 && r.inFrame && !r.deadline.IsZero() {
		r.deadline = r.deadline.Add(waited)
		r.c.nc.SetReadDeadline(r.deadline)
	}
	var nb []byte
	if n <= maxPooledFrame {
		nb = getFrameBuffer(class)[:len(b)]
	} else {
		nb = make([]byte, len(b), size)
	}
	copy(nb, b)
	r.dropFrame()
	r.frame = nb
	return nb, nil
}

// takeFrame hands the frame just read to its request, which releases it once handled.
func (r *connReader) takeFrame() []byte {
	f := r.frame
	r.frame = nil
	return f
}

// dropFrame releases the buffer of the frame being read.
func (r *connReader) dropFrame() {
	if r.frame == nil {
		return
	}
	r.c.b.budget.release(int64(cap(r.frame)))
	putFrameBuffer(r.frame)
	r.frame = nil
}

// close gives back what the reader holds when the connection's reader ends.
func (r *connReader) close() {
	r.dropFrame()
	if r.br != nil {
		r.releaseBuffer()
	}
}
