package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// Membership of a dynamic quorum (KIP-853). Raft's configuration says who votes; the image
// describes the controllers (metadata.Controller: directory id, endpoints). A controller
// formatted with --no-initial-controllers starts as a Raft non-voter and asks the active
// controller to replicate to it (ControllerRegistration → RegisterController); AddRaftVoter
// promotes it once it has caught up (AddVoter), RemoveRaftVoter takes a voter out
// (RemoveVoter). A static quorum (kraft.version 0) refuses both, as Kafka does.

// kraftVersionDynamic is the kraft.version of a dynamic quorum.
const kraftVersionDynamic int16 = 1

// dynamicBootstrapRecords are the first records of a new dynamic quorum: kraft.version 1 and
// the initial voters' descriptions.
func (c *Controller) dynamicBootstrapRecords() []metadata.Record {
	recs := []metadata.Record{metadata.FeatureLevel{Name: FeatureKRaftVersion, Level: kraftVersionDynamic}}
	for _, v := range c.cfg.Voters {
		recs = append(recs, metadata.RegisterController{ID: v.ID, DirectoryID: v.DirectoryID, Endpoints: c.endpointsOf(v.Addr)})
	}
	return recs
}

// endpointsOf describes a controller-listener address as the controllers' endpoints.
func (c *Controller) endpointsOf(addr string) []metadata.Endpoint {
	host, portStr, err := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	if err != nil {
		return nil
	}
	return []metadata.Endpoint{{Listener: c.cfg.ListenerName, Host: host, Port: int32(port), SecurityProtocol: "PLAINTEXT"}}
}

// Voters returns the quorum's voters: the configured ones of a static quorum (empty for a
// single node), the voters of the current Raft configuration (with the directory ids the
// image knows) of a dynamic one.
func (c *Controller) Voters() []Voter {
	if !c.cfg.Dynamic {
		return c.cfg.Voters
	}
	servers, err := c.servers()
	if err != nil {
		return nil
	}
	var out []Voter
	ctrls := c.Image().Controllers
	for _, s := range servers {
		if id, ok := serverNodeID(s.ID); ok && s.Suffrage == raft.Voter {
			out = append(out, Voter{ID: id, Addr: string(s.Address), DirectoryID: ctrls[id].DirectoryID})
		}
	}
	slices.SortFunc(out, func(a, b Voter) int { return int(a.ID - b.ID) })
	return out
}

// servers returns the latest Raft configuration this node knows.
func (c *Controller) servers() ([]raft.Server, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// serverNodeID parses a Raft server id (the node id in decimal).
func serverNodeID(id raft.ServerID) (int32, bool) {
	n, err := strconv.ParseInt(string(id), 10, 32)
	return int32(n), err == nil
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.FormatInt(int64(id), 10)) }

// replicaKey names a voter as Kafka's messages do.
func replicaKey(id int32, dir metadata.UUID) string {
	return fmt.Sprintf("ReplicaKey(id=%d, directoryId=%s)", id, dir)
}

// voterKeys lists the voters of servers as Kafka's messages do, with the directory ids the
// image knows.
func (c *Controller) voterKeys(servers []raft.Server) string {
	var keys []string
	for _, s := range servers {
		if id, ok := serverNodeID(s.ID); ok && s.Suffrage == raft.Voter {
			keys = append(keys, replicaKey(id, c.Image().Controllers[id].DirectoryID))
		}
	}
	return "[" + strings.Join(keys, ", ") + "]"
}

// checkDynamicLocked refuses membership changes until this leader has applied the whole
// committed log (REQUEST_TIMED_OUT, Kafka's message of a leader without a high watermark) and
// those of a static quorum (UNSUPPORTED_VERSION), with Kafka's messages.
func (c *Controller) checkDynamicLocked(verb string) error {
	if err := c.checkAppliedLocked(); err != nil {
		return err
	}
	if level := c.Image().FeatureLevel(FeatureKRaftVersion); level < kraftVersionDynamic {
		return &KafkaError{kerr.UnsupportedVersion,
			fmt.Sprintf("Cluster doesn't support %s voter because the %s feature is %d", verb, FeatureKRaftVersion, level)}
	}
	return nil
}

// checkAppliedLocked refuses while this leader has not applied the log of its term's start.
func (c *Controller) checkAppliedLocked() error {
	if c.appliedTerm.Load() != c.raft.CurrentTerm() {
		return &KafkaError{kerr.RequestTimedOut, "Request timed out waiting for leader to establish HWM and fence previous voter changes"}
	}
	return nil
}

