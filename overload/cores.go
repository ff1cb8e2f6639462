package overload

import "runtime"

// startProcs is GOMAXPROCS as the Go runtime set it before main ran: the
// CPUs the process may use (the machine's, or its cgroup's quota), or the
// GOMAXPROCS environment variable.
var startProcs = runtime.GOMAXPROCS(0)

// Cores is how many CPUs the process may use: GOMAXPROCS as the runtime
// set it at start, before serve raised it (Procs). The CPU share (CPU)
// and the poll workers' default count are per core, not per P.
func Cores() int { return max(1, startProcs) }

// Procs is the GOMAXPROCS serve runs with when the environment does not
// set one: twice Cores. With one P per core, a poll worker readied by the
// netpoller waited in Go's run queue while both Ps ran other goroutines
// (another worker's batch, the recorder's writer), up to the scheduler's
// 10 ms time slice, and the relay's latency tail was those waits; with
// more Ps than cores the woken worker takes an idle P at once and the
// kernel's scheduler, which preempts at a far finer grain, shares the
// cores (docs/PERFORMANCE.md, "More Ps than cores").
func Procs() int { return 2 * Cores() }
