package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch builds a valid uncompressed v2 batch of n records.
func testBatch(n int, value []byte) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		recs = appendRecord(recs, int32(i), value)
	}
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), NumRecords: int32(n), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: recs}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], ComputeCRC(raw))
	return raw
}

// appendRecord appends one record in the v2 record encoding (varint length first).
func appendRecord(dst []byte, delta int32, value []byte) []byte {
	var body []byte
	body = append(body, 0)                              // attributes
	body = binary.AppendVarint(body, 0)                 // timestamp delta
	body = binary.AppendVarint(body, int64(delta))      // offset delta
	body = binary.AppendVarint(body, -1)                // null key
	body = binary.AppendVarint(body, int64(len(value))) // value length
	body = append(body, value...)                       // value
	body = binary.AppendVarint(body, 0)                 // no headers
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func TestValidate(t *testing.T) {
	good := testBatch(3, []byte("hello"))
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0xff; return b }
	badMagic := bytes.Clone(good)
	badMagic[16] = 1
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"good", good, nil},
		{"crc", flip(len(good) - 1), ErrCRC},
		{"magic", badMagic, ErrMagic},
		{"short", good[:30], ErrShort},
		{"length mismatch", append(bytes.Clone(good), 0), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	h, _ := Validate(good)
	if h.RecordCount != 3 || h.LastOffsetDelta != 2 || h.Size() != len(good) {
		t.Fatalf("header %+v", h)
	}
}

func TestRecompressRoundTrip(t *testing.T) {
	value := bytes.Repeat([]byte("samsa "), 200)
	orig := append(testBatch(5, value), testBatch(2, value)...)
	for _, codec := range []int8{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		comp, err := Recompress(orig, codec)
		if err != nil {
			t.Fatalf("codec %d: %v", codec, err)
		}
		if len(comp) >= len(orig) {
			t.Fatalf("codec %d did not compress: %d >= %d", codec, len(comp), len(orig))
		}
		n := 0
		if _, err := Split(comp, func(b []byte) error {
			h, err := Validate(b)
			if err != nil {
				return err
			}
			if h.Codec() != codec {
				t.Fatalf("codec %d in header, want %d", h.Codec(), codec)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("%d batches", n)
		}
		back, err := Recompress(comp, CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, orig) {
			t.Fatalf("codec %d: round trip differs", codec)
		}
	}
	// Nothing to do returns the input.
	if same, _ := Recompress(orig, CodecNone); &same[0] != &orig[0] {
		t.Fatal("uncompressed input to uncompressed was copied")
	}
}

func TestDecompressRejectsGarbage(t *testing.T) {
	for _, codec := range []int8{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		if _, err := Decompress(codec, []byte("definitely not compressed data")); err == nil {
			t.Errorf("codec %d accepted garbage", codec)
		}
	}
}

func FuzzValidate(f *testing.F) {
	f.Add(testBatch(2, []byte("x")))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		Split(in, func(b []byte) error {
			if h, err := Validate(b); err == nil && h.Size() != len(b) {
				t.Fatal("validated batch size mismatch")
			}
			return nil
		})
	})
}

func FuzzDecompress(f *testing.F) {
	v := bytes.Repeat([]byte("ab"), 100)
	for _, c := range []int8{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		comp, _ := Compress(c, v)
		f.Add(c, comp)
	}
	f.Fuzz(func(t *testing.T, codec int8, in []byte) {
		out, err := Decompress(codec&7, in)
		if err == nil && len(out) > MaxDecompressed {
			t.Fatal("decompressed beyond the limit")
		}
	})
}
