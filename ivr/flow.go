package ivr

import (
	"fmt"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Kind says whether a flow is an ordinary IVR flow or one of the two kinds of
// secure flow, during which the call's secure gate keeps the caller's input
// away from agents, recordings, captures and logs.
type Kind string

const (
	// KindNormal is an ordinary flow: menus, routing, participant data.
	KindNormal Kind = "normal"
	// KindIVROnly is a secure flow with no agent: the flow that sends the
	// caller here ends, and every path must end in transfer or disconnect,
	// never return_to_agent.
	KindIVROnly Kind = "ivr-only"
	// KindAgentReferred is a secure flow an agent sends the caller into while
	// the agent stays reserved; every path ends in return_to_agent (with an
	// on_no_agent fallback), transfer or disconnect.
	KindAgentReferred Kind = "agent-referred"
)

// Secure reports whether k is one of the secure kinds.
func (k Kind) Secure() bool { return k == KindIVROnly || k == KindAgentReferred }

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindNormal || k.Secure() }

// Duration is a time.Duration written in YAML as a Go duration string
// ("5s", "1500ms").
type Duration time.Duration

// UnmarshalYAML parses a duration string; bare numbers are refused so that
// "5" cannot silently mean five nanoseconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a string such as \"5s\"", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q (want e.g. \"5s\", \"1500ms\")", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Flow is one parsed flow file.
type Flow struct {
	// Name identifies the flow (secure steps and Run name it). Unique in a
	// FlowSet.
	Name string `yaml:"name"`
	// Kind is normal (the default), ivr-only or agent-referred.
	Kind Kind `yaml:"kind"`
	// Description is free text for people.
	Description string `yaml:"description"`
	// Outputs names the variables copied out when the flow ends (to
	// Result.Outputs and, for secure flows, Call.LeaveSecure). A secret
	// variable is never copied; naming one is a validation error.
	Outputs []string `yaml:"outputs"`
	// Steps run from the first one; every step has a unique name.
	Steps []Step `yaml:"steps"`

	// File is the file the flow came from (set by LoadDir/Parse, not YAML).
	File string `yaml:"-"`

	index map[string]int
}

// Step is one named step holding exactly one action. Linear actions (answer,
// play, say_digits, set, set_data) continue at Next; branching actions carry
// their own branches; transfer, disconnect, return_to_agent and secure end
// the flow.
type Step struct {
	// Name is the step's name, unique within the flow.
	Name string `yaml:"name"`
	// Next is the step that follows a linear action.
	Next string `yaml:"next"`

	Answer        *AnswerAction        `yaml:"answer"`
	Play          *PlayAction          `yaml:"play"`
	Menu          *MenuAction          `yaml:"menu"`
	Collect       *CollectAction       `yaml:"collect"`
	SayDigits     *SayDigitsAction     `yaml:"say_digits"`
	Set           *SetAction           `yaml:"set"`
	SetData       *SetDataAction       `yaml:"set_data"`
	Branch        *BranchAction        `yaml:"branch"`
	DataAction    *DataAction          `yaml:"data_action"`
	Secure        *SecureAction        `yaml:"secure"`
	Transfer      *TransferAction      `yaml:"transfer"`
	Disconnect    *DisconnectAction    `yaml:"disconnect"`
	ReturnToAgent *ReturnToAgentAction `yaml:"return_to_agent"`
}

// AnswerAction answers the call (a no-op when it is already answered).
type AnswerAction struct{}

// PlayAction plays prompts in order.
type PlayAction struct {
	// Prompts are prompt names, e.g. "welcome" or "digits/1".
	Prompts []string `yaml:"prompts"`
	// BargeIn stops the playback when the caller presses a key (the digit
	// stays queued for the next menu or collect).
	BargeIn bool `yaml:"barge_in"`
}

// MenuAction plays a prompt and routes on one key press.
type MenuAction struct {
	// Prompt is played (with barge-in) at each attempt.
	Prompt []string `yaml:"prompt"`
	// Choices maps a key ("0"-"9", "*", "#") to the next step.
	Choices map[string]string `yaml:"choices"`
	// Timeout is how long to wait for a key after the prompt (default 5s).
	Timeout Duration `yaml:"timeout"`
	// Attempts is how many times the prompt is offered (default 3).
	Attempts int `yaml:"attempts"`
	// InvalidPrompt is played after a key that is not a choice, before the
	// next attempt.
	InvalidPrompt []string `yaml:"invalid_prompt"`
	// TimeoutPrompt is played after a timeout, before the next attempt.
	TimeoutPrompt []string `yaml:"timeout_prompt"`
	// Default, when set, takes any key that is not a choice at once (no
	// retry); OnInvalid is then not needed.
	Default string `yaml:"default"`
	// OnInvalid is taken when the last attempt ends with a wrong key.
	OnInvalid string `yaml:"on_invalid"`
	// OnTimeout is taken when the last attempt ends with no key. Required.
	OnTimeout string `yaml:"on_timeout"`
}

