package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// This file is the broker lifecycle, after Kafka's ClusterControlManager and
// BrokerHeartbeatManager: registration (broker epochs, fenced at first), heartbeats (unfencing
// a caught-up broker, controlled shutdown) and session expiry (fencing a silent broker and
// moving its leaderships).

// defaultBrokerSessionTimeout is broker.session.timeout.ms's default.
const defaultBrokerSessionTimeout = 9 * time.Second

// maxSessionCheckInterval bounds the period of RunBrokerSessions' checks.
const maxSessionCheckInterval = time.Second

// brokerSessions is the active controller's record of broker heartbeats. It is in-memory and
// leader-only, like Kafka's BrokerHeartbeatManager: a node that becomes leader (a new Raft term)
// starts afresh, giving every registered broker a full session from that moment, since it
// cannot know when the brokers last heartbeated to the previous leader. Guarded by
// Controller.mu.
type brokerSessions struct {
	term        uint64
	lastContact map[int32]time.Time
	// heard holds, per broker, the broker epoch whose heartbeat (or registration) this
	// leader received in this term: evidence that the process of that registration runs,
	// which the sessions given at the start of a term are not.
	heard map[int32]int64
}

// contact records that broker id, at broker epoch epoch, reached this leader at now.
func (s *brokerSessions) contact(id int32, epoch int64, now time.Time) {
	s.lastContact[id] = now
	s.heard[id] = epoch
}

// hasLiveSession reports whether registered broker b has a live session with this leader, as
// Kafka's BrokerHeartbeatManager.hasValidSession: b is unfenced and a heartbeat of its
// current epoch reached this leader, in this term, within timeout. The full session every
// broker is given when a node becomes leader does not count: it only delays fencing and is no
// evidence that the process runs (a node restarted after a failover, or a single node whose
// controller restarted with it, would otherwise be refused for a whole session).
func (s *brokerSessions) hasLiveSession(b metadata.Broker, now time.Time, timeout time.Duration) bool {
	if b.Fenced {
		return false
	}
	if epoch, ok := s.heard[b.ID]; !ok || epoch != b.Epoch {
		return false
	}
	last, ok := s.lastContact[b.ID]
	return ok && now.Sub(last) <= timeout
}

// HeartbeatRequest is one broker heartbeat (Kafka's BrokerHeartbeatRequest).
type HeartbeatRequest struct {
	BrokerID    int32
	BrokerEpoch int64
	// CurrentMetadataOffset is the last metadata log index the broker has applied.
	CurrentMetadataOffset int64
	// WantFence asks to stay (or become) fenced; WantShutDown asks for a controlled shutdown.
	WantFence, WantShutDown bool
}

// HeartbeatResult is the controller's answer to a heartbeat.
type HeartbeatResult struct {
	// IsCaughtUp: the broker has applied the log up to its registration.
	IsCaughtUp bool
	// IsFenced: the broker is fenced after this heartbeat.
	IsFenced bool
	// ShouldShutDown: the controlled shutdown is complete; the broker may stop.
	ShouldShutDown bool
}

// sessionTimeout returns Config.BrokerSessionTimeout or its default.
func (c *Controller) sessionTimeout() time.Duration {
	if c.cfg.BrokerSessionTimeout > 0 {
		return c.cfg.BrokerSessionTimeout
	}
	return defaultBrokerSessionTimeout
}

// now reads the sessions' clock (Config.Now).
func (c *Controller) now() time.Time {
	if c.cfg.Now != nil {
		return c.cfg.Now()
	}
	return time.Now()
}

// sessionsLocked returns the heartbeat times of the current leadership, starting them afresh
// (every registered broker contacted now) when the Raft term changed since they were kept.
func (c *Controller) sessionsLocked() map[int32]time.Time {
	s := &c.mu.sessions
	if term := c.raft.CurrentTerm(); s.lastContact == nil || s.term != term {
		s.term = term
		s.lastContact = make(map[int32]time.Time)
		s.heard = make(map[int32]int64)
		now := c.now()
		for id := range c.Image().Brokers {
			s.lastContact[id] = now
		}
	}
	return s.lastContact
}

