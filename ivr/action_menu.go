package ivr

import (
	"context"
	"errors"
	"sort"
	"strconv"
)

func init() { register("menu", func() Action { return &MenuAction{} }) }

// MenuAction plays a prompt and routes on one key press.
type MenuAction struct {
	noVars `yaml:"-"`
	// Prompt is played (with barge-in) at each attempt.
	Prompt []string `yaml:"prompt"`
	// Choices maps a key ("0"-"9", "*", "#") to the next step.
	Choices map[string]string `yaml:"choices"`
	// Timeout is how long to wait for a key after the prompt (default 5s).
	Timeout Duration `yaml:"timeout"`
	// Attempts is how many times the prompt is offered (default 3).
	Attempts int `yaml:"attempts"`
	// InvalidPrompt is played after a key that is not a choice, before the
	// next attempt.
	InvalidPrompt []string `yaml:"invalid_prompt"`
	// TimeoutPrompt is played after a timeout, before the next attempt.
	TimeoutPrompt []string `yaml:"timeout_prompt"`
	// Default, when set, takes any key that is not a choice at once (no
	// retry); OnInvalid is then not needed.
	Default string `yaml:"default"`
	// OnInvalid is taken when the last attempt ends with a wrong key.
	OnInvalid string `yaml:"on_invalid"`
	// OnTimeout is taken when the last attempt ends with no key. Required.
	OnTimeout string `yaml:"on_timeout"`
}

// Name implements Action.
func (*MenuAction) Name() string { return "menu" }

func (*MenuAction) linear() bool { return false }
func (*MenuAction) ends() bool   { return false }

func (m *MenuAction) prompts() []string {
	return concat(m.Prompt, m.InvalidPrompt, m.TimeoutPrompt)
}

func (m *MenuAction) edges() []edge {
	keys := make([]string, 0, len(m.Choices))
	for k := range m.Choices {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e := make([]edge, 0, len(keys)+3)
	for _, k := range keys {
		e = append(e, edge{"choice " + k, m.Choices[k]})
	}
	return append(e, edge{"default", m.Default}, edge{"on_invalid", m.OnInvalid}, edge{"on_timeout", m.OnTimeout})
}

func (m *MenuAction) check(c *stepCheck) {
	if len(m.Choices) == 0 {
		c.errf("menu has no choices")
	}
	for _, k := range sortedKeys(m.Choices) {
		if !validKey(k) {
			c.errf("menu choice %q is not a single key 0-9, * or #", k)
		}
	}
	c.required(m.OnTimeout, "on_timeout")
	if m.Default == "" {
		c.required(m.OnInvalid, "on_invalid")
	}
	c.attempts(m.Attempts)
	c.duration(m.Timeout, "timeout")
}

// run offers the prompt up to Attempts times. A key that is a choice wins
// at once; another key takes Default if set, else counts as an invalid
// attempt; no key counts as a timeout. InvalidPrompt/TimeoutPrompt play only
// when another attempt follows; after the last one the flow takes on_invalid
// or on_timeout by how that attempt ended. A key queued before the menu
// (pressed during a barge-in play) answers the first attempt (type-ahead);
// queued keys are flushed before each later attempt.
func (m *MenuAction) run(ctx context.Context, x *exec) (outcome, error) {
	call := x.st.call
	attempts := attemptsOr(m.Attempts)
	timeout := durOr(m.Timeout, Duration(DefaultMenuTimeout)).Std()
	timedOut := false
	x.st.swallow = 0
	for a := 1; a <= attempts; a++ {
		if a > 1 {
			x.st.flush()
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
			x.trace("", "attempt "+strconv.Itoa(a)+": timeout")
		case err != nil:
			return outcome{}, err
		default:
			if next, ok := m.Choices[string(d)]; ok {
				x.trace("choice "+string(d), "")
				return outcome{next: next}, nil
			}
			if m.Default != "" {
				x.trace("default", "")
				return outcome{next: m.Default}, nil
			}
			timedOut = false
			retry = m.InvalidPrompt
			x.trace("", "attempt "+strconv.Itoa(a)+": key is not a choice")
		}
		if a < attempts && len(retry) > 0 {
			if err := call.Play(ctx, false, retry...); err != nil {
				return outcome{}, err
			}
		}
	}
	if timedOut {
		x.trace("on_timeout", "attempts exhausted")
		return outcome{next: m.OnTimeout}, nil
	}
	x.trace("on_invalid", "attempts exhausted")
	return outcome{next: m.OnInvalid}, nil
}

func attemptsOr(n int) int {
	switch {
	case n <= 0:
		return DefaultAttempts
	case n > MaxAttempts:
		return MaxAttempts
	}
	return n
}

func durOr(d Duration, def Duration) Duration {
	switch {
	case d <= 0:
		return def
	case d.Std() > MaxWait:
		return Duration(MaxWait)
	}
	return d
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
