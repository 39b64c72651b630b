package replica

import (
	"testing"

	"golang.org/x/sys/unix"
)

// niceOf is the nice value of thread tid (the raw syscall returns 20 - nice).
func niceOf(t *testing.T, tid int) int {
	t.Helper()
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

// A cleaner goroutine's thread gets the nice value, and only that thread: the others keep
// their priority.
func TestCleanerThreadIsNiced(t *testing.T) {
	before := niceOf(t, unix.Gettid())
	type result struct {
		tid, nice int
		err       error
	}
	done := make(chan result)
	go func() {
		err := lowerCleanerPriority(before + 7)
		tid := unix.Gettid()
		done <- result{tid, niceOf(t, tid), err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.nice != min(before+7, 19) {
		t.Errorf("cleaner thread nice %d, want %d", r.nice, min(before+7, 19))
	}
	if got := niceOf(t, unix.Gettid()); got != before {
		t.Errorf("the test's own thread has nice %d, want %d unchanged", got, before)
	}
}