// recordPlan accumulates the records of one proposal and the image they lead to, so that each
// step is computed against the previous steps' result (e.g. two brokers fenced in one pass).
type recordPlan struct {
	img  *metadata.Image
	recs []metadata.Record
}

// add applies recs to the plan's image and appends them. An error is a bug in the caller.
func (p *recordPlan) add(recs ...metadata.Record) error {
	if len(recs) == 0 {
		return nil
	}
	next, err := p.img.ApplyBatch(p.img.Index, recs)
	if err != nil {
		return fmt.Errorf("%w: planning metadata records: %w", kerr.UnknownServerError, err)
	}
	p.img, p.recs = next, append(p.recs, recs...)
	return nil
}

// addRemoval adds the partition changes that take broker id out of leaderships and ISRs.
// They touch each partition once, so they are applied as one batch: applying them one by one
// copied a topic's partitions per change, quadratic in the partitions a broker leads (a
// controlled shutdown of a broker leading 10,000 partitions of one topic took minutes).
func (p *recordPlan) addRemoval(id int32, uncleanDefault bool) error {
	return p.add(partitionRecords(removeBrokerChanges(p.img, id, uncleanDefault))...)
}

// partitionRecords converts partition changes to records.
func partitionRecords(changes []metadata.PartitionChange) []metadata.Record {
	recs := make([]metadata.Record, len(changes))
	for i, c := range changes {
		recs[i] = c
	}
	return recs
}

// addFence adds the records of fencing broker b: its partitions first, then the registration
// change (as Kafka's handleBrokerFenced).
func (p *recordPlan) addFence(b metadata.Broker, uncleanDefault bool) error {
	if err := p.addRemoval(b.ID, uncleanDefault); err != nil {
		return err
	}
	if b.Fenced {
		return nil
	}
	return p.add(metadata.BrokerRegistrationChange{ID: b.ID, Epoch: b.Epoch, Fenced: ptrTo(true)})
}

func ptrTo[T any](v T) *T { return &v }

// RegisterBroker registers b and returns its broker epoch (the log index of the registration).
// A new registration replaces an earlier one with the same ID and is fenced until a heartbeat
// shows the broker caught up; the partitions keep it as replica, leader and ISR member
// meanwhile (Kafka without KIP-966), and session expiry moves them if it never heartbeats. A
// registration with the same non-zero incarnation ID as the current one is a retry: it returns
// the current epoch and writes nothing, as Kafka. Another incarnation is refused with
// DUPLICATE_BROKER_REGISTRATION while the current one has a live session (hasLiveSession), as
// Kafka's ClusterControlManager.registerBroker: the registering process retries until the old
// one is fenced (at once when its process is gone, see deadbrokers.go, else when its session
// expires). The error wraps a *kerr.Error.
func (c *Controller) RegisterBroker(ctx context.Context, b metadata.Broker) (epoch int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return -1, err
	}
	if b.ID < 0 {
		return -1, fmt.Errorf("%w: broker ID %d is negative", kerr.InvalidRequest, b.ID)
	}
	c.sessionsLocked()
	sessions, now := &c.mu.sessions, c.now()
	if old, ok := c.Image().Brokers[b.ID]; ok {
		switch {
		case !b.IncarnationID.IsZero() && old.IncarnationID == b.IncarnationID:
			sessions.contact(b.ID, old.Epoch, now)
			return old.Epoch, nil
		case old.IncarnationID != b.IncarnationID && sessions.hasLiveSession(old, now, c.sessionTimeout()):
			c.logger.Warn("refused a registration: another incarnation of the broker has a live session",
				"broker", b.ID, "incarnation", b.IncarnationID, "registered_incarnation", old.IncarnationID, "epoch", old.Epoch,
				"last_heartbeat_ago", now.Sub(sessions.lastContact[b.ID]).String())
			return -1, fmt.Errorf("%w: broker %d is registered with incarnation %s, whose session is live", kerr.DuplicateBrokerRegistration, b.ID, old.IncarnationID)
		}
	}
	b.Epoch, b.Fenced, b.InControlledShutdown = 0, true, false
	img, err := c.proposeLocked(ctx, metadata.RegisterBroker(b))
	if err != nil {
		return -1, err
	}
	epoch = img.Brokers[b.ID].Epoch
	sessions.contact(b.ID, epoch, c.now())
	c.logger.Info("registered broker", "broker", b.ID, "epoch", epoch, "rack", b.Rack, "incarnation", b.IncarnationID)
	return epoch, nil
}

