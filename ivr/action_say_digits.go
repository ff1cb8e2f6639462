package ivr

import (
	"context"
	"fmt"
	"strconv"
)

func init() { register("say_digits", func() Action { return &SayDigitsAction{} }) }

// SayDigitsAction reads a variable back one digit at a time with the prompts
// digits/0 ... digits/9, digits/star and digits/hash.
type SayDigitsAction struct {
	linearAction `yaml:"-"`
	noVars       `yaml:"-"`
	// Var is the variable to read back.
	Var string `yaml:"var"`
	// Last4 reads only the last four digits. Required for a secret: the
	// caller hears only the part its mask shows.
	Last4 bool `yaml:"last4"`
}

// Name implements Action.
func (*SayDigitsAction) Name() string { return "say_digits" }

func (*SayDigitsAction) prompts() []string {
	out := make([]string, 0, 12)
	for _, d := range []byte("0123456789*#") {
		out = append(out, digitPrompt(d))
	}
	return out
}

func (a *SayDigitsAction) check(c *stepCheck) {
	if a.Var == "" {
		c.errf("say_digits has no var")
	}
	c.uses(a.Var, "say_digits")
	if c.secrets[a.Var] && !a.Last4 {
		c.errf("secret %q would be read back in full; say_digits of a secret needs last4: true", a.Var)
	}
}

// digitPrompt names the prompt that speaks one key.
func digitPrompt(d byte) string {
	switch {
	case d >= '0' && d <= '9':
		return "digits/" + string(d)
	case d == '*':
		return "digits/star"
	case d == '#':
		return "digits/hash"
	}
	return ""
}

func (a *SayDigitsAction) run(ctx context.Context, x *exec) (outcome, error) {
	var say string
	if sec, ok := x.sc.secrets[a.Var]; ok {
		if !a.Last4 {
			return outcome{}, fmt.Errorf("say_digits of %q in full: %w", a.Var, ErrSecretSink)
		}
		say = sec.last4()
	} else {
		v, ok := x.sc.plain[a.Var]
		if !ok {
			return outcome{}, fmt.Errorf("%q: %w", a.Var, ErrUnsetVariable)
		}
		if a.Last4 && len(v) > 4 {
			v = v[len(v)-4:]
		}
		say = v
	}
	prompts := make([]string, 0, len(say))
	for i := 0; i < len(say); i++ {
		if p := digitPrompt(say[i]); p != "" {
			prompts = append(prompts, p)
		}
	}
	if len(prompts) > 0 {
		if err := x.st.call.Play(ctx, false, prompts...); err != nil {
			return outcome{}, err
		}
	}
	x.trace("next", strconv.Itoa(len(prompts))+" digit(s) of "+a.Var)
	return x.next(), nil
}
