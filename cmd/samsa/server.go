package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/server"
)

func init() {
	var (
		configPath string
		overrides  []string
		logFormat  string
		logLevel   string
		pprofAddr  string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Samsa node (broker and controller)",
		Long: `Run a Samsa node. With no configuration it is a complete single-node cluster: data in
./data, clients on PLAINTEXT://localhost:9092, the controller on localhost:9093.

Settings use Kafka's property names (server.properties), e.g.
  samsa server --config server.properties --override log.retention.hours=24`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadServerConfig(configPath, overrides)
			if err != nil {
				return err
			}
			logger, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			if pprofAddr != "" {
				if err := servePprof(pprofAddr, logger); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			// A first line at once: opening the metadata log and recovering partitions after
			// an unclean stop can take a while before "samsa started".
			logger.Info("samsa starting", "node_id", cfg.NodeID, "log_dirs", cfg.LogDirs)
			srv, err := server.Start(ctx, cfg, logger)
			if err != nil {
				if ctx.Err() != nil {
					logger.Error("start-up stopped", "cause", context.Cause(ctx).Error())
				}
				return err
			}
			<-ctx.Done()
			logger.Info("shutting down")
			return srv.Close()
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "server.properties file")
	cmd.Flags().StringArrayVar(&overrides, "override", nil, "a setting as key=value (repeatable); wins over --config")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&pprofAddr, "pprof-addr", "", "serve Go's pprof profiles over HTTP on this address (e.g. 127.0.0.1:6060)")
	rootCmd.AddCommand(cmd)
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// servePprof serves net/http/pprof on addr for profiling the broker under load.
func servePprof(addr string, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	logger.Info("serving pprof", "addr", ln.Addr().String())
	go http.Serve(ln, mux)
	return nil
}

// loadServerConfig reads a properties file (none: the defaults) and --override settings into a
// validated server configuration.
func loadServerConfig(configPath string, overrides []string) (*config.Server, error) {
	props := map[string]string{}
	if configPath != "" {
		f, err := os.Open(configPath)
		if err != nil {
			return nil, err
		}
		props, err = config.ParseProperties(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", configPath, err)
		}
	}
	for _, o := range overrides {
		k, v, err := config.ParseOverride(o)
		if err != nil {
			return nil, err
		}
		props[k] = v
	}
	cfg, err := config.LoadServer(props)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}
