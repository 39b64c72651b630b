package storage

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"
)

// TestOffsetMap checks puts, updates, lookups and the fill limit.
func TestOffsetMap(t *testing.T) {
	m := NewOffsetMap(100 * offsetMapSlotSize)
	if m.Slots() != 100 || m.MaxEntries() != 90 {
		t.Fatalf("slots %d, max entries %d", m.Slots(), m.MaxEntries())
	}
	for i := range 90 {
		if !m.put(fmt.Appendf(nil, "key%d", i), int64(i)) {
			t.Fatalf("put %d refused", i)
		}
	}
	if m.put([]byte("one more"), 90) {
		t.Fatal("a new key was taken by a full map")
	}
	if !m.put([]byte("key7"), 91) || m.get([]byte("key7")) != 91 || m.Len() != 90 {
		t.Fatal("an existing key could not be updated in a full map")
	}
	for i := range 90 {
		if want := int64(i); i != 7 && m.get(fmt.Appendf(nil, "key%d", i)) != want {
			t.Fatalf("get key%d = %d", i, m.get(fmt.Appendf(nil, "key%d", i)))
		}
	}
	if m.get([]byte("absent")) != -1 || m.get(nil) != -1 {
		t.Fatal("an absent key was found")
	}
	m.clear()
	if m.Len() != 0 || m.get([]byte("key1")) != -1 || m.latest != -1 {
		t.Fatal("clear left entries")
	}
	if NewOffsetMap(0).Slots() != 16 {
		t.Fatal("a map needs a minimum of slots")
	}
}

// TestTokenBucket checks the throttle's waits on a fake clock.
func TestTokenBucket(t *testing.T) {
	c := newClock(0)
	b := newTokenBucket(1000, c.now) // 1000 B/s, burst 100 B
	if d := b.reserve(100); d != 0 {
		t.Fatalf("the burst waited %v", d)
	}
	if d := b.reserve(500); d != 500*time.Millisecond {
		t.Fatalf("500 B in debt: wait %v, want 500ms", d)
	}
	c.advance(time.Second) // the debt is paid and 100 B saved (the burst), not 500
	if d := b.reserve(200); d != 100*time.Millisecond {
		t.Fatalf("after a second: wait %v, want 100ms", d)
	}
	for _, rate := range []float64{0, -1, math.Inf(1), math.MaxFloat64} {
		if d := newTokenBucket(rate, c.now).reserve(1 << 40); d != 0 {
			t.Errorf("rate %v throttles: %v", rate, d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewTokenBucket(1).Wait(ctx, 1<<20); err != context.Canceled {
		t.Errorf("Wait with a canceled context: %v", err)
	}
}

// TestCleanRemovesCleanShutdownMarker checks that a pass counts as a change of a log opened
// clean: the marker goes before the first swap, so a crash after it recovers the log.
func TestCleanRemovesCleanShutdownMarker(t *testing.T) {
	tl := openTest(t, compactConfig())
	tl.appendUpdates(20, 2, 3, 0, 1000)
	rollNow(t, tl)
	tl.restart()
	if _, err := os.Stat(tl.path(cleanShutdownFile)); err != nil {
		t.Fatalf("no marker after a clean restart: %v", err)
	}
	if st := tl.clean(0); st.BytesWritten == 0 {
		t.Fatalf("nothing cleaned: %+v", st)
	}
	if _, err := os.Stat(tl.path(cleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatalf("marker still there after cleaning: %v", err)
	}
	// A pass with nothing to do changes nothing: a clean log stays clean.
	tl.restart()
	if st := tl.clean(0); st.BytesWritten != 0 {
		t.Fatalf("a second pass rewrote: %+v", st)
	}
	if _, err := os.Stat(tl.path(cleanShutdownFile)); err != nil {
		t.Fatalf("a pass with nothing to do removed the marker: %v", err)
	}
}

// TestOffsetMapRelease: a released map gives its memory back and a new one starts empty.
func TestOffsetMapRelease(t *testing.T) {
	m := NewOffsetMap(1 << 20)
	if m.Slots() != (1<<20)/offsetMapSlotSize {
		t.Fatalf("slots %d", m.Slots())
	}
	m.Release()
	if m.Slots() != 0 || m.MaxEntries() != 0 {
		t.Fatalf("a released map still has %d slots", m.Slots())
	}
	m.Release() // twice is harmless
	n := NewOffsetMap(1 << 20)
	for _, s := range n.slots {
		if s != (offsetMapSlot{}) {
			t.Fatal("a new map's slots are not zero")
		}
	}
}