// RegisterAndUnfence registers b and heartbeats once for it with the metadata index this node
// has applied, so that a broker in the controller's own process (the single-node server) is
// unfenced at once. It fails if the broker stays fenced.
func (c *Controller) RegisterAndUnfence(ctx context.Context, b metadata.Broker) (epoch int64, err error) {
	epoch, err = c.RegisterBroker(ctx, b)
	if err != nil {
		return epoch, err
	}
	res, err := c.BrokerHeartbeat(ctx, HeartbeatRequest{BrokerID: b.ID, BrokerEpoch: epoch, CurrentMetadataOffset: int64(c.Image().Index)})
	if err != nil {
		return epoch, err
	}
	if res.IsFenced {
		return epoch, fmt.Errorf("%w: broker %d is still fenced after its first heartbeat", kerr.BrokerNotAvailable, b.ID)
	}
	return epoch, nil
}

// BrokerHeartbeat records a heartbeat and moves the broker through Kafka's states
// (BrokerHeartbeatManager.calculateNextBrokerState):
//
//   - fenced: unfenced once CurrentMetadataOffset reaches its registration (unless WantFence);
//     leaderless partitions it replicates then elect leaders. WantShutDown: shut down now.
//   - active: WantFence fences it; WantShutDown starts a controlled shutdown (marked in the
//     registration, its leaderships moved away and it leaves every ISR it is not the last
//     member of), or ends it at once if it leads nothing.
//   - in controlled shutdown: once it leads nothing (or with WantFence) it is fenced and told
//     ShouldShutDown.
//
// A wrong epoch or an unknown broker is STALE_BROKER_EPOCH. The error wraps a *kerr.Error.
func (c *Controller) BrokerHeartbeat(ctx context.Context, req HeartbeatRequest) (HeartbeatResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fenced := HeartbeatResult{IsFenced: true}
	if err := c.beginLocked(ctx); err != nil {
		return fenced, err
	}
	img := c.Image()
	b, ok := img.Brokers[req.BrokerID]
	if !ok {
		return fenced, fmt.Errorf("%w: no broker registration found for broker %d", kerr.StaleBrokerEpoch, req.BrokerID)
	}
	if b.Epoch != req.BrokerEpoch {
		return fenced, fmt.Errorf("%w: expected broker epoch %d, but got broker epoch %d", kerr.StaleBrokerEpoch, b.Epoch, req.BrokerEpoch)
	}
	c.sessionsLocked()
	c.mu.sessions.contact(b.ID, b.Epoch, c.now())

	res := HeartbeatResult{IsCaughtUp: req.CurrentMetadataOffset >= b.Epoch}
	plan := recordPlan{img: img}
	unclean := c.cfg.UncleanLeaderElection
	var err error
	shutDownNow := func() {
		res.IsFenced, res.ShouldShutDown = true, true
		err = plan.addFence(b, unclean)
	}
	switch {
	case b.Fenced && (b.InControlledShutdown || req.WantShutDown):
		shutDownNow()
	case b.Fenced && !req.WantFence && res.IsCaughtUp:
		if err = plan.add(metadata.BrokerRegistrationChange{ID: b.ID, Epoch: b.Epoch, Fenced: ptrTo(false)}); err == nil {
			err = plan.add(partitionRecords(unfenceBrokerChanges(plan.img, b.ID, unclean))...)
		}
	case b.Fenced:
		res.IsFenced = true
	case req.WantFence && !req.WantShutDown:
		res.IsFenced = true
		err = plan.addFence(b, unclean)
	case req.WantFence, b.InControlledShutdown && len(img.PartitionsLedBy(b.ID)) == 0:
		shutDownNow()
	case b.InControlledShutdown:
		// Still leading: move what can be moved now (another replica may have come back).
		err = plan.addRemoval(b.ID, unclean)
	case req.WantShutDown && len(img.PartitionsLedBy(b.ID)) == 0:
		shutDownNow()
	case req.WantShutDown:
		if err = plan.add(metadata.BrokerRegistrationChange{ID: b.ID, Epoch: b.Epoch, InControlledShutdown: ptrTo(true)}); err == nil {
			err = plan.addRemoval(b.ID, unclean)
		}
	}
	if err != nil {
		return fenced, err
	}
	if len(plan.recs) > 0 {
		if _, err := c.proposeLocked(ctx, plan.recs...); err != nil {
			return fenced, err
		}
		c.logger.Info("broker state changed by heartbeat", "broker", b.ID, "epoch", b.Epoch, "fenced", res.IsFenced,
			"shutdown", res.ShouldShutDown, "records", len(plan.recs))
	}
	return res, nil
}

