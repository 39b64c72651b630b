// Package dirlock keeps two processes from using one data directory at the same time, as Kafka
// does: the owner holds an exclusive flock(2) on a file named .lock in the directory for as
// long as it runs, and writes its pid into that file so that a refused process can name the
// holder. The lock is not inherited across exec and ends with the process, however it ends
// (SIGKILL included), so a stale .lock file never blocks a restart. The file itself is never
// removed: deleting it would let a third process lock a new file while the holder still holds
// the old one.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FileName is the name of the lock file inside a locked directory.
const FileName = ".lock"

// Lock is an exclusive lock on one directory, held until Release.
type Lock struct {
	dir string
	f   *os.File
}

// InUseError reports a directory locked by someone else.
type InUseError struct {
	Dir string
	// PID is the holder's pid as it wrote it into the lock file; 0 if unknown.
	PID int
}

func (e *InUseError) Error() string {
	holder := "another Samsa process"
	if e.PID > 0 {
		holder += fmt.Sprintf(" (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s is in use by %s: failed to acquire lock on file %s in %s", e.Dir, holder, FileName, e.Dir)
}

// Acquire creates dir if needed and locks it without waiting: if another open file (in this
// process or another) holds the lock it fails at once with an *InUseError.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &InUseError{Dir: dir, PID: readPID(path)}
		}
		return nil, fmt.Errorf("failed to acquire lock on file %s in %s: %w", FileName, dir, err)
	}
	// The pid is informational: a failure to write it does not weaken the lock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{dir: dir, f: f}, nil
}

// flock takes an exclusive, non-blocking lock on f, retrying if a signal interrupts it.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// readPID returns the pid written in a lock file, or 0.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Dir returns the locked directory.
func (l *Lock) Dir() string { return l.dir }

// Release unlocks the directory. It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor of the open file releases the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("releasing lock on %s: %w", l.dir, err)
	}
	return nil
}
