package broker

import (
	"net"
	"sync"
)

// tlsWriteBatcher sits under the TLS connection of a client on a TLS listener and gathers the
// TLS records of a run of responses into few large socket writes. crypto/tls writes each
// record (at most 16 KiB of plaintext) with its own write call, so a 1 MiB fetch response
// would otherwise take 64 system calls, each running the whole TCP send path; gathered, it
// takes about four. Only the connection's handler turns gathering on (start, after the
// handshake) and it flushes at every point where the responses must reach the client
// (flush). Records written while gathering is off (the handshake, a raw SASL token, the
// close_notify alert) go straight to the socket.
type tlsWriteBatcher struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	buf *[]byte // from tlsBatchPool while gathering
}

// tlsBatchBytes is how much is gathered before it is written without waiting for a flush.
const tlsBatchBytes = 256 << 10

// tlsBatchPool holds gathering buffers, so that only connections writing hold one.
var tlsBatchPool = sync.Pool{New: func() any {
	b := make([]byte, 0, tlsBatchBytes+20<<10) // room for one more full record
	return &b
}}

func (b *tlsWriteBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on {
		return b.Conn.Write(p)
	}
	*b.buf = append(*b.buf, p...)
	if len(*b.buf) >= tlsBatchBytes {
		if err := b.writeLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// start gathers the records written from now on until flush(true).
func (b *tlsWriteBatcher) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on {
		b.on = true
		b.buf = tlsBatchPool.Get().(*[]byte)
	}
}

// flush writes what is gathered; stop also ends gathering and gives the buffer back.
func (b *tlsWriteBatcher) flush(stop bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on {
		return nil
	}
	err := b.writeLocked()
	if stop {
		b.on = false
		tlsBatchPool.Put(b.buf)
		b.buf = nil
	}
	return err
}

func (b *tlsWriteBatcher) writeLocked() error {
	if len(*b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(*b.buf)
	*b.buf = (*b.buf)[:0]
	return err
}
