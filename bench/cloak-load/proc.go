package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what the bench reads of a process from /proc: CPU time
// (user + system, all threads), resident memory and thread count.
type procStat struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	RSSKiB     int64   `json:"rss_kib"`
	Threads    int     `json:"threads"`
}

// clkTck is USER_HZ; 100 on every Linux the bench runs on (sysconf is not
// reachable without cgo).
const clkTck = 100

// readProc reads /proc/PID/stat and /proc/PID/status; pid 0 means self.
func readProc(pid int) (procStat, error) {
	var st procStat
	who := "self"
	if pid > 0 {
		who = strconv.Itoa(pid)
	}
	raw, err := os.ReadFile("/proc/" + who + "/stat")
	if err != nil {
		return st, err
	}
	cpu, err := parseStatCPU(raw)
	if err != nil {
		return st, fmt.Errorf("/proc/%s/stat: %w", who, err)
	}
	st.CPUSeconds = cpu
	status, err := os.ReadFile("/proc/" + who + "/status")
	if err != nil {
		return st, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			f := strings.Fields(line)
			if len(f) >= 2 {
				st.RSSKiB, _ = strconv.ParseInt(f[1], 10, 64)
			}
		case strings.HasPrefix(line, "Threads:"):
			f := strings.Fields(line)
			if len(f) >= 2 {
				st.Threads, _ = strconv.Atoi(f[1])
			}
		}
	}
	return st, nil
}

// parseStatCPU returns utime+stime in seconds from a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(raw []byte) (float64, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command field")
	}
	f := strings.Fields(string(raw[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	stm, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad utime/stime")
	}
	return float64(ut+stm) / clkTck, nil
}
