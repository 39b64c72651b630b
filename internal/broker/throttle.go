package broker

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Throttling (KIP-219). A request that puts its client over a quota is answered at once with
// throttle_time_ms, and the connection is muted for that long: the reader reads no further
// request and the handler handles none of those already read until the throttle has passed.
// A response version whose client does not throttle itself (older than KIP-219's) is held
// back for the throttle time instead, as Kafka does.

// applyThrottle records a handled request against the request quota (its bandwidth throttle
// was computed by its handler), sets the response's throttle time and mutes the connection.
// A nil response (acks=0 produce) mutes the connection all the same.
func (b *Broker) applyThrottle(req *request, resp kmsg.Response, handled time.Duration) {
	if resp == nil {
		// Kafka does not count an acks=0 produce against request quotas.
		if req.bandwidthThrottle > 0 {
			req.conn.mute(req.bandwidthThrottle)
		}
		return
	}
	th := b.requestThrottle(req, handled)
	if th <= 0 {
		return
	}
	req.throttled = true
	req.conn.mute(th)
	tr, ok := resp.(kmsg.ThrottleResponse)
	if !ok {
		return
	}
	ms := int32(min(th.Milliseconds(), math.MaxInt32))
	cur, clientThrottles := tr.Throttle()
	if ms > cur {
		resp.(kmsg.SetThrottleResponse).SetThrottle(ms)
	}
	if !clientThrottles {
		req.conn.waitMuted()
	}
}

// mute stops the connection from reading and handling requests for d (or longer, if it is
// muted longer already).
func (c *conn) mute(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.mutedUntil.Load()
		if cur >= until || c.mutedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// waitMuted waits until the connection's throttle has passed, or the connection ends.
func (c *conn) waitMuted() {
	d := time.Until(time.Unix(0, c.mutedUntil.Load()))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// waitedSince adds the time since start to what the request spent waiting for events (not
// counted against request quotas).
func (r *request) waitedSince(start time.Time) { r.waited += time.Since(start) }
