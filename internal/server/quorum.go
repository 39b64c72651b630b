package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
)

// quorumPlan is how this node takes part in the metadata quorum.
type quorumPlan struct {
	// voters are the static voters, or a dynamic quorum's initial voters (this node among
	// them); empty for a single node, a broker of a dynamic quorum and an observer.
	voters []controller.Voter
	// single: a node with no quorum settings (or only its own controller listener as bootstrap
	// server) and no dynamic-quorum format, forming a static quorum alone.
	single bool
	// dynamic: a dynamic quorum (KIP-853), found through controller.quorum.bootstrap.servers.
	dynamic bool
	// observer: a controller of a dynamic quorum that is not an initial voter (formatted with
	// --no-initial-controllers): it starts as a Raft non-voter.
	observer bool
}

// planQuorum reads the quorum settings and, for a controller of a dynamic quorum, the initial
// voters its format wrote (bootstrap file).
func planQuorum(cfg *config.Server) (quorumPlan, error) {
	var p quorumPlan
	for _, v := range cfg.Voters {
		p.voters = append(p.voters, controller.Voter{ID: v.ID, Addr: v.Addr()})
	}
	if !cfg.DynamicQuorum() {
		p.single = cfg.SingleNode()
		return p, nil
	}
	if !cfg.Controller {
		p.dynamic = true
		return p, nil
	}
	boot, ok, err := readBootstrapQuorum(metadataRaftDir(cfg))
	switch {
	case err != nil:
		return p, err
	case !ok && cfg.SingleNode():
		// Kafka's single-node server.properties, not formatted for a dynamic quorum: a static
		// quorum of this node alone, as before dynamic quorums existed.
		p.single = true
		return p, nil
	case !ok:
		return p, fmt.Errorf("this controller of a dynamic quorum (controller.quorum.bootstrap.servers) was not formatted for one: "+
			"samsa storage format --cluster-id <id> --config <file> with --standalone, --initial-controllers or --no-initial-controllers (no %s in %s)",
			bootstrapFile, metadataRaftDir(cfg))
	}
	p.dynamic = true
	if _, mine := boot.voter(cfg.NodeID); !mine {
		p.observer = true
		return p, nil
	}
	for _, v := range boot.Voters {
		p.voters = append(p.voters, controller.Voter{ID: v.ID, Addr: v.Addr(), DirectoryID: v.DirectoryID})
	}
	return p, nil
}

// controllerMembership keeps a controller of a dynamic quorum replicating the metadata log:
// it sends ControllerRegistration to the active controller (found through the bootstrap
// servers while this node knows no leader) at start, and again whenever it has not heard from
// a leader for a while: an observer is added as a Raft non-voter that way, and a removed
// voter that still runs becomes one (as Kafka's removed voters go on fetching as observers).
type controllerMembership struct {
	client   *controllerClient
	local    *controller.Controller
	logger   *slog.Logger
	req      *kmsg.ControllerRegistrationRequest
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
}

func newControllerMembership(cfg *config.Server, client *controllerClient, local *controller.Controller, logger *slog.Logger) *controllerMembership {
	host, port, err := cfg.AdvertisedControllerAddr()
	if err != nil {
		// A port of 0: the bound one.
		h, p, _ := net.SplitHostPort(local.Addr())
		host = h
		port, _ = strconv.Atoi(p)
	}
	req := kmsg.NewPtrControllerRegistrationRequest()
	req.ControllerID = cfg.NodeID
	req.IncarnationID = metadata.RandomUUID()
	l := kmsg.NewControllerRegistrationRequestListener()
	l.Name, l.Host, l.Port = cfg.ControllerListener, host, uint16(port)
	req.Listeners = append(req.Listeners, l)
	for _, f := range controller.SupportedFeatures() {
		rf := kmsg.NewControllerRegistrationRequestFeature()
		rf.Name, rf.MinSupportedVersion, rf.MaxSupportedVersion = f.Name, f.Min, f.Max
		req.Features = append(req.Features, rf)
	}
	return &controllerMembership{client: client, local: local, logger: logger, req: req,
		interval: time.Duration(cfg.Int64("broker.heartbeat.interval.ms")) * time.Millisecond,
		stop:     make(chan struct{}), done: make(chan struct{})}
}

// register sends the registration until the active controller accepts it or ctx ends.
func (m *controllerMembership) register(ctx context.Context) error {
	for {
		resp, err := m.client.request(ctx, m.req, func(r kmsg.Response) bool {
			return r.(*kmsg.ControllerRegistrationResponse).ErrorCode == kerr.NotController.Code
		})
		if err != nil {
			return err
		}
		r := resp.(*kmsg.ControllerRegistrationResponse)
		if r.ErrorCode == 0 {
			return nil
		}
		err = kerr.ErrorForCode(r.ErrorCode)
		if r.ErrorMessage != nil {
			err = fmt.Errorf("%w: %s", err, *r.ErrorMessage)
		}
		if !kerr.IsRetriable(kerr.ErrorForCode(r.ErrorCode)) {
			return err
		}
		wait := m.interval
		if r.ErrorCode == kerr.RequestTimedOut.Code {
			wait = retryBackoff // a new leader applying its log: soon
		} else {
			m.logger.Warn("controller registration refused; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}

// lostAfter is how many heartbeat intervals without hearing from a leader make a controller
// register again.
const lostAfter = 3

// run registers again, every heartbeat interval, while this node has not heard from a leader
// for lostAfter intervals (and is not the leader).
func (m *controllerMembership) run() {
	defer close(m.done)
	for {
		select {
		case <-m.stop:
			return
		case <-time.After(m.interval):
		}
		if m.local.IsLeader() || time.Since(m.local.LastContact()) < lostAfter*m.interval {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*m.interval)
		go func() {
			select {
			case <-m.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := m.register(ctx); err == nil {
			m.logger.Info("registered with the active controller again after losing contact with the quorum's leader")
		}
		cancel()
	}
}

func (m *controllerMembership) close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}
