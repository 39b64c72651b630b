package broker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/storage"
	"github.com/samsa-io/samsa/internal/wire"
)

// pipelineDepth bounds how many decoded requests of one connection wait for their turn. With the
// frame limit it bounds a connection's memory; Kafka itself handles one request per connection
// at a time, so a small read-ahead is all pipelining needs.
const pipelineDepth = 8

// request is one decoded request with its header, in flight on a connection.
type request struct {
	hdr  wire.RequestHeader
	kreq kmsg.Request
	conn *conn
	// bufs holds pooled buffers the response refers to, released once it is written.
	bufs readBuffers
	// regions are the fetch partitions whose records go out by sendfile from the segment
	// file rather than from memory.
	regions map[*kmsgPartition]*storage.Region
	// frame is the buffer the request was read into, charged to the broker's budget until
	// the request is handled (release).
	frame []byte
	// Client quotas (quotas_enforce.go, throttle.go): quotaExempt marks a replica's fetch;
	// bandwidthThrottle is the produce/fetch byte-rate throttle its handler computed; waited
	// is the time the handler spent waiting for events; throttled says the response carries
	// a throttle (it is flushed at once, before the connection's mute).
	size              int // of the request frame, recorded against producer_byte_rate
	quotaExempt       bool
	bandwidthThrottle time.Duration
	waited            time.Duration
	throttled         bool
	// arrived is when the reader had the request whole, on a SASL connection (a request read
	// before its session expired is served, security.go) or with metrics (its latency,
	// metrics.go); zero otherwise.
	arrived time.Time
}

// release gives the request's frame back to the budget once it is handled, and recycles a
// produce request's buffer (its decoded form aliases the frame but is not kept once the
// records are appended; other requests' frames are left to the GC, as handlers may keep slices
// of them, group metadata for one).
func (r *request) release() {
	if r.frame == nil {
		return
	}
	r.conn.b.budget.release(int64(cap(r.frame)))
	if r.hdr.Key == kmsg.Produce.Int16() {
		putFrameBuffer(r.frame)
	}
	r.frame = nil
}

// conn is one client connection. Its reader goroutine (serve) decodes frames and queues them;
// a handler goroutine, started by the reader when it queues a request and none runs, handles
// them in order, writes the responses in order and ends once the queue is empty, so an idle
// connection has one goroutine.
type conn struct {
	b  *Broker
	nc net.Conn
	// listener is the name of the listener the connection came in on (Metadata answers with
	// the brokers' endpoints on the same listener).
	listener string
	// controllerPort: the connection came in on the controller listener, which serves only
	// the controller's APIs (controllerListenerAPIs).
	controllerPort bool
	// heartbeatOf is the broker whose heartbeats this connection carried (set by the
	// handler; read once the connection is done).
	heartbeatOf *brokerRef
	// sec is the listener's security (nil: plain). security.go has the state machine.
	sec *listenerSecurity
	// authenticated says the client may use every API: at once on PLAINTEXT and SSL
	// listeners, after a successful SASL exchange on SASL ones.
	authenticated atomic.Bool
	// principal is the authenticated principal (User:alice, User:CN=...,
	// User:ANONYMOUS), kept for authorization. Set before authenticated.
	principal string
	// tokenAuthenticated: the SASL login used a delegation token (its owner is the
	// principal); such a connection may not ask for tokens. Handler only.
	tokenAuthenticated bool
	// sasl is the SASL exchange and session (security.go), handler only but for rawTokens,
	// which the reader reads once the handler is done.
	sasl saslState
	// closeAfterResponse closes the connection once the current response is written (a
	// failed authentication). Handler only.
	closeAfterResponse bool
	// mutedUntil is when the connection's throttle ends (unix nanoseconds; throttle.go).
	mutedUntil atomic.Int64
	ctx        context.Context
	cancel     context.CancelFunc
	// waitCtx ends with ctx or as soon as the reader stops (the client closed the connection,
	// or sent something unreadable). The handlers that wait for something to happen (a fetch's
	// long poll, JoinGroup and SyncGroup) wait on it, so that a client that leaves does not
	// keep its connection, goroutines and file descriptor until the wait times out; work the
	// client already asked for (an append, a topic creation) still completes under ctx, as
	// Kafka handles requests it has received from a connection that then closed.
	waitCtx    context.Context
	cancelWait context.CancelFunc

	// tlsBatch, on a TLS listener, gathers the TLS records of the handler's responses into
	// few socket writes (tls_batch.go); nil otherwise.
	tlsBatch *tlsWriteBatcher

	// reqs holds the requests decoded and not handled yet, in arrival order.
	reqs chan *request
	// handlers counts the handler goroutine (at most one runs), so that the reader can wait
	// for it when the connection ends.
	handlers sync.WaitGroup
	mu       struct {
		sync.Mutex
		// handling says a handler goroutine runs; it ends once it finds reqs empty under mu.
		handling bool
		// failed says the handler closed the connection: no handler starts again.
		failed bool
	}
}

