//go:build !linux

package storage

import (
	"errors"
	"fmt"
	"os"
)

// SyncAll implements FS: without syncfs(2) the caller fsyncs file by file.
func (OSFS) SyncAll(dir string) error {
	return fmt.Errorf("syncfs %s: %w", dir, errors.ErrUnsupported)
}

// deviceOf is unknown here: the caller groups by directory instead.
func deviceOf(os.FileInfo) (uint64, bool) { return 0, false }
