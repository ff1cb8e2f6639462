package ivr

import "context"

func init() { register("disconnect", func() Action { return &DisconnectAction{} }) }

// DisconnectAction hangs up.
type DisconnectAction struct {
	noPrompts `yaml:"-"`
	noVars    `yaml:"-"`
	// Reason is recorded with the interaction (never a secret).
	Reason string `yaml:"reason"`
}

// Name implements Action.
func (*DisconnectAction) Name() string { return "disconnect" }

func (*DisconnectAction) linear() bool     { return false }
func (*DisconnectAction) ends() bool       { return true }
func (*DisconnectAction) edges() []edge    { return nil }
func (*DisconnectAction) check(*stepCheck) {}

func (a *DisconnectAction) run(ctx context.Context, x *exec) (outcome, error) {
	reason := a.Reason
	if reason == "" {
		reason = "flow " + x.f.Name + " ended"
	}
	x.trace("", reason)
	x.st.res.Ending, x.st.res.Target = EndDisconnected, reason
	if err := x.st.call.Hangup(ctx, reason); err != nil {
		return outcome{}, err
	}
	return outcome{end: true}, nil
}
