package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group"
)

// FindCoordinator: v0-v3 name one key, v4+ a batch. v6 (share-group keys) is not served.
func init() { register(kmsg.FindCoordinator.Int16(), 0, 5, handleFindCoordinator) }

// Coordinator key types.
const (
	coordinatorGroup       int8 = 0
	coordinatorTransaction int8 = 1
)

// coordinatorLoadWait bounds how long FindCoordinator waits for this broker to finish loading
// the group's partition, so that the client's next request is served rather than refused with
// COORDINATOR_LOAD_IN_PROGRESS.
const coordinatorLoadWait = 5 * time.Second

func handleFindCoordinator(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		c := b.findCoordinator(req, r.CoordinatorType, key)
		if r.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
			resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
			break
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}

func (b *Broker) findCoordinator(req *request, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key = key
	c.NodeID, c.Port = -1, -1
	fail := func(err *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode = err.Code
		c.ErrorMessage = &msg
		return c
	}
	switch keyType {
	case coordinatorGroup:
	case coordinatorTransaction:
		return fail(kerr.CoordinatorNotAvailable, "transactions are not supported yet")
	default:
		return fail(kerr.InvalidRequest, "unknown coordinator key type")
	}
	img := b.ctrl.Image()
	t, ok := img.Topic(group.OffsetsTopic)
	if !ok {
		if err := b.groups.EnsureTopic(req.conn.ctx); err != nil {
			b.log.Warn("creating the offsets topic", "err", err)
			return fail(kerr.CoordinatorNotAvailable, err.Error())
		}
		img = b.ctrl.Image()
		if t, ok = img.Topic(group.OffsetsTopic); !ok {
			return fail(kerr.CoordinatorNotAvailable, "the offsets topic is being created")
		}
	}
	p := group.PartitionFor(key, int32(len(t.Partitions)))
	leader := t.Partitions[p].Leader
	br, ok := img.Brokers[leader]
	if leader < 0 || !ok {
		return fail(kerr.CoordinatorNotAvailable, "the group's coordinator partition has no leader")
	}
	for _, ep := range br.Endpoints {
		if ep.Listener == req.conn.listener {
			c.NodeID, c.Host, c.Port = leader, ep.Host, ep.Port
		}
	}
	if c.NodeID < 0 {
		return fail(kerr.CoordinatorNotAvailable, "the coordinator has no endpoint on this listener")
	}
	if leader == b.cfg.NodeID {
		ctx, cancel := context.WithTimeout(req.conn.ctx, coordinatorLoadWait)
		b.groups.WaitLoaded(ctx, p)
		cancel()
	}
	return c
}