func (b *Broker) newConn(nc net.Conn, listener string) *conn {
	ctx, cancel := context.WithCancel(b.ctx)
	// waitCtx derives from the broker's context rather than ctx, which would give every
	// connection a map of its children; it is ended wherever ctx is (fail, serve).
	waitCtx, cancelWait := context.WithCancel(b.ctx)
	return &conn{
		waitCtx:        waitCtx,
		cancelWait:     cancelWait,
		b:              b,
		nc:             nc,
		listener:       listener,
		controllerPort: listener == b.cfg.ControllerListener,
		ctx:            ctx,
		cancel:         cancel,
		reqs:           make(chan *request, pipelineDepth),
	}
}

// remote is the client's address.
func (c *conn) remote() string { return c.nc.RemoteAddr().String() }

// logger is the broker's logger with the client's address, built when a line is logged rather
// than kept by every connection.
func (c *conn) logger() *slog.Logger { return c.b.log.With("remote", c.remote()) }

// writeBuffers are the buffers of a connection's writer, taken from a pool when a response is
// written and given back once everything queued is flushed, so that an idle connection holds
// none.
type writeBuffers struct {
	w              *bufio.Writer
	out, fetchMeta []byte
}

var writeBufferPool = sync.Pool{New: func() any { return &writeBuffers{w: bufio.NewWriterSize(nil, 64<<10)} }}

func getWriteBuffers(nc net.Conn) *writeBuffers {
	wb := writeBufferPool.Get().(*writeBuffers)
	wb.w.Reset(nc)
	return wb
}

func (wb *writeBuffers) put() {
	wb.w.Reset(nil)
	if cap(wb.out) > 1<<20 {
		wb.out = nil // do not keep a large buffer in the pool
	}
	if cap(wb.fetchMeta) > 1<<20 {
		wb.fetchMeta = nil
	}
	writeBufferPool.Put(wb)
}

// serve runs the connection until the client closes it, a protocol error occurs, or the broker
// shuts down. Its goroutine is the reader's; once the reader stops, the requests already queued
// are still handled (unless the handler failed) before the connection closes.
func (c *conn) serve() {
	if c.secure() && c.mapTLSPrincipal() {
		c.readLoop()
	}
	c.cancelWait()
	c.handlers.Wait()
	c.nc.Close()
	c.cancel()
	// Left queued only when the handler failed: give their frames back.
	for {
		select {
		case req := <-c.reqs:
			req.release()
		default:
			return
		}
	}
}

// queue hands a decoded request to the handler, starting one if none runs. It waits while
// pipelineDepth requests are queued, and reports false when the connection is ending.
func (c *conn) queue(req *request) bool {
	select {
	case c.reqs <- req:
	default: // full: wait (only now, so that ctx makes its Done channel only when needed)
		select {
		case c.reqs <- req:
		case <-c.ctx.Done():
			req.release()
			return false
		}
	}
	c.mu.Lock()
	start := !c.mu.handling && !c.mu.failed
	if start {
		c.mu.handling = true
		c.handlers.Add(1)
	}
	c.mu.Unlock()
	if start {
		go c.handle()
	}
	return true
}

// handle handles the queued requests in order and writes their responses, until it finds the
// queue empty: it then flushes, gives its write buffers back and ends. The reader starts
// another handler for the next request (it queues before it looks at handling, and handle
// looks at the queue under mu before it clears handling, so no request is left behind).
func (c *conn) handle() {
	defer c.handlers.Done()
	var wb *writeBuffers
	defer func() {
		if wb != nil {
			if c.tlsBatch != nil {
				c.tlsBatch.flush(true) // the connection is closing: nothing more is gathered
			}
			wb.put()
		}
	}()
	for {
		var req *request
		select {
		case req = <-c.reqs:
		default:
			// Nothing queued: push what is buffered to the client and give the buffers back
			// before ending.
			if wb != nil {
				err := c.flush(wb, true)
				wb.put()
				wb = nil
				if err != nil {
					c.fail("write failed", err)
					return
				}
			}
			c.mu.Lock()
			done := len(c.reqs) == 0
			if done {
				c.mu.handling = false
			}
			c.mu.Unlock()
			if done {
				return
			}
			continue
		}
		c.waitMuted() // a throttled connection handles nothing until its throttle has passed
		resp, err := c.b.dispatch(req)
		if err == nil {
			c.requestDone(req, resp)
		}
		req.release()
		if err == nil && resp != nil {
			if wb == nil {
				wb = getWriteBuffers(c.nc)
				if c.tlsBatch != nil {
					c.tlsBatch.start()
				}
			}
			err = c.writeResponse(wb, req, resp)
			req.bufs.release()
			if err == nil && req.throttled {
				err = c.flush(wb, false) // answer at once, then stay muted (KIP-219)
			}
			if err == nil && c.closeAfterResponse {
				c.flush(wb, true)
				c.fail("", nil)
				return
			}
			if err != nil {
				c.fail("write failed", err)
				return
			}
			continue
		}
		req.bufs.release()
		if err != nil {
			c.logger().Warn("closing connection", "api_key", req.hdr.Key, "api_version", req.hdr.Version, "err", err)
			if wb != nil {
				c.flush(wb, true)
			}
			c.fail("", nil)
			return
		}
		// resp == nil: an acks=0 produce, which gets no response.
	}
}

