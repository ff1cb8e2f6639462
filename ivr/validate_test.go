package ivr

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDemoFlowsValidateClean(t *testing.T) {
	fs, err := LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatalf("testdata/flows must validate clean:\n%v", err)
	}
	want := []string{"main", "pay", "secure-pay"}
	if got := fs.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("names = %v, want %v", got, want)
	}
	pay, _ := fs.Flow("pay")
	sp, _ := fs.Flow("secure-pay")
	if pay.Kind != KindIVROnly || sp.Kind != KindAgentReferred {
		t.Errorf("kinds = %s, %s", pay.Kind, sp.Kind)
	}
}

// TestBadFlowsRejected loads each directory of testdata/flows-bad (one
// validator rule each) and expects the rule's message among the problems.
func TestBadFlowsRejected(t *testing.T) {
	cases := map[string]string{
		"dangling-next":              `pay.yaml: step "read_back": next "confirm" does not exist`,
		"unreachable":                `flow.yaml: step "orphan": step cannot be reached from the first step "start"`,
		"endless-loop":               `flow.yaml: step "start": no path from this step ever ends`,
		"dead-end":                   `flow.yaml: step "welcome": play needs a next step`,
		"menu-no-timeout":            `flow.yaml: step "menu": menu has no on_timeout branch`,
		"collect-no-timeout":         `flow.yaml: step "get_account": collect has no on_timeout branch`,
		"data-action-no-failure":     `flow.yaml: step "lookup": data_action has no on_failure branch`,
		"ivr-only-return":            `flow.yaml: step "back": return_to_agent in an ivr-only flow`,
		"agent-referred-no-fallback": `flow.yaml: step "back": return_to_agent has no on_no_agent fallback`,
		"agent-referred-bad-ending":  `flow.yaml: step "elsewhere": a secure flow cannot hand over to another secure flow`,
		"secret-set-data":            `flow.yaml: step "attach": secret "card" may not reach set_data`,
		"secret-non-gateway":         `flow.yaml: step "crm": secret "card" may not be sent by a data_action not marked payment_gateway`,
		"fraud-no-on-hold":           `flow.yaml: step "charge": data_action has no on_hold branch`,
		"secret-say-full":            `flow.yaml: step "read_back": secret "card" would be read back in full`,
		"secret-branch":              `flow.yaml: step "which": secret "card" may not be branched on`,
		"secret-copy-output":         `flow.yaml: output "card_copy" is a secret`,
		"secure-unknown-flow":        `flow.yaml: step "to_pay": secure flow "no-such-flow" does not exist`,
		"secure-not-secure-kind":     `main.yaml: step "to_pay": secure flow "plain" is of kind normal`,
		"unknown-field":              `flow.yaml: step "bye": line 6: field colour not found`,
		"two-actions":                `flow.yaml: step "start": step has more than one action (answer, play)`,
		"duplicate-step":             `flow.yaml: step "bye": step name used more than once`,
		"unknown-kind":               `flow.yaml: unknown kind "super-secure"`,
		"unset-variable":             `flow.yaml: step "read": say_digits variable "account" is never set`,
		"duplicate-flow-name":        `b.yaml: flow name "same" is also used by a.yaml`,
		"bad-duration":               `flow.yaml: step "menu": line 7: bad duration "5"`,
	}
	entries, err := os.ReadDir("../testdata/flows-bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := cases[e.Name()]; !ok {
			t.Errorf("testdata/flows-bad/%s has no case in this table", e.Name())
		}
	}
	for dir, want := range cases {
		t.Run(dir, func(t *testing.T) {
			_, err := LoadDir(os.DirFS("../testdata/flows-bad/"+dir), ".")
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidFlow) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			found := false
			for _, p := range ve.Problems {
				if strings.HasPrefix(p.String(), want) {
					found = true
				}
			}
			if !found {
				t.Errorf("problems:\n%v\nwant one starting %q", err, want)
			}
			// One rule per directory: at most one other line of fallout.
			if len(ve.Problems) > 2 {
				t.Errorf("%d problems, want one rule per directory:\n%v", len(ve.Problems), err)
			}
		})
	}
}

