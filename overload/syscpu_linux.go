//go:build linux

package overload

import (
	"bytes"
	"os"
)

// SystemCPU returns a sampler of the machine's CPU share: the time every
// CPU spent busy (all of /proc/stat's "cpu" line but idle and iowait)
// since the previous call, over all the time that passed on them, so 1
// means every core of the machine was busy — whoever kept it busy. It is
// rtpengine's max-cpu: a node that shares its machine with other work
// refuses calls when that work leaves the relay too little CPU, which the
// process's own share (CPU) cannot see. The first call returns 0, and so
// does a /proc/stat that cannot be read. The sampler is not safe for
// concurrent use: give it to one Signal.
func SystemCPU() func() float64 {
	var lastBusy, lastTotal uint64
	var f *os.File // kept open: each sample is one pread(2) at offset 0
	buf := make([]byte, 512)
	return func() float64 {
		if f == nil {
			var err error
			if f, err = os.Open("/proc/stat"); err != nil {
				return 0
			}
		}
		n, err := f.ReadAt(buf, 0)
		if n == 0 && err != nil {
			f.Close()
			f = nil
			return 0
		}
		busy, total, ok := parseProcStat(buf[:n])
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

// parseProcStat reads the aggregate "cpu" line of /proc/stat (proc(5)):
// user nice system idle iowait irq softirq steal [guest guest_nice], in
// clock ticks. guest and guest_nice are already inside user and nice, so
// they are not added again.
func parseProcStat(b []byte) (busy, total uint64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	i := 0
	for field := 0; ; field++ {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			return busy, total, field >= 5
		}
		start := i
		for i < len(line) && line[i] != ' ' {
			i++
		}
		tok := line[start:i]
		switch {
		case field == 0:
			if string(tok) != "cpu" {
				return 0, 0, false
			}
			continue
		case field > 8: // guest, guest_nice: counted in user and nice
			continue
		}
		var v uint64
		for _, c := range tok {
			if c < '0' || c > '9' || v > (1<<63)/10 {
				return 0, 0, false
			}
			v = v*10 + uint64(c-'0')
		}
		total += v
		if field != 4 && field != 5 { // idle, iowait
			busy += v
		}
	}
}
