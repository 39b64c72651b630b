package controller

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/samsa-io/samsa/internal/storage"
)

// reserveFile is the name of the space reserve in Config.Dir.
const reserveFile = "metadata.reserve"

// DefaultReserveBytes is Config.ReserveBytes's default.
const DefaultReserveBytes = 64 << 20

// reserveRestoreInterval is how often, at most, a released reserve is re-created after a
// successful metadata write, once the filesystem has room for it and as much again.
const reserveRestoreInterval = 30 * time.Second

// reserve keeps space for the metadata store on its filesystem, so that metadata keeps
// working when partition data fills a shared disk: a file of size bytes allocated with
// fallocate(2) beside raft.db. When a write of the Raft store fails for lack of space the
// file is deleted and the write retried; the file is re-created once space returns.
type reserve struct {
	path   string
	size   int64
	logger *slog.Logger

	mu      sync.Mutex
	held    bool
	lastTry time.Time
}

func newReserve(path string, size int64, logger *slog.Logger) *reserve {
	r := &reserve{path: path, size: size, logger: logger}
	if size <= 0 {
		_ = os.Remove(path) // a reserve left from a run with one
		return r
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ensureLocked()
	return r
}

// ensureLocked allocates the reserve file; on failure (no room) it logs and removes the part
// that was allocated.
func (r *reserve) ensureLocked() {
	r.lastTry = time.Now()
	if err := allocate(r.path, r.size); err != nil {
		_ = os.Remove(r.path)
		_, free, _ := storage.DiskUsage(filepath.Dir(r.path))
		r.logger.Warn("cannot reserve space for the metadata store; metadata writes fail when the disk fills",
			"file", r.path, "bytes", r.size, "free", storage.FormatBytes(free), "err", err)
		return
	}
	r.held = true
}

// allocate makes path a file of size allocated bytes (fallocate; zeros where unsupported).
func allocate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		err = writeZeros(f, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// release deletes the reserve, reporting whether it freed anything.
func (r *reserve) release(cause error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held {
		return false
	}
	r.held = false
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.logger.Error("releasing the metadata space reserve", "file", r.path, "err", err)
		return false
	}
	r.logger.Warn("disk full under the metadata store: released its space reserve; free space on this disk",
		"file", r.path, "bytes", r.size, "err", cause)
	return true
}

// maybeRestore re-creates a released reserve when the filesystem has room for it twice over,
// at most once per reserveRestoreInterval.
func (r *reserve) maybeRestore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held || r.size <= 0 || time.Since(r.lastTry) < reserveRestoreInterval {
		return
	}
	r.lastTry = time.Now()
	if _, free, err := storage.DiskUsage(filepath.Dir(r.path)); err != nil || free < 2*r.size {
		return
	}
	r.ensureLocked()
	if r.held {
		r.logger.Info("metadata space reserve restored", "file", r.path, "bytes", r.size)
	}
}

// write runs a write of the Raft store; if it fails for lack of space, it releases the
// reserve and runs it once more (a failed bbolt commit is rolled back, so it may be retried).
func (r *reserve) write(op string, fn func() error) error {
	err := fn()
	if err != nil && storage.IsDiskFull(err) && r.release(err) {
		err = fn()
	}
	if err != nil {
		return fmt.Errorf("metadata store %s: %w", op, err)
	}
	r.maybeRestore()
	return nil
}

// reservedStore is the Raft log and stable store (raft-boltdb) with its writes going through
// the reserve, so that a full disk does not make Raft step down (a failed StoreLogs does).
type reservedStore struct {
	*raftboltdb.BoltStore
	r *reserve
}

var (
	_ raft.LogStore    = (*reservedStore)(nil)
	_ raft.StableStore = (*reservedStore)(nil)
)

func (s *reservedStore) StoreLog(l *raft.Log) error {
	return s.r.write("store log", func() error { return s.BoltStore.StoreLog(l) })
}

func (s *reservedStore) StoreLogs(ls []*raft.Log) error {
	return s.r.write("store logs", func() error { return s.BoltStore.StoreLogs(ls) })
}

func (s *reservedStore) DeleteRange(lo, hi uint64) error {
	return s.r.write("delete range", func() error { return s.BoltStore.DeleteRange(lo, hi) })
}

func (s *reservedStore) Set(k, v []byte) error {
	return s.r.write("set", func() error { return s.BoltStore.Set(k, v) })
}

func (s *reservedStore) SetUint64(k []byte, v uint64) error {
	return s.r.write("set", func() error { return s.BoltStore.SetUint64(k, v) })
}
