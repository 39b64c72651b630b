package storage

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// FileCache bounds the file descriptors the logs of a process hold. Every file a log opens
// through its FS is a handle in the cache: the descriptor is opened on first use and, once
// more than Capacity descriptors are open, the least recently used ones that no operation is
// using are closed; a later use opens the file again (without O_CREATE/O_TRUNC). So the
// number of partitions is limited by disk and memory, not by the process's RLIMIT_NOFILE.
//
// Each operation (ReadAt, WriteAt, Sync, Truncate, Stat) pins the descriptor while it runs, and
// Log.ReadRegion pins it until the broker has written the region (Region.Release), so a
// descriptor is never closed under a pread or a sendfile. Capacity is a soft bound: pinned
// descriptors are never closed, so more than Capacity may be open while many are in use.
type FileCache struct {
	capacity int

	mu     sync.Mutex
	open   int                    // handles holding a descriptor
	byPath map[string]*cachedFile // live handles by current path, for Rename
	// lru lists the open handles no one is using, most recently used first.
	lru cachedFile // sentinel
}

// NewFileCache returns a cache that keeps at most capacity unpinned descriptors open.
func NewFileCache(capacity int) *FileCache {
	c := &FileCache{capacity: max(capacity, 8), byPath: make(map[string]*cachedFile)}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
	return c
}

// Capacity returns the number of descriptors the cache keeps open at most when none is in use.
func (c *FileCache) Capacity() int { return c.capacity }

// Open returns the number of descriptors open now.
func (c *FileCache) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// FileLimit returns the process's soft RLIMIT_NOFILE, or 1,024 if it cannot be read.
func FileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 || rl.Cur > 1<<30 {
		return 1024
	}
	return int(rl.Cur)
}

var (
	defaultCacheOnce sync.Once
	defaultCache     *FileCache
)

// DefaultFileCache is the cache of logs opened without Options.FileCache: half of the
// process's descriptor limit.
func DefaultFileCache() *FileCache {
	defaultCacheOnce.Do(func() { defaultCache = NewFileCache(FileLimit() / 2) })
	return defaultCache
}

// wrap returns fsys with its files held through the cache.
func (c *FileCache) wrap(fsys FS) FS {
	if cf, ok := fsys.(cachingFS); ok && cf.c == c {
		return fsys
	}
	return cachingFS{FS: fsys, c: c}
}

// cachingFS is an FS whose files are handles of a FileCache. Rename moves the handle of an
// open file with the file, so a descriptor closed by the cache reopens under the new name.
type cachingFS struct {
	FS
	c *FileCache
}

// OpenFile opens the file now, so that errors show where they did without the cache, and
// returns its handle; the descriptor may be closed and reopened later.
func (fs cachingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	c := fs.c
	h := &cachedFile{c: c, fs: fs.FS, path: name, flag: flag &^ (os.O_CREATE | os.O_TRUNC | os.O_EXCL), f: f, dirty: flag&(os.O_WRONLY|os.O_RDWR) != 0}
	c.mu.Lock()
	c.byPath[name] = h
	c.open++
	c.pushLocked(h)
	c.evictLocked()
	c.mu.Unlock()
	return h, nil
}

// Rename renames the file and moves its handle, if one is live. A live handle of the file
// the rename replaces can no longer reopen by name (see gone).
func (fs cachingFS) Rename(oldpath, newpath string) error {
	c := fs.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := fs.FS.Rename(oldpath, newpath); err != nil {
		return err
	}
	if replaced, ok := c.byPath[newpath]; ok && oldpath != newpath {
		replaced.gone = true
		delete(c.byPath, newpath)
	}
	if h, ok := c.byPath[oldpath]; ok {
		delete(c.byPath, oldpath)
		h.path = newpath
		c.byPath[newpath] = h
	}
	return nil
}

// Remove removes the file; its live handle, if any, can no longer reopen by name.
func (fs cachingFS) Remove(name string) error {
	c := fs.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := fs.FS.Remove(name); err != nil {
		return err
	}
	if h, ok := c.byPath[name]; ok {
		h.gone = true
		delete(c.byPath, name)
	}
	return nil
}

// cachedFile is a File whose descriptor the cache may close while it is not in use. Its
// fields are guarded by FileCache.mu.
type cachedFile struct {
	c    *FileCache
	fs   FS
	path string
	flag int  // flags to reopen with
	f    File // nil while closed by the cache
	refs int  // operations and regions using f
	// dirty means written or truncated since the last successful Sync (or since opened for
	// writing): a Sync of a clean file does nothing, so it need not reopen it.
	dirty  bool
	closed bool // Close was called; f is closed when refs drops to 0
	// gone means the file's name no longer leads to it: removed, or replaced by a rename
	// onto its path (a second cleaning's old segment renamed to the same .deleted name). A
	// descriptor still open keeps reading the file; once the cache has closed it, uses fail
	// with os.ErrClosed (readers then load the log's new view) instead of reopening whatever
	// file now has the name.
	gone bool

	prev, next *cachedFile // in c.lru while open and unused
}