// TestValidateReportsAllProblems checks a single pass returns every
// problem, across files, not just the first.
func TestValidateReportsAllProblems(t *testing.T) {
	fsys := fstest.MapFS{
		"a.yaml": {Data: []byte(`
name: a
steps:
  - name: one
    play: {prompts: [welcome]}
    next: nowhere
  - name: two
    menu: {prompt: [menu], choices: {"11": one}}
`)},
		"b.yml":     {Data: []byte("name: b\nsteps: []\n")},
		"c.yaml":    {Data: []byte("name: c\nbogus: 1\n")},
		"notes.txt": {Data: []byte("not a flow")},
	}
	_, err := LoadDir(fsys, ".")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		`a.yaml: step "one": next "nowhere" does not exist`,
		`a.yaml: step "two": menu choice "11" is not a single key`,
		`a.yaml: step "two": menu has no on_timeout branch`,
		`a.yaml: step "two": menu has no on_invalid branch`,
		`a.yaml: step "two": step cannot be reached`,
		`b.yml: flow has no steps`,
		`c.yaml: line 2: field bogus not found`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestLoadDirErrors(t *testing.T) {
	if _, err := LoadDir(fstest.MapFS{"x.txt": {}}, "."); !errors.Is(err, ErrNoFlows) {
		t.Errorf("empty dir: err = %v, want ErrNoFlows", err)
	}
	if _, err := LoadDir(fstest.MapFS{}, "missing"); err == nil {
		t.Errorf("missing dir: no error")
	}
	for name, src := range map[string]string{
		"empty":     "",
		"two docs":  "name: a\nsteps: [{name: x, disconnect: {}}]\n---\nname: b\n",
		"not a map": "- 1\n- 2\n",
		"bad yaml":  "name: [\n",
		"dup key":   "name: a\nname: b\n",
	} {
		if _, err := Parse("f.yaml", []byte(src)); !errors.Is(err, ErrInvalidFlow) || !strings.HasPrefix(err.Error(), "f.yaml: ") {
			t.Errorf("%s: err = %v, want an ErrInvalidFlow naming the file", name, err)
		}
	}
}

func TestValidateFieldRules(t *testing.T) {
	for name, tc := range map[string]struct{ step, want string }{
		"expiry range":      {`collect: {into: e, min: 3, max: 3, validate: expiry_mmyy, on_valid: bye, on_invalid: bye, on_timeout: bye}`, "expiry_mmyy needs exactly 4 digits"},
		"min over max":      {`collect: {into: e, min: 5, max: 3, on_valid: bye, on_invalid: bye, on_timeout: bye}`, "not a valid range"},
		"attempts over 10":  {`menu: {prompt: [menu], choices: {"1": bye}, attempts: 1000000000, on_invalid: bye, on_timeout: bye}`, "attempts 1000000000 is more than 10"},
		"timeout too long":  {`collect: {into: e, first_timeout: 100000h, on_valid: bye, on_invalid: bye, on_timeout: bye}`, "first_timeout 100000h0m0s is longer than 10m0s"},
		"max over 64":       {`collect: {into: e, max: 65, on_valid: bye, on_invalid: bye, on_timeout: bye}`, "collect max 65 is more than 64 digits"},
		"bad validate":      {`collect: {into: e, validate: mod97, on_valid: bye, on_invalid: bye, on_timeout: bye}`, `unknown validate "mod97"`},
		"bad terminator":    {`collect: {into: e, terminator: "5", on_valid: bye, on_invalid: bye, on_timeout: bye}`, `terminator "5"`},
		"set two ops":       {`set: {var: a, value: "1", add: 1}`, "exactly one of value, copy, last4, add"},
		"data url":          {`data_action: {url: "ftp://x/y", on_success: bye, on_failure: bye}`, "is not an http(s) URL"},
		"data url+endpoint": {`data_action: {url: "http://x/y", endpoint: gw, on_success: bye, on_failure: bye}`, "exactly one of url or endpoint"},
		"transfer target":   {`transfer: {target: "sales"}`, `transfer target "sales" must be`},
		"branch no else":    {`branch: {var: a, cases: [{equals: "1", next: bye}]}`, "branch has no else branch"},
		"case two ops":      {`branch: {var: a, cases: [{equals: "1", gte: 2, next: bye}], else: bye}`, "branch case 1 needs exactly one"},
		"next on menu":      {`menu: {prompt: [menu], choices: {"1": bye}, on_invalid: bye, on_timeout: bye}` + "\n    next: bye", "next is not used by menu"},
		"no action":         {`next: bye`, "step has no action"},
	} {
		src := "name: v\nsteps:\n  - name: s\n    " + tc.step + "\n  - name: bye\n    disconnect: {}\n"
		if strings.Contains(tc.step, "var: a") {
			src = "name: v\nsteps:\n  - name: init\n    set: {var: a, value: \"1\"}\n    next: s\n  - name: s\n    " + tc.step + "\n  - name: bye\n    disconnect: {}\n"
		}
		f, err := Parse("v.yaml", []byte(src))
		if err != nil {
			t.Errorf("%s: parse: %v", name, err)
			continue
		}
		probs := Validate(f)
		var all []string
		found := false
		for _, p := range probs {
			all = append(all, p.String())
			if strings.Contains(p.String(), tc.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problems %q, want one containing %q", name, all, tc.want)
		}
	}
}

func TestPromptsListed(t *testing.T) {
	fs, err := LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(fs.Prompts(), " ")
	for _, want := range []string{"welcome", "menu", "enter_card", "card_ending", "digits/0", "digits/hash", "transferring"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("prompts %q lack %q", got, want)
		}
	}
}