// FenceExpiredBrokers fences every broker whose last heartbeat is older than the session
// timeout (Config.BrokerSessionTimeout) and moves its leaderships and ISR memberships away, all
// in one proposal. A broker already fenced whose session expired still has its remaining
// leaderships moved (a re-registered broker that never heartbeated leads nothing for long). It
// returns how many brokers it fenced. Only the active controller does this; elsewhere it fails
// with NOT_CONTROLLER. The error wraps a *kerr.Error.
func (c *Controller) FenceExpiredBrokers(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return 0, err
	}
	img := c.Image()
	sessions := c.sessionsLocked()
	now, timeout := c.now(), c.sessionTimeout()
	plan := recordPlan{img: img}
	var fencedIDs []int32
	for _, id := range img.BrokerIDs() {
		last, ok := sessions[id]
		if !ok {
			sessions[id] = now
			continue
		}
		if now.Sub(last) <= timeout {
			continue
		}
		b := plan.img.Brokers[id]
		if !b.Fenced {
			fencedIDs = append(fencedIDs, id)
		}
		if err := plan.addFence(b, c.cfg.UncleanLeaderElection); err != nil {
			return 0, err
		}
	}
	if len(plan.recs) == 0 {
		return 0, nil
	}
	if _, err := c.proposeLocked(ctx, plan.recs...); err != nil {
		return 0, err
	}
	c.logger.Warn("fenced brokers whose sessions expired", "brokers", fencedIDs, "timeout", timeout.String(), "records", len(plan.recs))
	return len(fencedIDs), nil
}

// RunBrokerSessions checks broker sessions (FenceExpiredBrokers) periodically until ctx ends:
// every quarter of the session timeout, at most every second. The caller runs it in its own
// goroutine on every controller node; it acts only while this node is the active controller.
func (c *Controller) RunBrokerSessions(ctx context.Context) {
	c.runWhileLeader(ctx, min(c.sessionTimeout()/4, maxSessionCheckInterval), func() {
		if _, err := c.FenceExpiredBrokers(ctx); err != nil && ctx.Err() == nil {
			c.logger.Warn("broker session check failed", "err", err)
		}
	})
}

// runWhileLeader calls fn every interval until ctx ends, each time this node is the active
// controller then.
func (c *Controller) runWhileLeader(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.IsLeader() {
			fn()
		}
	}
}
