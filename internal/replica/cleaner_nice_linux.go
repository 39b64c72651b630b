package replica

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// lowerCleanerPriority locks the calling cleaner goroutine to its OS thread for the rest of
// its life and gives that thread the scheduling nice value nice (1-19; Linux keeps a nice
// value per thread), so that when the CPUs are contended the kernel runs request handling
// and replication before cleaning, and the cleaner takes mostly idle CPU. The thread is never
// unlocked: an unprivileged process cannot lower a nice value again, so the thread ends with
// the goroutine instead of going back to the runtime's pool (the process's main thread, if
// the goroutine happened to run there, is parked for good instead: it keeps the nice value,
// which tools like ps then show as the process's). nice <= 0 changes nothing.
func lowerCleanerPriority(nice int) error {
	if nice <= 0 {
		return nil
	}
	runtime.LockOSThread()
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), min(nice, 19))
}