// listenerAddr returns the host:port of the endpoint named after the controller listener.
func (c *Controller) listenerAddr(endpoints []metadata.Endpoint) (string, error) {
	for _, e := range endpoints {
		if strings.EqualFold(e.Listener, c.cfg.ListenerName) {
			return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))), nil
		}
	}
	var names []string
	for _, e := range endpoints {
		names = append(names, e.Listener)
	}
	return "", &KafkaError{kerr.InvalidRequest,
		fmt.Sprintf("Provided listeners [%s] do not contain a listener for %s", strings.Join(names, ", "), c.cfg.ListenerName)}
}

// AddVoter makes controller id a voter (Kafka's AddRaftVoter), as Kafka's leader does: the
// quorum must be dynamic (UNSUPPORTED_VERSION), id not a voter already (DUPLICATE_VOTER), and
// the controller must be replicating the metadata log as a non-voter (formatted with
// --no-initial-controllers and started) and catch up with the leader's log before ctx ends
// (REQUEST_TIMED_OUT otherwise). The controller's description (directory id, endpoints) is
// committed, then the Raft configuration change; AddVoter returns once both are committed.
// Errors are *KafkaError or wrap a *kerr.Error.
func (c *Controller) AddVoter(ctx context.Context, id int32, dir metadata.UUID, endpoints []metadata.Endpoint) error {
	key := replicaKey(id, dir)
	addr, target, err := c.checkAddVoter(ctx, id, key, endpoints)
	if err != nil {
		return err
	}
	// Caught up: holding what the leader held when asked. Waited without the lock.
	if !c.replication.waitMatch(serverID(id), target, ctx.Done()) {
		return &KafkaError{kerr.RequestTimedOut, fmt.Sprintf("Aborted add voter operation for %s since it is lagging behind", key)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, _, err := c.checkAddVoterLocked(ctx, id, key, endpoints); err != nil {
		return err
	}
	if _, err := c.proposeLocked(ctx, metadata.RegisterController{ID: id, DirectoryID: dir, Endpoints: endpoints}); err != nil {
		return fmt.Errorf("controller: describe the new voter: %w", err)
	}
	if err := configurationError(c.raft.AddVoter(serverID(id), raft.ServerAddress(addr), 0, timeoutFrom(ctx)).Error()); err != nil {
		return fmt.Errorf("controller: add voter %d: %w", id, err)
	}
	c.logger.Info("added a voter to the metadata quorum", "node", id, "directory_id", dir, "addr", addr)
	return nil
}

func (c *Controller) checkAddVoter(ctx context.Context, id int32, key string, endpoints []metadata.Endpoint) (addr string, target uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkAddVoterLocked(ctx, id, key, endpoints)
}

// checkAddVoterLocked checks AddVoter's conditions and returns the new voter's Raft address
// and the leader's last log index.
func (c *Controller) checkAddVoterLocked(ctx context.Context, id int32, key string, endpoints []metadata.Endpoint) (addr string, target uint64, err error) {
	if err := c.beginLocked(ctx); err != nil {
		return "", 0, err
	}
	if err := c.checkDynamicLocked("adding"); err != nil {
		return "", 0, err
	}
	servers, err := c.servers()
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", kerr.NotController, err)
	}
	member := false
	for _, s := range servers {
		if s.ID != serverID(id) {
			continue
		}
		if s.Suffrage == raft.Voter {
			return "", 0, &KafkaError{kerr.DuplicateVoter,
				fmt.Sprintf("The voter id for %s is already part of the set of voters %s.", key, c.voterKeys(servers))}
		}
		// A controller that registered (a broker-only node is a non-voter too, but no
		// controller).
		_, member = c.Image().Controllers[id]
	}
	if addr, err = c.listenerAddr(endpoints); err != nil {
		return "", 0, err
	}
	if !member {
		return "", 0, &KafkaError{kerr.RequestTimedOut, fmt.Sprintf("Aborted add voter operation for %s since it is not replicating "+
			"the metadata log: start it first, formatted with --no-initial-controllers, so that it joins as an observer", key)}
	}
	return addr, c.raft.LastIndex(), nil
}

// RemoveVoter takes controller id out of the voters (Kafka's RemoveRaftVoter): the quorum must
// be dynamic (UNSUPPORTED_VERSION) and id a voter whose directory id is dir
// (VOTER_NOT_FOUND); the last voter cannot be removed (INVALID_REQUEST). A voter that answered
// the leader lately (or the leader itself) is demoted to a Raft non-voter, so that it goes on
// replicating as an observer, as Kafka's removed voters go on fetching; one that did not
// leaves the configuration (if it comes back it registers again and becomes an observer).
// It returns once the new configuration is committed; a leader that removed itself then steps
// down. Errors are *KafkaError or wrap a *kerr.Error.
func (c *Controller) RemoveVoter(ctx context.Context, id int32, dir metadata.UUID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return err
	}
	if err := c.checkDynamicLocked("removing"); err != nil {
		return err
	}
	servers, err := c.servers()
	if err != nil {
		return fmt.Errorf("%w: %w", kerr.NotController, err)
	}
	voters := 0
	found := false
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		known := c.Image().Controllers[id].DirectoryID
		if s.ID == serverID(id) && (known.IsZero() || known == dir) {
			found = true
		}
	}
	key := replicaKey(id, dir)
	if !found {
		return &KafkaError{kerr.VoterNotFound, fmt.Sprintf("Cannot remove voter %s from the set of voters %s", key, c.voterKeys(servers))}
	}
	if voters == 1 {
		return &KafkaError{kerr.InvalidRequest, fmt.Sprintf("Cannot remove voter %s: it is the only voter", key)}
	}
	// A controller still running (this one, or one that answered lately) stays an observer,
	// as Kafka's removed voters go on fetching; a gone one leaves the configuration.
	change, outcome := c.raft.RemoveServer, "removed"
	if rp, ok := c.replication.get(serverID(id)); id == c.cfg.NodeID || ok && time.Since(rp.lastContact) < recentContact {
		change, outcome = c.raft.DemoteVoter, "demoted to an observer"
	}
	if err := configurationError(change(serverID(id), 0, timeoutFrom(ctx)).Error()); err != nil {
		return fmt.Errorf("controller: remove voter %d: %w", id, err)
	}
	c.logger.Info("removed a voter from the metadata quorum", "node", id, "directory_id", dir, "outcome", outcome)
	return nil
}

