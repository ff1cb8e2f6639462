//go:build unix

package overload

import (
	"runtime"
	"testing"
	"time"
)

// TestCPUShareIsPerCoreWithMorePs: serve runs with more Ps than cores
// (Procs); the CPU share stays the process's CPU over the wall time and
// the cores (Cores), not the Ps, or limits.max_cpu would mean twice the
// CPU it says. The share is checked against the process's own CPU over
// the same interval, so a busy machine changes both alike.
func TestCPUShareIsPerCoreWithMorePs(t *testing.T) {
	if Procs() != 2*Cores() || Cores() < 1 {
		t.Fatalf("Procs %d, Cores %d: want twice the cores", Procs(), Cores())
	}
	old := runtime.GOMAXPROCS(Procs())
	defer runtime.GOMAXPROCS(old)
	s := CPU()
	s()
	c0, w0 := ProcessCPU()-Exempted(), time.Now()
	end := w0.Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	v := s()
	c1, w1 := ProcessCPU()-Exempted(), time.Now()
	if c1-c0 < 50*time.Millisecond {
		t.Skipf("the spin got only %v of CPU: machine too busy to tell", c1-c0)
	}
	want := float64(c1-c0) / float64(w1.Sub(w0)) / float64(Cores())
	if v < 0.7*want || v > 1.3*want {
		t.Fatalf("CPU share %.3f with GOMAXPROCS %d: want ~%.3f, the process's CPU over %d cores (x=%d)", v, runtime.GOMAXPROCS(0), want, Cores(), x)
	}
}
