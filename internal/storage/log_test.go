package storage

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/records"
)

func TestAppendReadRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		appends [][]byte // each entry is one append (possibly several batches)
		wantOff [][2]int64
	}{
		{
			name:    "single batch",
			appends: [][]byte{makeBatch(batchSpec{records: 3, valueSize: 10})},
			wantOff: [][2]int64{{0, 2}},
		},
		{
			name: "consecutive appends",
			appends: [][]byte{
				makeBatch(batchSpec{records: 1}),
				makeBatch(batchSpec{records: 5}),
				makeBatch(batchSpec{records: 2}),
			},
			wantOff: [][2]int64{{0, 0}, {1, 5}, {6, 7}},
		},
		{
			name: "multi-batch append",
			appends: [][]byte{
				concat(makeBatch(batchSpec{records: 2}), makeBatch(batchSpec{records: 3}), makeBatch(batchSpec{records: 1})),
				makeBatch(batchSpec{records: 4}),
			},
			wantOff: [][2]int64{{0, 5}, {6, 9}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := openTest(t, testConfig())
			var want []byte
			for i, b := range tt.appends {
				res, err := tl.AppendAsLeader(b, 7)
				if err != nil {
					t.Fatal(err)
				}
				if res.BaseOffset != tt.wantOff[i][0] || res.LastOffset != tt.wantOff[i][1] || res.Duplicate || res.LogAppendTime != -1 {
					t.Fatalf("append %d: got %+v, want offsets %v", i, res, tt.wantOff[i])
				}
				want = append(want, b...) // stamped in place
			}
			if got := tl.LogEndOffset(); got != tt.wantOff[len(tt.wantOff)-1][1]+1 {
				t.Fatalf("LogEndOffset = %d", got)
			}
			check := func() {
				t.Helper()
				got := tl.read(0, 1<<20)
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes, want %d identical bytes", len(got), len(want))
				}
				for _, h := range batchesOf(t, got) {
					if h.PartitionLeaderEpoch != 7 {
						t.Fatalf("leader epoch %d not stamped", h.PartitionLeaderEpoch)
					}
				}
			}
			check()
			tl.restart()
			check()
			tl.crash()
			check()
			if tl.Size() != int64(len(want)) {
				t.Fatalf("Size = %d, want %d", tl.Size(), len(want))
			}
		})
	}
}

