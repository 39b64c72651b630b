package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/bbolt"

	"github.com/samsa-io/samsa/internal/metadata"
)

// Config configures a controller. Zero values of the optional fields mean their defaults.
type Config struct {
	// NodeID is this node's ID, also its Raft server ID. Required, >= 0.
	NodeID int32
	// Dir holds the Raft log, stable store and snapshots, e.g.
	// <metadata.log.dir>/__cluster_metadata. Created if missing. Required.
	Dir string
	// BindAddr is the controller listener's host:port. Port 0 picks a free port; Addr reports it.
	BindAddr string
	// Bootstrap makes this node bootstrap a cluster whose only voter is itself when Dir holds
	// no Raft state and Voters is empty. Ignored when there is state.
	Bootstrap bool
	// Voters are the quorum's voters (controller.quorum.voters), this node among them. Every
	// voter bootstraps the same configuration on its first start, which hashicorp/raft allows.
	// Empty: this node is the only voter (see Bootstrap).
	Voters []Voter
	// NonVoter makes this node a Raft non-voter (a broker-only node, or an observer controller
	// of a dynamic quorum): it bootstraps nothing and Start returns without waiting for the
	// quorum; the active controller adds it to the configuration when it registers (a broker's
	// registration names the Raft address as an endpoint of listener RaftListener; a controller
	// sends ControllerRegistration), after which WaitReady returns. Voters must name a static
	// quorum; a dynamic one (Dynamic) needs none.
	NonVoter bool
	// Dynamic makes the quorum dynamic (KIP-853, kraft.version 1): controllers join and leave
	// the voters at run time (AddVoter, RemoveVoter), and Voters are only the initial voters,
	// bootstrapped on a new cluster's first start (samsa storage format --standalone or
	// --initial-controllers). The first leader of a new cluster commits kraft.version 1 and
	// the initial voters' descriptions (directory ids, endpoints).
	Dynamic bool
	// ListenerName is the controller listener's name (the first of controller.listener.names):
	// the name of the endpoints controllers are described with. Default "CONTROLLER".
	ListenerName string
	// ServerTLS and ClientTLS secure an SSL controller listener (mutual TLS): the server
	// side of every connection it accepts, Raft's and Kafka clients', and the client side of
	// the Raft connections this node dials. Nil for PLAINTEXT.
	ServerTLS, ClientTLS *tls.Config
	// BootstrapScram are SCRAM credentials bootstrapped at format time (--add-scram): the
	// first leader of a new cluster commits them with the cluster id, and until this node's
	// image has a cluster id a SASL controller listener checks Raft logins against them.
	BootstrapScram []metadata.UserScramCredential
	// RaftSASL authenticates the Raft connections of a SASL controller listener (see its
	// doc); nil for PLAINTEXT and SSL.
	RaftSASL *RaftSASL
	// Advertise is the address other nodes reach this node's Raft at when it is not among the
	// voters (a non-voter); "" means the bound address.
	Advertise string
	// ClusterID is the cluster id this node's storage was formatted with (meta.properties).
	// The first leader commits it; a node whose quorum has another id refuses to start, and
	// Raft connections announcing another id are refused. "" (a single node formatting itself)
	// generates one.
	ClusterID string
	// Logger receives the controller's logs and raft's warnings and errors. Nil discards them.
	Logger *slog.Logger
	// ValidateTopicConfig checks one topic config; a non-nil error makes the request fail
	// with INVALID_CONFIG. Nil accepts every config.
	ValidateTopicConfig func(name, value string) error
	// ValidateBrokerConfig checks one dynamic broker config, like ValidateTopicConfig. Nil
	// accepts every config.
	ValidateBrokerConfig func(name, value string) error
	// DefaultPartitions is the partition count of topics created with NumPartitions -1
	// (num.partitions). Default 1.
	DefaultPartitions int32
	// DefaultReplicationFactor is the replication factor of topics created with
	// ReplicationFactor -1 (default.replication.factor). Default 1.
	DefaultReplicationFactor int16
	// MaxPartitionsPerBroker is how many partition replicas one broker may host: topic and
	// partition creations that would place more on a broker fail with POLICY_VIOLATION
	// (see budget.go). 0 means no limit.
	MaxPartitionsPerBroker int
	// StoreLockTimeout bounds the wait for the lock on raft.db when another process holds it
	// (Samsa's directory lock normally refuses a second node first; this covers anything else
	// holding the file). Default 30 s; ctx ending stops the wait sooner.
	StoreLockTimeout time.Duration
	// ReserveBytes is the size of the space reserve kept beside raft.db (metadata.reserve),
	// released when a metadata write finds the disk full so that metadata keeps working
	// while partition data fills a shared disk. Default DefaultReserveBytes; negative: none.
	ReserveBytes int64
	// BrokerSessionTimeout is broker.session.timeout.ms: the active controller fences a broker
	// that has not heartbeaten for this long (brokers.go). Default 9 s.
	BrokerSessionTimeout time.Duration
	// UncleanLeaderElection is the static unclean.leader.election.enable broker setting, the
	// default of topics that set neither it nor a cluster-wide dynamic default.
	UncleanLeaderElection bool
	// AutoLeaderRebalance is auto.leader.rebalance.enable: the active controller elects
	// preferred leaders back periodically (rebalance.go). False: never.
	AutoLeaderRebalance bool
	// LeaderImbalanceCheckInterval is leader.imbalance.check.interval.seconds, the period of
	// the balancing. Default 300 s.
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePercentage is samsa.leader.imbalance.per.broker.percentage: a broker's
	// preferred leaderships are balanced once more than this percentage of the partitions it
	// prefers are led by another. Taken as it is (0: any imbalance).
	LeaderImbalancePercentage int
	// BrokerGone reports that a broker's process is gone (see deadbrokers.go); nil probes
	// its listener over TCP. Tests whose brokers are fictitious replace it.
	BrokerGone func(metadata.Broker) bool
	// Now is the clock of broker sessions and delegation tokens; nil means time.Now. Tests
	// move it by hand.
	Now func() time.Time
	// DelegationTokens are the delegation token settings (dtokens.go).
	DelegationTokens DelegationTokenConfig
}

