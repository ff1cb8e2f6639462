//go:build linux

package overload

import (
	"bytes"
	"os"

	"golang.org/x/sys/unix"
)

// SystemCPU returns a sampler of the busy share of the CPUs this process
// may run on, whoever keeps them busy: the time they spent busy (all of
// /proc/stat's fields but idle and iowait) since the previous call, over
// all the time that passed on them, so 1 means every one of them was
// busy. It is rtpengine's max-cpu: a node that shares its machine with
// other work refuses calls when that work leaves the relay too little
// CPU, which the process's own share (CPU) cannot see.
//
// The CPUs are the process's affinity (sched_getaffinity(2): taskset, or
// a cgroup cpuset) when it excludes some of the machine's, read from
// their "cpuN" lines; else the machine's aggregate "cpu" line. A node
// pinned to its own cores is therefore judged on them, not on the cores
// it left to other work (a load generator, a second node), which would
// make it refuse calls it has room for, or take calls its cores have no
// room for while the others idle.
//
// The first call returns 0, and so does a /proc/stat that cannot be read.
// The sampler is not safe for concurrent use: give it to one Signal.
func SystemCPU() func() float64 {
	return systemCPU("/proc/stat", affinity())
}

// affinity returns the CPUs the process may run on, or nil when that is
// every CPU of the machine (or cannot be told).
func affinity() []bool {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	online := onlineCPUs()
	if online == 0 || set.Count() >= online {
		return nil
	}
	cpus := make([]bool, len(set)*64)
	last := 0
	for i := range cpus {
		if cpus[i] = set.IsSet(i); cpus[i] {
			last = i
		}
	}
	return cpus[:last+1]
}

// onlineCPUs counts /proc/stat's "cpuN" lines: the machine's CPUs that
// are online (0: unreadable).
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n := 0
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, []byte("cpu")) {
			break
		}
		if len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n
}

// systemCPU is SystemCPU over the file path, counting the CPUs in cpus
// (nil: the aggregate line).
func systemCPU(path string, cpus []bool) func() float64 {
	var lastBusy, lastTotal uint64
	var f *os.File // kept open: each sample is one pread(2) at offset 0
	// The aggregate line comes first, then one line per CPU (at most
	// about 230 bytes each), then lines this does not read.
	size := 512
	if cpus != nil {
		size += 256 * len(cpus)
	}
	buf := make([]byte, size)
	return func() float64 {
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil {
				return 0
			}
		}
		n, err := f.ReadAt(buf, 0)
		if n == 0 && err != nil {
			f.Close()
			f = nil
			return 0
		}
		busy, total, ok := parseProcStat(buf[:n], cpus)
		if !ok {
			return 0
		}
		first := lastTotal == 0
		backwards := busy < lastBusy || total <= lastTotal // a counter reset: start again
		db, dt := busy-lastBusy, total-lastTotal
		lastBusy, lastTotal = busy, total
		if first || backwards {
			return 0
		}
		return min(1, float64(db)/float64(dt))
	}
}

// parseProcStat sums the busy and total clock ticks of /proc/stat's CPU
// lines (proc(5)): the aggregate "cpu" line when cpus is nil, else the
// "cpuN" lines of the CPUs N with cpus[N] set that are there (a CPU
// taken offline has no line), at least one.
func parseProcStat(b []byte, cpus []bool) (busy, total uint64, ok bool) {
	found := 0
	for line := range bytes.Lines(b) {
		if !bytes.HasSuffix(line, []byte{'\n'}) {
			break // cut short by the buffer
		}
		name, fields, _ := bytes.Cut(bytes.TrimSuffix(line, []byte{'\n'}), []byte{' '})
		if !bytes.HasPrefix(name, []byte("cpu")) {
			break // the CPU lines come first
		}
		if cpus == nil {
			if len(name) != 3 {
				return 0, 0, false
			}
			return parseCPULine(fields)
		}
		i, isCPU := atoi(name[3:])
		if !isCPU || i >= len(cpus) || !cpus[i] {
			continue
		}
		b, t, ok := parseCPULine(fields)
		if !ok {
			return 0, 0, false
		}
		busy, total, found = busy+b, total+t, found+1
	}
	return busy, total, found > 0
}

// parseCPULine reads one CPU line's fields after its name: user nice
// system idle iowait irq softirq steal [guest guest_nice], in clock
// ticks. guest and guest_nice are already inside user and nice, so they
// are not added again.
func parseCPULine(line []byte) (busy, total uint64, ok bool) {
	field := 0
	for tok := range bytes.FieldsSeq(line) {
		field++
		if field > 8 { // guest, guest_nice: counted in user and nice
			break
		}
		v, ok := atoi(tok)
		if !ok {
			return 0, 0, false
		}
		total += uint64(v)
		if field != 4 && field != 5 { // idle, iowait
			busy += uint64(v)
		}
	}
	return busy, total, field >= 4
}

// atoi reads a decimal number of at most 18 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}
