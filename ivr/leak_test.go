package ivr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// forbidden are substrings of the test card that must never be printed:
// anything longer than the last four digits.
func assertNoCard(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range []string{visa, visa[:6], visa[:12], "411111111111"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s contains card digits: %s", what, s)
			return
		}
	}
}

// formats renders v every way a log line or API might.
func formats(v any) []string {
	j, _ := json.Marshal(v)
	return []string{
		fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v),
		fmt.Sprintf("%s", v), fmt.Sprintf("%q", v), string(j),
	}
}

// TestSecureRunLeaksNoDigits runs secure flows with a test card along every
// ending and formats every trace event, error, result, participant datum and
// LeaveSecure output; none may contain the card digits.
func TestSecureRunLeaksNoDigits(t *testing.T) {
	r, _ := demoRunner(t)
	runs := []struct {
		flow   string
		script []string
		agent  bool
		cancel int
	}{
		{"main", []string{"1", visa + "#", "1230", "987#"}, false, 0},
		{"pay", []string{visa + "#", "0120", "0120", "0120"}, false, 0},
		{"secure-pay", []string{visa + "#", "1230", "987#"}, true, 0},
		{"secure-pay", []string{visa + "#", "1230", "987#"}, false, 0},
		{"pay", []string{visa + "#", "12"}, false, 18}, // caller hangs up mid expiry
	}
	for i, run := range runs {
		ctx, cancel := context.WithCancel(context.Background())
		call := newFakeCall(run.script...)
		call.agent = run.agent
		call.cancelAfter, call.cancel = run.cancel, cancel
		res, err := r.Run(ctx, call, run.flow)
		cancel()
		if run.cancel > 0 && err == nil {
			t.Errorf("run %d: expected an error from the hang-up", i)
		}
		var out []string
		out = append(out, formats(res)...)
		if err != nil {
			out = append(out, formats(err)...)
			out = append(out, err.Error())
		}
		for _, ev := range call.traces {
			out = append(out, formats(ev)...)
		}
		out = append(out, formats(call.data)...)
		out = append(out, formats(call.outputs)...)
		for _, o := range call.ops {
			if strings.HasPrefix(o, "play") {
				continue // read-back to the caller is allowed (last four only; checked below)
			}
			out = append(out, o)
		}
		for _, s := range out {
			assertNoCard(t, fmt.Sprintf("run %d (%s)", i, run.flow), s)
		}
		if len(call.traces) < 5 {
			t.Errorf("run %d: only %d trace events; the check is vacuous", i, len(call.traces))
		}
	}
}

// TestReadBackIsLastFourOnly checks the digits played to the caller during
// a secure flow are exactly the last four of the card.
func TestReadBackIsLastFourOnly(t *testing.T) {
	r, _ := demoRunner(t)
	call := newFakeCall(mastercard+"#", "1230", "987#")
	if _, err := r.Run(context.Background(), call, "pay"); err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, o := range call.ops {
		if strings.HasPrefix(o, "play digits/") {
			said = append(said, strings.ReplaceAll(strings.TrimPrefix(o, "play "), "digits/", ""))
		}
	}
	if len(said) != 1 || said[0] != "4 4 4 4" {
		t.Errorf("read back %q, want exactly [\"4 4 4 4\"]", said)
	}
}

// TestSecretsWipedAtFlowEnd captures the secret buffers of a secure run just
// before the wipe and checks they are zeroed afterwards, and that nothing
// secret survives in the scope.
func TestSecretsWipedAtFlowEnd(t *testing.T) {
	r, _ := demoRunner(t)
	var held [][]byte
	var scopes []*scope
	r.beforeWipe = func(sc *scope) {
		scopes = append(scopes, sc)
		for _, s := range sc.secrets {
			held = append(held, storage(s))
		}
	}
	call := newFakeCall(visa+"#", "1230", "987#")
	if _, err := r.Run(context.Background(), call, "pay"); err != nil {
		t.Fatal(err)
	}
	if len(held) != 3 {
		t.Fatalf("captured %d secrets (card, expiry, cvv), want 3", len(held))
	}
	for i, b := range held {
		for _, c := range b {
			if c != 0 {
				t.Errorf("secret %d not wiped (%d bytes, non-zero)", i, len(b))
				break
			}
		}
	}
	for _, sc := range scopes {
		if len(sc.secrets) != 0 || len(sc.plain) != 0 {
			t.Errorf("scope keeps %d secrets, %d plain values after the flow", len(sc.secrets), len(sc.plain))
		}
	}
}