var _ File = (*cachedFile)(nil)

func (c *FileCache) pushLocked(h *cachedFile) {
	h.prev, h.next = &c.lru, c.lru.next
	h.prev.next, h.next.prev = h, h
}

func (c *FileCache) unlinkLocked(h *cachedFile) {
	if h.prev != nil {
		h.prev.next, h.next.prev = h.next, h.prev
		h.prev, h.next = nil, nil
	}
}

// evictLocked closes the least recently used unpinned descriptors beyond the capacity.
func (c *FileCache) evictLocked() {
	for c.open > c.capacity && c.lru.prev != &c.lru {
		h := c.lru.prev
		c.unlinkLocked(h)
		_ = h.f.Close() // a later use reopens it; the data written is in the page cache
		h.f = nil
		c.open--
	}
}

// acquire pins the handle's descriptor, opening it if the cache closed it.
func (h *cachedFile) acquire() (File, error) { return h.pin(false) }

// acquireForWrite is acquire for a write: it also marks the file dirty, under the same lock
// (one lock round trip on the append path instead of two).
func (h *cachedFile) acquireForWrite() (File, error) { return h.pin(true) }

func (h *cachedFile) pin(write bool) (File, error) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.closed {
		return nil, os.ErrClosed
	}
	if write {
		h.dirty = true
	}
	if h.f == nil && h.gone {
		return nil, fmt.Errorf("reopening %s: the file was removed or replaced: %w", h.path, os.ErrClosed)
	}
	if h.f == nil {
		f, err := h.fs.OpenFile(h.path, h.flag, 0o644)
		if err != nil {
			return nil, fmt.Errorf("reopening %s: %w", h.path, err)
		}
		h.f = f
		c.open++
		c.evictLocked()
	} else if h.refs == 0 {
		c.unlinkLocked(h)
	}
	h.refs++
	return h.f, nil
}

// release unpins the descriptor taken by acquire.
func (h *cachedFile) release() {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	h.refs--
	if h.refs > 0 {
		return
	}
	if h.closed {
		_ = h.f.Close()
		h.f = nil
		c.open--
		return
	}
	c.pushLocked(h)
	c.evictLocked()
}

func (h *cachedFile) ReadAt(b []byte, off int64) (int, error) {
	f, err := h.acquire()
	if err != nil {
		return 0, err
	}
	defer h.release()
	return f.ReadAt(b, off)
}

func (h *cachedFile) WriteAt(b []byte, off int64) (int, error) {
	f, err := h.acquireForWrite()
	if err != nil {
		return 0, err
	}
	defer h.release()
	return f.WriteAt(b, off)
}

func (h *cachedFile) Truncate(size int64) error {
	f, err := h.acquireForWrite()
	if err != nil {
		return err
	}
	defer h.release()
	return f.Truncate(size)
}

func (h *cachedFile) setDirty() {
	h.c.mu.Lock()
	h.dirty = true
	h.c.mu.Unlock()
}

// Sync fsyncs the file if it was written since the last Sync. On Linux fsync flushes the
// file's dirty pages whichever descriptor wrote them, so a descriptor the cache closed and
// reopened still syncs what was written through the old one.
func (h *cachedFile) Sync() error {
	h.c.mu.Lock()
	dirty := h.dirty
	h.dirty = false
	h.c.mu.Unlock()
	if !dirty {
		return nil
	}
	f, err := h.acquire()
	if err == nil {
		err = f.Sync()
		h.release()
	}
	if err != nil {
		h.setDirty()
	}
	return err
}

func (h *cachedFile) Stat() (os.FileInfo, error) {
	f, err := h.acquire()
	if err != nil {
		return nil, err
	}
	defer h.release()
	return f.Stat()
}

// Close closes the handle: its descriptor now, or when the last pin is released.
func (h *cachedFile) Close() error {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.closed {
		return os.ErrClosed
	}
	h.closed = true
	if c.byPath[h.path] == h {
		delete(c.byPath, h.path)
	}
	if h.f == nil || h.refs > 0 {
		return nil
	}
	c.unlinkLocked(h)
	err := h.f.Close()
	h.f = nil
	c.open--
	return err
}

// pinOS pins the descriptor for a sendfile region: it returns the *os.File and the function
// that unpins it, or ok=false when the file is not an *os.File (a test filesystem).
func pinOS(f File) (osf *os.File, release func(), ok bool, err error) {
	h, isCached := f.(*cachedFile)
	if !isCached {
		osf, ok = f.(*os.File)
		return osf, func() {}, ok, nil
	}
	inner, err := h.acquire()
	if err != nil {
		return nil, nil, false, err
	}
	if osf, ok = inner.(*os.File); !ok {
		h.release()
		return nil, nil, false, nil
	}
	return osf, h.release, true, nil
}
