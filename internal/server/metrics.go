package server

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samsa-io/samsa/internal/metrics"
)

// nodeMetrics is the node's Prometheus endpoint (samsa.metrics.address): bound early in Start,
// served once the node runs, closed first in stop.
type nodeMetrics struct {
	ln     net.Listener
	reg    *prometheus.Registry
	broker *metrics.Broker
	srv    *metrics.Server
}

// bindMetrics binds the endpoint when samsa.metrics.address is set (nil when not): a port
// that cannot be bound fails the start before anything else runs.
func bindMetrics(addr string) (*nodeMetrics, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := metrics.Listen(addr)
	if err != nil {
		return nil, err
	}
	m := &nodeMetrics{ln: ln, reg: metrics.NewRegistry()}
	m.broker = metrics.NewBroker(m.reg)
	return m, nil
}

// serveMetrics starts serving the endpoint, reading the node's state at each scrape.
func (s *Server) serveMetrics() {
	if s.metrics == nil {
		return
	}
	metrics.RegisterState(s.metrics.reg, s.metricsSnapshot)
	s.metrics.srv = metrics.Serve(s.metrics.ln, s.metrics.reg, s.log.With("component", "metrics"))
	s.log.Info("serving metrics", "address", "http://"+s.metrics.ln.Addr().String()+metrics.Path)
}

// closeMetrics stops the endpoint (or only its listener, when it was never served).
func (s *Server) closeMetrics() {
	switch {
	case s.metrics == nil:
	case s.metrics.srv != nil:
		s.metrics.srv.Close()
	default:
		s.metrics.ln.Close()
	}
}

// MetricsAddr is the metrics endpoint's bound address ("" when samsa.metrics.address is
// empty).
func (s *Server) MetricsAddr() string {
	if s.metrics == nil {
		return ""
	}
	return s.metrics.ln.Addr().String()
}

// metricsSnapshot reads the node's state for a scrape: the broker's part on a broker, the
// quorum's on every node, and the offline partitions on the active controller.
func (s *Server) metricsSnapshot() metrics.Snapshot {
	var snap metrics.Snapshot
	if s.cfg.Broker {
		s.broker.FillSnapshot(&snap)
	}
	snap.MetadataApplied, snap.MetadataCommitted = s.ctrl.AppliedIndex(), s.ctrl.CommitIndex()
	if s.cfg.Controller {
		snap.HasController = true
		snap.ActiveController = s.ctrl.IsLeader()
		if snap.ActiveController {
			for _, t := range s.ctrl.Image().Topics {
				for i := range t.Partitions {
					if t.Partitions[i].Leader < 0 {
						snap.OfflinePartitions++
					}
				}
			}
		}
	}
	return snap
}
