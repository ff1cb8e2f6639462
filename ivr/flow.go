package ivr

import (
	"context"
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
//
// In a flow file a step is a mapping with name, next (for linear actions)
// and exactly one action key (play:, collect:, ...) whose value is decoded
// into that action's type.
type Step struct {
	// Name is the step's name, unique within the flow.
	Name string
	// Next is the step that follows a linear action.
	Next string
	// Action is what the step does; nil only in a flow built in code
	// (Validate reports it).
	Action Action
}

// Action is one kind of step action: one type per action, each in its own
// file (action_play.go, action_collect.go, ...), registered under its key
// in flow files by register. The interface is sealed (unexported methods):
// the interpreter, the validator and the graph checks are written against
// it, so adding an action touches one file plus its test.
type Action interface {
	// Name is the action's key in a flow file ("play", "collect", ...).
	Name() string
	// linear reports whether the action continues at Step.Next.
	linear() bool
	// ends reports whether the action ends the flow when it succeeds.
	ends() bool
	// edges lists the action's own ways out (branches) in a stable order;
	// empty targets are included so the validator can name missing
	// required branches. Linear actions have none: Step.Next is theirs.
	edges() []edge
	// prompts lists the prompt names the action may play.
	prompts() []string
	// declare tells the validator which variables the action assigns and
	// which of them are secret (see vars).
	declare(v *vars)
	// check reports the action's own problems through c, which names the
	// file and step.
	check(c *stepCheck)
	// run executes the action against the call.
	run(ctx context.Context, x *exec) (outcome, error)
}

// actionTypes maps a flow file's action key to a constructor of its type.
// Filled by register from each action file's init, read-only afterwards.
var actionTypes = map[string]func() Action{}

// register makes an action type decodable under key. Called only from init.
func register(key string, mk func() Action) {
	if _, dup := actionTypes[key]; dup {
		panic("ivr: action " + key + " registered twice")
	}
	actionTypes[key] = mk
}

// actionKeys lists the registered action keys, sorted.
func actionKeys() []string {
	keys := make([]string, 0, len(actionTypes))
	for k := range actionTypes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// linearAction is embedded by actions that continue at Step.Next.
type linearAction struct{}

func (linearAction) linear() bool  { return true }
func (linearAction) ends() bool    { return false }
func (linearAction) edges() []edge { return nil }

// noPrompts is embedded by actions that play nothing.
type noPrompts struct{}

func (noPrompts) prompts() []string { return nil }

// noVars is embedded by actions that assign no variable.
type noVars struct{}

func (noVars) declare(*vars) {}

// ActionName returns the key of the step's action, "" when it has none.
func (s *Step) ActionName() string {
	if s.Action == nil {
		return ""
	}
	return s.Action.Name()
}

// linear reports whether the step's action continues at Next.
func (s *Step) linear() bool { return s.Action != nil && s.Action.linear() }

// ending reports whether the step's action ends the flow when it succeeds.
func (s *Step) ending() bool { return s.Action != nil && s.Action.ends() }

// edge is one labelled way out of a step.
type edge struct {
	label string // "next", "on_timeout", "choice 1", ...
	to    string
}

// edges lists the step's successors in a stable order; empty targets are
// included so the validator can name missing required branches.
func (s *Step) edges() []edge {
	switch {
	case s.Action == nil:
		return nil
	case s.Action.linear():
		return []edge{{"next", s.Next}}
	}
	return s.Action.edges()
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
