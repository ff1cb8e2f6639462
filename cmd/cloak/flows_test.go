package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runFlowsCapture(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runFlows(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestFlowsCheckDemoFlows(t *testing.T) {
	code, out, errs := runFlowsCapture("check", "../../testdata/flows")
	if code != 0 {
		t.Fatalf("exit %d, stdout %q stderr %q", code, out, errs)
	}
	if !strings.Contains(out, "3 flow(s)") {
		t.Errorf("stdout %q", out)
	}
	if code, out, _ := runFlowsCapture("check", "-q", "../../testdata/flows"); code != 0 || out != "" {
		t.Errorf("-q: exit %d stdout %q", code, out)
	}
}

func TestFlowsCheckProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("pay.yaml", `name: pay
kind: ivr-only
steps:
  - name: get_card
    collect: {into: card, validate: luhn, min: 13, max: 19, on_valid: read_back, on_invalid: bye, on_timeout: bye}
  - name: read_back
    say_digits: {var: card}
    next: confirm
  - name: bye
    disconnect: {}
`)
	write("main.yaml", "name: main\nsteps:\n  - name: x\n    secure: {flow: nope}\n")
	code, out, errs := runFlowsCapture("check", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		`pay.yaml: step "read_back": next "confirm" does not exist`,
		`pay.yaml: step "read_back": secret "card" would be read back in full`,
		`main.yaml: step "x": secure flow "nope" does not exist`,
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("missing line %q in:\n%s", w, out)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	if !strings.Contains(errs, "3 problem(s)") {
		t.Errorf("stderr %q", errs)
	}
}

func TestFlowsCheckEveryBadFlowFails(t *testing.T) {
	entries, err := os.ReadDir("../../testdata/flows-bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		code, out, _ := runFlowsCapture("check", filepath.Join("../../testdata/flows-bad", e.Name()))
		if code != 1 || out == "" {
			t.Errorf("%s: exit %d, stdout %q; want 1 with problems", e.Name(), code, out)
		}
	}
}

func TestFlowsUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"lint"}, {"check"}, {"check", "a", "b"}, {"check", "-bogus", "x"}, {"check", "/does/not/exist"}} {
		if code, _, errs := runFlowsCapture(args...); code != 2 || errs == "" {
			t.Errorf("args %q: exit %d stderr %q, want 2 with a message", args, code, errs)
		}
	}
	if code, _, _ := runFlowsCapture("-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
}

// TestFlowsCheckNamesTheEmptyFolder: a folder without flows is named in
// the error, as given and where that is, never as ".".
func TestFlowsCheckNamesTheEmptyFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runFlowsCapture("check", dir)
	if code != 1 || !strings.Contains(errs, "no flows in "+dir+":") || strings.Contains(errs, " from .") {
		t.Fatalf("exit %d stderr %q: want exit 1 naming %s", code, errs, dir)
	}
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, dir)
	if err != nil {
		t.Skip(err)
	}
	code, _, errs = runFlowsCapture("check", rel)
	if code != 1 || !strings.Contains(errs, rel+" ("+dir+")") {
		t.Fatalf("exit %d stderr %q: want %s (%s)", code, errs, rel, dir)
	}
}

// TestFlowsCheckPlainGateway: with -config, a deployment whose
// payment_gateway is plain http beyond loopback is refused, naming the
// step that would send the card there; https passes.
func TestFlowsCheckPlainGateway(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cloak.yaml")
	for _, tc := range []struct {
		url  string
		code int
	}{{"http://10.9.8.7/pay", 1}, {"https://pay.example/charge", 0}, {"http://127.0.0.1:8181/pay", 0}} {
		if err := os.WriteFile(cfgFile, []byte("flows:\n  endpoints:\n    payment_gateway: "+tc.url+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runFlowsCapture("check", "-config", cfgFile, "../../testdata/flows")
		if code != tc.code {
			t.Fatalf("%s: exit %d, want %d; stdout %q stderr %q", tc.url, code, tc.code, out, errs)
		}
		if tc.code == 1 && (!strings.Contains(out, `step "`) || !strings.Contains(out, "https")) {
			t.Errorf("%s: stdout %q does not name the step and https", tc.url, out)
		}
	}
}
