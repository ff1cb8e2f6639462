package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadLateClusters: packets sent within -gap of the previous one join
// its cluster; those outside the trace's span are left out; a bad line is
// an error naming it.
func TestReadLateClusters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "late.tsv")
	lines := []string{
		"arrival_unix_ns\tsent_unix_ns\tlatency_us\tstream\tdirection",
		"1500\t1000\t0\t1\tagent->caller", // before the trace: left out
		"10600\t10000\t0\t1\tagent->caller",
		"12900\t12000\t0\t2\tagent->caller",
		"14100\t13000\t0\t3\tagent->caller",
		"30500\t30000\t0\t1\tagent->caller",
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cs, err := readLate(path, 5000, 5000, 40000)
	if err != nil {
		t.Fatal(err)
	}
	want := []cluster{{first: 10000, last: 13000, lastAt: 14100, n: 3}, {first: 30000, last: 30000, lastAt: 30500, n: 1}}
	if len(cs) != len(want) || cs[0] != want[0] || cs[1] != want[1] {
		t.Fatalf("clusters %+v, want %+v", cs, want)
	}
	if err := os.WriteFile(path, []byte(lines[0]+"\nx\ty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readLate(path, 5000, 0, 1<<62); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("bad line: err %v, want one naming line 2", err)
	}
}