// Voter is one voter of the quorum: its node id and the address of its controller listener,
// and in a dynamic quorum the directory id of its metadata log directory.
type Voter struct {
	ID          int32
	Addr        string
	DirectoryID metadata.UUID
}

// Raft tuning. A single voter elects itself one heartbeat timeout (randomized up to twice
// that) after start, so its timeouts are short. A quorum of several voters takes longer ones,
// so that a busy machine does not cause needless elections; they bound how soon a dead
// leader's successor is elected (300–600 ms without contact, then one election round). Its
// leader keeps leading while it heard from a quorum within the heartbeat timeout (the
// lease): a shorter lease (150 ms was tried) made leaders on a loaded machine step down
// every few hundred milliseconds, without a leader long enough to serve, while it hardly
// shortens a failover (an isolated leader's followers elect another after the same 300 ms).
const (
	heartbeatTimeout        = 100 * time.Millisecond
	electionTimeout         = 100 * time.Millisecond
	leaderLeaseTimeout      = 50 * time.Millisecond
	quorumHeartbeatTimeout  = 300 * time.Millisecond
	quorumElectionTimeout   = 300 * time.Millisecond
	quorumLeaderLeaseTimout = 300 * time.Millisecond
	commitTimeout           = 5 * time.Millisecond
	// applyTimeout bounds how long a proposal waits to be enqueued when ctx has no deadline.
	applyTimeout = 30 * time.Second
	// snapshotsRetained is how many snapshots the file snapshot store keeps.
	snapshotsRetained = 2
	// logCacheSize is how many recent log entries are cached in memory.
	logCacheSize = 512
	// transportMaxPool and transportTimeout configure the Raft network transport.
	transportMaxPool = 3
	transportTimeout = 10 * time.Second
	// defaultStoreLockTimeout is StoreLockTimeout's default.
	defaultStoreLockTimeout = 30 * time.Second
	// storeLockPoll is how long one attempt to open raft.db waits for its lock; ctx is checked
	// between attempts.
	storeLockPoll = 200 * time.Millisecond
)

