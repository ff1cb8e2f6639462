package ivr

import (
	"context"
	"fmt"
	"strings"
)

func init() { register("transfer", func() Action { return &TransferAction{} }) }

// TransferAction transfers the caller to a SIP URI or "queue:NAME". The call
// side performs it (cloak stays in the path as a B2BUA leg).
type TransferAction struct {
	noPrompts `yaml:"-"`
	noVars    `yaml:"-"`
	Target    string `yaml:"target"`
	// OnFailure is taken when the transfer fails; without it a failed
	// transfer ends the run with an error.
	OnFailure string `yaml:"on_failure"`
}

// Name implements Action.
func (*TransferAction) Name() string { return "transfer" }

func (*TransferAction) linear() bool    { return false }
func (*TransferAction) ends() bool      { return true }
func (a *TransferAction) edges() []edge { return []edge{{"on_failure", a.OnFailure}} }

func (a *TransferAction) check(c *stepCheck) {
	t := a.Target
	if !strings.HasPrefix(t, "queue:") && !strings.HasPrefix(t, "sip:") && !strings.HasPrefix(t, "sips:") && !strings.HasPrefix(t, "tel:") ||
		strings.HasSuffix(t, ":") {
		c.errf("transfer target %q must be queue:NAME or a sip:, sips: or tel: URI", t)
	}
}

func (a *TransferAction) run(ctx context.Context, x *exec) (outcome, error) {
	if err := x.st.call.Transfer(ctx, a.Target); err != nil {
		if ctx.Err() == nil && a.OnFailure != "" {
			x.trace("on_failure", "transfer to "+a.Target+" failed")
			return outcome{next: a.OnFailure}, nil
		}
		return outcome{}, fmt.Errorf("%w: to %s: %w", ErrTransfer, a.Target, err)
	}
	x.trace("", "to "+a.Target)
	x.st.res.Ending, x.st.res.Target = EndTransferred, a.Target
	return outcome{end: true}, nil
}