func TestSecretOverwriteWipesOld(t *testing.T) {
	sc := newScope()
	a := newSecret([]byte(visa))
	old := storage(a)
	sc.setSecret("card", a)
	sc.setSecret("card", newSecret([]byte(mastercard)))
	if strings.Trim(string(old), "\x00") != "" {
		t.Errorf("overwritten secret not wiped")
	}
	b := storage(sc.secrets["card"])
	sc.setPlain("card", "x")
	if strings.Trim(string(b), "\x00") != "" || len(sc.secrets) != 0 {
		t.Errorf("secret replaced by a plain value not wiped")
	}
}

func TestSecretFormatsMasked(t *testing.T) {
	s := newSecret([]byte(visa))
	for _, out := range formats(s) {
		assertNoCard(t, "secret", out)
		if !strings.Contains(out, "1111") {
			t.Errorf("mask %q does not show the last four", out)
		}
	}
	type holder struct{ S *secret }
	for _, out := range formats(holder{s}) {
		assertNoCard(t, "struct holding a secret", out)
	}
	if got := newSecret([]byte("987")).last4(); got != "" {
		t.Errorf("last4 of a 3-digit secret = %q, want empty", got)
	}
	if got := newSecret([]byte("987")).String(); got != "****" { // fixed width: the length does not leak
		t.Errorf("short secret mask = %q", got)
	}
	err := fmt.Errorf("step: %v: %w", s, ErrSecretSink)
	assertNoCard(t, "error", err.Error())
	if !errors.Is(err, ErrSecretSink) {
		t.Errorf("wrap lost")
	}
	s.wipe()
	if s.String() != "" || s.length() != 0 {
		t.Errorf("wiped secret still holds a value")
	}
}

func TestRuntimeSecretSinkBackstop(t *testing.T) {
	// Flows that bypass Validate (built in code) still cannot leak.
	sc := newScope()
	sc.setSecret("card", newSecret([]byte(visa)))
	st := &run{r: &Runner{}, call: newFakeCall(), now: testNow}
	f := &Flow{Name: "x", Kind: KindIVROnly}
	steps := []Step{
		{Name: "a", Action: &SetDataAction{Key: "k", Var: "card"}, Next: "z"},
		{Name: "b", Action: &BranchAction{Var: "card", Else: "z"}},
		{Name: "c", Action: &SayDigitsAction{Var: "card"}, Next: "z"},
		{Name: "d", Action: &DataAction{URL: "http://127.0.0.1:9/", Send: map[string]string{"pan": "card"}, OnSuccess: "z", OnFailure: "z"}},
	}
	for i := range steps {
		_, err := st.step(context.Background(), f, sc, &steps[i])
		if !errors.Is(err, ErrSecretSink) {
			t.Errorf("step %s: err = %v, want ErrSecretSink", steps[i].Name, err)
		}
		if err != nil {
			assertNoCard(t, "error", err.Error())
		}
	}
	if fc := st.call.(*fakeCall); len(fc.data) != 0 || len(fc.ops) != 0 {
		t.Errorf("a sink was reached: %q", fc.ops)
	}
}

// storage returns the secret's own buffer (not a copy), so a test can see
// it zeroed after a wipe.
func storage(s *secret) []byte {
	var b []byte
	s.reveal(func(clear []byte) { b = clear })
	return b
}
