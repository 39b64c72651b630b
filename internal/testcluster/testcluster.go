// Package testcluster starts in-process Samsa nodes on random loopback ports for tests, each
// with its own temporary data directory, and stops them when the test ends.
package testcluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/server"
)

// Node is one in-process node.
type Node struct {
	t        testing.TB
	Dir      string
	props    map[string]string
	srv      *server.Server
	Logger   *slog.Logger
	stopOnce bool
}

// Start starts a single-node cluster with the given settings (key=value) on top of test
// defaults: loopback listeners on random ports and a temporary log directory. Logs go to the
// test log when SAMSA_TEST_LOG=1, else are discarded.
func Start(t testing.TB, settings ...string) *Node {
	t.Helper()
	n := &Node{t: t, Dir: t.TempDir()}
	n.props = map[string]string{
		"listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"log.dirs":  n.Dir,
	}
	applySettings(t, n.props, settings)
	n.Logger = testLogger()
	n.start()
	t.Cleanup(func() { n.Stop() })
	return n
}

func (n *Node) start() {
	n.t.Helper()
	cfg, err := config.LoadServer(n.props)
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg, n.Logger)
	if err != nil {
		n.t.Fatal(err)
	}
	n.srv = srv
	n.stopOnce = false
}

// Addr returns the client listener's address.
func (n *Node) Addr() string { return n.srv.Addr() }

// Server returns the running node.
func (n *Node) Server() *server.Server { return n.srv }

// Stop shuts the node down cleanly (idempotent).
func (n *Node) Stop() {
	if n.stopOnce || n.srv == nil {
		return
	}
	n.stopOnce = true
	if err := n.srv.Close(); err != nil {
		n.t.Errorf("stopping node: %v", err)
	}
}

// Set changes a setting (key=value) for the node's next Restart.
func (n *Node) Set(setting string) {
	n.t.Helper()
	k, v, err := config.ParseOverride(setting)
	if err != nil {
		n.t.Fatal(err)
	}
	n.props[k] = v
}

// Restart stops the node cleanly and starts it again on the same data directory and the same
// client port, so connected clients reconnect to it.
func (n *Node) Restart() {
	n.t.Helper()
	// Every client listener keeps its port; the controller's is picked anew.
	var ls []string
	for _, l := range strings.Split(n.props["listeners"], ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(l), "://")
		if addr := n.srv.ListenerAddr(strings.ToUpper(name)); addr != "" && !strings.EqualFold(name, "CONTROLLER") {
			ls = append(ls, name+"://"+addr)
		}
	}
	n.Stop()
	n.props["listeners"] = strings.Join(append(ls, "CONTROLLER://127.0.0.1:0"), ",")
	n.start()
}

// applySettings parses key=value settings into props.
func applySettings(t testing.TB, props map[string]string, settings []string) {
	t.Helper()
	for _, s := range settings {
		k, v, err := config.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		props[k] = v
	}
}

// testLogger logs to stderr when SAMSA_TEST_LOG=1, else discards.
func testLogger() *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if os.Getenv("SAMSA_TEST_LOG") == "1" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return slog.New(h)
}

// PollUntil calls cond every 200 ms until it holds, failing the test with what and cond's
// last description of the state when d passes first (a deadline, not a sleep-as-assert).
func PollUntil(t testing.TB, d time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v; last: %s", what, d, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
