//go:build !unix

package overload

import "time"

// ProcessCPU returns 0 where getrusage(2) is missing.
func ProcessCPU() time.Duration { return 0 }

// CPU returns a sampler of the process's CPU share; where getrusage(2) is
// missing it always returns 0 (the signal never trips).
func CPU() func() float64 { return func() float64 { return 0 } }
