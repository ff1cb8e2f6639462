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
