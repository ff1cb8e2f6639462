package ivr

import (
	"context"
	"errors"
)

func init() { register("return_to_agent", func() Action { return &ReturnToAgentAction{} }) }

// ReturnToAgentAction re-bridges the caller to the agent reserved for them.
type ReturnToAgentAction struct {
	noPrompts `yaml:"-"`
	noVars    `yaml:"-"`
	// OnNoAgent is taken when no agent is reserved or the agent has gone
	// (Call.ReturnToAgent returns ErrNoAgent). Required.
	OnNoAgent string `yaml:"on_no_agent"`
}

// Name implements Action.
func (*ReturnToAgentAction) Name() string { return "return_to_agent" }

func (*ReturnToAgentAction) linear() bool    { return false }
func (*ReturnToAgentAction) ends() bool      { return true }
func (a *ReturnToAgentAction) edges() []edge { return []edge{{"on_no_agent", a.OnNoAgent}} }

func (a *ReturnToAgentAction) check(c *stepCheck) {
	if c.flow().Kind == KindIVROnly {
		c.errf("return_to_agent in an ivr-only flow (no agent is reserved; end in transfer or disconnect)")
	}
	if a.OnNoAgent == "" {
		c.errf("return_to_agent has no on_no_agent fallback for when the reserved agent has gone")
	}
}

func (a *ReturnToAgentAction) run(ctx context.Context, x *exec) (outcome, error) {
	call := x.st.call
	var err error
	if !call.AgentReserved() {
		err = ErrNoAgent
	} else {
		err = call.ReturnToAgent(ctx)
	}
	switch {
	case err == nil:
		x.trace("", "re-bridged with the reserved agent")
		x.st.res.Ending = EndReturned
		return outcome{end: true}, nil
	case errors.Is(err, ErrNoAgent) && a.OnNoAgent != "":
		x.trace("on_no_agent", "no reserved agent")
		return outcome{next: a.OnNoAgent}, nil
	default:
		return outcome{}, err
	}
}
