package ivr

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestParseStepShapes pins how a step is decoded by its action key: every
// problem names the file and, where it has one, the step.
func TestParseStepShapes(t *testing.T) {
	head := "name: x\nsteps:\n"
	cases := []struct {
		name, steps, want string
	}{
		{"unknown key", "  - name: a\n    colour: blue\n    disconnect: {}\n", `f.yaml: step "a": line 4: unknown field or action "colour"`},
		{"two actions", "  - name: a\n    answer: {}\n    disconnect: {}\n", `f.yaml: step "a": step has more than one action (answer, disconnect)`},
		{"nested unknown field", "  - name: a\n    branch:\n      var: v\n      cases: [{equals: x, nxt: b}]\n      else: b\n", `f.yaml: step "a": line 6: field nxt not found`},
		{"not a mapping", "  - just text\n", `f.yaml: step 1: line 3: a step must be a mapping`},
		{"name not a string", "  - name: [a]\n    disconnect: {}\n", `f.yaml: step 1: line 3: name must be a string`},
		{"action body wrong type", "  - name: a\n    play: loud\n", `f.yaml: step "a": line 4: cannot unmarshal`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(head+tc.steps))
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidFlow) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if !strings.HasPrefix(ve.Problems[0].String(), tc.want) {
				t.Errorf("got %q, want prefix %q", ve.Problems[0].String(), tc.want)
			}
		})
	}
}

// TestParseDecodesActionTypes checks each key lands in its own type, and an
// action written with no body ("answer:") still counts as that action.
func TestParseDecodesActionTypes(t *testing.T) {
	src := `name: x
steps:
  - name: a
    answer:
    next: b
  - name: b
    collect: {into: v, flush: true, on_valid: c, on_invalid: c, on_timeout: c}
  - name: c
    disconnect: {reason: done}
`
	f := mustParse(t, "f.yaml", src)
	if probs := Validate(f); len(probs) != 0 {
		t.Errorf("validator refuses it: %v", probs)
	}
	if _, ok := f.Steps[0].Action.(*AnswerAction); !ok {
		t.Errorf("step a: %T, want *AnswerAction", f.Steps[0].Action)
	}
	if c, ok := f.Steps[1].Action.(*CollectAction); !ok || c.Into != "v" || !c.Flush {
		t.Errorf("step b: %#v", f.Steps[1].Action)
	}
	if d, ok := f.Steps[2].Action.(*DisconnectAction); !ok || d.Reason != "done" {
		t.Errorf("step c: %#v", f.Steps[2].Action)
	}
}

// TestStepUnmarshalYAML: decoding a Flow with yaml.v3 directly also types
// each step's action and refuses unknown fields inside it.
func TestStepUnmarshalYAML(t *testing.T) {
	var f Flow
	if err := yaml.Unmarshal([]byte("name: x\nsteps:\n  - name: a\n    play: {prompts: [hi]}\n    next: b\n"), &f); err != nil {
		t.Fatal(err)
	}
	if p, ok := f.Steps[0].Action.(*PlayAction); !ok || p.Prompts[0] != "hi" || f.Steps[0].Next != "b" {
		t.Errorf("step = %#v", f.Steps[0])
	}
	err := yaml.Unmarshal([]byte("name: x\nsteps:\n  - name: a\n    play: {prompt: [hi]}\n"), &f)
	if err == nil || !strings.Contains(err.Error(), "field prompt not found") {
		t.Errorf("err = %v, want the unknown field named", err)
	}
}