// Validation names for CollectAction.Validate.
const (
	// ValidateLength checks only the number of digits (min/max).
	ValidateLength = "length"
	// ValidateLuhn checks min/max and the Luhn (mod 10) check digit of a
	// card number (ISO/IEC 7812-1 Annex B).
	ValidateLuhn = "luhn"
	// ValidateExpiryMMYY checks four digits MMYY, month 01-12, not before
	// the current month.
	ValidateExpiryMMYY = "expiry_mmyy"
)

// CollectAction collects several digits into a variable.
type CollectAction struct {
	// Into is the variable that receives the digits.
	Into string `yaml:"into"`
	// Prompt is played (with barge-in) at each attempt.
	Prompt []string `yaml:"prompt"`
	// Min and Max bound the number of digits (defaults 1 and 32). Input
	// stops as soon as Max digits are in.
	Min int `yaml:"min"`
	Max int `yaml:"max"`
	// Terminator ends input early ("#" by default; "none" for none). It is
	// not part of the value.
	Terminator string `yaml:"terminator"`
	// FirstTimeout is how long to wait for the first digit (default 10s);
	// InterDigitTimeout for each later one (default 5s). An inter-digit
	// timeout ends the input.
	FirstTimeout      Duration `yaml:"first_timeout"`
	InterDigitTimeout Duration `yaml:"inter_digit_timeout"`
	// Validate is length (default), luhn or expiry_mmyy.
	Validate string `yaml:"validate"`
	// Secret marks the value as secret in a normal flow; in a secure flow
	// every collected value is secret anyway.
	Secret bool `yaml:"secret"`
	// Attempts is how many tries the caller gets (default 3).
	Attempts int `yaml:"attempts"`
	// RetryPrompt is played after a failed attempt, before the next one.
	RetryPrompt []string `yaml:"retry_prompt"`
	// OnValid, OnInvalid and OnTimeout are the branches; all required.
	// OnTimeout is taken when the last attempt got no digit at all.
	OnValid   string `yaml:"on_valid"`
	OnInvalid string `yaml:"on_invalid"`
	OnTimeout string `yaml:"on_timeout"`
}

// SayDigitsAction reads a variable back one digit at a time with the prompts
// digits/0 ... digits/9, digits/star and digits/hash.
type SayDigitsAction struct {
	// Var is the variable to read back.
	Var string `yaml:"var"`
	// Last4 reads only the last four digits. Required for a secret: the
	// caller hears only the part its mask shows.
	Last4 bool `yaml:"last4"`
}

// SetAction assigns a variable. Exactly one of Value, Copy, Last4 or Add.
type SetAction struct {
	// Var is the variable assigned.
	Var string `yaml:"var"`
	// Value is a literal value.
	Value *string `yaml:"value"`
	// Copy copies another variable; a copy of a secret is a secret.
	Copy string `yaml:"copy"`
	// Last4 takes the last four characters of another variable; the result
	// is not secret (it is what a secret's mask shows), e.g. card_last4.
	Last4 string `yaml:"last4"`
	// Add adds an integer to the variable (unset counts as 0): a counter
	// for retry loops.
	Add *int `yaml:"add"`
}

// SetDataAction attaches a participant data key/value to the interaction.
// Exactly one of Value or Var; a secret may never be attached.
type SetDataAction struct {
	Key   string  `yaml:"key"`
	Value *string `yaml:"value"`
	Var   string  `yaml:"var"`
}

// BranchAction routes on a variable's value: the first matching case wins,
// otherwise Else. Secrets cannot be branched on.
type BranchAction struct {
	Var   string       `yaml:"var"`
	Cases []BranchCase `yaml:"cases"`
	Else  string       `yaml:"else"`
}

// BranchCase is one test of a branch; exactly one operator is set.
type BranchCase struct {
	// Equals / NotEquals compare strings.
	Equals    *string `yaml:"equals"`
	NotEquals *string `yaml:"not_equals"`
	// In matches any of the listed strings.
	In []string `yaml:"in"`
	// Gte / Lte compare integers (an unset or non-numeric value never
	// matches).
	Gte *int `yaml:"gte"`
	Lte *int `yaml:"lte"`
	// IsSet matches when the variable has (true) or has not (false) a value.
	IsSet *bool `yaml:"is_set"`
	// Next is the step taken on a match.
	Next string `yaml:"next"`
}

// DataAction POSTs chosen variables as one JSON object and maps fields of the
// JSON response into variables.
type DataAction struct {
	// URL is the endpoint; or Endpoint names one configured on the Runner
	// (Runner.Endpoints) so flows stay independent of deployment.
	URL      string `yaml:"url"`
	Endpoint string `yaml:"endpoint"`
	// PaymentGateway marks the only kind of data action that may receive
	// secrets.
	PaymentGateway bool `yaml:"payment_gateway"`
	// Send maps a JSON request field to the variable that fills it.
	Send map[string]string `yaml:"send"`
	// Constants are literal JSON request fields.
	Constants map[string]string `yaml:"constants"`
	// Receive maps a JSON response field to the variable it is stored in
	// (strings, numbers and booleans; stored as text, not secret).
	Receive map[string]string `yaml:"receive"`
	// Timeout bounds the whole request (default 10s).
	Timeout Duration `yaml:"timeout"`
	// OnSuccess is taken on a 2xx response with a JSON object body.
	OnSuccess string `yaml:"on_success"`
	// OnFailure is taken on any other outcome. Required.
	OnFailure string `yaml:"on_failure"`
	// OnTimeout, when set, is taken instead of OnFailure on a timeout.
	OnTimeout string `yaml:"on_timeout"`
}

