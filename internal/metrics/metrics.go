// Package metrics is a Samsa node's Prometheus endpoint (samsa.metrics.address): the registry,
// the HTTP server of GET /metrics, and the broker's metrics.
//
// Every metric is named samsa_* and its help text names the Kafka MBean it corresponds to, so
// that a Kafka operator finds theirs. Two kinds, to keep the request path cheap:
//
//   - Counters on the request path (requests.go): per API key request counts, the latency
//     histogram and error codes, connections per listener, quota throttles. Their children
//     are made once (per API key, per listener, per quota type); handling a request adds to
//     them without a label lookup or an allocation. With the setting empty the broker holds
//     none and the request path skips them (a partition's traffic counters, plain atomics
//     in package replica, are kept either way).
//   - State read at scrape time (state.go): partitions, leaders, under-replicated, offline,
//     ISR changes, the active controller, the metadata log, the log cleaner, bytes and
//     messages per topic and log sizes. The packages that own those numbers expose plain
//     values; the server gathers them into a Snapshot when Prometheus scrapes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the endpoint serves the metrics.
const Path = "/metrics"

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Server serves GET /metrics of a registry over HTTP.
type Server struct {
	ln   net.Listener
	http *http.Server
	done chan struct{}
}

// Listen binds the endpoint's address (host:port; port 0 picks one). A node binds it early in
// its start, so that a port in use fails the start at once, and serves on it once it runs. The
// error names the setting.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("samsa.metrics.address: cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves the registry's metrics on ln until Close.
func Serve(ln net.Listener, reg *prometheus.Registry, logger *slog.Logger) *Server {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       30 * time.Second,
	}))
	s := &Server{ln: ln, done: make(chan struct{}), http: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s
}

// Addr is the bound address (with the real port when the setting asked for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: the listener at once, scrapes in flight within 5 s.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
	<-s.done
}
