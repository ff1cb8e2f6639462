package main

import (
	"strings"
	"testing"
)

// events is a go test -json stream: a passing test, a failing one with a
// subtest, one that never finished (a timeout) and the package's end.
const events = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestOK"}
{"Action":"output","Package":"p","Test":"TestOK","Output":"quiet line\n"}
{"Action":"pass","Package":"p","Test":"TestOK","Elapsed":3.5}
{"Action":"run","Package":"p","Test":"TestBad"}
{"Action":"output","Package":"p","Test":"TestBad/sub","Output":"sub broke\n"}
{"Action":"fail","Package":"p","Test":"TestBad/sub","Elapsed":9}
{"Action":"output","Package":"p","Test":"TestBad","Output":"--- FAIL: TestBad\n"}
{"Action":"fail","Package":"p","Test":"TestBad","Elapsed":9.25}
{"Action":"output","Package":"p","Test":"TestHang","Output":"before the hang\n"}
{"Time":"2026-12-07T10:00:00Z","Action":"run","Package":"p","Test":"TestParent"}
{"Time":"2026-12-07T10:00:00Z","Action":"pause","Package":"p","Test":"TestParent"}
{"Time":"2026-12-07T10:00:30Z","Action":"cont","Package":"p","Test":"TestParent"}
{"Time":"2026-12-07T10:01:00Z","Action":"pass","Package":"p","Test":"TestParent/sub","Elapsed":29}
{"Time":"2026-12-07T10:01:00.5Z","Action":"pass","Package":"p","Test":"TestParent","Elapsed":0}
{"Action":"output","Package":"p","Output":"PASS\n"}
not json at all
{"Action":"output","Package":"p","Output":"FAIL\tp\t20s\n"}
{"Action":"fail","Package":"p","Elapsed":20}
`

func TestFilterKeepsFailuresOnly(t *testing.T) {
	var out strings.Builder
	if err := filter(strings.NewReader(events), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"sub broke\n", "--- FAIL: TestBad\n", "FAIL\tp\t20s\n", "not json at all\n", "--- unfinished: p TestHang\nbefore the hang\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("filtered output lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"quiet line", "PASS\n"} {
		if strings.Contains(got, bad) {
			t.Errorf("filtered output shows %q from a passing test or package:\n%s", bad, got)
		}
	}
}

func TestSlowestOrdersTopLevelTests(t *testing.T) {
	var out strings.Builder
	if err := printSlowest(strings.NewReader(events), &out, 1, ""); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// TestParent: go test says 0 s, its subtest took 29 s; 30.5 s from
	// run to pass, less its 30 s paused for its parallel turn.
	if len(lines) != 3 || !strings.Contains(lines[0], "1 slowest of 3 tests") ||
		!strings.Contains(lines[1], "30.5s  pass  TestParent  p") || !strings.Contains(lines[2], "20.0s  fail  package p") {
		t.Errorf("slowest:\n%s", out.String())
	}
	out.Reset()
	if err := printSlowest(strings.NewReader(events), &out, 5, ""); err != nil || !strings.Contains(out.String(), "9.2s  fail  TestBad  p") {
		t.Errorf("TestBad as go test timed it: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := printSlowest(strings.NewReader(events), &out, 5, "other"); err != nil || !strings.Contains(out.String(), "0 slowest of 0") {
		t.Errorf("-pkg other: %v\n%s", err, out.String())
	}
}
