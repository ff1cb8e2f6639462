//go:build !linux

package overload

// SystemCPU returns a sampler of the machine's CPU share; outside Linux
// (no /proc/stat) it always returns 0: the signal never trips.
func SystemCPU() func() float64 { return func() float64 { return 0 } }