// Controller runs this node's member of the metadata quorum and, while it is the leader,
// serves metadata-changing operations.
type Controller struct {
	cfg    Config
	logger *slog.Logger
	raft   *raft.Raft
	fsm    *fsm
	pub    *publisher
	store  *reservedStore
	addr   string
	mux    *muxListener
	notify chan bool // raft's NotifyCh: leadership gained (true) or lost
	// progress is what members report of their metadata log position (QuorumInfo).
	progress quorumProgress
	// replication is what the leader's transport saw of its followers' logs (progress.go).
	replication *progressTracker
	// appliedTerm is the Raft term in which this node, as leader, applied the whole committed
	// log (a barrier): until then its image may miss what earlier leaders committed.
	appliedTerm atomic.Uint64
	done        chan struct{}
	wg          sync.WaitGroup

	mu struct {
		// Mutex is held across read-validate-propose-wait, so operations are serialized and
		// each validates against the image its predecessor produced.
		sync.Mutex
		closed bool
		// sessions holds the last heartbeat of each broker, kept by the leader only
		// (brokers.go).
		sessions brokerSessions
	}
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.NodeID < 0 {
		return cfg, fmt.Errorf("controller: node ID %d is negative", cfg.NodeID)
	}
	if cfg.Dir == "" {
		return cfg, errors.New("controller: no Dir")
	}
	if cfg.BindAddr == "" {
		return cfg, errors.New("controller: no BindAddr")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = 1
	}
	if cfg.StoreLockTimeout <= 0 {
		cfg.StoreLockTimeout = defaultStoreLockTimeout
	}
	if cfg.ReserveBytes == 0 {
		cfg.ReserveBytes = DefaultReserveBytes
	}
	if cfg.ListenerName == "" {
		cfg.ListenerName = "CONTROLLER"
	}
	cfg.DelegationTokens = cfg.DelegationTokens.withDefaults()
	if cfg.NonVoter {
		if len(cfg.Voters) == 0 && !cfg.Dynamic {
			return cfg, errors.New("controller: a non-voter needs the voters")
		}
		if slices.ContainsFunc(cfg.Voters, func(v Voter) bool { return v.ID == cfg.NodeID }) {
			return cfg, fmt.Errorf("controller: node %d is a voter", cfg.NodeID)
		}
	} else if len(cfg.Voters) > 0 && !slices.ContainsFunc(cfg.Voters, func(v Voter) bool { return v.ID == cfg.NodeID }) {
		return cfg, fmt.Errorf("controller: node %d is not one of the voters", cfg.NodeID)
	}
	if len(cfg.ClusterID) > maxClusterIDLen {
		return cfg, fmt.Errorf("controller: cluster id %q is longer than %d bytes", cfg.ClusterID, maxClusterIDLen)
	}
	return cfg, nil
}

