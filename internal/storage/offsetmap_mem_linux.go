package storage

import (
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// allocSlots returns n zeroed slots in an anonymous private mapping, outside the Go heap, and
// the function that unmaps them. Outside the heap, the map (log.cleaner.dedupe.buffer.size,
// 128 MiB by default) does not raise the garbage collector's heap goal, which at GOGC=100
// would let the cleaning buffers' garbage grow to the map's size again before a collection:
// measured, a 128 MiB map held the broker at about 2.5× that. The slots hold no pointers, so
// the GC need not see them. If the mapping fails, the slots come from the heap.
func allocSlots(n int64) ([]offsetMapSlot, func()) {
	size := n * offsetMapSlotSize
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]offsetMapSlot, n), func() {}
	}
	var once sync.Once
	free := func() { once.Do(func() { syscall.Munmap(b) }) }
	return unsafe.Slice((*offsetMapSlot)(unsafe.Pointer(&b[0])), n), free
}

// releaseWhenUnreachable unmaps the slots of a map nobody released once it is unreachable.
func releaseWhenUnreachable(m *OffsetMap, free func()) {
	runtime.AddCleanup(m, func(free func()) { free() }, free)
}