// SecureAction hands the caller to a secure flow. The current flow ends; the
// secure flow owns the rest of the call (for agent-referred flows the call
// side keeps the agent reserved).
type SecureAction struct {
	Flow string `yaml:"flow"`
}

// TransferAction transfers the caller to a SIP URI or "queue:NAME". The call
// side performs it (cloak stays in the path as a B2BUA leg).
type TransferAction struct {
	Target string `yaml:"target"`
	// OnFailure is taken when the transfer fails; without it a failed
	// transfer ends the run with an error.
	OnFailure string `yaml:"on_failure"`
}

// DisconnectAction hangs up.
type DisconnectAction struct {
	// Reason is recorded with the interaction (never a secret).
	Reason string `yaml:"reason"`
}

// ReturnToAgentAction re-bridges the caller to the agent reserved for them.
type ReturnToAgentAction struct {
	// OnNoAgent is taken when no agent is reserved or the agent has gone
	// (Call.ReturnToAgent returns ErrNoAgent). Required.
	OnNoAgent string `yaml:"on_no_agent"`
}

// Action returns the name of the step's action ("" if none, "multiple" if
// more than one is set).
func (s *Step) Action() string {
	names := s.actions()
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	default:
		return "multiple"
	}
}

func (s *Step) actions() []string {
	var a []string
	add := func(set bool, name string) {
		if set {
			a = append(a, name)
		}
	}
	add(s.Answer != nil, "answer")
	add(s.Play != nil, "play")
	add(s.Menu != nil, "menu")
	add(s.Collect != nil, "collect")
	add(s.SayDigits != nil, "say_digits")
	add(s.Set != nil, "set")
	add(s.SetData != nil, "set_data")
	add(s.Branch != nil, "branch")
	add(s.DataAction != nil, "data_action")
	add(s.Secure != nil, "secure")
	add(s.Transfer != nil, "transfer")
	add(s.Disconnect != nil, "disconnect")
	add(s.ReturnToAgent != nil, "return_to_agent")
	return a
}

// linear reports whether the step's action continues at Next.
func (s *Step) linear() bool {
	return s.Answer != nil || s.Play != nil || s.SayDigits != nil || s.Set != nil || s.SetData != nil
}

// ending reports whether the step's action ends the flow when it succeeds.
func (s *Step) ending() bool {
	return s.Secure != nil || s.Transfer != nil || s.Disconnect != nil || s.ReturnToAgent != nil
}

// edge is one labelled way out of a step.
type edge struct {
	label string // "next", "on_timeout", "choice 1", ...
	to    string
}

// edges lists the step's successors in a stable order; empty targets are
// included so the validator can name missing required branches.
func (s *Step) edges() []edge {
	var e []edge
	switch {
	case s.linear():
		e = append(e, edge{"next", s.Next})
	case s.Menu != nil:
		m := s.Menu
		keys := make([]string, 0, len(m.Choices))
		for k := range m.Choices {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e = append(e, edge{"choice " + k, m.Choices[k]})
		}
		e = append(e, edge{"default", m.Default}, edge{"on_invalid", m.OnInvalid}, edge{"on_timeout", m.OnTimeout})
	case s.Collect != nil:
		c := s.Collect
		e = append(e, edge{"on_valid", c.OnValid}, edge{"on_invalid", c.OnInvalid}, edge{"on_timeout", c.OnTimeout})
	case s.Branch != nil:
		for i, c := range s.Branch.Cases {
			e = append(e, edge{fmt.Sprintf("case %d", i+1), c.Next})
		}
		e = append(e, edge{"else", s.Branch.Else})
	case s.DataAction != nil:
		d := s.DataAction
		e = append(e, edge{"on_success", d.OnSuccess}, edge{"on_failure", d.OnFailure}, edge{"on_timeout", d.OnTimeout})
	case s.Transfer != nil:
		e = append(e, edge{"on_failure", s.Transfer.OnFailure})
	case s.ReturnToAgent != nil:
		e = append(e, edge{"on_no_agent", s.ReturnToAgent.OnNoAgent})
	}
	return e
}

// step returns the named step, or nil.
func (f *Flow) step(name string) *Step {
	if f.index == nil {
		f.reindex()
	}
	i, ok := f.index[name]
	if !ok {
		return nil
	}
	return &f.Steps[i]
}

func (f *Flow) reindex() {
	f.index = make(map[string]int, len(f.Steps))
	for i := range f.Steps {
		if _, dup := f.index[f.Steps[i].Name]; !dup {
			f.index[f.Steps[i].Name] = i
		}
	}
}

// secureFlow reports whether every collected variable is secret.
func (f *Flow) secureFlow() bool { return f.Kind.Secure() }