// flush pushes what the handler has written to the client: the response buffer, then on a
// TLS listener the gathered records. stop ends the gathering (the handler is done, or the
// connection closes).
func (c *conn) flush(wb *writeBuffers, stop bool) error {
	err := wb.w.Flush()
	if c.tlsBatch != nil {
		if ferr := c.tlsBatch.flush(stop || err != nil); err == nil {
			err = ferr
		}
	}
	return err
}

// fail closes the connection from its handler: no handler starts again, and closing the
// socket and ending ctx stop the reader, which then releases the requests still queued.
func (c *conn) fail(msg string, err error) {
	if err != nil {
		c.logger().Debug(msg, "err", err)
	}
	c.mu.Lock()
	c.mu.failed = true
	c.mu.handling = false
	c.mu.Unlock()
	c.nc.Close()
	c.cancelWait()
	c.cancel()
}

// writeResponse writes one response behind those already buffered in w. Fetch responses
// leave their record batches where they are and go out in one vectored write.
func (c *conn) writeResponse(wb *writeBuffers, req *request, resp kmsg.Response) error {
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		if fetchEncodable(fr) {
			segs := appendFetchFrame(wb.fetchMeta[:0], req.hdr.CorrelationID, fr, req.regions)
			wb.fetchMeta = segs[0].mem[:0]
			if !c.canSendfile() {
				// TLS: no file regions; the segments go through the buffered writer, so the
				// records are sealed in few large TLS records rather than one per segment.
				for _, sg := range segs {
					if _, err := wb.w.Write(sg.mem); err != nil {
						return err
					}
				}
				return nil
			}
			if err := wb.w.Flush(); err != nil {
				return err
			}
			return writeSegments(c.nc, segs)
		}
		if err := materializeRegions(req.regions); err != nil {
			return err
		}
	}
	wb.out = wire.AppendResponse(wb.out[:0], req.hdr.CorrelationID, resp)
	_, err := wb.w.Write(wb.out)
	return err
}

// canSendfile reports whether fetched records may go out with sendfile: plain TCP only.
func (c *conn) canSendfile() bool {
	_, ok := c.nc.(*net.TCPConn)
	return ok
}

// readLoop decodes frames into requests and queues them until an error. Malformed input, a
// frame not complete within samsa.request.read.timeout.ms and an idle connection past
// connections.max.idle.ms close the connection with one log line.
func (c *conn) readLoop() {
	r := newConnReader(c)
	defer r.close()
	for {
		c.waitMuted() // KIP-219: no request is read while the connection is throttled
		r.nextFrame()
		maxFrame := c.b.cfg.SocketRequestMaxBytes
		if !c.authenticated.Load() {
			// Before SASL authentication a frame is bounded as Kafka bounds it
			// (sasl.server.max.receive.size), so that no one unauthenticated can make the
			// broker take socket.request.max.bytes.
			maxFrame = min(maxFrame, saslMaxReceiveSize)
		}
		frame, err := wire.ReadFrame(r, maxFrame, nil, r)
		if err != nil {
			c.logReadEnd(r, err)
			return
		}
		req, err := c.decode(frame)
		if err != nil {
			c.logger().Warn("closing connection: bad request", "err", err)
			return
		}
		req.frame = r.takeFrame()
		req.size = len(frame)
		if c.b.metrics != nil || c.sec != nil && c.sec.sasl != nil {
			req.arrived = time.Now()
		}
		if !c.queue(req) {
			return
		}
		if !c.authenticated.Load() {
			// Before authentication every request is handled before the next frame is read
			// (security.go).
			c.handlers.Wait()
			c.mu.Lock()
			failed := c.mu.failed
			c.mu.Unlock()
			if failed {
				return
			}
			if c.sasl.rawTokens && !c.authenticated.Load() && !c.readRawTokens(r) {
				return
			}
		}
	}
}

// logReadEnd logs why the reader stopped, unless the client closed the connection or the
// broker is closing it.
func (c *conn) logReadEnd(r *connReader, err error) {
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || c.ctx.Err() != nil:
	case errors.Is(err, os.ErrDeadlineExceeded) && r.inFrame:
		c.logger().Info("closing connection: request not received within samsa.request.read.timeout.ms",
			"timeout", c.b.requestReadTimeout, "received_bytes", len(r.frame))
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.logger().Info("closing idle connection (connections.max.idle.ms)", "idle", c.b.idleTimeout)
	default:
		c.logger().Info("closing connection", "err", err)
	}
}
