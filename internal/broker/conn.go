package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
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
	// frame is the buffer the request was read into, recycled after a produce request
	// (whose decoded form aliases it but is not kept once the records are appended).
	frame *bytes.Buffer
}

// framePool recycles the read buffers of produce requests, the broker's most frequent large
// frames. Other requests may keep slices of their frame (group metadata, for example), so
// theirs are left to the garbage collector.
var framePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// recycleFrame returns a produce request's frame buffer to the pool once it is handled.
func (r *request) recycleFrame() {
	if r.frame == nil || r.hdr.Key != kmsg.Produce.Int16() || r.frame.Cap() > 4<<20 {
		return
	}
	r.frame.Reset()
	framePool.Put(r.frame)
	r.frame = nil
}

// conn is one client connection. Its reader goroutine decodes frames and queues them; its
// writer goroutine (serve) handles them in order and writes the responses in order.
type conn struct {
	b      *Broker
	nc     net.Conn
	log    *slog.Logger
	remote string
	// listener is the name of the listener the connection came in on (Metadata answers with
	// the brokers' endpoints on the same listener).
	listener string
	ctx      context.Context
	cancel   context.CancelFunc
	// waitCtx ends with ctx or as soon as the reader stops (the client closed the connection,
	// or sent something unreadable). The handlers that wait for something to happen (a fetch's
	// long poll, JoinGroup and SyncGroup) wait on it, so that a client that leaves does not
	// keep its connection, goroutines and file descriptor until the wait times out; work the
	// client already asked for (an append, a topic creation) still completes under ctx, as
	// Kafka handles requests it has received from a connection that then closed.
	waitCtx    context.Context
	cancelWait context.CancelFunc
}

func (b *Broker) newConn(nc net.Conn, listener string) *conn {
	ctx, cancel := context.WithCancel(b.ctx)
	waitCtx, cancelWait := context.WithCancel(ctx)
	return &conn{
		waitCtx:    waitCtx,
		cancelWait: cancelWait,
		b:          b,
		nc:         nc,
		remote:     nc.RemoteAddr().String(),
		listener:   listener,
		log:        b.log.With("remote", nc.RemoteAddr().String()),
		ctx:        ctx,
		cancel:     cancel,
	}
}

// serve runs the connection until the client closes it, a protocol error occurs, or the broker
// shuts down.
func (c *conn) serve() {
	defer c.nc.Close()
	defer c.cancel()
	reqs := make(chan *request, pipelineDepth)
	go c.readLoop(reqs)
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var out, fetchMeta []byte
	for {
		var req *request
		var ok bool
		select {
		case req, ok = <-reqs:
		default:
			// Nothing queued: push what is buffered to the client before waiting.
			if w.Buffered() > 0 {
				if err := w.Flush(); err != nil {
					c.log.Debug("write failed", "err", err)
					return
				}
			}
			req, ok = <-reqs
		}
		if !ok {
			return
		}
		resp, err := c.b.dispatch(req)
		req.recycleFrame()
		if err == nil && resp != nil {
			err = c.writeResponse(w, req, resp, &out, &fetchMeta)
			req.bufs.release()
			if err != nil {
				c.log.Debug("write failed", "err", err)
				return
			}
			continue
		}
		req.bufs.release()
		if err != nil {
			c.log.Warn("closing connection", "api_key", req.hdr.Key, "api_version", req.hdr.Version, "err", err)
			w.Flush()
			return
		}
		// resp == nil: an acks=0 produce, which gets no response.
	}
}

// writeResponse writes one response behind those already buffered in w. Fetch responses
// leave their record batches where they are and go out in one vectored write.
func (c *conn) writeResponse(w *bufio.Writer, req *request, resp kmsg.Response, out, fetchMeta *[]byte) error {
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		if fetchEncodable(fr) {
			segs := appendFetchFrame((*fetchMeta)[:0], req.hdr.CorrelationID, fr, req.regions)
			*fetchMeta = segs[0].mem[:0]
			if err := w.Flush(); err != nil {
				return err
			}
			return writeSegments(c.nc, segs)
		}
		if err := materializeRegions(req.regions); err != nil {
			return err
		}
	}
	*out = wire.AppendResponse((*out)[:0], req.hdr.CorrelationID, resp)
	_, err := w.Write(*out)
	if cap(*out) > 1<<20 {
		*out = nil // do not keep a large buffer per idle connection
	}
	return err
}

// canSendfile reports whether fetched records may go out with sendfile: plain TCP only.
func (c *conn) canSendfile() bool {
	_, ok := c.nc.(*net.TCPConn)
	return ok
}

// readLoop decodes frames into requests until an error, then closes reqs. Malformed input
// closes the connection with one log line.
func (c *conn) readLoop(reqs chan<- *request) {
	defer close(reqs)
	defer c.cancelWait()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	maxFrame := c.b.cfg.SocketRequestMaxBytes
	for {
		if idle := c.b.idleTimeout; idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		buf := framePool.Get().(*bytes.Buffer)
		frame, err := wire.ReadFrame(r, maxFrame, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.ctx.Err() == nil {
				c.log.Info("closing connection", "err", err)
			}
			return
		}
		req, err := c.decode(frame)
		if err != nil {
			c.log.Warn("closing connection: bad request", "err", err)
			return
		}
		req.frame = buf
		select {
		case reqs <- req:
		case <-c.ctx.Done():
			return
		}
	}
}
