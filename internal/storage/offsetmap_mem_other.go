//go:build !linux

package storage

// allocSlots returns n zeroed slots from the Go heap (the Linux build maps them outside it).
func allocSlots(n int64) ([]offsetMapSlot, func()) { return make([]offsetMapSlot, n), func() {} }

func releaseWhenUnreachable(*OffsetMap, func()) {}