// Start opens the Raft state in cfg.Dir (bootstrapping the configured voters, or this node
// alone, if there is none), starts Raft and returns once the quorum has a leader and this node
// has applied every entry committed when it learned of it (a non-voter, and any node of a
// dynamic quorum, returns at once and calls WaitReady once it registered). The leader commits the cluster ID
// and the default feature levels on a new cluster (and whenever a node becomes leader and
// finds them missing). A quorum whose cluster ID differs from cfg.ClusterID is an error.
func Start(ctx context.Context, cfg Config) (*Controller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	hlog := newHCLogAdapter(cfg.Logger, "raft")
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("controller: open raft store: %w", err)
	}
	reserved := &reservedStore{BoltStore: store, r: newReserve(filepath.Join(cfg.Dir, reserveFile), cfg.ReserveBytes, cfg.Logger)}
	r, c, err := startRaft(cfg, hlog, reserved)
	if err != nil {
		store.Close()
		return nil, err
	}
	c.raft = r
	latest := make(chan bool, 1)
	c.wg.Add(2)
	go c.relayLeadership(latest)
	go c.watchLeadership(latest)
	if cfg.NonVoter || cfg.Dynamic {
		// WaitReady, once registered: a controller of a dynamic quorum asks the active
		// controller to replicate to it (which it may be itself) before it waits.
		return c, nil
	}
	if err := c.WaitReady(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// WaitReady waits until the quorum has a leader and this node applied what was committed
// then, and checks the quorum's cluster id against the node's. Start does it for a voter; a
// non-voter calls it once it registered (the leader replicates to it from then on). On an
// error the caller closes the controller.
func (c *Controller) WaitReady(ctx context.Context) error {
	cfg := c.cfg
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	if id := c.Image().ClusterID; cfg.ClusterID != "" && id != cfg.ClusterID {
		return fmt.Errorf("controller: this node's storage was formatted for cluster %s, but the metadata quorum's cluster id is %s", cfg.ClusterID, id)
	}
	leader, _, _ := c.Leader()
	cfg.Logger.Info("metadata controller ready", "node", cfg.NodeID, "addr", c.addr,
		"clusterID", c.Image().ClusterID, "index", c.Image().Index, "leader", leader, "voters", len(cfg.Voters), "non_voter", cfg.NonVoter)
	return nil
}

// openStore opens the bbolt Raft store in cfg.Dir. bbolt waits for an exclusive flock on the
// file; the wait is taken in short attempts so that it ends when ctx does, and gives up after
// cfg.StoreLockTimeout instead of hanging forever.
func openStore(ctx context.Context, cfg Config) (*raftboltdb.BoltStore, error) {
	path := filepath.Join(cfg.Dir, "raft.db")
	opts := *bbolt.DefaultOptions
	opts.Timeout = storeLockPoll
	deadline := time.Now().Add(cfg.StoreLockTimeout)
	for attempt := 0; ; attempt++ {
		store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &opts})
		if !errors.Is(err, bbolt.ErrTimeout) {
			return store, err
		}
		if attempt == 0 {
			cfg.Logger.Warn("waiting for the lock on the Raft store: another process holds it",
				"path", path, "timeout", cfg.StoreLockTimeout.String())
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for the lock on %s: %w", path, context.Cause(ctx))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is locked by another process (waited %s): %w", path, cfg.StoreLockTimeout, err)
		}
	}
}

