package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestReadFrame(t *testing.T) {
	frame := func(n int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(n))
		return append(b, bytes.Repeat([]byte{7}, n)...)
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		max     int32
		wantLen int
		wantErr error
	}{
		{"empty frame", frame(0), 100, 0, nil},
		{"small", frame(10), 100, 10, nil},
		{"exactly max", frame(100), 100, 100, nil},
		{"over max", frame(101), 100, 0, ErrFrameTooLarge},
		{"negative", binary.BigEndian.AppendUint32(nil, 0x80000000), 100, 0, ErrFrameTooLarge},
		{"truncated body", frame(10)[:8], 100, 0, io.ErrUnexpectedEOF},
		{"truncated prefix", []byte{0, 0}, 100, 0, io.ErrUnexpectedEOF},
		{"large over chunks", frame(200_000), 1 << 20, 200_000, nil},
		{"larger than a megabyte", frame(3 << 20), 4 << 20, 3 << 20, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, through := range []string{"reader", "bufio"} {
				var r io.Reader = bytes.NewReader(tc.in)
				if through == "bufio" {
					r = bufio.NewReader(r)
				}
				got, err := ReadFrame(r, tc.max, nil, nil)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("%s: err %v, want %v", through, err, tc.wantErr)
				}
				if err != nil {
					continue
				}
				if len(got) != tc.wantLen {
					t.Fatalf("%s: len %d, want %d", through, len(got), tc.wantLen)
				}
				// Growth at least doubles, so the buffer ends within twice the frame.
				if cap(got) > 2*tc.wantLen+minChunk {
					t.Fatalf("%s: buffer capacity %d for a %d-byte frame", through, cap(got), tc.wantLen)
				}
			}
		})
	}
	// A frame that fits the given buffer is read into it.
	buf := make([]byte, 64)
	got, err := ReadFrame(bytes.NewReader(frame(10)), 100, buf, nil)
	if err != nil || &got[0] != &buf[0] {
		t.Fatalf("err %v, buffer not reused", err)
	}
}

// countingGrower records how much memory a frame asked for.
type countingGrower struct{ asked, calls int }

func (g *countingGrower) Grow(b []byte, n int) ([]byte, error) {
	g.asked += n - cap(b)
	g.calls++
	return heapGrower{}.Grow(b, n)
}

// A huge size prefix with few bytes behind it must not make ReadFrame allocate more than the
// bytes that arrived (within doubling), whatever the prefix claims.
func TestReadFrameDoesNotTrustLength(t *testing.T) {
	for _, tc := range []struct {
		name            string
		claimed, arrive int
	}{
		{"nothing after the prefix", 90 << 20, 0},
		{"a thousand bytes of 90 MiB", 90 << 20, 1000},
		{"3 MiB of 5 MiB", 5 << 20, 3 << 20},
	} {
		for _, through := range []string{"reader", "bufio"} {
			in := binary.BigEndian.AppendUint32(nil, uint32(tc.claimed))
			in = append(in, make([]byte, tc.arrive)...)
			var r io.Reader = bytes.NewReader(in)
			if through == "bufio" {
				r = bufio.NewReader(r)
			}
			var g countingGrower
			if _, err := ReadFrame(r, 100<<20, nil, &g); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s, %s: err %v", tc.name, through, err)
			}
			if g.asked > 2*tc.arrive+minChunk {
				t.Fatalf("%s, %s: asked for %d bytes for %d bytes of input", tc.name, through, g.asked, tc.arrive)
			}
		}
	}
}

// A Grower's error ends the read with it.
func TestReadFrameGrowerError(t *testing.T) {
	in := binary.BigEndian.AppendUint32(nil, 100)
	in = append(in, make([]byte, 100)...)
	if _, err := ReadFrame(bytes.NewReader(in), 1000, nil, failingGrower{}); !errors.Is(err, errNoMemory) {
		t.Fatalf("err %v", err)
	}
}

var errNoMemory = errors.New("no memory")

type failingGrower struct{}

func (failingGrower) Grow([]byte, int) ([]byte, error) { return nil, errNoMemory }

func header(key, version int16, corr int32, client string, flexible bool) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(client)))
	b = append(b, client...)
	if flexible {
		b = append(b, 0)
	}
	return b
}

