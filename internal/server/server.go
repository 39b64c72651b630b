// Package server assembles a Samsa node from its validated configuration: it binds the
// listeners, starts the controller (metadata quorum), registers the broker, opens the hosted
// partitions through the replica manager and serves clients. `samsa server` and the
// in-process test clusters both start nodes through it.
package server

import (
	"context"
	"fmt"
	"github.com/google/uuid"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/samsa-io/samsa/internal/broker"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
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
}

// Start starts a node and returns once it serves clients.
func Start(ctx context.Context, cfg *config.Server, logger *slog.Logger) (*Server, error) {
	start := time.Now()
	s := &Server{cfg: cfg, log: logger, addrs: map[string]string{}, done: make(chan struct{})}
	for _, k := range cfg.Ignored {
		logger.Warn("setting is not supported yet and has no effect", "setting", k)
	}
	for _, dir := range cfg.LogDirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("log.dirs: %w", err)
		}
	}
	// Bind the client listeners first, so port 0 resolves before the broker registers.
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	clientListeners := cfg.ClientListeners()
	for i, l := range clientListeners {
		ln, err := net.Listen("tcp", l.Addr())
		if err != nil {
			closeAll()
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
	ctrl, err := controller.Start(ctx, controller.Config{
		NodeID:                   cfg.NodeID,
		Dir:                      filepath.Join(cfg.MetadataLogDir, "__cluster_metadata-0"),
		BindAddr:                 ctrlAddr,
		Bootstrap:                true,
		Logger:                   logger.With("component", "controller"),
		ValidateTopicConfig:      config.ValidateTopicConfig,
		DefaultPartitions:        cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplication,
	})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("starting controller: %w", err)
	}
	s.ctrl = ctrl
	s.addrs[cfg.ControllerListener] = ctrl.Addr()

	if err := ctrl.RegisterBroker(ctx, s.registration(clientListeners)); err != nil {
		closeAll()
		ctrl.Close()
		return nil, fmt.Errorf("registering broker: %w", err)
	}

	b := &lateBroker{}
	s.replicas = replica.NewManager(replica.Config{
		Dir:                    cfg.LogDirs[0],
		NodeID:                 cfg.NodeID,
		Logger:                 logger.With("component", "replicas"),
		LogConfig:              b.logConfig,
		RetentionCheckInterval: time.Duration(cfg.RetentionCheckInterval) * time.Millisecond,
		FlushCheckInterval:     time.Duration(cfg.FlushSchedulerInterval) * time.Millisecond,
	})
	s.broker = broker.New(cfg, ctrl, s.replicas, logger.With("component", "broker"))
	b.b = s.broker
	if err := s.replicas.Apply(ctrl.Image()); err != nil {
		closeAll()
		s.replicas.Close()
		ctrl.Close()
		return nil, fmt.Errorf("opening partitions: %w", err)
	}
	s.broker.MetadataApplied(ctrl.Image())
	s.unsub = ctrl.OnPublish(func(_, img *metadata.Image) {
		if err := s.replicas.Apply(img); err != nil {
			logger.Error("applying metadata", "index", img.Index, "err", err)
		}
		s.broker.MetadataApplied(img)
	})
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.replicas.Run(runCtx)
	}()
	for i, l := range clientListeners {
		s.broker.Serve(lns[i], l)
	}
	logger.Info("samsa started", "node_id", cfg.NodeID, "listeners", s.addrs, "cluster_id", ctrl.Image().ClusterID,
		"log_dir", cfg.LogDirs[0], "startup", time.Since(start).Round(time.Millisecond).String())
	return s, nil
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
	br := metadata.Broker{ID: s.cfg.NodeID, IncarnationID: metadata.UUID(uuid.New())}
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
func (s *Server) Addr() string { return s.addrs[s.cfg.ClientListeners()[0].Name] }

// ListenerAddr returns the bound address of a listener.
func (s *Server) ListenerAddr(name string) string { return s.addrs[name] }

// Close shuts the node down in order: stop serving clients, stop the log work, close the logs
// (flushing them and marking a clean shutdown), then stop the controller.
func (s *Server) Close() error {
	s.broker.Close()
	if s.unsub != nil {
		s.unsub()
	}
	s.cancel()
	<-s.done
	err := s.replicas.Close()
	if cerr := s.ctrl.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		s.log.Error("shutdown", "err", err)
	} else {
		s.log.Info("samsa stopped cleanly")
	}
	return err
}
