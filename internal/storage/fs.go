package storage

import (
	"io"
	"os"
)

// FS is the filesystem seam under the log, so tests can inject write errors and short writes.
type FS interface {
	// OpenFile opens a file like os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove removes a file or empty directory.
	Remove(name string) error
	// RemoveAll removes a directory tree.
	RemoveAll(path string) error
	// Rename renames a file, replacing the target.
	Rename(oldpath, newpath string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(path string, perm os.FileMode) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]os.DirEntry, error)
	// Stat describes a file.
	Stat(name string) (os.FileInfo, error)
	// SyncAll makes everything written to the filesystem holding dir durable (syncfs(2)),
	// or returns an error wrapping errors.ErrUnsupported when it cannot, so that the caller
	// fsyncs file by file instead.
	SyncAll(dir string) error
}

// File is an open file of an FS.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync flushes the file (or directory) to stable storage.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the file.
	Stat() (os.FileInfo, error)
}

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// RemoveAll implements FS.
func (OSFS) RemoveAll(path string) error { return os.RemoveAll(path) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

// Stat implements FS.
func (OSFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// syncDir fsyncs a directory so that creates, renames and removes in it are durable. It
// opens the directory around the FileCache: a cached handle opened read-only counts as
// clean, and its Sync would do nothing.
func syncDir(fsys FS, dir string) error {
	d, err := uncached(fsys).OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// uncached returns the FS under a FileCache, for files opened and closed at once that no
// cached handle refers to (directories to fsync, state files written whole): it keeps them
// from evicting the descriptors of segments, and their renames off the cache's lock.
func uncached(fsys FS) FS {
	if cf, ok := fsys.(cachingFS); ok {
		return cf.FS
	}
	return fsys
}