// startRaft builds the snapshot store, transport and FSM and starts Raft on store.
func startRaft(cfg Config, hlog *hclogAdapter, store *reservedStore) (*raft.Raft, *Controller, error) {
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotsRetained, hlog.Named("snapshots"))
	if err != nil {
		return nil, nil, fmt.Errorf("controller: open snapshot store: %w", err)
	}
	advertise := cfg.Advertise
	for _, v := range cfg.Voters {
		if v.ID == cfg.NodeID {
			advertise = v.Addr
		}
	}
	// The FSM exists before the listener: a SASL listener checks Raft logins against its image.
	pub := newPublisher(&metadata.Image{})
	f := newFSM(cfg.Logger, pub)
	raftSASL := cfg.RaftSASL
	if raftSASL != nil {
		rs := *raftSASL
		rs.bootstrapScram = cfg.BootstrapScram
		raftSASL = &rs
	}
	stream, err := newMuxListener(cfg.BindAddr, advertise, cfg.ClusterID, cfg.ServerTLS, cfg.ClientTLS, raftSASL, f.image.Load, cfg.Logger)
	if err != nil {
		pub.close()
		return nil, nil, err
	}
	trans := &trackingTransport{
		NetworkTransport: raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  stream,
			MaxPool: transportMaxPool,
			Timeout: transportTimeout,
			Logger:  hlog.Named("transport"),
		}),
		progress: newProgressTracker(),
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(strconv.FormatInt(int64(cfg.NodeID), 10))
	rc.Logger = hlog
	rc.HeartbeatTimeout = heartbeatTimeout
	rc.ElectionTimeout = electionTimeout
	rc.LeaderLeaseTimeout = leaderLeaseTimeout
	if len(cfg.Voters) > 1 || cfg.Dynamic {
		rc.HeartbeatTimeout = quorumHeartbeatTimeout
		rc.ElectionTimeout = quorumElectionTimeout
		rc.LeaderLeaseTimeout = quorumLeaderLeaseTimout
	}
	rc.CommitTimeout = commitTimeout
	notify := make(chan bool, 16)
	rc.NotifyCh = notify

	if !cfg.NonVoter && (cfg.Bootstrap || len(cfg.Voters) > 0) {
		has, err := raft.HasExistingState(store, store, snaps)
		if err != nil {
			trans.Close()
			pub.close()
			return nil, nil, fmt.Errorf("controller: check raft state: %w", err)
		}
		if !has {
			voters := raft.Configuration{Servers: []raft.Server{
				{Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr()},
			}}
			if len(cfg.Voters) > 0 {
				voters.Servers = nil
				for _, v := range cfg.Voters {
					voters.Servers = append(voters.Servers, raft.Server{Suffrage: raft.Voter,
						ID: raft.ServerID(strconv.FormatInt(int64(v.ID), 10)), Address: raft.ServerAddress(v.Addr)})
				}
			}
			if err := raft.BootstrapCluster(rc, store, store, snaps, trans, voters); err != nil {
				trans.Close()
				pub.close()
				return nil, nil, fmt.Errorf("controller: bootstrap: %w", err)
			}
			cfg.Logger.Info("bootstrapped the metadata quorum", "node", cfg.NodeID, "dir", cfg.Dir, "voters", len(voters.Servers))
		}
	}

	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		trans.Close()
		pub.close()
		return nil, nil, fmt.Errorf("controller: %w", err)
	}
	r, err := raft.NewRaft(rc, f, logs, store, snaps, trans)
	if err != nil {
		trans.Close()
		pub.close()
		return nil, nil, fmt.Errorf("controller: start raft: %w", err)
	}
	trans.progress.raft.Store(r)
	c := &Controller{
		cfg:    cfg,
		logger: cfg.Logger,
		fsm:    f,
		pub:    pub,
		store:  store,
		addr:   string(trans.LocalAddr()),
		mux:    stream,
		notify: notify,
		done:   make(chan struct{}),

		replication: trans.progress,
	}
	return r, c, nil
}

