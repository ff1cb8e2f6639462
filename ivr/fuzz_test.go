package ivr

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// failTransport fails every request at once, so fuzzed data actions never
// touch the network.
type failTransport struct{}

func (failTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in fuzzing")
}

// FuzzParseFlow loads a flow from bytes (ivr.Parse), validates it and, when
// it is valid, runs it against the fake call. Whatever the bytes: no panic;
// a refusal is a *ValidationError matching ErrInvalidFlow whose every
// problem names the file; a valid flow runs to an end, or to an error, in
// bounded steps. The seed corpus in testdata/fuzz/FuzzParseFlow is built
// from testdata/flows and testdata/flows-bad.
func FuzzParseFlow(f *testing.F) {
	f.Add([]byte("name: x\nsteps:\n  - name: a\n    disconnect: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		fl, err := Parse("f.yaml", data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidFlow) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error %T %v, want a non-empty *ValidationError", err, err)
			}
			for _, p := range ve.Problems {
				if !strings.HasPrefix(p.String(), "f.yaml: ") {
					t.Fatalf("problem does not name the file: %q", p.String())
				}
			}
			return
		}
		for _, p := range Validate(fl) {
			if !strings.HasPrefix(p.String(), "f.yaml: ") {
				t.Fatalf("problem does not name the file: %q", p.String())
			}
		}
		fs, err := NewFlowSet(fl)
		if err != nil {
			return
		}
		_ = fs.Prompts()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r := &Runner{Flows: fs, Now: testNow, MaxSteps: 200,
			Client: &http.Client{Transport: failTransport{}}}
		call := newFakeCall("1", "4111111111111111#", "1230", "123#", "T", "2")
		call.agent = true
		res, err := r.Run(ctx, call, fl.Name)
		if err == nil && res.Ending == EndError {
			t.Fatalf("run ended in error without an error")
		}
		if res.Steps > 200 {
			t.Fatalf("ran %d steps past MaxSteps", res.Steps)
		}
	})
}

// TestAttemptsClampedAtRun: found by FuzzParseFlow — a menu with a huge
// attempts value looped for hours. The validator refuses it; a flow built
// in code past the validator is clamped to MaxAttempts.
func TestAttemptsClampedAtRun(t *testing.T) {
	st := &run{r: &Runner{}, call: newFakeCall(), now: testNow}
	s := &Step{Name: "m", Action: &MenuAction{Prompt: []string{"p"}, Choices: map[string]string{"1": "z"}, Attempts: 1 << 30, OnTimeout: "z", OnInvalid: "z"}}
	o, err := st.step(context.Background(), &Flow{Name: "x"}, newScope(), s)
	if err != nil || o.next != "z" {
		t.Fatalf("outcome %+v err %v", o, err)
	}
	if n := st.call.(*fakeCall).count("play+ p"); n != MaxAttempts {
		t.Errorf("%d attempts, want MaxAttempts = %d", n, MaxAttempts)
	}
}
