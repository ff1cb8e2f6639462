package ivr

import (
	"fmt"
	"sort"
	"strings"
)

// Validate checks flows as one set and returns every problem found (nil when
// all is well). Per flow: a name and a known kind; every step named once
// with exactly one action; every next/branch naming an existing step; the
// branches a menu, collect, data_action, branch and return_to_agent need;
// every step reachable from the first; from every step some path reaching a
// step that ends the flow (a loop needs a way out); variables set before
// use; secrets never reaching set_data, a branch, an output, a data_action
// not marked payment_gateway, or say_digits beyond their last four. Secure
// kinds: no return_to_agent in ivr-only; no secure hand-over from a secure
// flow. Across flows: unique names, secure steps naming an existing secure
// flow.
func Validate(flows ...*Flow) []Problem {
	var probs []Problem
	byName := map[string]*Flow{}
	for _, f := range flows {
		if f.Name == "" {
			continue
		}
		if other, dup := byName[f.Name]; dup {
			probs = append(probs, Problem{File: f.File, Flow: f.Name,
				Msg: fmt.Sprintf("flow name %q is also used by %s", f.Name, other.File)})
			continue
		}
		byName[f.Name] = f
	}
	for _, f := range flows {
		probs = append(probs, validateFlow(f, byName)...)
	}
	return probs
}

type checker struct {
	f     *Flow
	probs []Problem
}

func (c *checker) flowf(format string, a ...any) {
	c.probs = append(c.probs, Problem{File: c.f.File, Flow: c.f.Name, Msg: fmt.Sprintf(format, a...)})
}

func (c *checker) stepf(s *Step, format string, a ...any) {
	c.probs = append(c.probs, Problem{File: c.f.File, Flow: c.f.Name, Step: s.Name, Msg: fmt.Sprintf(format, a...)})
}

func validateFlow(f *Flow, byName map[string]*Flow) []Problem {
	c := &checker{f: f}
	if f.Name == "" {
		c.flowf("flow has no name")
	}
	if !f.Kind.Valid() {
		c.flowf("unknown kind %q (want normal, ivr-only or agent-referred)", f.Kind)
	}
	if len(f.Steps) == 0 {
		c.flowf("flow has no steps")
		return c.probs
	}
	f.reindex()
	seen := map[string]bool{}
	for i := range f.Steps {
		s := &f.Steps[i]
		if s.Name == "" {
			c.probs = append(c.probs, Problem{File: f.File, Flow: f.Name, Msg: fmt.Sprintf("step %d has no name", i+1)})
			continue
		}
		if seen[s.Name] {
			c.stepf(s, "step name used more than once")
		}
		seen[s.Name] = true
	}

	secrets, assigned := variables(f)
	for i := range f.Steps {
		s := &f.Steps[i]
		if s.Name == "" {
			continue
		}
		c.checkStep(s, secrets, assigned, byName)
	}
	for _, o := range f.Outputs {
		switch {
		case !assigned[o]:
			c.flowf("output %q is never set in this flow", o)
		case secrets[o]:
			c.flowf("output %q is a secret; secrets are never copied out (use set with last4 for a masked value)", o)
		}
	}
	c.checkGraph()
	return c.probs
}

// vars collects what the flow's actions declare: the variables assigned,
// which of them hold secrets (collected in a secure flow or with secret:
// true), and copies, so a copy of a secret is a secret too.
type vars struct {
	// secure is true in a secure flow, where every collected value is secret.
	secure   bool
	assigned map[string]bool
	secrets  map[string]bool
	copies   [][2]string // {to, from}
}

// assign records that the flow sets name, as a secret when secret is true.
func (v *vars) assign(name string, secret bool) {
	v.assigned[name] = true
	if secret {
		v.secrets[name] = true
	}
}

// copy records that to receives a copy of from.
func (v *vars) copy(to, from string) { v.copies = append(v.copies, [2]string{to, from}) }

// variables works out which variables the flow assigns and which of them
// hold secrets, following copies to a fixed point since they may chain.
func variables(f *Flow) (secrets, assigned map[string]bool) {
	v := &vars{secure: f.secureFlow(), assigned: map[string]bool{}, secrets: map[string]bool{}}
	for i := range f.Steps {
		if a := f.Steps[i].Action; a != nil {
			a.declare(v)
		}
	}
	for changed := true; changed; {
		changed = false
		for _, c := range v.copies {
			if v.secrets[c[1]] && !v.secrets[c[0]] {
				v.secrets[c[0]] = true
				changed = true
			}
		}
	}
	return v.secrets, v.assigned
}

func validKey(k string) bool {
	return len(k) == 1 && strings.ContainsAny(k, "0123456789*#")
}

