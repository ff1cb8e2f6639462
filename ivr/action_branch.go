package ivr

import (
	"context"
	"fmt"
	"strconv"
)

func init() { register("branch", func() Action { return &BranchAction{} }) }

// BranchAction routes on a variable's value: the first matching case wins,
// otherwise Else. Secrets cannot be branched on.
type BranchAction struct {
	noPrompts `yaml:"-"`
	noVars    `yaml:"-"`
	Var       string       `yaml:"var"`
	Cases     []BranchCase `yaml:"cases"`
	Else      string       `yaml:"else"`
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

// Name implements Action.
func (*BranchAction) Name() string { return "branch" }

func (*BranchAction) linear() bool { return false }
func (*BranchAction) ends() bool   { return false }

func (a *BranchAction) edges() []edge {
	e := make([]edge, 0, len(a.Cases)+1)
	for i, c := range a.Cases {
		e = append(e, edge{fmt.Sprintf("case %d", i+1), c.Next})
	}
	return append(e, edge{"else", a.Else})
}

func (a *BranchAction) check(c *stepCheck) {
	if a.Var == "" {
		c.errf("branch has no var")
	}
	c.uses(a.Var, "branch")
	if c.secrets[a.Var] {
		c.errf("secret %q may not be branched on (the path taken would reveal it)", a.Var)
	}
	if len(a.Cases) == 0 {
		c.errf("branch has no cases")
	}
	for i, bc := range a.Cases {
		if bc.ops() != 1 {
			c.errf("branch case %d needs exactly one of equals, not_equals, in, gte, lte, is_set", i+1)
		}
		if bc.Next == "" {
			c.errf("branch case %d has no next", i+1)
		}
	}
	c.required(a.Else, "else")
}

func (a *BranchAction) run(_ context.Context, x *exec) (outcome, error) {
	if _, isSecret := x.sc.secrets[a.Var]; isSecret {
		return outcome{}, fmt.Errorf("branch on %q: %w", a.Var, ErrSecretSink)
	}
	v, isSet := x.sc.plain[a.Var]
	for i := range a.Cases {
		if a.Cases[i].match(v, isSet) {
			x.trace("case "+strconv.Itoa(i+1), "")
			return outcome{next: a.Cases[i].Next}, nil
		}
	}
	x.trace("else", "")
	return outcome{next: a.Else}, nil
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

func (bc *BranchCase) match(v string, isSet bool) bool {
	switch {
	case bc.IsSet != nil:
		return *bc.IsSet == isSet
	case !isSet:
		return bc.NotEquals != nil
	case bc.Equals != nil:
		return v == *bc.Equals
	case bc.NotEquals != nil:
		return v != *bc.NotEquals
	case bc.In != nil:
		for _, x := range bc.In {
			if v == x {
				return true
			}
		}
		return false
	case bc.Gte != nil || bc.Lte != nil:
		n, err := strconv.Atoi(v)
		if err != nil {
			return false
		}
		if bc.Gte != nil {
			return n >= *bc.Gte
		}
		return n <= *bc.Lte
	}
	return false
}
