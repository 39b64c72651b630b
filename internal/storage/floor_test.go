package storage

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/samsa-io/samsa/internal/records"
)

// fakeVolume is the statfs seam of a SpaceFloor: the free space is set by the test and
// statfs calls are counted.
type fakeVolume struct {
	mu    sync.Mutex
	free  int64
	calls int
}

func (v *fakeVolume) usage(string) (int64, int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	return 1 << 40, v.free, nil
}

func (v *fakeVolume) set(free int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.free = free
}

func (v *fakeVolume) statfsCalls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}

// TestSpaceFloor: appends (as leader and as follower) are refused with a *DiskFullError
// naming the directory, the free space and the floor while the log directory's free space is
// below the floor, logged once per episode, and resume once it is above again; reads work
// meanwhile.
func TestSpaceFloor(t *testing.T) {
	const floor = 64 << 20
	for _, tc := range []struct {
		name     string
		follower bool
	}{
		{"leader appends", false},
		{"follower appends", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := &fakeVolume{free: floor + 1<<30}
			tl := &testLog{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(1_700_000_000_000), logs: &logBuffer{}}
			logDir := "/volume/data"
			sf := newSpaceFloor(logDir, floor, vol.usage, tl.clock.now)
			opts := tl.options()
			opts.Floor = sf
			l, err := OpenLog(tl.dir, tl.cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			tl.Log = l
			t.Cleanup(func() { l.Close() })
			next := int64(0)
			appendOne := func() error {
				b := makeBatch(batchSpec{records: 1, valueSize: 10})
				if !tc.follower {
					_, err := l.AppendAsLeader(b, 0)
					return err
				}
				records.SetBaseOffset(b, next)
				err := l.AppendAsFollower(b)
				if err == nil {
					next++
				}
				return err
			}
			if err := appendOne(); err != nil {
				t.Fatalf("append above the floor: %v", err)
			}

			vol.set(floor - 1)
			tl.clock.advance(floorCheckInterval)
			for range 3 {
				err := appendOne()
				var dfe *DiskFullError
				if !errors.As(err, &dfe) || !errors.Is(err, ErrBelowFloor) || !IsDiskFull(err) {
					t.Fatalf("append below the floor: %v, want a *DiskFullError for ErrBelowFloor", err)
				}
				if dfe.Dir != logDir || dfe.Free != floor-1 || dfe.Floor != floor {
					t.Fatalf("refusal %+v, want dir %s, free %d, floor %d", dfe, logDir, floor-1, floor)
				}
				for _, want := range []string{logDir, FormatBytes(floor - 1), "64.0 MiB", "samsa.log.dir.min.free.bytes"} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("message %q does not name %q", err, want)
					}
				}
			}
			if n := strings.Count(tl.logs.String(), "below its floor: refusing appends"); n != 1 {
				t.Fatalf("%d floor log lines for one episode, want 1:\n%s", n, tl.logs)
			}
			if got := len(tl.readAll()); got != 1 {
				t.Fatalf("read %d batches below the floor, want 1", got)
			}

			vol.set(floor + 1<<20)
			tl.clock.advance(floorCheckInterval)
			if err := appendOne(); err != nil {
				t.Fatalf("append once space is above the floor again: %v", err)
			}
			if n := strings.Count(tl.logs.String(), "disk space available again"); n != 1 {
				t.Fatalf("the end of the episode is logged %d times, want 1:\n%s", n, tl.logs)
			}
		})
	}
}

// TestSpaceFloorChecks: the floor calls statfs at most once per interval or per
// floorCheckBytes admitted, counts the bytes it admits in between, and calls none when
// disabled.
func TestSpaceFloorChecks(t *testing.T) {
	const floor = 64 << 20
	for _, tc := range []struct {
		name    string
		min     int64
		free    int64
		appends []int64 // sizes admitted in order, with no time passing
		want    string  // per append: y admitted, n refused
		calls   int     // statfs calls
	}{
		{"disabled", 0, 0, []int64{1 << 20, 1 << 20}, "yy", 0},
		{"many small appends, one statfs", floor, 1 << 40, repeat(1000, 1<<10), strings.Repeat("y", 1000), 1},
		{"one statfs per floorCheckBytes", floor, 1 << 40, repeat(4, floorCheckBytes/2), "yyyy", 2},
		{"admitted bytes reach the floor", floor, floor + 3<<20, repeat(4, 1<<20), "yyyn", 1},
		{"below the floor refuses without statfs until the interval", floor, floor - 1, repeat(50, 1), strings.Repeat("n", 50), 1},
		{"a refused append takes no budget", floor, floor + 1<<20, []int64{2 << 20, 1 << 20, 1}, "nyn", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := &fakeVolume{free: tc.free}
			clk := newClock(0)
			sf := newSpaceFloor("/d", tc.min, vol.usage, clk.now)
			var got strings.Builder
			for i, n := range tc.appends {
				switch err := sf.admit(n); {
				case err == nil:
					got.WriteByte('y')
				case errors.Is(err, ErrBelowFloor):
					got.WriteByte('n')
				default:
					t.Fatalf("admit %d: %v", i, err)
				}
			}
			if got.String() != tc.want || vol.statfsCalls() != tc.calls {
				t.Fatalf("admitted %s after %d statfs calls, want %s after %d", got.String(), vol.statfsCalls(), tc.want, tc.calls)
			}
			clk.advance(floorCheckInterval)
			sf.admit(1)
			if tc.min > 0 && vol.statfsCalls() != tc.calls+1 {
				t.Fatalf("no statfs once the interval passed (%d calls)", vol.statfsCalls())
			}
		})
	}
}

func repeat(n int, size int64) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// TestSpaceFloorCheck: Check calls statfs each time, so an operation that is about to place
// data in the directory sees the space freed or taken since the last append.
func TestSpaceFloorCheck(t *testing.T) {
	vol := &fakeVolume{free: 1 << 30}
	clk := newClock(0)
	sf := newSpaceFloor("/d", 64<<20, vol.usage, clk.now)
	if err := sf.Check(); err != nil {
		t.Fatalf("Check above the floor: %v", err)
	}
	vol.set(1 << 20)
	var dfe *DiskFullError
	if err := sf.Check(); !errors.As(err, &dfe) || dfe.Free != 1<<20 {
		t.Fatalf("Check below the floor: %v", err)
	}
	vol.set(1 << 30)
	if err := sf.Check(); err != nil {
		t.Fatalf("Check above the floor again: %v", err)
	}
	if err := (*SpaceFloor)(nil).Check(); err != nil {
		t.Fatalf("nil floor: %v", err)
	}
}
