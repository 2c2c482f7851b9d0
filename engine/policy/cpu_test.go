package policy

import (
	"syscall"
	"testing"
)

// cpuPerOp reports the process CPU time (user + system, GC included) per
// iteration as cpu-ns/op: on a machine shared with other work, wall time
// per op swings with the load; the CPU an operation burns does much less.
// Call it right before the loop and defer the function it returns.
func cpuPerOp(b *testing.B) func() {
	start := cpuNanos()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuNanos()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
