package auth

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/overload"
	"golang.org/x/crypto/argon2"
)

// nsPerUnit is the CPU cost of argon2id per KiB-pass (Memory × Time), in
// nanoseconds, as float64 bits: the least this process has seen. Zero
// until the first hash.
var nsPerUnit atomic.Uint64

// idKey is argon2.IDKey that also tells admission control (overload)
// what the hash cost in CPU, so that sign-ins do not count as relay load
// (see overload.ExemptCPU and docs/PERFORMANCE.md "Admission control").
//
// argon2 runs its lanes on goroutines of its own, so no one thread's CPU
// clock sees the whole cost; the process's CPU time around the call does,
// plus whatever else ran meanwhile. That is an upper bound of the hash's
// cost, so the estimate keeps the least cost per KiB-pass seen so far: it
// starts high if the first hash ran on a busy node and comes down to the
// true cost with the next quiet one, and it never counts the relay's work
// as the hash's more than once.
func idKey(password, salt []byte, p Params, keyLen uint32) []byte {
	before := overload.ProcessCPU()
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, keyLen)
	spent := overload.ProcessCPU() - before
	units := float64(p.Memory) * float64(p.Time)
	if spent > 0 && units > 0 {
		per := float64(spent) / units
		for {
			old := nsPerUnit.Load()
			if old != 0 && math.Float64frombits(old) <= per {
				per = math.Float64frombits(old)
				break
			}
			if nsPerUnit.CompareAndSwap(old, math.Float64bits(per)) {
				break
			}
		}
		overload.ExemptCPU(time.Duration(per * units))
	}
	return key
}