func TestReadLimits(t *testing.T) {
	tl := openTest(t, testConfig())
	var sizes []int
	for i := 0; i < 5; i++ { // offsets 0-1, 2-3, 4-5, 6-7, 8-9
		b := makeBatch(batchSpec{records: 2, valueSize: 100})
		sizes = append(sizes, len(b))
		tl.append(b)
	}
	one := sizes[0]
	tests := []struct {
		name        string
		offset      int64
		maxBytes    int
		maxOffset   int64
		minOneBatch bool
		wantBases   []int64
		wantErr     error
	}{
		{"all", 0, 1 << 20, 10, false, []int64{0, 2, 4, 6, 8}, nil},
		{"from middle of batch", 3, 1 << 20, 10, false, []int64{2, 4, 6, 8}, nil},
		{"maxBytes two batches", 0, 2*one + one/2, 10, false, []int64{0, 2}, nil},
		{"maxBytes exact", 0, 3 * one, 10, false, []int64{0, 2, 4}, nil},
		{"maxBytes smaller than batch", 4, one - 1, 10, false, nil, nil},
		{"minOneBatch", 4, one - 1, 10, true, []int64{4}, nil},
		{"minOneBatch zero bytes", 4, 0, 10, true, []int64{4}, nil},
		{"high watermark at batch boundary", 0, 1 << 20, 6, false, []int64{0, 2, 4}, nil},
		{"high watermark mid batch", 0, 1 << 20, 5, false, []int64{0, 2, 4}, nil},
		{"at high watermark", 6, 1 << 20, 6, false, nil, nil},
		{"at end", 10, 1 << 20, 10, false, nil, nil},
		{"beyond end", 11, 1 << 20, 10, false, nil, ErrOffsetOutOfRange},
		{"negative", -1, 1 << 20, 10, false, nil, ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tl.Read(tt.offset, tt.maxBytes, tt.maxOffset, tt.minOneBatch)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var bases []int64
			for _, h := range batchesOf(t, b) {
				bases = append(bases, h.BaseOffset)
			}
			if !equalInts(bases, tt.wantBases) {
				t.Fatalf("bases = %v, want %v", bases, tt.wantBases)
			}
		})
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRollBySizeAndIndexLookup(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 300
	tl := openTest(t, cfg)
	var want []int64 // base offset of each batch
	for i := 0; i < 200; i++ {
		n := 1 + i%4
		res := tl.append(makeBatch(batchSpec{records: n, valueSize: 20 + i%50}))
		want = append(want, res.BaseOffset)
	}
	if n := len(tl.segmentFiles()); n < 5 {
		t.Fatalf("only %d segments", n)
	}
	check := func(stage string) {
		t.Helper()
		end := tl.LogEndOffset()
		for off := int64(0); off < end; off++ {
			b, err := tl.Read(off, 1, end, true)
			if err != nil {
				t.Fatalf("%s: Read(%d): %v", stage, off, err)
			}
			hs := batchesOf(t, b)
			if len(hs) != 1 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
				t.Fatalf("%s: Read(%d) returned %+v", stage, off, hs)
			}
		}
		var bases []int64
		for _, h := range tl.readAll() {
			bases = append(bases, h.BaseOffset)
		}
		if !equalInts(bases, want) {
			t.Fatalf("%s: batches %v, want %v", stage, bases, want)
		}
		for _, name := range tl.segmentFiles() {
			if base, _ := parseFileName(name, logSuffix); base >= end {
				t.Fatalf("%s: segment %s beyond end %d", stage, name, end)
			}
		}
	}
	check("live")
	tl.restart()
	check("after restart")
	tl.crash()
	check("after crash")
}

func TestRollByTime(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentMs = 1000
	tl := openTest(t, cfg)
	ts := tl.clock.now().UnixMilli()
	tl.append(makeBatch(batchSpec{baseTs: ts}))
	tl.clock.advance(500 * time.Millisecond)
	tl.append(makeBatch(batchSpec{baseTs: ts + 500}))
	if n := len(tl.segmentFiles()); n != 1 {
		t.Fatalf("%d segments before segment.ms", n)
	}
	tl.clock.advance(600 * time.Millisecond)
	tl.append(makeBatch(batchSpec{baseTs: ts + 1100}))
	if n := len(tl.segmentFiles()); n != 2 {
		t.Fatalf("%d segments after segment.ms on append, want 2", n)
	}
	// An empty active segment never rolls; a non-empty one rolls from MaybeRoll.
	tl.clock.advance(2 * time.Second)
	if err := tl.MaybeRoll(); err != nil {
		t.Fatal(err)
	}
	if n := len(tl.segmentFiles()); n != 3 {
		t.Fatalf("%d segments after MaybeRoll, want 3", n)
	}
	tl.clock.advance(2 * time.Second)
	if err := tl.MaybeRoll(); err != nil {
		t.Fatal(err)
	}
	if n := len(tl.segmentFiles()); n != 3 {
		t.Fatalf("%d segments after MaybeRoll on an empty segment, want 3", n)
	}
	if got := len(tl.readAll()); got != 3 {
		t.Fatalf("read %d batches", got)
	}
}

func TestRollWhenIndexFull(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 0
	cfg.SegmentIndexBytes = 48 // 6 offset entries, 4 time entries
	tl := openTest(t, cfg)
	for i := 0; i < 30; i++ {
		tl.append(makeBatch(batchSpec{baseTs: int64(1000 + i)}))
	}
	if n := len(tl.segmentFiles()); n < 5 {
		t.Fatalf("%d segments, want several from full indexes", n)
	}
	if got := len(tl.readAll()); got != 30 {
		t.Fatalf("read %d batches", got)
	}
}

