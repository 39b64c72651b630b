package storage

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// fillLog appends n batches of 2 records each and returns the position of each batch in the
// (single) segment.
func fillLog(tl *testLog, n int) []int64 {
	var pos []int64
	var p int64
	for i := 0; i < n; i++ {
		b := makeBatch(batchSpec{records: 2, valueSize: 50, baseTs: int64(1000 + i)})
		pos = append(pos, p)
		p += int64(len(b))
		tl.append(b)
	}
	return pos
}

func TestRecovery(t *testing.T) {
	const seg0 = "00000000000000000000"
	tests := []struct {
		name       string
		damage     func(t *testing.T, tl *testLog, pos []int64)
		wantEnd    int64
		wantWarn   string // a substring of the logged warning
		dataIntact bool
	}{
		{
			name: "torn tail",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				truncateFile(t, tl.path(seg0+logSuffix), pos[9]+30)
			},
			wantEnd:  18,
			wantWarn: "truncating log at a torn or corrupt batch",
		},
		{
			name: "torn inside the length field",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				truncateFile(t, tl.path(seg0+logSuffix), pos[9]+5)
			},
			wantEnd:  18,
			wantWarn: "shorter than a batch header",
		},
		{
			name: "corrupt CRC in last batch",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				flipByte(t, tl.path(seg0+logSuffix), pos[9]+70)
			},
			wantEnd:  18,
			wantWarn: "CRC",
		},
		{
			name: "corrupt batch in the middle drops the rest",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				flipByte(t, tl.path(seg0+logSuffix), pos[4]+80)
			},
			wantEnd:  8,
			wantWarn: "position=",
		},
		{
			name: "garbage appended",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				appendFile(t, tl.path(seg0+logSuffix), []byte(strings.Repeat("\xff", 100)))
			},
			wantEnd:  20,
			wantWarn: "truncating log",
		},
		{
			name: "missing index",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				removeFile(t, tl.path(seg0+indexSuffix))
				removeFile(t, tl.path(seg0+timeIndexSuffix))
			},
			wantEnd:    20,
			wantWarn:   "rebuilding missing index",
			dataIntact: true,
		},
		{
			name: "garbage index",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				writeFile(t, tl.path(seg0+indexSuffix), []byte(strings.Repeat("\x7f", 16)))
				writeFile(t, tl.path(seg0+timeIndexSuffix), []byte("abc"))
			},
			wantEnd:    20,
			dataIntact: true,
		},
		{
			name: "corrupt checkpoints",
			damage: func(t *testing.T, tl *testLog, pos []int64) {
				writeFile(t, tl.path(logCheckpointFile), []byte("garbage"))
				writeFile(t, tl.path(epochCheckpointFile), []byte("0\n5\n1 2\n"))
			},
			wantEnd:    20,
			wantWarn:   "ignoring corrupt",
			dataIntact: true,
		},
	}
	for _, tt := range tests {
		for _, clean := range []bool{false, true} {
			name := tt.name + "/crash"
			if clean {
				name = tt.name + "/after-clean-close"
			}
			t.Run(name, func(t *testing.T) {
				cfg := testConfig()
				cfg.IndexIntervalBytes = 100
				tl := openTest(t, cfg)
				pos := fillLog(tl, 10)
				if clean {
					if err := tl.Close(); err != nil {
						t.Fatal(err)
					}
					// A damaged log with a clean marker must still be caught where it matters:
					// the tail of the active segment is always scanned.
				} else {
					tl.crash()
					if err := tl.Close(); err != nil {
						t.Fatal(err)
					}
					removeFile(t, tl.path(cleanShutdownFile))
				}
				tt.damage(t, tl, pos)
				tl.reopen()
				if clean && tt.name == "corrupt CRC in last batch" {
					// A clean shutdown trusts the data; only lengths are checked.
					return
				}
				if clean && tt.name == "corrupt batch in the middle drops the rest" {
					return
				}
				if got := tl.LogEndOffset(); got != tt.wantEnd {
					t.Fatalf("LogEndOffset = %d, want %d\n%s", got, tt.wantEnd, tl.logs)
				}
				if tt.wantWarn != "" && !clean && !strings.Contains(tl.logs.String(), tt.wantWarn) {
					t.Fatalf("no warning %q in:\n%s", tt.wantWarn, tl.logs)
				}
				hs := tl.readAll()
				if int64(len(hs)) != tt.wantEnd/2 {
					t.Fatalf("read %d batches", len(hs))
				}
				for off := int64(0); off < tt.wantEnd; off++ {
					b, err := tl.Read(off, 1, tt.wantEnd, true)
					if err != nil || len(batchesOf(t, b)) != 1 {
						t.Fatalf("Read(%d): %v", off, err)
					}
				}
				// The log takes appends at the recovered end, and survives another restart.
				res := tl.append(makeBatch(batchSpec{records: 2}))
				if res.BaseOffset != tt.wantEnd {
					t.Fatalf("next append at %d, want %d", res.BaseOffset, tt.wantEnd)
				}
				tl.restart()
				if got := len(tl.readAll()); int64(got) != tt.wantEnd/2+1 {
					t.Fatalf("after restart read %d batches", got)
				}
			})
		}
	}
}

