//go:build !linux

package replica

// lowerCleanerPriority changes nothing where threads have no nice value of their own.
func lowerCleanerPriority(nice int) error { return nil }
