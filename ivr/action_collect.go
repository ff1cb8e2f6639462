package ivr

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
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
	// Flush discards keys queued before the collect starts (type-ahead:
	// keys pressed while an earlier prompt played). Without it they are
	// the first keys of the entry. Retries always start clean.
	Flush bool `yaml:"flush"`
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
	if max > MaxCollectDigits {
		x.errf("collect max %d is more than %d digits", max, MaxCollectDigits)
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
	x.attempts(c.Attempts)
	x.duration(c.FirstTimeout, "first_timeout")
	x.duration(c.InterDigitTimeout, "inter_digit_timeout")
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

// collector makes the dtmf.Collector for one attempt: dtmf's collector is
// the one implementation of digit entry (timeouts, terminator, max, Luhn,
// expiry); this action adds prompts, attempts, branches and variables.
func (c *CollectAction) collector(secret bool) (*dtmf.Collector, error) {
	min, max := c.limits()
	term := c.terminator()
	col, err := dtmf.NewCollector(dtmf.CollectorConfig{
		MinDigits:         min,
		MaxDigits:         max,
		Terminator:        term,
		NoTerminator:      term == 0,
		FirstDigitTimeout: durOr(c.FirstTimeout, Duration(DefaultFirstDigitTimeout)).Std(),
		InterDigitTimeout: durOr(c.InterDigitTimeout, Duration(DefaultInterDigitTimeout)).Std(),
		Secret:            secret,
		Luhn:              c.Validate == ValidateLuhn,
		Expiry:            c.Validate == ValidateExpiryMMYY,
		Numeric:           true,
	})
	if err != nil {
		return nil, fmt.Errorf("collect into %q: %w: %w", c.Into, ErrInvalidFlow, err)
	}
	return col, nil
}

// run reads digits into a variable, validating them; see CollectAction.
// Each attempt feeds one dtmf.Collector, which holds the digits in a buffer
// it zeroes when the entry ends; only a valid value is kept, as a
// dtmf.Secret when the flow is secure or the step says so (the secret of an
// invalid entry is wiped at once).
//
// Type-ahead: keys the caller pressed while earlier prompts played stay
// queued in the call and are the first keys of the first attempt, unless
// Flush is set; they also stop the collect's own prompt at once, as its
// first live key does (barge-in). A terminator keyed right after an earlier
// collect ended at its max is dropped. Keys queued before a retry belong to
// the failed attempt and are flushed. Traces carry counts, never digits.
func (c *CollectAction) run(ctx context.Context, x *exec) (outcome, error) {
	call := x.st.call
	attempts := attemptsOr(c.Attempts)
	secretValue := x.f.secureFlow() || c.Secret
	timedOut := false
	for a := 1; a <= attempts; a++ {
		col, err := c.collector(secretValue)
		if err != nil {
			return outcome{}, err
		}
		var skip byte
		switch {
		case a > 1 || c.Flush:
			x.st.flush()
		default:
			skip = x.st.swallow
		}
		x.st.swallow = 0
		if err := call.Play(ctx, true, c.Prompt...); err != nil {
			return outcome{}, err
		}
		res, err := x.st.readEntry(ctx, col, skip)
		if err != nil {
			return outcome{}, err
		}
		if res.Reason == dtmf.ReasonMaxDigits {
			x.st.swallow = c.terminator()
		}
		switch {
		case res.Reason.OK():
			if secretValue {
				x.sc.setSecret(c.Into, &secret{s: res.Secret})
			} else {
				x.sc.setPlain(c.Into, res.Digits)
			}
			x.trace("on_valid", strconv.Itoa(res.Count)+" digit(s) into "+c.Into+", valid")
			return outcome{next: c.OnValid}, nil
		case res.Reason == dtmf.ReasonTimeout && res.Count == 0:
			timedOut = true
			x.trace("", "attempt "+strconv.Itoa(a)+": timeout")
		default:
			timedOut = false
			x.trace("", "attempt "+strconv.Itoa(a)+": "+strconv.Itoa(res.Count)+" digit(s), not valid")
		}
		res.Secret.Wipe()
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

// readEntry feeds col with the caller's keys until it ends. The Call does
// the waiting: NextDigit is given what is left until col's deadline, and
// its ErrDigitTimeout means that deadline has passed, so col expires at it.
// A first key equal to skip (non-zero) is dropped.
func (st *run) readEntry(ctx context.Context, col *dtmf.Collector, skip byte) (dtmf.Result, error) {
	col.Start(st.now())
	first := true
	// Each round either adds a key or ends the entry; the bound only
	// guards against a Call that returns non-keys for ever.
	for i := 0; i < 4*MaxCollectDigits; i++ {
		deadline := col.Deadline()
		wait := DefaultFirstDigitTimeout // no deadline: not with the timeouts collect sets
		if !deadline.IsZero() {
			wait = deadline.Sub(st.now())
		}
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		d, err := st.call.NextDigit(ctx, wait)
		if errors.Is(err, ErrDigitTimeout) {
			if res, done := col.Expire(deadline); done {
				return res, nil
			}
			continue
		}
		if err != nil {
			return dtmf.Result{}, err
		}
		if first && skip != 0 && d == skip {
			first = false
			continue
		}
		first = false
		if res, done := col.Add(d, st.now()); done {
			return res, nil
		}
	}
	return dtmf.Result{Reason: dtmf.ReasonTimeout}, nil
}
