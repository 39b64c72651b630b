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

// reserveRestoreInterval is how often, at most, a partly released reserve is grown back after
// a successful metadata write, once the filesystem has room for it twice over.
const reserveRestoreInterval = 30 * time.Second

// reserveStep is how much of the reserve one disk-full metadata write releases: a little at
// a time, because partition data sharing the disk takes freed space too, and what is left
// must carry the metadata writes of later episodes and of a start on a full disk.
const reserveStep = 1 << 20

// reserve keeps space for the metadata store on its filesystem, so that metadata keeps
// working when partition data fills a shared disk: a file of size bytes allocated with
// fallocate(2) beside raft.db. When a write of the Raft store fails for lack of space the file
// is shortened by reserveStep and the write retried; it grows back once space returns.
type reserve struct {
	path   string
	size   int64
	logger *slog.Logger

	mu      sync.Mutex
	have    int64 // bytes the file holds now
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

// ensureLocked grows the reserve file to its size; without room it keeps what the file holds
// and logs.
func (r *reserve) ensureLocked() {
	r.lastTry = time.Now()
	err := allocate(r.path, r.size)
	if fi, serr := os.Stat(r.path); serr == nil {
		r.have = min(fi.Size(), r.size)
	}
	if err != nil {
		_, free, _ := storage.DiskUsage(filepath.Dir(r.path))
		r.logger.Warn("cannot reserve all the space wanted for the metadata store",
			"file", r.path, "want", storage.FormatBytes(r.size), "have", storage.FormatBytes(r.have),
			"free", storage.FormatBytes(free), "err", err)
		return
	}
	r.have = r.size
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

// release shortens the reserve by reserveStep, reporting whether it freed anything.
func (r *reserve) release(cause error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.have <= 0 {
		return false
	}
	left := max(0, r.have-reserveStep)
	if err := os.Truncate(r.path, left); err != nil {
		r.logger.Error("releasing part of the metadata space reserve", "file", r.path, "err", err)
		return false
	}
	r.have = left
	r.logger.Warn("disk full under the metadata store: released part of its space reserve; free space on this disk",
		"file", r.path, "left", storage.FormatBytes(left), "err", cause)
	return true
}

// maybeRestore grows a partly released reserve back when the filesystem has room for all of
// it twice over, at most once per reserveRestoreInterval.
func (r *reserve) maybeRestore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.have >= r.size || time.Since(r.lastTry) < reserveRestoreInterval {
		return
	}
	r.lastTry = time.Now()
	if _, free, err := storage.DiskUsage(filepath.Dir(r.path)); err != nil || free < 2*r.size {
		return
	}
	r.ensureLocked()
	if r.have == r.size {
		r.logger.Info("metadata space reserve restored", "file", r.path, "bytes", r.size)
	}
}

// write runs a write of the Raft store; while it fails for lack of space and the reserve has
// some left, it releases a step of the reserve and runs it again (a failed bbolt commit is
// rolled back, so it may be retried).
func (r *reserve) write(op string, fn func() error) error {
	err := fn()
	for err != nil && storage.IsDiskFull(err) && r.release(err) {
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
