// Command profserver runs a Samsa node in-process, like `samsa server`, with CPU profiling
// switched on and off by SIGUSR1, so that bench/run --profile can profile the broker under one
// workload at a time (the broker itself has no profiling endpoint). The n-th profile goes to
// PREFIX-n.pprof, and PREFIX-n.pprof.done appears once it is complete. SIGTERM or SIGINT
// stops the node cleanly and writes a heap profile to PREFIX-heap.pprof.
//
//	profserver --cpuprofile-prefix /tmp/prof/samsa --override log.dirs=/tmp/d [--override k=v ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/server"
)

func main() {
	var overrides []string
	prefix := flag.String("cpuprofile-prefix", "samsa", "profiles are written to PREFIX-N.pprof")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	flag.Func("override", "a setting as key=value (repeatable)", func(s string) error {
		overrides = append(overrides, s)
		return nil
	})
	flag.Parse()
	if err := run(*prefix, *logLevel, overrides); err != nil {
		fmt.Fprintln(os.Stderr, "profserver:", err)
		os.Exit(1)
	}
}

func run(prefix, level string, overrides []string) error {
	props := map[string]string{}
	for _, o := range overrides {
		k, v, err := config.ParseOverride(o)
		if err != nil {
			return err
		}
		props[k] = v
	}
	cfg, err := config.LoadServer(props)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := server.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	toggle := make(chan os.Signal, 4)
	signal.Notify(toggle, syscall.SIGUSR1)
	var (
		n   int
		cur *os.File
	)
	finish := func() {
		if cur == nil {
			return
		}
		pprof.StopCPUProfile()
		name := cur.Name()
		if err := cur.Close(); err != nil {
			logger.Error("closing profile", "err", err)
		}
		cur = nil
		_ = os.WriteFile(name+".done", nil, 0o644)
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-toggle:
			if cur != nil {
				finish()
				continue
			}
			n++
			f, err := os.Create(fmt.Sprintf("%s-%d.pprof", prefix, n))
			if err != nil {
				logger.Error("creating profile", "err", err)
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				logger.Error("starting profile", "err", err)
				f.Close()
				continue
			}
			cur = f
		}
	}
	finish()
	if f, err := os.Create(prefix + "-heap.pprof"); err == nil {
		runtime.GC()
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	return srv.Close()
}
