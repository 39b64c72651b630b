package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Names of the per-log state files (see the package doc).
const (
	logCheckpointFile     = "log-checkpoint"
	epochCheckpointFile   = "leader-epoch-checkpoint"
	cleanShutdownFile     = "clean-shutdown"
	cleanerCheckpointFile = "cleaner-checkpoint"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// logCheckpointMagic starts the log-checkpoint file; the digit is the format version.
const logCheckpointMagic = "SLC1"

const logCheckpointSize = 4 + 8 + 8 + 4

// writeFileAtomic writes b to dir/name through a temporary file and a rename. With sync, the
// file is fsynced before the rename and the directory after it.
func writeFileAtomic(fsys FS, dir, name string, b []byte, sync bool) error {
	fsys = uncached(fsys) // no handle of a state file stays open
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if len(b) > 0 {
		_, err = f.WriteAt(b, 0)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	if !sync {
		return nil
	}
	return syncDir(fsys, dir)
}

// overwriteInPlace rewrites dir/name with b in place when the file already has len(b) bytes:
// it needs no new blocks, so it works on a full filesystem where writeFileAtomic cannot
// create its temporary file. It is not atomic; callers use it only for files whose content a
// CRC guards (a torn write reads as corrupt and is ignored, as a missing file would be).
func overwriteInPlace(fsys FS, dir, name string, b []byte) error {
	f, err := fsys.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != int64(len(b)) {
		err = fmt.Errorf("%s has %d bytes, not %d", name, fi.Size(), len(b))
	}
	if err == nil {
		_, err = f.WriteAt(b, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readSmallFile reads a whole state file, refusing files larger than limit.
func readSmallFile(fsys FS, path string, limit int64) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// logCheckpoint is the durable log start offset and recovery point.
type logCheckpoint struct {
	logStart      int64
	recoveryPoint int64
}

func (c logCheckpoint) encode() []byte {
	b := make([]byte, 0, logCheckpointSize)
	b = append(b, logCheckpointMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.logStart))
	b = binary.BigEndian.AppendUint64(b, uint64(c.recoveryPoint))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func decodeLogCheckpoint(b []byte) (logCheckpoint, error) {
	if len(b) != logCheckpointSize || string(b[:4]) != logCheckpointMagic {
		return logCheckpoint{}, fmt.Errorf("%w: log checkpoint of %d bytes has a bad header", ErrCorrupt, len(b))
	}
	if crc32.Checksum(b[:20], crcTable) != binary.BigEndian.Uint32(b[20:]) {
		return logCheckpoint{}, fmt.Errorf("%w: log checkpoint CRC mismatch", ErrCorrupt)
	}
	c := logCheckpoint{
		logStart:      int64(binary.BigEndian.Uint64(b[4:])),
		recoveryPoint: int64(binary.BigEndian.Uint64(b[12:])),
	}
	if c.logStart < 0 || c.recoveryPoint < 0 {
		return logCheckpoint{}, fmt.Errorf("%w: negative offsets in log checkpoint", ErrCorrupt)
	}
	return c, nil
}

// cleanerCheckpointMagic starts the cleaner-checkpoint file; the digit is the format version.
const cleanerCheckpointMagic = "SCC1"

const cleanerCheckpointSize = 4 + 8 + 4

// encodeCleanerCheckpoint renders the cleaner checkpoint: the first dirty offset.
func encodeCleanerCheckpoint(firstDirty int64) []byte {
	b := make([]byte, 0, cleanerCheckpointSize)
	b = append(b, cleanerCheckpointMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(firstDirty))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func decodeCleanerCheckpoint(b []byte) (int64, error) {
	if len(b) != cleanerCheckpointSize || string(b[:4]) != cleanerCheckpointMagic {
		return 0, fmt.Errorf("%w: cleaner checkpoint of %d bytes has a bad header", ErrCorrupt, len(b))
	}
	if crc32.Checksum(b[:12], crcTable) != binary.BigEndian.Uint32(b[12:]) {
		return 0, fmt.Errorf("%w: cleaner checkpoint CRC mismatch", ErrCorrupt)
	}
	off := int64(binary.BigEndian.Uint64(b[4:]))
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset in cleaner checkpoint", ErrCorrupt)
	}
	return off, nil
}
