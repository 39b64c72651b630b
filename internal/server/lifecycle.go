package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/broker"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
)

// quorumMember is what the broker's controller-listener APIs see of this node's member of
// the metadata quorum (broker.Quorum).
type quorumMember struct {
	*controller.Controller
	client *controllerClient
}

var (
	_ broker.Quorum     = quorumMember{}
	_ broker.Reassigner = quorumMember{}
)

// Forward implements broker.Quorum.
func (q quorumMember) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return q.client.request(ctx, req, nil)
}

// brokerLifecycle registers this broker with the active controller and heartbeats to it, as
// Kafka's BrokerLifecycleManager does: registration (BrokerRegistration) gives the broker
// epoch; heartbeats (BrokerHeartbeat every broker.heartbeat.interval.ms) carry the metadata
// offset this node has applied, which unfences the broker once it caught up, and on shutdown
// ask for a controlled shutdown.
type brokerLifecycle struct {
	client   *controllerClient
	local    *controller.Controller
	logger   *slog.Logger
	reg      metadata.Broker
	interval time.Duration

	epoch        atomic.Int64
	fenced       atomic.Bool
	wantShutdown atomic.Bool
	shutdownOK   chan struct{} // closed when the controller answers ShouldShutDown
	unfenced     chan struct{} // closed when a heartbeat first answers not fenced
	unfenceOnce  sync.Once
	shutdownOnce sync.Once
	stop         chan struct{}
	done         chan struct{}
}

func newBrokerLifecycle(client *controllerClient, local *controller.Controller, logger *slog.Logger, reg metadata.Broker, interval time.Duration) *brokerLifecycle {
	l := &brokerLifecycle{client: client, local: local, logger: logger, reg: reg, interval: interval,
		shutdownOK: make(chan struct{}), unfenced: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	l.epoch.Store(-1)
	l.fenced.Store(true)
	return l
}

// Backoff of a registration refused with DUPLICATE_BROKER_REGISTRATION: the previous
// process of this node (a restart) still has a live session, which ends when the controller
// fences it (at once when it finds the process gone, else at session expiry).
const (
	duplicateBackoffMin = 100 * time.Millisecond
	duplicateBackoffMax = 500 * time.Millisecond
)

// register sends the registration until the active controller accepts it or ctx ends. A
// registration refused as a duplicate is retried (as Kafka's BrokerLifecycleManager does),
// never given up: the registration it collides with is this node's previous process.
func (l *brokerLifecycle) register(ctx context.Context, clusterID string) error {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = l.reg.ID
	req.ClusterID = clusterID
	req.IncarnationID = l.reg.IncarnationID
	if l.reg.Rack != "" {
		req.Rack = kmsg.StringPtr(l.reg.Rack)
	}
	for _, e := range l.reg.Endpoints {
		rl := kmsg.NewBrokerRegistrationRequestListener()
		rl.Name, rl.Host, rl.Port = e.Listener, e.Host, uint16(e.Port)
		switch e.SecurityProtocol {
		case "SSL":
			rl.SecurityProtocol = 1
		case "SASL_PLAINTEXT":
			rl.SecurityProtocol = 2
		case "SASL_SSL":
			rl.SecurityProtocol = 3
		}
		req.Listeners = append(req.Listeners, rl)
	}
	req.PreviousBrokerEpoch = -1
	duplicateBackoff := duplicateBackoffMin
	for {
		resp, err := l.client.request(ctx, req, func(r kmsg.Response) bool {
			return r.(*kmsg.BrokerRegistrationResponse).ErrorCode == kerr.NotController.Code
		})
		if err != nil {
			return err
		}
		r := resp.(*kmsg.BrokerRegistrationResponse)
		if r.ErrorCode == 0 {
			l.epoch.Store(r.BrokerEpoch)
			l.logger.Info("registered with the active controller", "broker_epoch", r.BrokerEpoch)
			return nil
		}
		err = kerr.ErrorForCode(r.ErrorCode)
		backoff := l.interval
		switch {
		case errors.Is(err, kerr.DuplicateBrokerRegistration):
			if duplicateBackoff == duplicateBackoffMin {
				l.logger.Warn("broker registration refused: the controller still has a live session of this broker's previous incarnation; retrying until it is fenced", "err", err)
			}
			backoff, duplicateBackoff = duplicateBackoff, min(2*duplicateBackoff, duplicateBackoffMax)
		case !kerr.IsRetriable(err):
			return err
		default:
			l.logger.Warn("broker registration refused; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(backoff):
		}
	}
}

// waitUnfenced waits until a heartbeat answered that this broker is not fenced.
func (l *brokerLifecycle) waitUnfenced(ctx context.Context) error {
	select {
	case <-l.unfenced:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Epoch returns the broker epoch (-1 before registration).
func (l *brokerLifecycle) Epoch() int64 { return l.epoch.Load() }

// run heartbeats until stop. The first heartbeat goes at once, so a broker that has caught up
// is unfenced without waiting an interval.
func (l *brokerLifecycle) run() {
	defer close(l.done)
	for {
		l.heartbeat()
		select {
		case <-l.stop:
			return
		case <-time.After(l.interval):
		}
	}
}

func (l *brokerLifecycle) heartbeat() {
	ctx, cancel := context.WithTimeout(context.Background(), l.interval*2)
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID = l.reg.ID
	req.BrokerEpoch = l.epoch.Load()
	req.CurrentMetadataOffset = int64(l.local.Image().Index)
	req.WantShutdown = l.wantShutdown.Load()
	resp, err := l.client.request(ctx, req, func(r kmsg.Response) bool {
		return r.(*kmsg.BrokerHeartbeatResponse).ErrorCode == kerr.NotController.Code
	})
	if err != nil {
		return // logged by nobody: a controller failover shows in its own logs
	}
	r := resp.(*kmsg.BrokerHeartbeatResponse)
	if r.ErrorCode != 0 {
		l.logger.Warn("broker heartbeat refused", "err", kerr.ErrorForCode(r.ErrorCode))
		return
	}
	if was := l.fenced.Swap(r.IsFenced); was != r.IsFenced {
		l.logger.Info("broker fencing changed", "fenced", r.IsFenced)
	}
	if !r.IsFenced {
		l.unfenceOnce.Do(func() { close(l.unfenced) })
	}
	if r.ShouldShutdown {
		l.shutdownOnce.Do(func() { close(l.shutdownOK) })
	}
}

// controlledShutdown asks the controller to move this broker's leaderships away and waits
// until it answers ShouldShutDown, or timeout.
func (l *brokerLifecycle) controlledShutdown(timeout time.Duration) bool {
	l.wantShutdown.Store(true)
	deadline := time.After(timeout)
	lastLeader := time.Now()
	for {
		if _, _, ok := l.local.Leader(); ok {
			lastLeader = time.Now()
		} else if time.Since(lastLeader) > noControllerGiveUp {
			// No quorum (the other voters are gone): nobody can move the leaderships.
			return false
		}
		l.heartbeat()
		select {
		case <-l.shutdownOK:
			return true
		case <-deadline:
			return false
		case <-time.After(min(l.interval, 200*time.Millisecond)):
		}
	}
}

// noControllerGiveUp is how long a controlled shutdown waits for the quorum to have a leader
// before it gives up: without one no leadership can move.
const noControllerGiveUp = 2 * time.Second

func (l *brokerLifecycle) close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}
