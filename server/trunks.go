package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/metrics"
	"github.com/cloak-voip/cloak/sip"
	"github.com/cloak-voip/cloak/trunk"
)

// nodeTrunks is the node's trunks (docs/TRUNKS.md); set is nil when none
// are configured.
type nodeTrunks struct {
	set    *trunk.Set
	cancel context.CancelFunc
	wait   func()
}

// sipConfig fills the SIP server's trunk hooks and sip.unknown.
func (n *nodeTrunks) sipConfig(c *sip.Config, cfg config.Config) {
	c.Unknown = sip.UnknownPolicy{Reject: cfg.SIP.Unknown == "reject", RejectLoopback: cfg.SIP.UnknownLoopback == "reject"}
	if n.set != nil {
		c.Trunks = n.set
		c.Router = n.set
	}
}

// start runs registrations and keep-alives until stop.
func (n *nodeTrunks) start(ctx context.Context, srv *sip.Server, log zerolog.Logger) {
	if n.set == nil {
		return
	}
	ctx, n.cancel = context.WithCancel(ctx)
	n.wait = n.set.Start(ctx, srv, log)
}

// stop unregisters (Expires: 0) and waits for it, a few seconds at most.
func (n *nodeTrunks) stop() {
	if n.cancel != nil {
		n.cancel()
		n.wait()
	}
}

// trunkDTMFModes parses each trunk's validated dtmf (none when empty).
func trunkDTMFModes(ts []config.Trunk) (map[string]dtmf.Policy, error) {
	out := map[string]dtmf.Policy{}
	for i, t := range ts {
		if t.DTMF == "" {
			continue
		}
		p, err := dtmf.ParsePolicy(t.DTMF)
		if err != nil {
			return nil, fmt.Errorf("trunks[%d].dtmf: %w", i, err)
		}
		out[t.Name] = p
	}
	return out, nil
}

// samples reads the trunks' state for /metrics.
func (n *nodeTrunks) samples() []metrics.TrunkSample {
	if n.set == nil {
		return nil
	}
	var out []metrics.TrunkSample
	for _, st := range n.set.Status() {
		out = append(out, metrics.TrunkSample{Name: st.Name, Registering: st.Register.State != trunk.StateOff,
			Registered: st.Register.State == trunk.StateRegistered, Up: st.Up, Calls: st.Calls})
	}
	return out
}

// routes serves GET /api/trunks (auth.PermTrunksView): each trunk's
// registration and keep-alive state, never a credential.
func (n *nodeTrunks) routes(m *auth.Mux) {
	m.HandleFunc("GET /api/trunks", func(w http.ResponseWriter, r *http.Request) {
		st := []trunk.Status{}
		if n != nil && n.set != nil {
			st = n.set.Status()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
}