// waitReady waits until the quorum has a leader and this node has applied what was
// committed when it learned of it. On the leader that means a barrier, then the cluster ID and
// default feature levels committed if missing (ensureBootstrapLocked); a follower polls its
// applied index (Raft has no notification for it) until it reaches the commit index and the
// cluster ID is known.
func (c *Controller) waitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	target := uint64(0)
	for {
		if c.raft.State() == raft.Leader {
			// The barrier applies every committed entry, which takes long on a long log; the
			// caller closes the controller when ctx ends, which ends the barrier too.
			term := c.raft.CurrentTerm()
			err := waitFuture(ctx, c.raft.Barrier(timeoutFrom(ctx)))
			if err == nil {
				c.appliedTerm.Store(term)
				c.mu.Lock()
				err = c.ensureBootstrapLocked(ctx)
				c.mu.Unlock()
				if err == nil {
					return nil
				}
			}
			if ctx.Err() != nil {
				return fmt.Errorf("controller: apply committed log: %w", err)
			}
			c.logger.Warn("leader could not commit the cluster's first records; retrying", "err", err)
		} else if _, id := c.raft.LeaderWithID(); id != "" {
			if target == 0 {
				target = c.raft.CommitIndex()
			}
			if c.raft.AppliedIndex() >= target && c.Image().ClusterID != "" {
				return nil
			}
		} else {
			target = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller: waiting for the metadata quorum (a leader, then this node caught up): %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// ensureBootstrapLocked commits the cluster ID and the default feature levels if the image
// has none (a new cluster; a log written before feature levels existed). Leader only.
func (c *Controller) ensureBootstrapLocked(ctx context.Context) error {
	var recs []metadata.Record
	if c.Image().ClusterID == "" {
		id := c.cfg.ClusterID
		if id == "" {
			id = metadata.RandomUUID().String()
		}
		recs = append(recs, metadata.Bootstrap{ClusterID: id})
	}
	if c.Image().FeatureLevel(FeatureMetadataVersion) == 0 {
		recs = append(recs, defaultFeatureRecords()...)
	}
	if c.cfg.Dynamic && c.Image().ClusterID == "" {
		recs = append(recs, c.dynamicBootstrapRecords()...)
	}
	if c.Image().ClusterID == "" {
		for _, cred := range c.cfg.BootstrapScram {
			recs = append(recs, cred)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if _, err := c.proposeLocked(ctx, recs...); err != nil {
		return fmt.Errorf("controller: commit cluster ID and feature levels: %w", err)
	}
	return nil
}

// relayLeadership drains Raft's NotifyCh as soon as Raft sends, keeping only the latest state
// for watchLeadership in latest (capacity 1). Raft's main loop sends on NotifyCh and waits
// until it is taken, and watchLeadership may be busy for long (a barrier, the controller's
// lock held by an operation that waits on Raft): had Raft waited on it, it would handle no
// RPC meanwhile, and with leadership changing quickly the quorum stalled in elections.
func (c *Controller) relayLeadership(latest chan bool) {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case leader := <-c.notify:
			select { // an older state not yet taken is replaced
			case <-latest:
			default:
			}
			latest <- leader // never waits: this goroutine is the only sender
		}
	}
}

// watchLeadership follows Raft's leadership notifications (through relayLeadership): a node that becomes leader after
// start (a failover) applies the committed log with a barrier and commits the first records
// if they are missing, then runs the registered leadership hooks.
func (c *Controller) watchLeadership(latest <-chan bool) {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case leader := <-latest:
			if leader && c.raft.State() != raft.Leader {
				continue // lost again since (its loss follows on latest)
			}
			if !leader {
				c.logger.Info("no longer the active controller", "node", c.cfg.NodeID)
				continue
			}
			c.logger.Info("became the active controller", "node", c.cfg.NodeID, "term", c.raft.CurrentTerm())
			c.replication.reset()
			ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
			term := c.raft.CurrentTerm()
			if err := c.raft.Barrier(applyTimeout).Error(); err == nil {
				c.appliedTerm.Store(term)
				c.mu.Lock()
				if !c.mu.closed {
					if err := c.ensureBootstrapLocked(ctx); err != nil {
						c.logger.Warn("new leader could not commit the cluster's first records", "err", err)
					}
				}
				c.mu.Unlock()
				// Brokers that died with the old leader would otherwise get a whole new session.
				c.probeBrokers(ctx)
			}
			cancel()
		}
	}
}

// waitFuture waits for f, or for ctx to end (f then completes in the background).
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// timeoutFrom returns the time left before ctx's deadline, or applyTimeout if it has none.
func timeoutFrom(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return applyTimeout
}

// Image returns the current metadata image. It never blocks.
func (c *Controller) Image() *metadata.Image { return c.fsm.image.Load() }

// OnPublish registers fn to be called, in order and from one goroutine, with every image the
// controller publishes from now on. fn is first called with (nil, current image), so no change
// is missed between reading Image and registering. fn must not block for long and must not call
// Close. The returned function unregisters fn.
func (c *Controller) OnPublish(fn PublishFunc) (unregister func()) {
	return c.pub.register(fn)
}

