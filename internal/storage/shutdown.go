package storage

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// CloseLogs closes logs for a shutdown, like Close on each, but at the cost of two syncs of
// each filesystem holding them instead of an fsync of every file written (see "Clean
// shutdown" in the package doc):
//
//  1. every changed log seals its active segment and writes its producer snapshot and
//     checkpoints without fsync (closePrepare), parallelism logs at once;
//  2. one FS.SyncAll per filesystem makes all of that durable;
//  3. every log whose state files were all written writes its clean-shutdown marker, again
//     without fsync, and closes its files (closeCommit);
//  4. one more FS.SyncAll per filesystem makes the markers durable.
//
// A marker is thus written only after what it vouches for is durable. When the first SyncAll
// fails, the logs on that filesystem get no marker, and the next start recovers them; when
// the FS cannot sync a whole filesystem (errors.ErrUnsupported), those logs fsync their
// files one by one instead. It returns the first error.
func CloseLogs(logs []*Log, parallelism int) error {
	marks := make([]bool, len(logs))
	errs := make([]error, len(logs))
	forEach(len(logs), parallelism, func(i int) { marks[i], errs[i] = logs[i].closePrepare() })
	open := slices.Clone(marks) // files left open by closePrepare, for closeCommit

	groups := groupByFilesystem(logs, marks)
	perFile := make([]bool, len(logs)) // fsync each file: the filesystem cannot be synced whole
	for _, g := range groups {
		err := g.fs.SyncAll(g.dir)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			forEach(len(g.logs), parallelism, func(j int) {
				i := g.logs[j]
				perFile[i] = true
				if err := logs[i].syncPrepared(); err != nil {
					marks[i], errs[i] = false, err
				}
			})
		case err != nil:
			logs[g.logs[0]].logger.Error("syncing the filesystem at shutdown failed: no clean-shutdown markers, so the next start recovers these logs",
				"dir", g.dir, "logs", len(g.logs), "err", err)
			errs[g.logs[0]] = cmp.Or(errs[g.logs[0]], fmt.Errorf("syncing %s: %w", g.dir, err))
			for _, i := range g.logs {
				marks[i] = false
			}
		}
	}

	forEach(len(logs), parallelism, func(i int) {
		if open[i] {
			errs[i] = cmp.Or(errs[i], logs[i].closeCommit(marks[i], perFile[i]))
		}
	})

	var firstErr error
	for _, g := range groups {
		if err := g.fs.SyncAll(g.dir); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			firstErr = cmp.Or(firstErr, fmt.Errorf("syncing clean-shutdown markers in %s: %w", g.dir, err))
		}
	}
	for _, err := range errs {
		firstErr = cmp.Or(firstErr, err)
	}
	return firstErr
}

// closePrepare is the first phase of CloseLogs: it closes the log to mutations and, if it
// changed since a clean open, writes its state files without fsync (writeStateLocked), keeping
// its files open for closeCommit. mark reports that all were written, so the log may get its
// marker once they are durable; a log that is done (closed before, unchanged since a clean
// open, or failed) has mark false and its files closed.
func (l *Log) closePrepare() (mark bool, err error) {
	if !l.markClosed() {
		return false, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.clean {
		return false, l.closeResultLocked(l.closeFilesLocked(), nil)
	}
	l.mu.deferSync = true
	full, err := l.writeStateLocked(false)
	l.mu.deferSync = false
	l.deletes.flush()
	if err != nil || full != nil {
		return false, l.closeResultLocked(cmp.Or(err, l.closeFilesLocked()), full)
	}
	return true, nil
}

// syncPrepared fsyncs, file by file, what closePrepare wrote: the segments, the state files
// and the directory.
func (l *Log) syncPrepared() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.mu.segments {
		if err := s.sync(); err != nil {
			return fmt.Errorf("closing log %s: %w", l.dir, err)
		}
	}
	for _, name := range []string{fileName(l.endLocked(), snapshotSuffix), epochCheckpointFile, logCheckpointFile} {
		f, err := l.fs.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = f.Sync()
			err = cmp.Or(err, f.Close())
		}
		if err != nil {
			return fmt.Errorf("closing log %s: syncing %s: %w", l.dir, name, err)
		}
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return fmt.Errorf("closing log %s: syncing the directory: %w", l.dir, err)
	}
	return nil
}

// closeCommit is the last phase of CloseLogs, once what closePrepare wrote is durable: it
// writes the clean-shutdown marker when mark (fsynced when sync) and closes the files.
func (l *Log) closeCommit(mark, sync bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var full, err error
	if mark && sync {
		full, err = splitDiskFull(writeFileAtomic(l.fs, l.dir, cleanShutdownFile, nil, true))
	} else if mark {
		// The marker is empty, so creating it in place cannot leave it torn: half the
		// metadata operations of a temporary file and a rename, and the SyncAll after makes it
		// durable.
		full, err = splitDiskFull(createEmpty(l.fs, filepath.Join(l.dir, cleanShutdownFile)))
	}
	return l.closeResultLocked(cmp.Or(err, l.closeFilesLocked()), full)
}

// fsGroup is the logs (indexes into CloseLogs' logs) on one filesystem.
type fsGroup struct {
	fs   FS
	dir  string // a directory on the filesystem, to sync it through
	logs []int
}

// groupByFilesystem groups the logs to mark by the filesystem holding their parent
// directory (the broker's log directory), or by that directory when its device is unknown.
func groupByFilesystem(logs []*Log, marks []bool) []*fsGroup {
	type key struct {
		dev uint64
		dir string
	}
	byKey := make(map[key]*fsGroup)
	var groups []*fsGroup
	for i, l := range logs {
		if !marks[i] {
			continue
		}
		parent := filepath.Dir(l.dir)
		k := key{dir: parent}
		if fi, err := l.fs.Stat(parent); err == nil {
			if dev, ok := deviceOf(fi); ok {
				k = key{dev: dev}
			}
		}
		g := byKey[k]
		if g == nil {
			g = &fsGroup{fs: l.fs, dir: parent}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.logs = append(g.logs, i)
	}
	return groups
}

// forEach calls fn(0) ... fn(n-1), parallelism at once.
func forEach(n, parallelism int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, max(parallelism, 1)) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// createEmpty creates an empty file (or empties an existing one), without fsync.
func createEmpty(fsys FS, path string) error {
	f, err := uncached(fsys).OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