// stepCheck is what an action's check sees: the step, the flow's variables
// and the set's flows. Its problems name the file and the step.
type stepCheck struct {
	*checker
	s                 *Step
	secrets, assigned map[string]bool
	byName            map[string]*Flow
}

// flow is the flow being checked.
func (c *stepCheck) flow() *Flow { return c.f }

// errf reports a problem of the step.
func (c *stepCheck) errf(format string, a ...any) { c.stepf(c.s, format, a...) }

// uses reports v (when set) if no step of the flow assigns it.
func (c *stepCheck) uses(v, what string) {
	if v != "" && !c.assigned[v] {
		c.errf("%s variable %q is never set in this flow", what, v)
	}
}

// required reports a missing required branch.
func (c *stepCheck) required(target, branch string) {
	if target == "" {
		c.errf("%s has no %s branch", c.s.ActionName(), branch)
	}
}

// duration reports a duration field that is negative or over MaxWait.
func (c *stepCheck) duration(d Duration, field string) {
	switch {
	case d < 0:
		c.errf("%s must not be negative", field)
	case d.Std() > MaxWait:
		c.errf("%s %v is longer than %v", field, d.Std(), MaxWait)
	}
}

// attempts reports an attempts field that is negative or over MaxAttempts.
func (c *stepCheck) attempts(n int) {
	switch {
	case n < 0:
		c.errf("attempts must not be negative")
	case n > MaxAttempts:
		c.errf("attempts %d is more than %d", n, MaxAttempts)
	}
}

func (c *checker) checkStep(s *Step, secrets, assigned map[string]bool, byName map[string]*Flow) {
	if s.Action == nil {
		c.stepf(s, "step has no action (want one of %s)", strings.Join(actionKeys(), ", "))
		return
	}
	act := s.Action.Name()
	if s.linear() && s.Next == "" {
		c.stepf(s, "%s needs a next step", act)
	}
	if !s.linear() && s.Next != "" {
		c.stepf(s, "next is not used by %s (it has its own branches or ends the flow)", act)
	}
	for _, e := range s.edges() {
		if e.to != "" && c.f.step(e.to) == nil {
			c.stepf(s, "%s %q does not exist", e.label, e.to)
		}
	}
	s.Action.check(&stepCheck{checker: c, s: s, secrets: secrets, assigned: assigned, byName: byName})
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkGraph reports steps unreachable from the first step, and reachable
// steps from which no path reaches an ending step (a loop with no way out).
// Only the entry into such a region is reported, not every step inside it.
func (c *checker) checkGraph() {
	f := c.f
	succ := func(s *Step) []*Step {
		var out []*Step
		for _, e := range s.edges() {
			if t := f.step(e.to); e.to != "" && t != nil {
				out = append(out, t)
			}
		}
		return out
	}
	reach := map[*Step]bool{}
	stack := []*Step{&f.Steps[0]}
	reach[&f.Steps[0]] = true
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, t := range succ(s) {
			if !reach[t] {
				reach[t] = true
				stack = append(stack, t)
			}
		}
	}
	// canEnd: steps from which an ending step is reachable (fixed point).
	canEnd := map[*Step]bool{}
	for changed := true; changed; {
		changed = false
		for i := range f.Steps {
			s := &f.Steps[i]
			if canEnd[s] {
				continue
			}
			ok := s.ending()
			for _, t := range succ(s) {
				ok = ok || canEnd[t]
			}
			if ok {
				canEnd[s] = true
				changed = true
			}
		}
	}
	entry := map[*Step]bool{&f.Steps[0]: true}
	for i := range f.Steps {
		s := &f.Steps[i]
		if !reach[s] || !canEnd[s] {
			continue
		}
		for _, t := range succ(s) {
			entry[t] = true
		}
	}
	// A dead end already reported as a missing next or branch target is the
	// cause of its region never ending; do not report it twice.
	broken := false
	for i := range f.Steps {
		s := &f.Steps[i]
		if !reach[s] || canEnd[s] {
			continue
		}
		if s.linear() && s.Next == "" {
			broken = true
		}
		for _, e := range s.edges() {
			if e.to != "" && f.step(e.to) == nil {
				broken = true
			}
		}
	}
	for i := range f.Steps {
		s := &f.Steps[i]
		if s.Name == "" || f.step(s.Name) != s {
			continue // unnamed or duplicate: reported already
		}
		switch {
		case !reach[s]:
			c.stepf(s, "step cannot be reached from the first step %q", f.Steps[0].Name)
		case !canEnd[s] && entry[s] && !broken && s.Action != nil:
			c.stepf(s, "no path from this step ever ends (a loop with no way out, or a dead end); every path must reach transfer, disconnect, return_to_agent or secure")
		}
	}
}