func TestOffsetForTimestampAndMaxTimestamp(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 100
	tl := openTest(t, cfg)
	// Batch i has 4 records with timestamps 1000+100i, +10, +20, +30; batch 7 is compressed
	// with LZ4, batch 9 claims zstd but its records cannot be decompressed.
	for i := 0; i < 12; i++ {
		spec := batchSpec{records: 4, valueSize: 30, baseTs: 1000 + 100*int64(i), tsStep: 10}
		switch i {
		case 7:
			spec.codec, spec.compress = records.CodecLZ4, true
		case 9:
			spec.codec = records.CodecZstd
		}
		tl.append(makeBatch(spec))
	}
	// An out-of-order batch: its max timestamp is the largest of the log.
	tl.append(makeBatch(batchSpec{records: 3, baseTs: 5000, tsStep: -10})) // offsets 48-50: 5000, 4990, 4980
	tl.append(makeBatch(batchSpec{records: 1, baseTs: 2500}))              // offset 51
	tests := []struct {
		ts      int64
		wantOff int64
		wantTs  int64
		wantOK  bool
	}{
		{0, 0, 1000, true},
		{1000, 0, 1000, true},
		{1001, 1, 1010, true},
		{1030, 3, 1030, true},
		{1031, 4, 1100, true},
		{1525, 23, 1530, true},
		{1710, 29, 1710, true}, // compressed batch 7 (offsets 28-31)
		{1915, 36, 1930, true}, // undecodable batch 9 (offsets 36-39): its base offset and max timestamp
		{2130, 47, 2130, true},
		{2131, 48, 5000, true},
		{4990, 48, 5000, true},
		{5001, 0, 0, false},
	}
	check := func(stage string) {
		t.Helper()
		for _, tt := range tests {
			off, ts, ok := tl.OffsetForTimestamp(tt.ts)
			if ok != tt.wantOK || (ok && (off != tt.wantOff || ts != tt.wantTs)) {
				t.Errorf("%s: OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", stage, tt.ts, off, ts, ok, tt.wantOff, tt.wantTs, tt.wantOK)
			}
		}
		if off, ts := tl.MaxTimestamp(); off != 48 || ts != 5000 {
			t.Errorf("%s: MaxTimestamp = %d, %d; want 48, 5000", stage, off, ts)
		}
	}
	check("live")
	tl.restart()
	check("after restart")
	tl.crash()
	check("after crash")
	if _, err := tl.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	if off, ts, ok := tl.OffsetForTimestamp(0); !ok || off != 2 || ts != 1020 {
		t.Errorf("after DeleteRecords: OffsetForTimestamp(0) = %d, %d, %v", off, ts, ok)
	}
}

func TestMaxTimestampEmpty(t *testing.T) {
	tl := openTest(t, testConfig())
	if off, ts := tl.MaxTimestamp(); off != -1 || ts != -1 {
		t.Fatalf("MaxTimestamp = %d, %d", off, ts)
	}
	if _, _, ok := tl.OffsetForTimestamp(0); ok {
		t.Fatal("OffsetForTimestamp found a record in an empty log")
	}
}

func TestLogAppendTime(t *testing.T) {
	cfg := testConfig()
	cfg.LogAppendTime = true
	tl := openTest(t, cfg)
	now := tl.clock.now().UnixMilli()
	res := tl.append(makeBatch(batchSpec{records: 3, baseTs: 5}))
	if res.LogAppendTime != now {
		t.Fatalf("LogAppendTime = %d, want %d", res.LogAppendTime, now)
	}
	hs := batchesOf(t, tl.read(0, 1<<20)) // validates the rewritten CRC
	if hs[0].MaxTimestamp != now || hs[0].Attributes&records.AttrTimestampType == 0 {
		t.Fatalf("batch not stamped: %+v", hs[0])
	}
	if off, ts, ok := tl.OffsetForTimestamp(now); !ok || off != 0 || ts != now {
		t.Fatalf("OffsetForTimestamp = %d, %d, %v", off, ts, ok)
	}
}

