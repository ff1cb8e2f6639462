package ivr

import (
	"context"
	"strconv"
)

func init() { register("play", func() Action { return &PlayAction{} }) }

// PlayAction plays prompts in order.
type PlayAction struct {
	linearAction `yaml:"-"`
	noVars       `yaml:"-"`
	// Prompts are prompt names, e.g. "welcome" or "digits/1".
	Prompts []string `yaml:"prompts"`
	// BargeIn stops the playback when the caller presses a key (the digit
	// stays queued for the next menu or collect).
	BargeIn bool `yaml:"barge_in"`
}

// Name implements Action.
func (*PlayAction) Name() string { return "play" }

func (a *PlayAction) prompts() []string { return a.Prompts }

func (a *PlayAction) check(c *stepCheck) {
	if len(a.Prompts) == 0 {
		c.errf("play has no prompts")
	}
}

func (a *PlayAction) run(ctx context.Context, x *exec) (outcome, error) {
	if err := x.st.call.Play(ctx, a.BargeIn, a.Prompts...); err != nil {
		return outcome{}, err
	}
	x.trace("next", strconv.Itoa(len(a.Prompts))+" prompt(s)")
	return x.next(), nil
}
