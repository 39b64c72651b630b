package wire

import (
	"strings"
	"testing"
)

// The cleaner state tag round-trips, version 0 values (no uncleanable reason) still decode,
// and truncated values are refused rather than read past their end.
func TestCleanerStateEncoding(t *testing.T) {
	for _, s := range []CleanerState{
		{FirstDirtyOffset: 42, DirtyRatio: 0.25, CleanableBytes: 1000, TotalBytes: 4000},
		{FirstDirtyOffset: 7, Uncleanable: "batch at offset 3: record batch CRC mismatch"},
	} {
		b := EncodeCleanerState(s)
		got, err := DecodeCleanerState(b)
		if err != nil || got != s {
			t.Errorf("round trip of %+v: %+v, %v", s, got, err)
		}
		for n := 0; n < len(b); n++ {
			if _, err := DecodeCleanerState(b[:n]); err == nil {
				t.Errorf("%+v truncated to %d bytes decoded", s, n)
			}
		}
	}
	v0 := EncodeCleanerState(CleanerState{FirstDirtyOffset: 9, DirtyRatio: 0.5})[:cleanerStateV0Size]
	v0[0] = 0
	if got, err := DecodeCleanerState(v0); err != nil || got.FirstDirtyOffset != 9 || got.DirtyRatio != 0.5 {
		t.Errorf("version 0: %+v, %v", got, err)
	}
	long := EncodeCleanerState(CleanerState{Uncleanable: strings.Repeat("x", 5000)})
	if got, err := DecodeCleanerState(long); err != nil || len(got.Uncleanable) != maxUncleanableLen {
		t.Errorf("a long reason: %d bytes, %v; want it cut to %d", len(got.Uncleanable), err, maxUncleanableLen)
	}
}