func TestConcurrentReadsAndAppends(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.IndexIntervalBytes = 512
	cfg.FileDeleteDelayMs = 60000
	tl := openTest(t, cfg)
	const total = 400
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var off int64
			for off < total {
				end := tl.LogEndOffset()
				if off >= end {
					runtime.Gosched()
					continue
				}
				b, err := tl.Read(off, 4096, end, true)
				if errors.Is(err, ErrOffsetOutOfRange) && off < tl.LogStartOffset() {
					off = tl.LogStartOffset()
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				var last int64 = -1
				if _, err := records.Split(b, func(batch []byte) error {
					h, err := records.Validate(batch)
					if err != nil {
						return err
					}
					if h.LastOffset() >= off && last < 0 && h.BaseOffset > off {
						return errors.New("gap")
					}
					last = h.LastOffset()
					return nil
				}); err != nil {
					errs <- err
					return
				}
				if last >= 0 {
					off = last + 1
				}
			}
		}()
	}
	for i := 0; i < total; i++ {
		if _, err := tl.AppendAsLeader(makeBatch(batchSpec{valueSize: 100}), 0); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			// Move the log start: readers behind it get ErrOffsetOutOfRange and skip ahead,
			// readers inside deleted segments keep reading them through their old views.
			if _, err := tl.DeleteRecordsBefore(int64(i - 60)); err != nil && i >= 60 {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestClosedLog(t *testing.T) {
	tl := openTest(t, testConfig())
	tl.append(makeBatch(batchSpec{}))
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tl.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tl.AppendAsLeader(makeBatch(batchSpec{}), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := tl.Read(0, 100, 1, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	tl.reopen()
}

func TestInvalidAppends(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	tl := openTest(t, cfg)
	good := makeBatch(batchSpec{})
	tests := []struct {
		name    string
		batches []byte
		want    error
	}{
		{"empty", nil, ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2, 3), ErrCorrupt},
		{"too large", makeBatch(batchSpec{valueSize: 2000}), ErrRecordBatchTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tl.AppendAsLeader(tt.batches, 0); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tl.LogEndOffset() != 0 {
				t.Fatal("log end moved")
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	if err := DefaultLogConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*LogConfig){
		func(c *LogConfig) { c.SegmentBytes = 10 },
		func(c *LogConfig) { c.SegmentBytes = 1 << 32 },
		func(c *LogConfig) { c.RetentionMs = -2 },
		func(c *LogConfig) { c.SegmentIndexBytes = 4 },
		func(c *LogConfig) { c.FlushMessages = 0 },
	}
	for i, mutate := range bad {
		c := DefaultLogConfig()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: err = %v", i, err)
		}
	}
	tl := openTest(t, testConfig())
	c := testConfig()
	c.SegmentBytes = 1
	if err := tl.SetConfig(c); err == nil {
		t.Fatal("SetConfig accepted an invalid config")
	}
}

func TestReadWithUsesCallerMemory(t *testing.T) {
	tl := openTest(t, DefaultLogConfig())
	fillLog(tl, 5)
	want, err := tl.Read(0, 1<<20, tl.LogEndOffset(), true)
	if err != nil || len(want) == 0 {
		t.Fatalf("read: %v", err)
	}
	arena := make([]byte, 1<<20)
	var asked int
	got, err := tl.ReadWith(func(n int) []byte { asked = n; return arena[:n] }, 0, 1<<20, tl.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || asked < len(got) || &got[0] != &arena[0] {
		t.Fatalf("ReadWith: %d bytes (asked %d), aliases arena %v", len(got), asked, &got[0] == &arena[0])
	}
}