// Addr returns the controller listener's address (with the real port when BindAddr had port 0).
func (c *Controller) Addr() string { return c.addr }

// NodeID returns this node's ID.
func (c *Controller) NodeID() int32 { return c.cfg.NodeID }

// LastContact returns when this node last heard from a leader (zero: never; a leader's own
// is not kept).
func (c *Controller) LastContact() time.Time { return c.raft.LastContact() }

// AppliedIndex is the index of the last metadata log entry this node has applied.
func (c *Controller) AppliedIndex() uint64 { return c.raft.AppliedIndex() }

// CommitIndex is the index of the last metadata log entry committed, as this node knows it.
func (c *Controller) CommitIndex() uint64 { return c.raft.CommitIndex() }

// IsLeader reports whether this node currently leads the metadata quorum.
func (c *Controller) IsLeader() bool { return c.raft.State() == raft.Leader }

// Leader returns the node id and controller-listener address of the quorum's leader as this
// node knows it; ok is false when it knows none.
func (c *Controller) Leader() (id int32, addr string, ok bool) {
	a, sid := c.raft.LeaderWithID()
	if sid == "" {
		return -1, "", false
	}
	n, err := strconv.ParseInt(string(sid), 10, 32)
	if err != nil {
		return -1, "", false
	}
	return int32(n), string(a), true
}

// KafkaListener returns the Kafka side of the controller listener: the connections that are
// not Raft's. Closing it stops handing them on; Raft keeps the socket until Close.
func (c *Controller) KafkaListener() net.Listener { return c.mux.kafka }

// Resign hands the quorum's leadership to another voter when this node holds it, so that a
// graceful stop leaves no gap without an active controller (Kafka's controller resigns on
// shutdown too). It waits at most timeout; a node that is not the leader, or has no other
// voter, returns at once. Close does not resign: a process that dies cannot either.
func (c *Controller) Resign(timeout time.Duration) {
	c.mu.Lock()
	closed := c.mu.closed
	c.mu.Unlock()
	if closed || c.raft.State() != raft.Leader || len(c.Voters()) < 2 {
		return
	}
	deadline := time.Now().Add(timeout)
	last := c.raft.LastIndex()
	done := make(chan error, 1)
	go func() { done <- c.raft.LeadershipTransfer().Error() }()
	select {
	case err := <-done:
		if err != nil {
			c.logger.Warn("controller leadership transfer on shutdown failed", "err", err)
			return
		}
	case <-time.After(time.Until(deadline)):
		c.logger.Warn("controller leadership transfer on shutdown did not finish in time", "timeout", timeout.String())
		return
	}
	// Stay a voter until the new leader has committed an entry of its own term (its no-op) with
	// this node's vote: only then does it know that everything this node committed as leader
	// is committed — the last record may be this broker's own controlled shutdown — even if
	// this node was the last voter it could count on.
	for c.raft.AppliedIndex() <= last {
		if time.Now().After(deadline) {
			c.logger.Warn("the new controller committed nothing before this node stopped", "timeout", timeout.String())
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.logger.Info("controller leadership handed over on shutdown")
}

// Close shuts Raft down, closes the store and stops the publisher. It waits for an operation in
// progress to finish. It is safe to call more than once.
func (c *Controller) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()

	var errs []error
	if err := c.raft.Shutdown().Error(); err != nil { // also closes the transport
		errs = append(errs, fmt.Errorf("controller: raft shutdown: %w", err))
	}
	close(c.done)
	c.mux.Close()
	c.wg.Wait()
	if err := c.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("controller: close raft store: %w", err))
	}
	c.pub.close()
	return errors.Join(errs...)
}

