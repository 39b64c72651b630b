package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressed bounds the size a batch may decompress to, so a small malicious batch
// cannot make the broker allocate without limit.
const MaxDecompressed = 128 << 20

// ErrTooLarge is returned when decompressed data would exceed MaxDecompressed.
var ErrTooLarge = errors.New("records: decompressed batch too large")

// xerialHeader starts snappy data framed the way the Java client writes it.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var (
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecompressed))
		return d
	})
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		return e
	})
)

// Decompress returns the records section of a batch compressed with codec.
func Decompress(codec int8, data []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return data, nil
	case CodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return readLimited(zr)
	case CodecSnappy:
		return decompressSnappy(data)
	case CodecLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(data)))
	case CodecZstd:
		out, err := zstdDecoder().DecodeAll(data, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	}
	return nil, ErrCompression
}

func readLimited(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, MaxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if n > MaxDecompressed {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

func decodeSnappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if len(dst)+n > MaxDecompressed {
		return nil, ErrTooLarge
	}
	out, err := s2.Decode(nil, block)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return append(dst, out...), nil
}

// decompressSnappy reads raw snappy or the xerial framing (header, then length-prefixed
// snappy blocks) that the Java client writes.
func decompressSnappy(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, xerialHeader) {
		return decodeSnappyBlock(nil, data)
	}
	if len(data) < 16 {
		return nil, errors.New("snappy: truncated xerial header")
	}
	data = data[16:]
	var out []byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, errors.New("snappy: truncated xerial chunk")
		}
		n := binary.BigEndian.Uint32(data)
		data = data[4:]
		if uint64(n) > uint64(len(data)) {
			return nil, errors.New("snappy: truncated xerial chunk")
		}
		var err error
		if out, err = decodeSnappyBlock(out, data[:n]); err != nil {
			return nil, err
		}
		data = data[n:]
	}
	return out, nil
}

// Compress compresses a records section with codec.
func Compress(codec int8, data []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return data, nil
	case CodecGzip:
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		// xerial framing, which every client reads: header, version 1, compatible version 1,
		// then one length-prefixed snappy block per 32 KiB.
		out := append([]byte{}, xerialHeader...)
		out = binary.BigEndian.AppendUint32(out, 1)
		out = binary.BigEndian.AppendUint32(out, 1)
		for len(data) > 0 {
			n := min(len(data), 32<<10)
			block := s2.EncodeSnappy(nil, data[:n])
			out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
			out = append(out, block...)
			data = data[n:]
		}
		return out, nil
	case CodecLZ4:
		var buf bytes.Buffer
		zw := lz4.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CodecZstd:
		return zstdEncoder().EncodeAll(data, nil), nil
	}
	return nil, ErrCompression
}

// Recompress returns batches with every batch's records compressed with codec (CodecNone
// for uncompressed), as a topic's compression.type requires. Batches already in codec are
// kept as they are; when none needs work the input is returned unchanged.
func Recompress(batches []byte, codec int8) ([]byte, error) {
	need := false
	if _, err := Split(batches, func(b []byte) error {
		h, err := ParseHeader(b)
		if err != nil {
			return err
		}
		if h.Codec() != codec && h.RecordCount > 0 {
			need = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if !need {
		return batches, nil
	}
	out := make([]byte, 0, len(batches))
	_, err := Split(batches, func(b []byte) error {
		h, err := ParseHeader(b)
		if err != nil {
			return err
		}
		if h.Codec() == codec || h.RecordCount == 0 {
			out = append(out, b...)
			return nil
		}
		raw, err := Decompress(h.Codec(), b[HeaderSize:])
		if err != nil {
			return err
		}
		body, err := Compress(codec, raw)
		if err != nil {
			return err
		}
		start := len(out)
		out = append(out, b[:HeaderSize]...)
		out = append(out, body...)
		nb := out[start:]
		binary.BigEndian.PutUint32(nb[8:], uint32(len(nb)-LengthOffset))
		attrs := uint16(h.Attributes)&^AttrCompressionMask | uint16(codec)
		binary.BigEndian.PutUint16(nb[21:], attrs)
		binary.BigEndian.PutUint32(nb[17:], ComputeCRC(nb))
		return nil
	})
	return out, err
}
