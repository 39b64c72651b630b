package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/samsa-io/samsa/internal/records"
)

// rec is a test record: key nil = no key, value nil = tombstone (with a key).
type rec struct {
	key, value []byte
	ts         int64
}

// keyed returns a record of key k with value v ("" is a tombstone).
func keyed(k, v string, ts int64) rec {
	r := rec{key: []byte(k), ts: ts}
	if v != "" {
		r.value = []byte(v)
	}
	return r
}

// kbatch describes a batch of keyed records.
type kbatch struct {
	recs       []rec
	codec      int8
	producerID int64 // 0: none
	epoch      int16
	baseSeq    int32
	attrs      int16 // extra attribute bits (transactional, control)
}

// makeKeyedBatch builds a valid v2 batch of the records, compressed with codec.
func makeKeyedBatch(s kbatch) []byte {
	var raw []byte
	baseTs, maxTs := s.recs[0].ts, int64(-1)
	for i, r := range s.recs {
		maxTs = max(maxTs, r.ts)
		var b []byte
		b = append(b, 0)
		b = binary.AppendVarint(b, r.ts-baseTs)
		b = binary.AppendVarint(b, int64(i))
		if r.key == nil {
			b = binary.AppendVarint(b, -1)
		} else {
			b = binary.AppendVarint(b, int64(len(r.key)))
			b = append(b, r.key...)
		}
		if r.value == nil {
			b = binary.AppendVarint(b, -1)
		} else {
			b = binary.AppendVarint(b, int64(len(r.value)))
			b = append(b, r.value...)
		}
		b = binary.AppendVarint(b, 1) // one header, to check headers survive
		b = binary.AppendVarint(b, 1)
		b = append(b, 'h')
		b = binary.AppendVarint(b, 1)
		b = append(b, 'x')
		raw = binary.AppendVarint(raw, int64(len(b)))
		raw = append(raw, b...)
	}
	body, err := records.Compress(s.codec, raw)
	if err != nil {
		panic(err)
	}
	return assembleBatch(body, int16(s.codec)|s.attrs, len(s.recs), baseTs, maxTs, s.producerID, s.epoch, s.baseSeq)
}

// readRec is a record read back from the log.
type readRec struct {
	offset    int64
	key       string
	hasKey    bool
	value     string
	tombstone bool
	ts        int64
	header    string
}

func (r readRec) String() string {
	if r.tombstone {
		return fmt.Sprintf("%d:%s=<nil>@%d", r.offset, r.key, r.ts)
	}
	return fmt.Sprintf("%d:%s=%s@%d", r.offset, r.key, r.value, r.ts)
}

