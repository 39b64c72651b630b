package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/dirlock"
)

func startNode(t *testing.T, props map[string]string) (*Server, error) {
	t.Helper()
	all := map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0"}
	for k, v := range props {
		all[k] = v
	}
	cfg, err := config.LoadServer(all)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestDirectoryLocks checks that Start refuses directories another node holds, and that the
// locks are released by Close and by a failed start.
func TestDirectoryLocks(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		// second's settings, given the first node's log dir
		second    func(dir string) map[string]string
		wantInUse bool
	}{
		{"same log dir", func(dir string) map[string]string { return map[string]string{"log.dirs": dir} }, true},
		{"same metadata dir", func(dir string) map[string]string {
			return map[string]string{"log.dirs": t.TempDir(), "metadata.log.dir": dir}
		}, true},
		{"own dirs", func(string) map[string]string { return map[string]string{"log.dirs": t.TempDir()} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			first, err := startNode(t, map[string]string{"log.dirs": dir})
			if err != nil {
				t.Fatal(err)
			}
			second, err := startNode(t, tc.second(dir))
			var inUse *dirlock.InUseError
			if got := errors.As(err, &inUse); got != tc.wantInUse {
				t.Fatalf("second node: %v; want in-use error: %v", err, tc.wantInUse)
			}
			if err == nil {
				second.Close()
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			// Close released the locks: the directory can be locked again.
			l, err := dirlock.Acquire(dir)
			if err != nil {
				t.Fatalf("after Close: %v", err)
			}
			l.Release()
		})
	}
	t.Run("failed start releases the locks", func(t *testing.T) {
		dir := t.TempDir()
		_, err := startNode(t, map[string]string{"log.dirs": dir, "listeners": "PLAINTEXT://" + busy.Addr().String() + ",CONTROLLER://127.0.0.1:0"})
		if err == nil {
			t.Fatal("started on a port in use")
		}
		l, err := dirlock.Acquire(dir)
		if err != nil {
			t.Fatalf("after a failed start: %v", err)
		}
		l.Release()
	})
}
