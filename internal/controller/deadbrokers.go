package controller

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
)

// A broker process that dies closes its connections at once, a stronger and much earlier
// signal than a session that runs out (broker.session.timeout.ms, 9 s by default). The active
// controller acts on it without trusting it blindly: when the connection a broker heartbeats
// on closes, or when this node becomes the active controller (the sessions then start afresh,
// which would give a dead broker a whole session), it probes the broker's listener; a refused
// connection means no process listens there, and the broker is fenced at once (its
// leaderships move). Anything else (accepted, a timeout: a paused or cut-off broker) leaves it
// to the session timeout. A live broker whose heartbeat connection merely broke is accepted
// by the probe and keeps its session.

// probeTimeout bounds a probe's connection attempt.
const probeTimeout = 500 * time.Millisecond

// brokerGone reports whether broker b's listener refuses connections: no process listens.
func brokerGone(b metadata.Broker) bool {
	if len(b.Endpoints) == 0 {
		return false
	}
	e := b.Endpoints[0]
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))), probeTimeout)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// BrokerConnectionLost is called when the connection that carried broker id's heartbeats (at
// broker epoch epoch) closed. On the active controller it probes the broker and fences it if
// its process is gone. It returns whether it fenced.
func (c *Controller) BrokerConnectionLost(id int32, epoch int64) bool {
	if !c.IsLeader() {
		return false
	}
	b, ok := c.Image().Brokers[id]
	if !ok || b.Epoch != epoch || b.Fenced || b.ID == c.cfg.NodeID {
		return false
	}
	if !c.brokerGone(b) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	fenced, err := c.fenceGone(ctx, id, epoch)
	if err != nil {
		c.logger.Warn("fencing a broker whose process is gone failed", "broker", id, "err", err)
	}
	return fenced
}

// probeBrokers fences every unfenced broker (other than this node) whose process is gone; the
// new active controller runs it once it has applied the log.
func (c *Controller) probeBrokers(ctx context.Context) {
	for _, b := range c.Image().Brokers {
		if b.Fenced || b.ID == c.cfg.NodeID || !c.brokerGone(b) {
			continue
		}
		if _, err := c.fenceGone(ctx, b.ID, b.Epoch); err != nil {
			c.logger.Warn("fencing a broker whose process is gone failed", "broker", b.ID, "err", err)
		}
	}
}

// fenceGone fences broker id at epoch and moves its leaderships and ISR memberships away, in
// one proposal, unless it re-registered or was fenced meanwhile.
func (c *Controller) fenceGone(ctx context.Context, id int32, epoch int64) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return false, err
	}
	img := c.Image()
	b, ok := img.Brokers[id]
	if !ok || b.Epoch != epoch || b.Fenced {
		return false, nil
	}
	plan := recordPlan{img: img}
	if err := plan.addFence(b, c.cfg.UncleanLeaderElection); err != nil {
		return false, err
	}
	if _, err := c.proposeLocked(ctx, plan.recs...); err != nil {
		return false, err
	}
	c.logger.Warn("fenced a broker whose process is gone (its connection closed and its listener refuses connections)",
		"broker", id, "records", len(plan.recs))
	return true, nil
}

func (c *Controller) brokerGone(b metadata.Broker) bool {
	if c.cfg.BrokerGone != nil {
		return c.cfg.BrokerGone(b)
	}
	return brokerGone(b)
}
