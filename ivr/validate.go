package ivr

import (
	"fmt"
	"net/url"
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

// variables works out which variables the flow assigns and which of them
// hold secrets: collected in a secure flow or with secret: true, or copied
// from a secret (to a fixed point, since copies may chain).
func variables(f *Flow) (secrets, assigned map[string]bool) {
	secrets, assigned = map[string]bool{}, map[string]bool{}
	for i := range f.Steps {
		s := &f.Steps[i]
		switch {
		case s.Collect != nil:
			assigned[s.Collect.Into] = true
			if f.secureFlow() || s.Collect.Secret {
				secrets[s.Collect.Into] = true
			}
		case s.Set != nil:
			assigned[s.Set.Var] = true
		case s.DataAction != nil:
			for _, v := range s.DataAction.Receive {
				assigned[v] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for i := range f.Steps {
			s := &f.Steps[i]
			if s.Set != nil && s.Set.Copy != "" && secrets[s.Set.Copy] && !secrets[s.Set.Var] {
				secrets[s.Set.Var] = true
				changed = true
			}
		}
	}
	return secrets, assigned
}

func validKey(k string) bool {
	return len(k) == 1 && strings.ContainsAny(k, "0123456789*#")
}

func (c *checker) checkStep(s *Step, secrets, assigned map[string]bool, byName map[string]*Flow) {
	acts := s.actions()
	switch len(acts) {
	case 0:
		c.stepf(s, "step has no action")
		return
	case 1:
	default:
		c.stepf(s, "step has more than one action (%s); use one step per action", strings.Join(acts, ", "))
		return
	}
	act := acts[0]
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
	uses := func(v, what string) {
		if v != "" && !assigned[v] {
			c.stepf(s, "%s variable %q is never set in this flow", what, v)
		}
	}
	required := func(target, branch string) {
		if target == "" {
			c.stepf(s, "%s has no %s branch", act, branch)
		}
	}
	positive := func(d Duration, field string) {
		if d < 0 {
			c.stepf(s, "%s must not be negative", field)
		}
	}

	switch {
	case s.Play != nil:
		if len(s.Play.Prompts) == 0 {
			c.stepf(s, "play has no prompts")
		}
	case s.Menu != nil:
		m := s.Menu
		if len(m.Choices) == 0 {
			c.stepf(s, "menu has no choices")
		}
		keys := make([]string, 0, len(m.Choices))
		for k := range m.Choices {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !validKey(k) {
				c.stepf(s, "menu choice %q is not a single key 0-9, * or #", k)
			}
		}
		required(m.OnTimeout, "on_timeout")
		if m.Default == "" {
			required(m.OnInvalid, "on_invalid")
		}
		if m.Attempts < 0 {
			c.stepf(s, "attempts must not be negative")
		}
		positive(m.Timeout, "timeout")
	case s.Collect != nil:
		cl := s.Collect
		if cl.Into == "" {
			c.stepf(s, "collect has no into variable")
		}
		min, max := cl.limits()
		if cl.Min < 0 || cl.Max < 0 || min > max {
			c.stepf(s, "collect min %d / max %d are not a valid range", cl.Min, cl.Max)
		}
		switch cl.Validate {
		case "", ValidateLength, ValidateLuhn:
		case ValidateExpiryMMYY:
			if min > 4 || max < 4 {
				c.stepf(s, "expiry_mmyy needs exactly 4 digits but min/max are %d/%d", min, max)
			}
		default:
			c.stepf(s, "unknown validate %q (want length, luhn or expiry_mmyy)", cl.Validate)
		}
		switch cl.Terminator {
		case "", "#", "*", "none":
		default:
			c.stepf(s, "terminator %q must be \"#\", \"*\" or \"none\"", cl.Terminator)
		}
		if cl.Attempts < 0 {
			c.stepf(s, "attempts must not be negative")
		}
		positive(cl.FirstTimeout, "first_timeout")
		positive(cl.InterDigitTimeout, "inter_digit_timeout")
		required(cl.OnValid, "on_valid")
		required(cl.OnInvalid, "on_invalid")
		required(cl.OnTimeout, "on_timeout")
	case s.SayDigits != nil:
		if s.SayDigits.Var == "" {
			c.stepf(s, "say_digits has no var")
		}
		uses(s.SayDigits.Var, "say_digits")
		if secrets[s.SayDigits.Var] && !s.SayDigits.Last4 {
			c.stepf(s, "secret %q would be read back in full; say_digits of a secret needs last4: true", s.SayDigits.Var)
		}
	case s.Set != nil:
		st := s.Set
		if st.Var == "" {
			c.stepf(s, "set has no var")
		}
		n := 0
		for _, set := range []bool{st.Value != nil, st.Copy != "", st.Last4 != "", st.Add != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			c.stepf(s, "set needs exactly one of value, copy, last4, add")
		}
		uses(st.Copy, "set copy")
		uses(st.Last4, "set last4")
		if st.Add != nil && secrets[st.Var] {
			c.stepf(s, "set add on secret %q", st.Var)
		}
	case s.SetData != nil:
		sd := s.SetData
		if sd.Key == "" {
			c.stepf(s, "set_data has no key")
		}
		if (sd.Value != nil) == (sd.Var != "") {
			c.stepf(s, "set_data needs exactly one of value or var")
		}
		uses(sd.Var, "set_data")
		if secrets[sd.Var] {
			c.stepf(s, "secret %q may not reach set_data (participant data is not a secure sink)", sd.Var)
		}
	case s.Branch != nil:
		b := s.Branch
		if b.Var == "" {
			c.stepf(s, "branch has no var")
		}
		uses(b.Var, "branch")
		if secrets[b.Var] {
			c.stepf(s, "secret %q may not be branched on (the path taken would reveal it)", b.Var)
		}
		if len(b.Cases) == 0 {
			c.stepf(s, "branch has no cases")
		}
		for i, bc := range b.Cases {
			if bc.ops() != 1 {
				c.stepf(s, "branch case %d needs exactly one of equals, not_equals, in, gte, lte, is_set", i+1)
			}
			if bc.Next == "" {
				c.stepf(s, "branch case %d has no next", i+1)
			}
		}
		required(b.Else, "else")
	case s.DataAction != nil:
		d := s.DataAction
		if (d.URL == "") == (d.Endpoint == "") {
			c.stepf(s, "data_action needs exactly one of url or endpoint")
		}
		if d.URL != "" {
			if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.stepf(s, "data_action url %q is not an http(s) URL", d.URL)
			}
		}
		fields := sortedKeys(d.Send)
		for _, field := range fields {
			v := d.Send[field]
			uses(v, "data_action send")
			if secrets[v] && !d.PaymentGateway {
				c.stepf(s, "secret %q may not be sent by a data_action not marked payment_gateway", v)
			}
			if _, dup := d.Constants[field]; dup {
				c.stepf(s, "data_action field %q is in both send and constants", field)
			}
		}
		for _, field := range sortedKeys(d.Receive) {
			if d.Receive[field] == "" {
				c.stepf(s, "data_action receive field %q has no variable", field)
			}
		}
		positive(d.Timeout, "timeout")
		required(d.OnSuccess, "on_success")
		required(d.OnFailure, "on_failure")
	case s.Secure != nil:
		if c.f.Kind.Secure() {
			c.stepf(s, "a secure flow cannot hand over to another secure flow")
		}
		t, ok := byName[s.Secure.Flow]
		switch {
		case s.Secure.Flow == "":
			c.stepf(s, "secure has no flow")
		case !ok:
			c.stepf(s, "secure flow %q does not exist", s.Secure.Flow)
		case !t.Kind.Secure():
			c.stepf(s, "secure flow %q is of kind %s, not ivr-only or agent-referred", s.Secure.Flow, t.Kind)
		}
	case s.Transfer != nil:
		t := s.Transfer.Target
		if !strings.HasPrefix(t, "queue:") && !strings.HasPrefix(t, "sip:") && !strings.HasPrefix(t, "sips:") && !strings.HasPrefix(t, "tel:") ||
			strings.HasSuffix(t, ":") {
			c.stepf(s, "transfer target %q must be queue:NAME or a sip:, sips: or tel: URI", t)
		}
	case s.ReturnToAgent != nil:
		if c.f.Kind == KindIVROnly {
			c.stepf(s, "return_to_agent in an ivr-only flow (no agent is reserved; end in transfer or disconnect)")
		}
		if s.ReturnToAgent.OnNoAgent == "" {
			c.stepf(s, "return_to_agent has no on_no_agent fallback for when the reserved agent has gone")
		}
	}
}

func (bc *BranchCase) ops() int {
	n := 0
	for _, set := range []bool{bc.Equals != nil, bc.NotEquals != nil, bc.In != nil, bc.Gte != nil, bc.Lte != nil, bc.IsSet != nil} {
		if set {
			n++
		}
	}
	return n
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
		case !canEnd[s] && entry[s] && !broken && s.Action() != "" && s.Action() != "multiple":
			c.stepf(s, "no path from this step ever ends (a loop with no way out, or a dead end); every path must reach transfer, disconnect, return_to_agent or secure")
		}
	}
}
