package eventstore_test

import "syscall"

// threadCPU is the CPU time the calling OS thread has used, in nanoseconds: on a shared
// machine it moves far less with other people's load than wall time does.
func threadCPU() (int64, bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
