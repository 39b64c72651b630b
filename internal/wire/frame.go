// Package wire owns the Kafka framing layer: size-prefixed frames with a maximum size enforced
// before any buffer grows and buffers grown only as bytes arrive, request headers v0-v2
// (including tagged fields), and response headers. Message bodies are encoded and decoded
// with franz-go's kmsg.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrFrameTooLarge is returned when a frame's size prefix exceeds the configured maximum.
var ErrFrameTooLarge = errors.New("wire: frame larger than socket.request.max.bytes")

// ErrMalformed is returned for a header that cannot be decoded.
var ErrMalformed = errors.New("wire: malformed request header")

// minChunk is the first allocation of a frame whose bytes have not arrived yet. Beyond it a
// frame's buffer grows only with the bytes received (at least doubling, so the copying stays
// proportional to the frame), never with the size its prefix claims: a size prefix alone cannot
// make the broker allocate a large buffer.
const minChunk = 512

// A Grower supplies the memory of a frame as its bytes arrive.
type Grower interface {
	// Grow returns a buffer of capacity at least n (n > cap(b)) that starts with b's bytes,
	// and takes b back. It may block until the memory is available (the frame's reader stops
	// reading meanwhile), or fail, which ends the read with its error.
	Grow(b []byte, n int) ([]byte, error)
}

// buffered is implemented by readers that hold bytes already received (bufio.Reader): a frame's
// buffer grows at once to what has arrived.
type buffered interface{ Buffered() int }

// heapGrower allocates from the heap.
type heapGrower struct{}

func (heapGrower) Grow(b []byte, n int) ([]byte, error) {
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb, nil
}

// ReadFrame reads one size-prefixed frame and returns its bytes. It reads into buf's storage
// while the frame fits in it, and beyond that into buffers from g (the heap when g is nil),
// grown as bytes arrive: at least doubling, and at once to what r has buffered. Frames larger
// than maxSize are refused with ErrFrameTooLarge before anything is read past the prefix.
func ReadFrame(r io.Reader, maxSize int32, buf []byte, g Grower) ([]byte, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(prefix[:]))
	if size < 0 || size > maxSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, size, maxSize)
	}
	if g == nil {
		g = heapGrower{}
	}
	b := buf[:0]
	for len(b) < int(size) {
		if len(b) == cap(b) {
			step := max(len(b), minChunk)
			if br, ok := r.(buffered); ok {
				step = max(step, br.Buffered())
			}
			var err error
			if b, err = g.Grow(b, len(b)+min(int(size)-len(b), step)); err != nil {
				return nil, err
			}
		}
		got, err := r.Read(b[len(b):min(cap(b), int(size))])
		b = b[:len(b)+got]
		if err != nil && len(b) < int(size) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// RequestHeader is a decoded request header.
type RequestHeader struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      *string
	// Flexible reports whether the request (and so its header) uses the flexible encoding.
	Flexible bool
}

// ParseRequestHeader decodes the header at the start of frame and returns it with the body.
// The header version depends on the API key and version: v0 for controlled shutdown v0 (not
// served), v1 for non-flexible requests, v2 (v1 plus tagged fields) for flexible ones. For an
// unknown key or version the header is decoded as v1 and Flexible is false; callers answer
// those from the key alone.
func ParseRequestHeader(frame []byte) (RequestHeader, []byte, error) {
	var h RequestHeader
	if len(frame) < 8 {
		return h, nil, ErrMalformed
	}
	h.Key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.Version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[8:]
	if len(rest) < 2 {
		return h, nil, ErrMalformed
	}
	n := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if n >= 0 {
		if int(n) > len(rest) {
			return h, nil, ErrMalformed
		}
		s := string(rest[:n])
		h.ClientID = &s
		rest = rest[n:]
	} else if n != -1 {
		return h, nil, ErrMalformed
	}
	h.Flexible = isFlexible(h.Key, h.Version)
	if h.Flexible {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return h, nil, err
		}
	}
	return h, rest, nil
}

// requestVersions is, per API key kmsg knows, its highest version and its first flexible
// version (-1: none), computed once so that parsing a header allocates no request.
var requestVersions = func() []struct{ max, flexibleFrom int16 } {
	var table []struct{ max, flexibleFrom int16 }
	for key := int16(0); key < 1024; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for int(key) >= len(table) {
			table = append(table, struct{ max, flexibleFrom int16 }{-1, -1})
		}
		table[key].max = req.MaxVersion()
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				table[key].flexibleFrom = v // flexible versions stay flexible from then on
				break
			}
		}
	}
	return table
}()

// isFlexible reports whether a request of this key and version uses the flexible encoding
// (false for keys and versions kmsg does not know).
func isFlexible(key, version int16) bool {
	if key < 0 || int(key) >= len(requestVersions) {
		return false
	}
	v := requestVersions[key]
	return version >= 0 && version <= v.max && v.flexibleFrom >= 0 && version >= v.flexibleFrom
}

// skipTags skips a tagged-field section: a count, then (tag, size, bytes) per field.
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, ErrMalformed
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		_, n = binary.Uvarint(b)
		if n <= 0 {
			return nil, ErrMalformed
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, ErrMalformed
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// AppendResponse appends a complete response frame to dst: size prefix, correlation id, the
// response header's tagged fields when flexible (never for ApiVersions, whose response header is
// always v0 so that clients can parse it before knowing the versions), and the body.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
