package ivr

import (
	"context"
	"errors"
	"strconv"
)

func init() { register("collect", func() Action { return &CollectAction{} }) }

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

// Name implements Action.
func (*CollectAction) Name() string { return "collect" }

func (*CollectAction) linear() bool { return false }
func (*CollectAction) ends() bool   { return false }

func (c *CollectAction) prompts() []string { return concat(c.Prompt, c.RetryPrompt) }

func (c *CollectAction) edges() []edge {
	return []edge{{"on_valid", c.OnValid}, {"on_invalid", c.OnInvalid}, {"on_timeout", c.OnTimeout}}
}

func (c *CollectAction) declare(v *vars) { v.assign(c.Into, v.secure || c.Secret) }

func (c *CollectAction) check(x *stepCheck) {
	if c.Into == "" {
		x.errf("collect has no into variable")
	}
	min, max := c.limits()
	if c.Min < 0 || c.Max < 0 || min > max {
		x.errf("collect min %d / max %d are not a valid range", c.Min, c.Max)
	}
	switch c.Validate {
	case "", ValidateLength, ValidateLuhn:
	case ValidateExpiryMMYY:
		if min > 4 || max < 4 {
			x.errf("expiry_mmyy needs exactly 4 digits but min/max are %d/%d", min, max)
		}
	default:
		x.errf("unknown validate %q (want length, luhn or expiry_mmyy)", c.Validate)
	}
	switch c.Terminator {
	case "", "#", "*", "none":
	default:
		x.errf("terminator %q must be \"#\", \"*\" or \"none\"", c.Terminator)
	}
	if c.Attempts < 0 {
		x.errf("attempts must not be negative")
	}
	x.nonNegative(c.FirstTimeout, "first_timeout")
	x.nonNegative(c.InterDigitTimeout, "inter_digit_timeout")
	x.required(c.OnValid, "on_valid")
	x.required(c.OnInvalid, "on_invalid")
	x.required(c.OnTimeout, "on_timeout")
}

// limits returns the effective min and max digit counts.
func (c *CollectAction) limits() (min, max int) {
	min, max = c.Min, c.Max
	if min == 0 {
		min = 1
	}
	if max == 0 {
		max = DefaultCollectMax
		if c.Validate == ValidateExpiryMMYY {
			max = 4
		}
		if max < min {
			max = min
		}
	}
	return min, max
}

func (c *CollectAction) terminator() byte {
	switch c.Terminator {
	case "":
		return '#'
	case "none":
		return 0
	}
	return c.Terminator[0]
}

// run reads digits into a variable, validating them; see CollectAction.
// Digits live in one buffer that is zeroed after every attempt; only a valid
// value is kept, as a secret when the flow is secure or the step says so.
// Queued keys are flushed before every attempt, so sensitive input starts
// clean. Traces carry counts, never digits.
func (c *CollectAction) run(ctx context.Context, x *exec) (outcome, error) {
	st, f, sc := x.st, x.f, x.sc
	call := st.call
	min, max := c.limits()
	if max > MaxCollectDigits {
		max = MaxCollectDigits
	}
	buf := make([]byte, 0, max)
	defer func() { wipeBytes(buf[:cap(buf)]) }()
	attempts := attemptsOr(c.Attempts)
	secretValue := f.secureFlow() || c.Secret
	timedOut := false
	for a := 1; a <= attempts; a++ {
		wipeBytes(buf[:cap(buf)])
		buf = buf[:0]
		call.FlushDigits()
		if err := call.Play(ctx, true, c.Prompt...); err != nil {
			return outcome{}, err
		}
		var err error
		buf, err = st.readDigits(ctx, c, buf, max)
		if err != nil {
			return outcome{}, err
		}
		n := len(buf)
		switch {
		case n == 0 && !st.lastWasTerminator:
			timedOut = true
			x.trace("", "attempt "+strconv.Itoa(a)+": timeout")
		case n >= min && n <= max && st.valid(c, buf):
			if secretValue {
				sc.setSecret(c.Into, newSecret(buf))
			} else {
				sc.setPlain(c.Into, string(buf))
			}
			x.trace("on_valid", strconv.Itoa(n)+" digit(s) into "+c.Into+", valid")
			return outcome{next: c.OnValid}, nil
		default:
			timedOut = false
			x.trace("", "attempt "+strconv.Itoa(a)+": "+strconv.Itoa(n)+" digit(s), not valid")
		}
		if a < attempts && len(c.RetryPrompt) > 0 {
			if err := call.Play(ctx, false, c.RetryPrompt...); err != nil {
				return outcome{}, err
			}
		}
	}
	if timedOut {
		x.trace("on_timeout", "attempts exhausted")
		return outcome{next: c.OnTimeout}, nil
	}
	x.trace("on_invalid", "attempts exhausted")
	return outcome{next: c.OnInvalid}, nil
}

// readDigits appends keys to buf until the terminator, max digits, or a
// timeout (first-digit timeout before any key, inter-digit after). It sets
// st.lastWasTerminator so an empty entry ended by the terminator counts as
// invalid rather than as a timeout.
func (st *run) readDigits(ctx context.Context, c *CollectAction, buf []byte, max int) ([]byte, error) {
	term := c.terminator()
	first := durOr(c.FirstTimeout, Duration(DefaultFirstDigitTimeout)).Std()
	inter := durOr(c.InterDigitTimeout, Duration(DefaultInterDigitTimeout)).Std()
	st.lastWasTerminator = false
	timeout := first
	for len(buf) < max {
		d, err := st.call.NextDigit(ctx, timeout)
		if errors.Is(err, ErrDigitTimeout) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if term != 0 && d == term {
			st.lastWasTerminator = true
			return buf, nil
		}
		buf = append(buf, d)
		timeout = inter
	}
	return buf, nil
}

func (st *run) valid(c *CollectAction, b []byte) bool {
	if !allDigits(b) {
		return false
	}
	switch c.Validate {
	case ValidateLuhn:
		return luhnValid(b)
	case ValidateExpiryMMYY:
		return expiryValid(b, st.now())
	}
	return true
}

func wipeBytes(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