// beginLocked checks that the controller may serve an operation: it is open and the leader,
// and its image holds every entry committed before its term began. A leader decides against
// its image (what exists, what a change would change), and a new leader's image may still miss
// entries an earlier leader committed: a change checked against it could be lost or wrongly
// refused (a forwarded quota removal taken for a no-op, say). So the first operation of a term
// waits, within ctx, for a barrier (raft applies every earlier entry) unless watchLeadership's
// has already run, as Kafka's controller serves only once it has replayed the log up to its
// epoch's start. Waiting rather than refusing keeps a new leader serving at once; an isolated
// one waits as its proposals would.
func (c *Controller) beginLocked(ctx context.Context) error {
	if c.mu.closed {
		return fmt.Errorf("%w: controller is closed", kerr.NotController)
	}
	if c.raft.State() != raft.Leader {
		return fmt.Errorf("%w: node %d is not the active controller", kerr.NotController, c.cfg.NodeID)
	}
	term := c.raft.CurrentTerm()
	if c.appliedTerm.Load() == term {
		return nil
	}
	if err := waitFuture(ctx, c.raft.Barrier(timeoutFrom(ctx))); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
			return fmt.Errorf("%w: node %d: %w", kerr.NotController, c.cfg.NodeID, err)
		default:
			return fmt.Errorf("%w: node %d is becoming the active controller (applying the committed log): %w",
				kerr.RequestTimedOut, c.cfg.NodeID, err)
		}
	}
	if c.raft.CurrentTerm() == term {
		c.appliedTerm.Store(term)
	}
	return nil
}

// Snapshot writes a snapshot of the metadata image now (Raft also takes them on its own,
// every few thousand entries); a restart then restores it and replays the entries after it.
// Tests use it to restart from a snapshot.
func (c *Controller) Snapshot() error { return c.raft.Snapshot().Error() }

// proposeLocked commits recs as one log entry and waits until it is applied, returning the image
// that resulted. Errors wrap a *kerr.Error.
func (c *Controller) proposeLocked(ctx context.Context, recs ...metadata.Record) (*metadata.Image, error) {
	data, err := metadata.EncodeBatch(recs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", kerr.UnknownServerError, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", kerr.RequestTimedOut, err)
	}
	// The wait cannot be abandoned when ctx ends: the entry may still commit, and the next
	// operation must validate against an image that includes it.
	future := c.raft.Apply(data, timeoutFrom(ctx))
	if err := future.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, fmt.Errorf("%w: %w", kerr.RequestTimedOut, err)
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
			return nil, fmt.Errorf("%w: %w", kerr.NotController, err)
		default:
			return nil, fmt.Errorf("%w: %w", kerr.UnknownServerError, err)
		}
	}
	res, ok := future.Response().(applyResult)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected apply response %T", kerr.UnknownServerError, future.Response())
	}
	if res.err != nil {
		return nil, applyError(res.err)
	}
	return res.image, nil
}

// applyError maps an error from metadata.Image.Apply to a Kafka error.
func applyError(err error) error {
	var code *kerr.Error
	switch {
	case errors.Is(err, metadata.ErrTopicExists), errors.Is(err, metadata.ErrTopicIDExists):
		code = kerr.TopicAlreadyExists
	case errors.Is(err, metadata.ErrUnknownTopic):
		code = kerr.UnknownTopicOrPartition
	case errors.Is(err, metadata.ErrUnknownTopicID):
		code = kerr.UnknownTopicID
	default:
		code = kerr.UnknownServerError
	}
	return fmt.Errorf("%w: %w", code, err)
}

// KafkaError is a Kafka error code with the message for the client: Error returns the message
// alone, as Kafka sends it.
type KafkaError struct {
	Code    *kerr.Error
	Message string
}

func (e *KafkaError) Error() string { return e.Message }
func (e *KafkaError) Unwrap() error { return e.Code }

// ErrorCode returns the Kafka error code of an error returned by the controller: 0 for nil,
// the code of the *kerr.Error it wraps, or UNKNOWN_SERVER_ERROR (-1).
func ErrorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
