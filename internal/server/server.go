// Package server assembles a Samsa node from its validated configuration: it binds the
// listeners, starts the controller (metadata quorum), registers the broker, opens the hosted
// partitions through the replica manager and serves clients. `samsa server` and the
// in-process test clusters both start nodes through it.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/samsa-io/samsa/internal/broker"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/dirlock"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/storage"
)

// Server is one running node.
type Server struct {
	cfg      *config.Server
	log      *slog.Logger
	ctrl     *controller.Controller
	replicas *replica.Manager
	broker   *broker.Broker
	addrs    map[string]string // listener name -> bound host:port
	cancel   context.CancelFunc
	done     chan struct{}
	unsub    func()
	locks    []*dirlock.Lock // held from the start of Start until the end of Close

	client     *controllerClient
	lifecycle  *brokerLifecycle      // nil on a controller-only node
	membership *controllerMembership // a controller of a dynamic quorum; else nil
	unsubWait  func()
	metrics    *nodeMetrics // samsa.metrics.address; nil when empty (metrics.go)
}

// Start starts a node and returns once it serves clients. It first locks every data
// directory (so a second process on the same directories fails at once, naming the holder),
// then binds the listeners, starts the controller, registers the broker and opens the hosted
// partitions. Every step that can wait ends when ctx does; on any failure everything started so
// far is closed and the locks are released.
func Start(ctx context.Context, cfg *config.Server, logger *slog.Logger) (_ *Server, err error) {
	start := time.Now()
	s := &Server{cfg: cfg, log: logger, addrs: map[string]string{}, done: make(chan struct{})}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	for _, k := range cfg.Ignored {
		logger.Warn("setting is not supported yet and has no effect", "setting", k)
	}
	if s.locks, err = lockDirs(cfg); err != nil {
		return nil, err
	}
	undo = append(undo, s.releaseLocks)
	clusterID, err := checkStorage(cfg)
	if err != nil {
		return nil, err
	}
	plan, err := planQuorum(cfg)
	if err != nil {
		return nil, err
	}

	if s.metrics, err = bindMetrics(cfg.MetricsAddress()); err != nil {
		return nil, err
	}
	undo = append(undo, s.closeMetrics)

	// Bind the client listeners first, so port 0 resolves before the broker registers.
	var lns []net.Listener
	undo = append(undo, func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
	var clientListeners []config.Listener
	if cfg.Broker {
		clientListeners = cfg.ClientListeners()
	}
	for i, l := range clientListeners {
		ln, err := net.Listen("tcp", l.Addr())
		if err != nil {
			return nil, fmt.Errorf("listeners: %s: %w", l.Name, err)
		}
		lns = append(lns, ln)
		clientListeners[i].Port = ln.Addr().(*net.TCPAddr).Port
		s.addrs[l.Name] = ln.Addr().String()
	}

	ctrlAddr := "127.0.0.1:0"
	if cl, ok := cfg.ControllerListenerAddr(); ok {
		ctrlAddr = cl.Addr()
	}
	// A broker-only node is a Raft non-voter: its transport listens on a port of its own,
	// on the host of its first client listener, and its registration names it. An observer
	// controller of a dynamic quorum is a non-voter on its controller listener.
	brokerOnly := cfg.Broker && !cfg.Controller
	raftAdvertise := ""
	if brokerOnly {
		ctrlAddr = net.JoinHostPort(clientListeners[0].Host, "0")
		reg := s.registration(clientListeners)
		raftAdvertise = net.JoinHostPort(reg.Endpoints[0].Host, "0")
	} else if host, port, err := cfg.AdvertisedControllerAddr(); err == nil && plan.observer {
		raftAdvertise = net.JoinHostPort(host, strconv.Itoa(port))
	}
	fileLimit := storage.FileLimit()
	cacheSize, maxPartitions := fileBudget(fileLimit)
	if n := cfg.Int64("samsa.max.partitions.per.broker"); n > 0 {
		maxPartitions = int(n)
	}
	cache := storage.NewFileCache(cacheSize)
	logger.Info("open-file budget", "rlimit_nofile", fileLimit, "file_cache", cacheSize, "max_partitions_per_broker", maxPartitions)
	reserve := cfg.Int64("samsa.metadata.reserve.bytes")
	if reserve == 0 {
		reserve = -1 // none
	}
	ctrlServerTLS, ctrlClientTLS, err := controllerTLS(cfg, logger.With("component", "controller"))
	if err != nil {
		return nil, err
	}
	raftSASL, ctrlClientSASL, err := controllerSASL(cfg)
	if err != nil {
		return nil, err
	}
	bootstrapScram, err := readBootstrapScram(cfg)
	if err != nil {
		return nil, err
	}
	ctrl, err := controller.Start(ctx, controller.Config{
		NodeID:                   cfg.NodeID,
		Dir:                      metadataRaftDir(cfg),
		BindAddr:                 ctrlAddr,
		Bootstrap:                plan.single,
		Voters:                   plan.voters,
		NonVoter:                 brokerOnly || plan.observer,
		Dynamic:                  plan.dynamic,
		ListenerName:             cfg.ControllerListener,
		ServerTLS:                ctrlServerTLS,
		ClientTLS:                ctrlClientTLS,
		RaftSASL:                 raftSASL,
		BootstrapScram:           bootstrapScram,
		Advertise:                raftAdvertise,
		ClusterID:                clusterID,
		BrokerSessionTimeout:     time.Duration(cfg.Int64("broker.session.timeout.ms")) * time.Millisecond,
		UncleanLeaderElection:    cfg.Bool("unclean.leader.election.enable"),
		Logger:                   logger.With("component", "controller"),
		ValidateTopicConfig:      config.ValidateTopicConfig,
		DefaultPartitions:        cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplication,
		MaxPartitionsPerBroker:   maxPartitions,
		ReserveBytes:             reserve,

		AutoLeaderRebalance:          cfg.Bool("auto.leader.rebalance.enable"),
		LeaderImbalanceCheckInterval: time.Duration(cfg.Int64("leader.imbalance.check.interval.seconds")) * time.Second,
		LeaderImbalancePercentage:    int(cfg.Int64("samsa.leader.imbalance.per.broker.percentage")),
		DelegationTokens: controller.DelegationTokenConfig{
			Secret:        cfg.DelegationTokenSecret(),
			MaxLifetime:   time.Duration(cfg.Int64("delegation.token.max.lifetime.ms")) * time.Millisecond,
			ExpiryTime:    time.Duration(cfg.Int64("delegation.token.expiry.time.ms")) * time.Millisecond,
			CheckInterval: time.Duration(cfg.Int64("delegation.token.expiry.check.interval.ms")) * time.Millisecond,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("starting controller: %w", err)
	}
	s.ctrl = ctrl
	undo = append(undo, func() { ctrl.Close() })
	s.addrs[cfg.ControllerListener] = ctrl.Addr()

	if clusterID == "" {
		if err := formatSelf(cfg, ctrl.Image().ClusterID); err != nil {
			return nil, fmt.Errorf("formatting the data directories: %w", err)
		}
	}
	s.client = newControllerClient(ctrl, logger.With("component", "controller-client"))
	s.client.tls, s.client.sasl = ctrlClientTLS, ctrlClientSASL
	for _, v := range cfg.Voters {
		s.client.voters = append(s.client.voters, v.Addr())
	}
	if plan.dynamic {
		s.client.voters = cfg.BootstrapServers
	}
	undo = append(undo, s.client.close)
	waiter, unsubWait := newImageWaiter(ctrl)
	s.unsubWait = unsubWait
	undo = append(undo, unsubWait)
	cc := &clusterController{local: ctrl, client: s.client, images: waiter, nodeID: cfg.NodeID, brokerEpoch: func() int64 { return -1 }}
	if cfg.Broker {
		reg := s.registration(clientListeners)
		if brokerOnly {
			host, port, _ := net.SplitHostPort(ctrl.Addr())
			p, _ := strconv.Atoi(port)
			reg.Endpoints = append(reg.Endpoints, metadata.Endpoint{Listener: controller.RaftListener, Host: host, Port: int32(p), SecurityProtocol: "PLAINTEXT"})
		}
		s.lifecycle = newBrokerLifecycle(s.client, ctrl, logger.With("component", "lifecycle"),
			reg, time.Duration(cfg.Int64("broker.heartbeat.interval.ms"))*time.Millisecond)
		cc.brokerEpoch = s.lifecycle.Epoch
	}

	interBrokerOpts, err := interBrokerClientOpts(cfg)
	if err != nil {
		return nil, err
	}
	b := &lateBroker{}
	s.replicas = replica.NewManager(replica.Config{
		Dir:                    cfg.LogDirs[0],
		NodeID:                 cfg.NodeID,
		Logger:                 logger.With("component", "replicas"),
		LogConfig:              b.logConfig,
		RetentionCheckInterval: time.Duration(cfg.RetentionCheckInterval) * time.Millisecond,
		FlushCheckInterval:     time.Duration(cfg.FlushSchedulerInterval) * time.Millisecond,
		FileCache:              cache,
		MinFreeBytes:           cfg.Int64("samsa.log.dir.min.free.bytes"),

		InterBrokerListener:             interBrokerListener(cfg),
		FetcherClientOpts:               interBrokerOpts,
		AlterPartition:                  &isrSender{client: s.client, nodeID: cfg.NodeID, epoch: cc.brokerEpoch},
		ReplicaLagTime:                  ms(cfg, "replica.lag.time.max.ms"),
		NumReplicaFetchers:              int(cfg.Int64("num.replica.fetchers")),
		ReplicaFetchWaitMax:             ms(cfg, "replica.fetch.wait.max.ms"),
		ReplicaFetchMinBytes:            int32(cfg.Int64("replica.fetch.min.bytes")),
		ReplicaFetchMaxBytes:            int32(cfg.Int64("replica.fetch.max.bytes")),
		ReplicaFetchResponseMaxBytes:    int32(cfg.Int64("replica.fetch.response.max.bytes")),
		ReplicaFetchBackoff:             ms(cfg, "replica.fetch.backoff.ms"),
		HighWatermarkCheckpointInterval: ms(cfg, "replica.high.watermark.checkpoint.interval.ms"),
		Cleaner:                         cleanerConfig(cfg),
		LeaderThrottledRate:             cfg.Int64("leader.replication.throttled.rate"),
		FollowerThrottledRate:           cfg.Int64("follower.replication.throttled.rate"),
		ReplicationQuotaWindow: quota.Config{Samples: int(cfg.Int64("replication.quota.window.num")),
			Window: time.Duration(cfg.Int64("replication.quota.window.size.seconds")) * time.Second},
	})
	undo = append(undo, func() { s.replicas.Close() })
	s.broker = broker.New(cfg, cc, s.replicas, logger.With("component", "broker"))
	if err := s.broker.ConfigureSecurity(); err != nil {
		return nil, err
	}
	if err := s.broker.ConfigurePrincipalMapping(); err != nil {
		return nil, err
	}
	s.broker.SetInterBrokerClientOpts(interBrokerOpts)
	if s.metrics != nil {
		s.broker.SetMetrics(s.metrics.broker)
	}
	s.broker.SetQuorum(quorumMember{Controller: ctrl, client: s.client})
	b.b = s.broker
	if cfg.Controller {
		// The controller listener's Kafka side serves from now on: the broker registration
		// below may be this node's own, sent to itself.
		cl, _ := cfg.ControllerListenerAddr()
		s.broker.Serve(ctrl.KafkaListener(), cl)
	}
	undo = append(undo, func() { s.broker.Close() })
	if plan.dynamic && cfg.Controller {
		// The active controller replicates to this controller once it registered (an
		// observer becomes a non-voter; an initial voter registers with itself or a peer).
		s.membership = newControllerMembership(cfg, s.client, ctrl, logger.With("component", "controller-membership"))
		if err := s.membership.register(ctx); err != nil {
			return nil, fmt.Errorf("registering with the active controller of the dynamic quorum: %w", err)
		}
		if err := ctrl.WaitReady(ctx); err != nil {
			return nil, fmt.Errorf("following the metadata quorum: %w", err)
		}
		go s.membership.run()
		undo = append(undo, s.membership.close)
	}
	if s.lifecycle != nil {
		regClusterID := ctrl.Image().ClusterID
		if brokerOnly {
			regClusterID = clusterID // its image is empty until it joins
		}
		if err := s.lifecycle.register(ctx, regClusterID); err != nil {
			return nil, fmt.Errorf("registering broker: %w", err)
		}
		if brokerOnly {
			if err := ctrl.WaitReady(ctx); err != nil {
				return nil, fmt.Errorf("following the metadata quorum as a non-voter: %w", err)
			}
		}
		// Serve once this node's own image has its registration, as Kafka's brokers wait to
		// catch up with the metadata log first.
		epoch := uint64(s.lifecycle.Epoch())
		if !waiter.wait(ctx, func(img *metadata.Image) bool { return img.Index >= epoch }) {
			return nil, fmt.Errorf("registering broker: the registration did not reach this node's metadata: %w", context.Cause(ctx))
		}
		go s.lifecycle.run()
		undo = append(undo, s.lifecycle.close)
		// The first heartbeat (at once) unfences a broker that has caught up; serve once it is.
		if err := s.lifecycle.waitUnfenced(ctx); err != nil {
			return nil, fmt.Errorf("waiting to be unfenced by the active controller: %w", err)
		}
	}
	if err := s.replicas.ApplyContext(ctx, ctrl.Image()); err != nil {
		return nil, fmt.Errorf("opening partitions: %w", err)
	}
	s.broker.MetadataApplied(ctrl.Image())
	s.replicas.SetCleanerConfig(dynamicCleanerConfig(cfg, ctrl.Image()))
	s.unsub = ctrl.OnPublish(func(_, img *metadata.Image) {
		if err := s.replicas.Apply(img); err != nil {
			logger.Error("applying metadata", "index", img.Index, "err", err)
		}
		s.replicas.SetCleanerConfig(dynamicCleanerConfig(cfg, img))
		s.broker.MetadataApplied(img)
	})
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var loops sync.WaitGroup
	loops.Add(1)
	go func() {
		defer loops.Done()
		s.replicas.Run(runCtx)
	}()
	if cfg.Controller {
		// Fences brokers whose heartbeats stopped, while this node is the active controller.
		loops.Add(1)
		go func() {
			defer loops.Done()
			ctrl.RunBrokerSessions(runCtx)
		}()
		// Elects preferred leaders back (auto.leader.rebalance.enable), likewise.
		loops.Add(1)
		go func() {
			defer loops.Done()
			ctrl.RunLeaderBalance(runCtx)
		}()
		// Removes expired delegation tokens (it returns at once when tokens are disabled).
		loops.Add(1)
		go func() {
			defer loops.Done()
			ctrl.RunDelegationTokenExpiry(runCtx)
		}()
	}
	go func() {
		loops.Wait()
		close(s.done)
	}()
	for i, l := range clientListeners {
		s.broker.Serve(lns[i], l)
	}
	s.serveMetrics()
	logger.Info("samsa started", "node_id", cfg.NodeID, "roles", roles(cfg), "listeners", s.addrs, "cluster_id", ctrl.Image().ClusterID,
		"log_dir", cfg.LogDirs[0], "startup", time.Since(start).Round(time.Millisecond).String())
	return s, nil
}

// controlledShutdownTimeout bounds the wait for the controller to move leaderships off a
// broker that is shutting down.
const controlledShutdownTimeout = 30 * time.Second

// resignTimeout bounds the wait for another voter to take the quorum's leadership from a node
// that stops gracefully.
const resignTimeout = 3 * time.Second

// ms returns a millisecond setting as a duration.
func ms(cfg *config.Server, name string) time.Duration {
	return time.Duration(cfg.Int64(name)) * time.Millisecond
}

// cleanerConfig is the log cleaner's part of the broker settings (log.cleaner.*), as
// server.properties sets them.
func cleanerConfig(cfg *config.Server) replica.CleanerConfig {
	return cleanerConfigFrom(func(name string) string {
		v, _ := cfg.Value(name)
		return v
	})
}

// dynamicCleanerConfig is cleanerConfig with the run-time values of img (AlterConfigs of the
// broker resource) over server.properties: this node's own, else the cluster-wide default, as
// Kafka's DynamicBrokerConfig orders them.
func dynamicCleanerConfig(cfg *config.Server, img *metadata.Image) replica.CleanerConfig {
	return cleanerConfigFrom(func(name string) string {
		if v, ok := img.DynamicBrokerValue(cfg.NodeID, name); ok {
			return v
		}
		v, _ := cfg.Value(name)
		return v
	})
}

// cleanerConfigFrom builds the cleaner's settings from a lookup of the log.cleaner.* values.
func cleanerConfigFrom(value func(name string) string) replica.CleanerConfig {
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(value(name), 10, 64)
		return n
	}
	threads := int(num("log.cleaner.threads"))
	rate, err := strconv.ParseFloat(value("log.cleaner.io.max.bytes.per.second"), 64)
	if err != nil {
		rate = 0
	}
	enable, _ := strconv.ParseBool(value("log.cleaner.enable"))
	return replica.CleanerConfig{
		Enable:              enable && threads > 0,
		Threads:             threads,
		DedupeBufferBytes:   num("log.cleaner.dedupe.buffer.size"),
		Backoff:             max(time.Duration(num("log.cleaner.backoff.ms"))*time.Millisecond, time.Millisecond),
		IOMaxBytesPerSecond: rate,
	}
}

// interBrokerListener is the listener brokers reach each other on (config.InterBrokerListener).
func interBrokerListener(cfg *config.Server) string {
	if l, ok := cfg.InterBrokerListener(); ok {
		return l.Name
	}
	return cfg.Explicit["inter.broker.listener.name"]
}

// roles names the node's process.roles.
func roles(cfg *config.Server) string {
	switch {
	case cfg.Broker && cfg.Controller:
		return "broker,controller"
	case cfg.Controller:
		return "controller"
	default:
		return "broker"
	}
}

// fileBudget divides the process's open-file limit: a quarter (at least 128) stays free for
// connections, the metadata log, listeners and checkpoint writes; the rest is the segment file
// cache. A broker hosts at most partitionsPerCachedFile partitions per cached descriptor:
// beyond that so few of them can be hot at once that the cache would only churn.
func fileBudget(limit int) (cacheSize, maxPartitions int) {
	cacheSize = max(limit-max(limit/4, 128), 64)
	return cacheSize, cacheSize * partitionsPerCachedFile
}

// partitionsPerCachedFile is the partitions a broker may host per descriptor of its file cache.
const partitionsPerCachedFile = 8

// lockDirs locks every log directory and the metadata directory (see package dirlock),
// creating them if needed. On failure it releases what it took.
func lockDirs(cfg *config.Server) ([]*dirlock.Lock, error) {
	type dir struct{ setting, path string }
	dirs := make([]dir, 0, len(cfg.LogDirs)+1)
	for _, d := range cfg.LogDirs {
		dirs = append(dirs, dir{"log.dirs", d})
	}
	dirs = append(dirs, dir{"metadata.log.dir", cfg.MetadataLogDir})
	var locks []*dirlock.Lock
	seen := map[string]bool{}
	for _, d := range dirs {
		key := filepath.Clean(d.path)
		if abs, err := filepath.Abs(d.path); err == nil {
			key = abs
		}
		if seen[key] {
			continue // metadata.log.dir defaults to the first log dir
		}
		seen[key] = true
		l, err := dirlock.Acquire(d.path)
		if err != nil {
			for _, l := range locks {
				l.Release()
			}
			return nil, fmt.Errorf("%s: %w", d.setting, err)
		}
		locks = append(locks, l)
	}
	return locks, nil
}

// releaseLocks releases the directory locks, logging failures.
func (s *Server) releaseLocks() {
	for _, l := range s.locks {
		if err := l.Release(); err != nil {
			s.log.Warn("releasing directory lock", "dir", l.Dir(), "err", err)
		}
	}
}

// lateBroker lets the replica manager derive log configs from the broker, which is created
// after the manager.
type lateBroker struct{ b *broker.Broker }

func (l *lateBroker) logConfig(c map[string]string) storage.LogConfig { return l.b.LogConfig(c) }

// registration describes this broker's endpoints: the advertised listeners if configured,
// else the bound ones (an empty or wildcard host advertises the machine's hostname).
func (s *Server) registration(bound []config.Listener) metadata.Broker {
	adv := s.cfg.AdvertisedListeners
	if len(adv) == 0 {
		adv = bound
	}
	br := metadata.Broker{ID: s.cfg.NodeID, IncarnationID: metadata.RandomUUID()}
	if v, ok := s.cfg.Explicit["broker.rack"]; ok {
		br.Rack = v
	}
	for _, l := range adv {
		host := l.Host
		if host == "" || host == "0.0.0.0" || host == "::" {
			host, _ = os.Hostname()
		}
		port := l.Port
		if port == 0 {
			for _, b := range bound {
				if b.Name == l.Name {
					port = b.Port
				}
			}
		}
		br.Endpoints = append(br.Endpoints, metadata.Endpoint{Listener: l.Name, Host: host, Port: int32(port), SecurityProtocol: l.Protocol})
	}
	return br
}

// Addr returns the bound address of the first client listener.
func (s *Server) Addr() string {
	if !s.cfg.Broker {
		return ""
	}
	return s.addrs[s.cfg.ClientListeners()[0].Name]
}

// Replicas returns the node's replica manager (tests compare replicas' logs).
func (s *Server) Replicas() *replica.Manager { return s.replicas }

// Broker returns the node's broker (tests read its fetch-session figures).
func (s *Server) Broker() *broker.Broker { return s.broker }

// Quorum describes the metadata quorum as this node knows it.
func (s *Server) Quorum() (controller.QuorumInfo, error) { return s.ctrl.QuorumInfo() }

// SnapshotMetadata writes a snapshot of this node's metadata image now (controller.Snapshot).
func (s *Server) SnapshotMetadata() error { return s.ctrl.Snapshot() }

// Image returns this node's current metadata image.
func (s *Server) Image() *metadata.Image { return s.ctrl.Image() }

// ListenerAddr returns the bound address of a listener.
func (s *Server) ListenerAddr(name string) string { return s.addrs[name] }

// Close shuts the node down in order: a controlled shutdown (the controller moves this
// broker's leaderships away, bounded by controlledShutdownTimeout), stop heartbeating, stop
// serving clients, stop the log work, close the logs (flushing them and marking a clean
// shutdown), stop the controller, then release the directory locks.
func (s *Server) Close() error {
	if s.lifecycle != nil {
		if !s.lifecycle.controlledShutdown(controlledShutdownTimeout) {
			s.log.Warn("controlled shutdown did not complete in time; stopping anyway", "timeout", controlledShutdownTimeout.String())
		}
	}
	return s.stop(true)
}

// Kill stops the node without a controlled shutdown, as if its process died: heartbeats stop
// (the controller fences it after broker.session.timeout.ms) and its leaderships stay until
// then. Tests use it; files are still closed cleanly.
func (s *Server) Kill() error { return s.stop(false) }

func (s *Server) stop(graceful bool) error {
	s.closeMetrics()
	if s.lifecycle != nil {
		s.lifecycle.close()
	}
	if s.membership != nil {
		s.membership.close()
	}
	s.broker.Close()
	s.client.close()
	s.unsubWait()
	if s.unsub != nil {
		s.unsub()
	}
	s.cancel()
	<-s.done
	err := s.replicas.Close()
	if graceful {
		s.ctrl.Resign(resignTimeout)
	}
	if cerr := s.ctrl.Close(); cerr != nil && err == nil {
		err = cerr
	}
	s.releaseLocks()
	if err != nil {
		s.log.Error("shutdown", "err", err)
	} else {
		s.log.Info("samsa stopped cleanly")
	}
	return err
}
