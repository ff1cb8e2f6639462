package ivr

import (
	"context"
	"fmt"
)

func init() { register("set_data", func() Action { return &SetDataAction{} }) }

// SetDataAction attaches a participant data key/value to the interaction.
// Exactly one of Value or Var; a secret may never be attached.
type SetDataAction struct {
	linearAction `yaml:"-"`
	noPrompts    `yaml:"-"`
	noVars       `yaml:"-"`
	Key          string  `yaml:"key"`
	Value        *string `yaml:"value"`
	Var          string  `yaml:"var"`
}

// Name implements Action.
func (*SetDataAction) Name() string { return "set_data" }

func (a *SetDataAction) check(c *stepCheck) {
	if a.Key == "" {
		c.errf("set_data has no key")
	}
	if (a.Value != nil) == (a.Var != "") {
		c.errf("set_data needs exactly one of value or var")
	}
	c.uses(a.Var, "set_data")
	if c.secrets[a.Var] {
		c.errf("secret %q may not reach set_data (participant data is not a secure sink)", a.Var)
	}
}

func (a *SetDataAction) run(_ context.Context, x *exec) (outcome, error) {
	v := ""
	if a.Value != nil {
		v = *a.Value
	} else {
		if _, isSecret := x.sc.secrets[a.Var]; isSecret {
			return outcome{}, fmt.Errorf("set_data %q from %q: %w", a.Key, a.Var, ErrSecretSink)
		}
		pv, ok := x.sc.plain[a.Var]
		if !ok {
			return outcome{}, fmt.Errorf("%q: %w", a.Var, ErrUnsetVariable)
		}
		v = pv
	}
	x.st.call.SetData(a.Key, v)
	x.trace("next", "key "+a.Key)
	return x.next(), nil
}
