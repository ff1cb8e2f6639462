//go:build linux

package overload

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseProcStat(t *testing.T) {
	const twoCPUs = "cpu  100 5 50 800 40 1 2 3 7 1\n" +
		"cpu0 60 5 20 400 20 1 1 1 7 1\n" +
		"cpu1 40 0 30 400 20 0 1 2 0 0\n" +
		"intr 12345 0 1\n"
	for _, c := range []struct {
		in          string
		cpus        []bool
		busy, total uint64
		ok          bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{twoCPUs, nil, 161, 1001, true},
		{"cpu 10 0 10 80\n", nil, 20, 100, true}, // an old kernel: four fields
		{"cpu0 1 2 3 4 5\n", nil, 0, 0, false},
		{"cpu 1 2 x 4 5\n", nil, 0, 0, false},
		{"", nil, 0, 0, false},
		// The CPUs the process may run on, from their own lines.
		{twoCPUs, []bool{true}, 88, 508, true},
		{twoCPUs, []bool{false, true}, 73, 493, true},
		{twoCPUs, []bool{true, true}, 161, 1001, true},
		{twoCPUs, []bool{false, false, true}, 0, 0, false},         // cpu2 is not there
		{twoCPUs, []bool{true, false, true}, 88, 508, true},        // cpu2 went offline: cpu0's alone
		{twoCPUs[:60], []bool{true, true}, 0, 0, false},            // cut short before cpu1's line
		{"cpu 1 2 3 4\ncpu0 1 x 3 4\n", []bool{true}, 0, 0, false}, // a bad field
	} {
		busy, total, ok := parseProcStat([]byte(c.in), c.cpus)
		if busy != c.busy || total != c.total || ok != c.ok {
			t.Errorf("%q %v: %d %d %v, want %d %d %v", c.in, c.cpus, busy, total, ok, c.busy, c.total, c.ok)
		}
	}
}

// The sampler reads the lines of the CPUs it was given, each sample
// against the one before.
func TestSystemCPUOfSomeCPUs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	write := func(cpu0Busy, cpu1Busy int) {
		t.Helper()
		s := fmt.Sprintf("cpu  %d 0 0 1000 0\ncpu0 %d 0 0 500 0\ncpu1 %d 0 0 500 0\n", cpu0Busy+cpu1Busy, cpu0Busy, cpu1Busy)
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(100, 100)
	mine, all := systemCPU(path, []bool{true}), systemCPU(path, nil)
	if v, w := mine(), all(); v != 0 || w != 0 {
		t.Fatalf("first samples %v %v, want 0", v, w)
	}
	// cpu0 busy for all of 100 ticks, cpu1 idle (its idle count is not
	// moved here, so the file says the time passed on cpu0 only).
	write(200, 100)
	if v := mine(); v != 1 {
		t.Fatalf("cpu0's share %v, want 1", v)
	}
	if v := all(); v != 1 {
		t.Fatalf("machine's share %v, want 1", v)
	}
}

// A process pinned to some of the machine's CPUs is judged on those.
func TestAffinityOfAPinnedThread(t *testing.T) {
	if onlineCPUs() < 2 {
		t.Skip("one CPU: nothing to pin to")
	}
	if affinity() != nil {
		t.Skip("the test process is pinned already")
	}
	runtime.LockOSThread() // affinity is per thread: this one is changed, then put back
	defer runtime.UnlockOSThread()
	var was, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &was)
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Skipf("cannot pin: %v", err)
	}
	cpus := affinity()
	if len(cpus) != 1 || !cpus[0] {
		t.Fatalf("pinned to cpu0, affinity %v", cpus)
	}
	s := systemCPU("/proc/stat", cpus)
	s()
	end := time.Now().Add(200 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
	}
	if v := s(); v < 0.5 || v > 1 {
		t.Fatalf("cpu0's share after 200 ms of spinning on it = %v", v)
	}
}

// The machine's share sees work that is not the process's own too — here
// the test's own spinning, on the machine where it runs.
func TestSystemCPUSamplerSeesWork(t *testing.T) {
	s := SystemCPU()
	if v := s(); v != 0 {
		t.Fatalf("first sample %v, want 0", v)
	}
	end := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
	}
	v := s()
	if v <= 0 || v > 1 {
		t.Fatalf("machine CPU share after 300 ms of spinning = %v", v)
	}
}