func TestParseRequestHeader(t *testing.T) {
	withTags := append(header(18, 3, 1, "c", false), 1, 5, 2, 'h', 'i', 'B', 'O', 'D', 'Y')
	for _, tc := range []struct {
		name     string
		in       []byte
		wantErr  bool
		flexible bool
		body     string
	}{
		{"v1 metadata v1", append(header(3, 1, 9, "client", false), "BODY"...), false, false, "BODY"},
		{"v2 metadata v9", append(header(3, 9, 9, "client", true), "BODY"...), false, true, "BODY"},
		{"tagged fields skipped", withTags, false, true, "BODY"},
		{"null client id", append(binary.BigEndian.AppendUint16(header(3, 1, 9, "", false)[:8], 0xffff), "B"...), false, false, "B"},
		{"unknown key parsed as v1", append(header(999, 0, 1, "x", false), "B"...), false, false, "B"},
		{"short", []byte{0, 3, 0}, true, false, ""},
		{"client id past end", binary.BigEndian.AppendUint16(header(3, 1, 1, "", false)[:8], 50), true, false, ""},
		{"bad tag count", append(header(3, 9, 1, "", false), 0xff, 0xff, 0xff), true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, body, err := ParseRequestHeader(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				return
			}
			if h.Flexible != tc.flexible || string(body) != tc.body {
				t.Fatalf("flexible %v body %q", h.Flexible, body)
			}
		})
	}
}

func TestAppendResponseApiVersionsHeaderIsV0(t *testing.T) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	out := AppendResponse(nil, 77, resp)
	if got := int32(binary.BigEndian.Uint32(out[4:])); got != 77 {
		t.Fatalf("correlation %d", got)
	}
	// Body follows the correlation id directly: error code 0 then the compact array length.
	if out[8] != 0 || out[9] != 0 {
		t.Fatalf("ApiVersions response header has tagged fields: % x", out[:12])
	}
	meta := kmsg.NewPtrMetadataResponse()
	meta.SetVersion(9)
	out = AppendResponse(nil, 1, meta)
	if int(binary.BigEndian.Uint32(out)) != len(out)-4 {
		t.Fatal("size prefix wrong")
	}
}

func FuzzParseRequestHeader(f *testing.F) {
	f.Add(header(3, 9, 1, "client", true))
	f.Add(header(0, 7, 1, "", false))
	f.Add([]byte{0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, body, err := ParseRequestHeader(in)
		if err != nil {
			return
		}
		if len(body) > len(in) {
			t.Fatal("body longer than input")
		}
		// Decoding the body with kmsg must not panic either.
		if req := kmsg.RequestForKey(h.Key); req != nil && h.Version >= 0 && h.Version <= req.MaxVersion() {
			req.SetVersion(h.Version)
			_ = req.ReadFrom(body)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 1, 2})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		var g countingGrower
		got, err := ReadFrame(bytes.NewReader(in), 1<<16, nil, &g)
		if err == nil && len(got) > len(in) {
			t.Fatal("frame longer than input")
		}
		if g.asked > 2*len(in)+minChunk {
			t.Fatalf("asked for %d bytes for %d bytes of input", g.asked, len(in))
		}
	})
}

// TestIsFlexibleMatchesKmsg checks the precomputed table against kmsg for every key and
// version, and a little beyond.
func TestIsFlexibleMatchesKmsg(t *testing.T) {
	for key := int16(-1); key < 200; key++ {
		for v := int16(-1); v < 30; v++ {
			want := false
			if req := kmsg.RequestForKey(key); req != nil && v >= 0 && v <= req.MaxVersion() {
				req.SetVersion(v)
				want = req.IsFlexible()
			}
			if got := isFlexible(key, v); got != want {
				t.Fatalf("isFlexible(%d, %d) = %v, kmsg says %v", key, v, got, want)
			}
		}
	}
}

// TestDecodeEndsOnHugeTagCounts: a flexible request whose tagged-field count claims billions of
// fields after the input has run out must fail at once. Unpatched kmsg looped over the count
// (23 s of CPU for this 40-byte InitProducerId v4 request); see third_party/kmsg.
func TestDecodeEndsOnHugeTagCounts(t *testing.T) {
	in := []byte("\x00\x16\x00\x040000\xff\xff\x00\x020Q000000N000\xb300\xdc\xfb\x90\x98\a\xf9qN000\xb3")
	done := make(chan error, 1)
	go func() {
		h, body, err := ParseRequestHeader(in)
		if err != nil {
			done <- err
			return
		}
		req := kmsg.RequestForKey(h.Key)
		req.SetVersion(h.Version)
		done <- req.ReadFrom(body)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a truncated request decoded without error")
		}
	case <-time.After(10 * time.Second): // microseconds when fixed; tens of seconds if not
		t.Fatal("decoding a request with a huge tag count did not end")
	}
}
