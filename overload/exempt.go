package overload

import (
	"sync/atomic"
	"time"
)

// exemptNS is the CPU time, in nanoseconds since the process started,
// that ExemptCPU took out of the cpu signal.
var exemptNS atomic.Int64

// ExemptCPU takes d of the process's CPU time out of the cpu signal
// (CPU). It is for work that is bounded by its own limits and that a
// stranger can start — argon2id password hashing at sign-in is the case
// (auth bounds it to a few at once and locks out repeated failures) — so
// that a burst of sign-ins, or an attacker guessing passwords, cannot make
// the node refuse calls: the relay's own health (read lag, recorder
// backlog) still trips admission if that work really starves it.
func ExemptCPU(d time.Duration) {
	if d > 0 {
		exemptNS.Add(int64(d))
	}
}

// Exempted returns the CPU time ExemptCPU has taken out since the
// process started.
func Exempted() time.Duration { return time.Duration(exemptNS.Load()) }
