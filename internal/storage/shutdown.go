package storage

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// CloseLogs closes logs for a shutdown, like Close on each, but at the cost of a sync of
// each filesystem holding them instead of an fsync of every file written, and with one
// clean-shutdown marker per log directory instead of one per log (see "Clean shutdown" in
// the package doc):
//
//  1. every changed log seals its active segment and writes its producer snapshot and
//     checkpoints without fsync (closePrepare), parallelism logs at once;
//  2. one FS.SyncAll per filesystem makes all of that durable;
//  3. every log closes its files; a log without a DirState whose state files were all
//     written writes its own clean-shutdown marker, without fsync, and one more SyncAll
//     of its filesystem makes those markers durable (closeCommit);
//  4. each log directory's DirState writes its next marker, naming the logs of steps 1-3
//     that wrote all their state files or were unchanged since a clean open, and the logs
//     its marker vouched for that were not changed in this run, then removes its journal.
//
// A marker is thus written only after what it vouches for is durable. When the first SyncAll
// fails, the logs on that filesystem get no marker, and the next start recovers them; when
// the FS cannot sync a whole filesystem (errors.ErrUnsupported), those logs fsync their
// files one by one instead. It returns the first error.
func CloseLogs(logs []*Log, parallelism int) error {
	states := make([]closeState, len(logs))
	errs := make([]error, len(logs))
	forEach(len(logs), parallelism, func(i int) { states[i], errs[i] = logs[i].closePrepare() })
	marks := make([]bool, len(logs)) // state files written (and, after step 2, durable)
	for i, st := range states {
		marks[i] = st == closePrepared
	}

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
		if states[i] == closePrepared {
			errs[i] = cmp.Or(errs[i], logs[i].closeCommit(marks[i] && logs[i].dirState == nil, perFile[i]))
		}
	})

	var firstErr error
	ownMarks := make([]bool, len(logs))
	for i, l := range logs {
		ownMarks[i] = marks[i] && l.dirState == nil && !perFile[i]
	}
	for _, g := range groupByFilesystem(logs, ownMarks) {
		if err := g.fs.SyncAll(g.dir); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			firstErr = cmp.Or(firstErr, fmt.Errorf("syncing clean-shutdown markers in %s: %w", g.dir, err))
		}
	}
	firstErr = cmp.Or(firstErr, commitDirStates(logs, states, marks, errs))
	for _, err := range errs {
		firstErr = cmp.Or(firstErr, err)
	}
	return firstErr
}

// commitDirStates writes the next marker of each log directory holding some of logs (see
// DirState.commit): it names the logs that CloseLogs closed with their state files durable
// (marks) or that were unchanged since a clean open, except those whose close failed.
func commitDirStates(logs []*Log, states []closeState, marks []bool, errs []error) error {
	type outcome struct{ closed, failed map[string]bool }
	byDir := make(map[*DirState]*outcome)
	var dirs []*DirState
	for i, l := range logs {
		d := l.dirState
		if d == nil {
			continue
		}
		o := byDir[d]
		if o == nil {
			o = &outcome{closed: map[string]bool{}, failed: map[string]bool{}}
			byDir[d] = o
			dirs = append(dirs, d)
		}
		switch {
		case errs[i] != nil || states[i] == closePrepared && !marks[i]:
			o.failed[l.name] = true
		case marks[i] || states[i] == closeUnchanged:
			o.closed[l.name] = true
		}
	}
	var firstErr error
	for _, d := range dirs {
		o := byDir[d]
		if err := d.commit(o.closed, o.failed); err != nil {
			d.logger.Error("writing the log directory's clean-shutdown marker failed: the next start recovers the logs changed in this run", "dir", d.dir, "err", err)
			firstErr = cmp.Or(firstErr, err)
		}
	}
	return firstErr
}

// closeState is what closePrepare left to do.
type closeState uint8

const (
	// closeDone: the log is closed and no marker may vouch for it (closed before, or its
	// state files could not all be written).
	closeDone closeState = iota
	// closeUnchanged: the log is closed, unchanged since a clean open: what the marker
	// vouched for is still true.
	closeUnchanged
	// closePrepared: the state files are written, not yet durable; the files are still open
	// for closeCommit.
	closePrepared
)

// closePrepare is the first phase of CloseLogs: it closes the log to mutations and, if it
// changed since a clean open, writes its state files without fsync (writeStateLocked),
// keeping its files open for closeCommit (closePrepared).
func (l *Log) closePrepare() (closeState, error) {
	if !l.markClosed() {
		return closeDone, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.clean {
		if err := l.closeResultLocked(l.closeFilesLocked(), nil); err != nil {
			return closeDone, err
		}
		return closeUnchanged, nil
	}
	l.mu.deferSync = true
	full, err := l.writeStateLocked(false)
	l.mu.deferSync = false
	l.deletes.flush()
	if err != nil || full != nil {
		return closeDone, l.closeResultLocked(cmp.Or(err, l.closeFilesLocked()), full)
	}
	return closePrepared, nil
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

// closeCommit is the last phase of CloseLogs for a log, once what closePrepare wrote is
// durable: it writes the log's own clean-shutdown marker when mark (fsynced when sync) and
// closes the files.
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
	keyOf := make(map[string]key) // by parent directory: one Stat per directory
	var groups []*fsGroup
	for i, l := range logs {
		if !marks[i] {
			continue
		}
		parent := filepath.Dir(l.dir)
		if l.dirState != nil {
			parent = l.dirState.dir
		}
		k, ok := keyOf[parent]
		if !ok {
			k = key{dir: parent}
			if fi, err := l.fs.Stat(parent); err == nil {
				if dev, ok := deviceOf(fi); ok {
					k = key{dev: dev}
				}
			}
			keyOf[parent] = k
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
