package ivr

import (
	"context"
	"errors"
	"strconv"
)

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

func attemptsOr(n int) int {
	if n <= 0 {
		return DefaultAttempts
	}
	return n
}

func durOr(d Duration, def Duration) Duration {
	if d <= 0 {
		return def
	}
	return d
}

// menu offers the prompt up to Attempts times. A key that is a choice wins
// at once; another key takes Default if set, else counts as an invalid
// attempt; no key counts as a timeout. InvalidPrompt/TimeoutPrompt play only
// when another attempt follows; after the last one the flow takes on_invalid
// or on_timeout by how that attempt ended. A key queued before the menu
// (pressed during a barge-in play) answers the first attempt (type-ahead);
// queued keys are flushed before each later attempt.
func (st *run) menu(ctx context.Context, f *Flow, s *Step) (outcome, error) {
	m := s.Menu
	call := st.call
	attempts := attemptsOr(m.Attempts)
	timeout := durOr(m.Timeout, Duration(DefaultMenuTimeout)).Std()
	timedOut := false
	for a := 1; a <= attempts; a++ {
		if a > 1 {
			call.FlushDigits()
		}
		if err := call.Play(ctx, true, m.Prompt...); err != nil {
			return outcome{}, err
		}
		d, err := call.NextDigit(ctx, timeout)
		var retry []string
		switch {
		case errors.Is(err, ErrDigitTimeout):
			timedOut = true
			retry = m.TimeoutPrompt
			st.trace(f, s.Name, "menu", "", "attempt "+strconv.Itoa(a)+": timeout")
		case err != nil:
			return outcome{}, err
		default:
			if next, ok := m.Choices[string(d)]; ok {
				st.trace(f, s.Name, "menu", "choice "+string(d), "")
				return outcome{next: next}, nil
			}
			if m.Default != "" {
				st.trace(f, s.Name, "menu", "default", "")
				return outcome{next: m.Default}, nil
			}
			timedOut = false
			retry = m.InvalidPrompt
			st.trace(f, s.Name, "menu", "", "attempt "+strconv.Itoa(a)+": key is not a choice")
		}
		if a < attempts && len(retry) > 0 {
			if err := call.Play(ctx, false, retry...); err != nil {
				return outcome{}, err
			}
		}
	}
	if timedOut {
		st.trace(f, s.Name, "menu", "on_timeout", "attempts exhausted")
		return outcome{next: m.OnTimeout}, nil
	}
	st.trace(f, s.Name, "menu", "on_invalid", "attempts exhausted")
	return outcome{next: m.OnInvalid}, nil
}

// collect reads digits into a variable, validating them; see CollectAction.
// Digits live in one buffer that is zeroed after every attempt; only a valid
// value is kept, as a secret when the flow is secure or the step says so.
// Queued keys are flushed before every attempt, so sensitive input starts
// clean. Traces carry counts, never digits.
func (st *run) collect(ctx context.Context, f *Flow, sc *scope, s *Step) (outcome, error) {
	c := s.Collect
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
			st.trace(f, s.Name, "collect", "", "attempt "+strconv.Itoa(a)+": timeout")
		case n >= min && n <= max && st.valid(c, buf):
			if secretValue {
				sc.setSecret(c.Into, newSecret(buf))
			} else {
				sc.setPlain(c.Into, string(buf))
			}
			st.trace(f, s.Name, "collect", "on_valid", strconv.Itoa(n)+" digit(s) into "+c.Into+", valid")
			return outcome{next: c.OnValid}, nil
		default:
			timedOut = false
			st.trace(f, s.Name, "collect", "", "attempt "+strconv.Itoa(a)+": "+strconv.Itoa(n)+" digit(s), not valid")
		}
		if a < attempts && len(c.RetryPrompt) > 0 {
			if err := call.Play(ctx, false, c.RetryPrompt...); err != nil {
				return outcome{}, err
			}
		}
	}
	if timedOut {
		st.trace(f, s.Name, "collect", "on_timeout", "attempts exhausted")
		return outcome{next: c.OnTimeout}, nil
	}
	st.trace(f, s.Name, "collect", "on_invalid", "attempts exhausted")
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
