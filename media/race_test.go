//go:build race

package media

// raceEnabled is true when the tests run with -race, whose
// instrumentation makes some of pion/srtp's per-packet values escape to
// the heap: allocation counts of SRTP paths are checked without it.
const raceEnabled = true
