package broker

import (
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kmsg"
	"io"
	"net"
	"syscall"

	"github.com/samsa-io/samsa/internal/storage"
)

// writeSegments writes a frame's segments: runs of memory with one vectored write each, file
// regions with sendfile(2), which moves the bytes from the page cache to the socket without
// passing through the broker's memory (as Kafka does on plain connections).
func writeSegments(nc net.Conn, segs []outSeg) error {
	var bufs net.Buffers
	flush := func() error {
		if len(bufs) == 0 {
			return nil
		}
		_, err := bufs.WriteTo(nc)
		bufs = bufs[:0]
		return err
	}
	for i := range segs {
		if segs[i].region == nil {
			bufs = append(bufs, segs[i].mem)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := sendRegion(nc, segs[i].region); err != nil {
			return err
		}
	}
	return flush()
}

// errShortRegion means a file region ended early (the file was truncated under the read);
// the frame's size is already promised, so the connection must close.
var errShortRegion = errors.New("sendfile: file region shorter than announced")

// sendRegion sends r over nc with sendfile, waiting for the socket to drain as needed.
func sendRegion(nc net.Conn, r *storage.Region) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return copyRegion(nc, r)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	src := int(r.File.Fd())
	off, remaining := r.Pos, r.Len
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for remaining > 0 {
			n, err := syscall.Sendfile(int(fd), src, &off, int(min(remaining, 1<<30)))
			if n > 0 {
				remaining -= int64(n)
			}
			switch {
			case errors.Is(err, syscall.EAGAIN):
				return false // wait until the socket is writable
			case errors.Is(err, syscall.EINTR):
				continue
			case err != nil:
				werr = fmt.Errorf("sendfile: %w", err)
				return true
			case n == 0:
				werr = errShortRegion
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

// copyRegion is the fallback for connections without a file descriptor.
func copyRegion(w io.Writer, r *storage.Region) error {
	n, err := io.Copy(w, io.NewSectionReader(r.File, r.Pos, r.Len))
	if err == nil && n != r.Len {
		err = errShortRegion
	}
	return err
}

type kmsgPartition = kmsg.FetchResponseTopicPartition

// materializeRegions reads every region into memory, for responses that go through kmsg.
func materializeRegions(regions map[*kmsgPartition]*storage.Region) error {
	for p, r := range regions {
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		p.RecordBatches = buf
		delete(regions, p)
	}
	return nil
}