// decodeRecords returns the records of one batch read back, checking the batch.
func decodeRecords(t testing.TB, batch []byte) (records.Header, []readRec) {
	t.Helper()
	h, err := records.ParseHeader(batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateStored(batch, &h); err != nil {
		t.Fatalf("batch at %d: %v", h.BaseOffset, err)
	}
	recs, err := records.Section(batch, &h)
	if err != nil {
		t.Fatal(err)
	}
	var out []readRec
	for i := int32(0); i < h.RecordCount; i++ {
		var r records.Record
		if r, recs, err = records.NextRecord(recs); err != nil {
			t.Fatalf("batch at %d: %v", h.BaseOffset, err)
		}
		rr := readRec{offset: h.BaseOffset + r.OffsetDelta, key: string(r.Key), hasKey: r.HasKey,
			tombstone: r.NullValue, ts: h.BaseTimestamp + r.TimestampDelta}
		if h.LastOffset() < rr.offset || rr.offset < h.BaseOffset {
			t.Fatalf("record offset %d outside its batch %d..%d", rr.offset, h.BaseOffset, h.LastOffset())
		}
		rest := r.Body[r.TimestampEnd:]
		_, n := binary.Varint(rest) // offset delta
		rest = rest[n:]
		kl, n := binary.Varint(rest)
		rest = rest[n+max(int(kl), 0):]
		vl, n := binary.Varint(rest)
		rest = rest[n:]
		if vl >= 0 {
			rr.value = string(rest[:vl])
			rest = rest[vl:]
		}
		if nh, n := binary.Varint(rest); nh == 1 {
			rr.header = string(rest[n+1:])
		}
		out = append(out, rr)
	}
	if len(recs) != 0 {
		t.Fatalf("batch at %d: %d bytes after its records", h.BaseOffset, len(recs))
	}
	return h, out
}

// allRecords reads every batch of the log from its start and returns the headers and records.
func (tl *testLog) allRecords() ([]records.Header, []readRec) {
	tl.t.Helper()
	var hs []records.Header
	var rs []readRec
	tl.eachBatch(func(h records.Header, recs []readRec) {
		hs = append(hs, h)
		rs = append(rs, recs...)
	})
	return hs, rs
}

// eachBatch reads every batch of the log from its start, checking offsets increase.
func (tl *testLog) eachBatch(fn func(h records.Header, recs []readRec)) {
	tl.t.Helper()
	off, end := tl.LogStartOffset(), tl.LogEndOffset()
	last := int64(-1)
	for off < end {
		b := tl.read(off, 1<<20)
		if len(b) == 0 {
			break // the cleaner left a gap up to the log end (as Kafka's consumers see, too)
		}
		_, err := records.Split(b, func(batch []byte) error {
			h, recs := decodeRecords(tl.t, batch)
			if h.BaseOffset <= last {
				tl.t.Fatalf("batch at %d after offset %d", h.BaseOffset, last)
			}
			last = h.LastOffset()
			fn(h, recs)
			return nil
		})
		if err != nil {
			tl.t.Fatal(err)
		}
		off = last + 1
	}
}

// latest returns the last record of each key, as a consumer reading from the start sees it.
func latest(rs []readRec) map[string]readRec {
	m := make(map[string]readRec)
	for _, r := range rs {
		if r.hasKey {
			m[r.key] = r
		}
	}
	return m
}

// checkSameLatest checks that the cleaned log shows what the log before cleaning showed: the
// same latest record (offset, value) of every key, a tombstone being allowed to be gone.
func checkSameLatest(t testing.TB, before, after []readRec) {
	t.Helper()
	want, got := latest(before), latest(after)
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok && w.tombstone:
		case !ok:
			t.Errorf("key %q: latest %v lost", k, w)
		case g.offset != w.offset || g.value != w.value || g.tombstone != w.tombstone || g.ts != w.ts || g.header != w.header:
			t.Errorf("key %q: latest is %v, want %v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("key %q appeared: %v", k, g)
		}
	}
	// Every record read after cleaning was in the log before, at the same offset.
	at := make(map[int64]readRec, len(before))
	for _, r := range before {
		at[r.offset] = r
	}
	for _, r := range after {
		if b, ok := at[r.offset]; !ok || b != r {
			t.Errorf("record %v was not in the log before cleaning (%v)", r, b)
		}
	}
}

// clean runs one pass with no upper bound and a map of mapBytes (0: 1 MiB), the whole log
// being replicated (high watermark at the log end).
func (tl *testLog) clean(mapBytes int64) CleanStats {
	tl.t.Helper()
	tl.NoteHighWatermark(tl.LogEndOffset())
	st, err := tl.Clean(context.Background(), CleanOptions{UpperBound: math.MaxInt64, DedupeBufferBytes: cmpOr(mapBytes, 1<<20)})
	if err != nil {
		tl.t.Fatalf("Clean: %v", err)
	}
	return st
}

// compactConfig is a test config of a compacted topic with small segments.
func compactConfig() LogConfig {
	cfg := testConfig()
	cfg.Cleanup = CleanupCompact
	cfg.SegmentBytes = 4 << 10
	cfg.IndexIntervalBytes = 256
	return cfg
}

// appendUpdates appends n batches of per records each, keys k0..k(keys-1) in turn, values
// naming the update, timestamps from ts0 one per record.
func (tl *testLog) appendUpdates(n, per, keys int, codec int8, ts0 int64) {
	tl.t.Helper()
	i := 0
	for range n {
		var rs []rec
		for range per {
			rs = append(rs, keyed(fmt.Sprintf("k%d", i%keys), fmt.Sprintf("v%d-%s", i, bytes.Repeat([]byte{'x'}, i%7)), ts0+int64(i)))
			i++
		}
		tl.append(makeKeyedBatch(kbatch{recs: rs, codec: codec}))
	}
}
