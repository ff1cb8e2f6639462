package ivr

import (
	"context"
	"fmt"
)

func init() { register("secure", func() Action { return &SecureAction{} }) }

// SecureAction hands the caller to a secure flow. The current flow ends; the
// secure flow owns the rest of the call (for agent-referred flows the call
// side keeps the agent reserved).
type SecureAction struct {
	noPrompts `yaml:"-"`
	noVars    `yaml:"-"`
	Flow      string `yaml:"flow"`
}

// Name implements Action.
func (*SecureAction) Name() string { return "secure" }

func (*SecureAction) linear() bool  { return false }
func (*SecureAction) ends() bool    { return true }
func (*SecureAction) edges() []edge { return nil }

func (a *SecureAction) check(c *stepCheck) {
	if c.flow().Kind.Secure() {
		c.errf("a secure flow cannot hand over to another secure flow")
	}
	t, ok := c.byName[a.Flow]
	switch {
	case a.Flow == "":
		c.errf("secure has no flow")
	case !ok:
		c.errf("secure flow %q does not exist", a.Flow)
	case !t.Kind.Secure():
		c.errf("secure flow %q is of kind %s, not ivr-only or agent-referred", a.Flow, t.Kind)
	}
}

func (a *SecureAction) run(_ context.Context, x *exec) (outcome, error) {
	if x.f.Kind.Secure() {
		return outcome{}, ErrNestedSecure
	}
	target, ok := x.st.r.Flows.Flow(a.Flow)
	if !ok || !target.Kind.Secure() {
		return outcome{}, fmt.Errorf("secure flow %q: %w", a.Flow, ErrUnknownFlow)
	}
	x.trace("handover", "to "+target.Name+" ("+string(target.Kind)+")")
	return outcome{handover: target}, nil
}
