// Package wire owns the Kafka framing layer: size-prefixed frames with a maximum size enforced
// before any buffer grows, request headers v0-v2 (including tagged fields), and response
// headers. Message bodies are encoded and decoded with franz-go's kmsg.
package wire

import (
	"bytes"
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

// trustedSize is how much of a frame's declared size is allocated up front: typical requests
// fit, so they are read with one allocation and no copying. Beyond it the buffer grows only as
// bytes actually arrive, so a size prefix alone cannot make the broker allocate a large buffer.
const trustedSize = 1 << 20

// ReadFrame reads one size-prefixed frame into buf (reusing its storage) and returns the
// frame's bytes, which stay valid until buf is reused. Frames larger than max are refused with
// ErrFrameTooLarge before anything is read past the prefix.
func ReadFrame(r io.Reader, max int32, buf *bytes.Buffer) ([]byte, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(prefix[:]))
	if size < 0 || size > max {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, size, max)
	}
	buf.Reset()
	buf.Grow(int(min(size, trustedSize)))
	remaining := int(size)
	for remaining > 0 {
		// Read into the buffer's free space, at most what it holds now, or as much again once
		// it is full: growth doubles, so the copying stays proportional to the bytes received.
		// (Not io.CopyN: bytes.Buffer.ReadFrom grows a full buffer before it sees the end.)
		if buf.Available() == 0 {
			buf.Grow(min(remaining, buf.Len()))
		}
		chunk := buf.AvailableBuffer()[:min(remaining, buf.Available())]
		got, err := io.ReadFull(r, chunk)
		buf.Write(chunk[:got])
		remaining -= got
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf.Bytes(), nil
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
