package ivr

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

func init() { register("set", func() Action { return &SetAction{} }) }

// ErrNotNumber: set add found a variable that does not hold an integer.
var ErrNotNumber = errors.New("variable is not a number")

// SetAction assigns a variable. Exactly one of Value, Copy, Last4 or Add.
type SetAction struct {
	linearAction `yaml:"-"`
	noPrompts    `yaml:"-"`
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

// Name implements Action.
func (*SetAction) Name() string { return "set" }

func (a *SetAction) declare(v *vars) {
	v.assign(a.Var, false)
	if a.Copy != "" {
		v.copy(a.Var, a.Copy)
	}
}

func (a *SetAction) check(c *stepCheck) {
	if a.Var == "" {
		c.errf("set has no var")
	}
	n := 0
	for _, set := range []bool{a.Value != nil, a.Copy != "", a.Last4 != "", a.Add != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.errf("set needs exactly one of value, copy, last4, add")
	}
	c.uses(a.Copy, "set copy")
	c.uses(a.Last4, "set last4")
	if a.Add != nil && c.secrets[a.Var] {
		c.errf("set add on secret %q", a.Var)
	}
}

func (a *SetAction) run(_ context.Context, x *exec) (outcome, error) {
	sc := x.sc
	switch {
	case a.Value != nil:
		sc.setPlain(a.Var, *a.Value)
		x.trace("next", a.Var+" = literal")
	case a.Copy != "":
		if sec, ok := sc.secrets[a.Copy]; ok {
			sc.setSecret(a.Var, sec.clone())
			x.trace("next", a.Var+" = copy of secret "+a.Copy)
			break
		}
		v, ok := sc.plain[a.Copy]
		if !ok {
			return outcome{}, fmt.Errorf("copy %q: %w", a.Copy, ErrUnsetVariable)
		}
		sc.setPlain(a.Var, v)
		x.trace("next", a.Var+" = copy of "+a.Copy)
	case a.Last4 != "":
		if sec, ok := sc.secrets[a.Last4]; ok {
			sc.setPlain(a.Var, sec.last4())
		} else {
			v, ok := sc.plain[a.Last4]
			if !ok {
				return outcome{}, fmt.Errorf("last4 of %q: %w", a.Last4, ErrUnsetVariable)
			}
			if len(v) > 4 {
				v = v[len(v)-4:]
			}
			sc.setPlain(a.Var, v)
		}
		x.trace("next", a.Var+" = last4 of "+a.Last4)
	case a.Add != nil:
		if _, isSecret := sc.secrets[a.Var]; isSecret {
			return outcome{}, fmt.Errorf("add to %q: %w", a.Var, ErrSecretSink)
		}
		n := 0
		if v, ok := sc.plain[a.Var]; ok {
			var err error
			if n, err = strconv.Atoi(v); err != nil {
				return outcome{}, fmt.Errorf("add to %q: %w", a.Var, ErrNotNumber)
			}
		}
		n += *a.Add
		sc.setPlain(a.Var, strconv.Itoa(n))
		x.trace("next", a.Var+" = "+strconv.Itoa(n))
	default:
		return outcome{}, fmt.Errorf("set %q has no value: %w", a.Var, ErrInvalidFlow)
	}
	return x.next(), nil
}