func TestRecoveryDropsLaterSegments(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	tl := openTest(t, cfg)
	fillLog(tl, 20)
	files := tl.segmentFiles()
	if len(files) < 4 {
		t.Fatalf("only %d segments", len(files))
	}
	tl.crash()
	tl.Close()
	removeFile(t, tl.path(cleanShutdownFile))
	// Recovery starts at the recovery point; corrupt the second segment and force the
	// checkpoint back so that it is scanned.
	writeFile(t, tl.path(logCheckpointFile), logCheckpoint{}.encode())
	flipByte(t, tl.path(files[1]), 100)
	tl.reopen()
	base1, _ := parseFileName(files[1], logSuffix)
	if got := tl.LogEndOffset(); got != base1 {
		t.Fatalf("LogEndOffset = %d, want %d (start of the corrupt segment's first batch)", got, base1)
	}
	if n := len(tl.segmentFiles()); n != 2 {
		t.Fatalf("%d segments left, want 2: %v", n, tl.segmentFiles())
	}
	tl.readAll()
}

func TestMissingIndexOfSealedSegmentRebuilt(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	cfg.IndexIntervalBytes = 100
	tl := openTest(t, cfg)
	fillLog(tl, 12)
	files := tl.segmentFiles()
	if len(files) != 4 {
		t.Fatalf("%d segments", len(files))
	}
	idx := strings.TrimSuffix(files[1], logSuffix) + indexSuffix
	want, err := os.ReadFile(tl.path(idx))
	if err != nil || len(want) == 0 {
		t.Fatalf("index %s: %d bytes, %v", idx, len(want), err)
	}
	tl.Close()
	removeFile(t, tl.path(idx))
	tl.reopen()
	if !strings.Contains(tl.logs.String(), "rebuilding missing") {
		t.Fatalf("no rebuild logged:\n%s", tl.logs)
	}
	got, err := os.ReadFile(tl.path(idx))
	if err != nil || string(got) != string(want) {
		t.Fatalf("rebuilt index differs: %x vs %x (%v)", got, want, err)
	}
	if n := len(tl.readAll()); n != 12 {
		t.Fatalf("read %d batches", n)
	}
}

func TestRecoverySkipsFlushedSegments(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 600
	tl := openTest(t, cfg)
	fillLog(tl, 20)
	if err := tl.Flush(); err != nil {
		t.Fatal(err)
	}
	tl.Log.mu.Lock()
	tl.Log.writeCheckpointLocked() // the recovery point is now the log end
	tl.Log.mu.Unlock()
	files := tl.segmentFiles()
	tl.crash()
	tl.Close()
	removeFile(t, tl.path(cleanShutdownFile))
	// A damaged record in a segment below the recovery point is not scanned (as in Kafka);
	// the same damage in the active segment is.
	flipByte(t, tl.path(files[0]), 100)
	tl.reopen()
	if got := tl.LogEndOffset(); got != 40 || strings.Contains(tl.logs.String(), "truncating") {
		t.Fatalf("LogEndOffset = %d, logs:\n%s", got, tl.logs)
	}
	tl.Close()
	removeFile(t, tl.path(cleanShutdownFile))
	last := files[len(files)-1]
	base, _ := parseFileName(last, logSuffix)
	flipByte(t, tl.path(last), 100)
	tl.reopen()
	if got := tl.LogEndOffset(); got != base || !strings.Contains(tl.logs.String(), "truncating") {
		t.Fatalf("LogEndOffset = %d, want %d; logs:\n%s", got, base, tl.logs)
	}
}

func TestWriteFailuresLeaveLogConsistent(t *testing.T) {
	tests := []struct {
		name   string
		suffix string
		short  bool
	}{
		{"log write fails", logSuffix, false},
		{"short log write", logSuffix, true},
		{"index write fails", indexSuffix, false},
		{"time index write fails", timeIndexSuffix, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.IndexIntervalBytes = 0 // every batch writes index entries
			ffs := &faultFS{}
			tl := &testLog{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(1_700_000_000_000), logs: &logBuffer{}, fs: ffs}
			tl.reopen()
			defer tl.Close()
			for i := 0; i < 3; i++ {
				tl.append(makeBatch(batchSpec{records: 2, baseTs: int64(100 + i)}))
			}
			size := tl.Size()
			ffs.set(tt.suffix, tt.short)
			b := makeBatch(batchSpec{records: 2, baseTs: 500})
			if _, err := tl.AppendAsLeader(b, 0); !errors.Is(err, errInjected) {
				t.Fatalf("append err = %v", err)
			}
			if tl.LogEndOffset() != 6 || tl.Size() != size {
				t.Fatalf("end %d size %d after failed append", tl.LogEndOffset(), tl.Size())
			}
			fi, err := os.Stat(tl.path("00000000000000000000" + logSuffix))
			if err != nil || fi.Size() != size {
				t.Fatalf("segment file size %d, want %d", fi.Size(), size)
			}
			ffs.set("", false)
			res := tl.append(makeBatch(batchSpec{records: 2, baseTs: 600}))
			if res.BaseOffset != 6 {
				t.Fatalf("next append at %d", res.BaseOffset)
			}
			if n := len(tl.readAll()); n != 4 {
				t.Fatalf("read %d batches", n)
			}
			if off, _, ok := tl.OffsetForTimestamp(550); !ok || off != 6 {
				t.Fatalf("OffsetForTimestamp = %d %v", off, ok)
			}
			tl.crash()
			if n := len(tl.readAll()); n != 4 {
				t.Fatalf("after crash read %d batches", n)
			}
		})
	}
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, pos int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, pos); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, pos); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