// recentContact is how lately a follower must have answered the leader for RemoveVoter to
// keep it as an observer.
const recentContact = 2 * time.Second

// RegisterController is the active controller's side of a controller's ControllerRegistration
// in a dynamic quorum: it describes the controller (its endpoints; a directory id already
// known is kept) and makes it a Raft member at its controller listener: a non-voter (an
// observer: formatted with --no-initial-controllers, or a removed voter still running) when it
// is not a member, a voter whose address changed keeps its vote. A voter of a static quorum
// has nothing to do; any other controller is refused there (UNSUPPORTED_VERSION). Until this
// leader has applied the log of its term's start it answers REQUEST_TIMED_OUT (retried).
// Errors are *KafkaError or wrap a *kerr.Error.
func (c *Controller) RegisterController(ctx context.Context, id int32, endpoints []metadata.Endpoint) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return err
	}
	if err := c.checkAppliedLocked(); err != nil {
		return err
	}
	addr, err := c.listenerAddr(endpoints)
	if err != nil {
		return err
	}
	servers, err := c.servers()
	if err != nil {
		return fmt.Errorf("%w: %w", kerr.NotController, err)
	}
	if c.Image().FeatureLevel(FeatureKRaftVersion) < kraftVersionDynamic {
		if slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == serverID(id) && s.Suffrage == raft.Voter }) {
			return nil // a voter of a static quorum has nothing to register
		}
		return &KafkaError{kerr.UnsupportedVersion, fmt.Sprintf("Controller %d cannot join: the metadata quorum is static "+
			"(%s 0, controller.quorum.voters) and takes no observers", id, FeatureKRaftVersion)}
	}
	if old, ok := c.Image().Controllers[id]; !ok || !slices.Equal(old.Endpoints, endpoints) {
		if _, err := c.proposeLocked(ctx, metadata.RegisterController{ID: id, Endpoints: endpoints}); err != nil {
			return fmt.Errorf("controller: register controller %d: %w", id, err)
		}
	}
	for _, s := range servers {
		if s.ID != serverID(id) {
			continue
		}
		if string(s.Address) == addr {
			return nil
		}
		if s.Suffrage == raft.Voter {
			err := configurationError(c.raft.AddVoter(s.ID, raft.ServerAddress(addr), 0, timeoutFrom(ctx)).Error())
			if err == nil {
				c.logger.Info("a voter's controller listener moved", "node", id, "addr", addr)
			}
			return err
		}
	}
	if err := configurationError(c.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, timeoutFrom(ctx)).Error()); err != nil {
		return fmt.Errorf("controller: add observer %d: %w", id, err)
	}
	c.logger.Info("added a controller to the metadata quorum as an observer", "node", id, "addr", addr)
	return nil
}

// configurationError maps the error of a Raft configuration change to a Kafka error.
func configurationError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", kerr.RequestTimedOut, err)
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", kerr.NotController, err)
	default:
		return fmt.Errorf("%w: %w", kerr.UnknownServerError, err)
	}
}
