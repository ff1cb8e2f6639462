//go:build linux

package overload

import (
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, c := range []struct {
		in          string
		busy, total uint64
		ok          bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"cpu  100 5 50 800 40 1 2 3 7 1\ncpu0 1 2 3 4\n", 161, 1001, true},
		{"cpu 10 0 10 80\n", 20, 100, true}, // an old kernel: four fields
		{"cpu0 1 2 3 4 5\n", 0, 0, false},
		{"cpu 1 2 x 4 5\n", 0, 0, false},
		{"", 0, 0, false},
	} {
		busy, total, ok := parseProcStat([]byte(c.in))
		if busy != c.busy || total != c.total || ok != c.ok {
			t.Errorf("%q: %d %d %v, want %d %d %v", c.in, busy, total, ok, c.busy, c.total, c.ok)
		}
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
