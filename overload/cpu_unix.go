//go:build unix

package overload

import (
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time the process has used so far, user and
// system (getrusage(2) RUSAGE_SELF), or 0 where that fails.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPU returns a sampler of the process's CPU share: the CPU time it used
// (ProcessCPU) since the previous call, less what ExemptCPU took out in
// between, over the wall time between the calls and Cores, so 1 means
// every core the process may use was busy. The first call returns 0.
// The sampler is not safe for concurrent use: give it to one Signal.
func CPU() func() float64 {
	var lastCPU, lastWall time.Duration
	start := time.Now()
	return func() float64 {
		cpu := ProcessCPU() - Exempted()
		wall := time.Since(start)
		dc, dw := cpu-lastCPU, wall-lastWall
		first := lastWall == 0
		lastCPU, lastWall = cpu, wall
		if first || dw <= 0 {
			return 0
		}
		return max(0, float64(dc)/float64(dw)/float64(Cores()))
	}
}
