package controller

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestStartDoesNotHangOnALockedStore holds raft.db's bbolt lock (as another process would) and
// checks that Start gives up after StoreLockTimeout, or sooner when its context ends.
func TestStartDoesNotHangOnALockedStore(t *testing.T) {
	for _, tc := range []struct {
		name        string
		lockTimeout time.Duration
		cancelled   bool
		want        error
		wantMsg     string
	}{
		{"gives up after the timeout", 300 * time.Millisecond, false, bbolt.ErrTimeout, "locked by another process"},
		{"ends with its context", time.Hour, true, context.Canceled, "waiting for the lock on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			holder, err := bbolt.Open(filepath.Join(dir, "raft.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()

			cfg := testConfig(t, dir)
			cfg.StoreLockTimeout = tc.lockTimeout
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			done := make(chan error, 1)
			go func() {
				c, err := Start(ctx, cfg)
				if err == nil {
					c.Close()
				}
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(testTimeout):
				t.Fatal("Start hangs on a raft.db locked by someone else")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Start: %v; want %v and %q", err, tc.want, tc.wantMsg)
			}

			// Once the holder lets go, the store opens.
			holder.Close()
			startController(t, testConfig(t, dir))
		})
	}
}
