package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFraudRulesCheck(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"fraud", "rules", "check", "../../testdata/fraud/rules.yaml"}, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s %s", rc, out.String(), errb.String())
	}
	if !strings.HasPrefix(out.String(), "ok: 6 rule(s)") {
		t.Fatalf("out %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - name: typo\n    when: payment && amout > 5\n    score: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if rc := run([]string{"fraud", "rules", "check", bad}, &out, &errb); rc != 1 {
		t.Fatalf("rc %d", rc)
	}
	if want := `bad.yaml:2: rule "typo" at line 1 column 12 of when: unknown name amout`; !strings.Contains(out.String(), want) {
		t.Fatalf("out %q, want %q", out.String(), want)
	}
	if rc := run([]string{"fraud", "rules"}, &out, &errb); rc != 2 {
		t.Fatalf("usage rc %d", rc)
	}
}

// TestFraudRulesLoadCLI: `cloak fraud rules load` stores a file's rules
// in the database (list shows them), a second load records what changed
// and `history` shows who and when; a file with a typo is refused naming
// the rule and the stored set stays.
func TestFraudRulesLoadCLI(t *testing.T) {
	data, cfgFile, _ := archiveRig(t, "")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		rc := run(append(args, "-config", cfgFile, "-data", data), &out, &errb)
		return rc, out.String(), errb.String()
	}
	if rc, out, errs := cli("fraud", "rules", "load", "../../testdata/fraud/rules.yaml"); rc != 0 || !strings.HasPrefix(out, "version 1: 6 rule(s)") {
		t.Fatalf("load: %d %q %q", rc, out, errs)
	}
	if rc, out, _ := cli("fraud", "rules", "load", "../../testdata/fraud/rules.yaml"); rc != 0 || !strings.HasPrefix(out, "unchanged") {
		t.Fatalf("same load: %d %q", rc, out)
	}
	two := write("two.yaml", "rules:\n  - name: repeated-declines\n    when: payment && declines_caller >= 3\n    score: 40\n  - name: busy\n    when: calls_today > 2\n    score: 50\n")
	if rc, out, errs := cli("fraud", "rules", "load", two); rc != 0 || !strings.Contains(out, "added [busy], changed [repeated-declines]") {
		t.Fatalf("second load: %d %q %q", rc, out, errs)
	}
	typo := write("typo.yaml", "rules:\n  - name: busy\n    when: calls_todya > 2\n    score: 50\n")
	if rc, out, errs := cli("fraud", "rules", "load", typo); rc != 1 || !strings.Contains(out, `typo.yaml:2: rule "busy"`) || !strings.Contains(errs, "unchanged") {
		t.Fatalf("typo: %d %q %q", rc, out, errs)
	}
	rc, out, _ := cli("fraud", "rules", "list")
	if rc != 0 || !strings.HasPrefix(out, "version 2, 2 rule(s)") || !strings.Contains(out, "busy\t50\tcalls_today > 2") {
		t.Fatalf("list: %d %q", rc, out)
	}
	rc, out, _ = cli("fraud", "rules", "history", "-json")
	if rc != 0 || strings.Count(out, `"action": "removed"`) != 5 || strings.Count(out, `"actor": "cli:`) != 13 {
		t.Fatalf("history: %d %s", rc, out)
	}
	if rc, _, _ := cli("fraud", "rules", "load"); rc != 2 {
		t.Errorf("load without a file: %d", rc)
	}
}
