package call

import (
	"context"
	"fmt"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/ivr"
)

// This file is an agent's referral: the agent sends the caller into a
// secure flow and stays reserved; the gate's Referred mode keeps them apart
// until return_to_agent re-bridges them or the flow ends elsewhere.

// RequestSecure asks to send the caller into an agent-referred secure
// flow while the agent stays reserved: from the agent's REFER, feature code,
// or the HTTP API. The flow runs on the interaction's own goroutine.
func (c *Interaction) RequestSecure(flow, via string) error {
	if c.m.runner == nil {
		return fmt.Errorf("secure %q: %w", flow, ivr.ErrUnknownFlow)
	}
	f, ok := c.m.cfg.Flows.Flow(flow)
	if !ok {
		return fmt.Errorf("secure %q: %w", flow, ivr.ErrUnknownFlow)
	}
	if f.Kind != ivr.KindAgentReferred {
		return fmt.Errorf("secure %q: %w", flow, ErrNotSecure)
	}
	side := c.agentSideNow()
	if side == nil {
		return ErrNotBridged
	}
	if c.Mode() != Normal {
		return ErrSecureActive
	}
	select {
	case c.secureReq <- secureRequest{flow: flow, via: via}:
		return nil
	default:
		return ErrSecureActive
	}
}

type secureRequest struct{ flow, via string }

// runReferred runs an agent-referred secure flow: the agent is reserved and
// hears hold audio, the caller talks to the IVR.
func (c *Interaction) runReferred(ctx context.Context, req secureRequest) {
	side := c.agentSideNow()
	if side == nil {
		return
	}
	c.mu.Lock()
	if c.Mode() != Normal {
		c.mu.Unlock()
		return
	}
	// The gate now keeps caller and agent apart (the bridge stays, and
	// asks it per packet); the caller's keys are the flow's.
	c.setMode(Referred)
	c.mu.Unlock()
	defer c.endReferral()
	if side.agent != nil {
		c.m.dir.Set(side.agent, acd.Reserved)
	}
	side.refer = req.via == "refer"
	c.log.Info().Str("flow", req.flow).Str("via", req.via).Msg("agent sends the caller into a secure flow; agent reserved")
	c.startAgentHold(side)
	c.digits.flush()

	res, err := c.m.runner.Run(ctx, c, req.flow)
	ev := c.log.Info().Str("flow", res.Flow).Str("ending", string(res.Ending))
	if err != nil && ctx.Err() == nil {
		ev = ev.Str("error", err.Error())
	}
	ev.Msg("secure flow finished")
	if side.refer {
		status := 200
		if res.Ending != ivr.EndReturned {
			status = 487
		}
		go side.leg.NotifyRefer(context.Background(), status, true)
	}
	switch {
	case res.Ending == ivr.EndReturned:
		// ReturnToAgent re-bridged already.
	case res.Ending == ivr.EndTransferred:
		// The caller went elsewhere: the reserved agent is free at once.
		c.releaseAgent(side, "caller transferred")
	default:
		c.releaseAgent(side, "secure flow ended")
		c.end("secure flow ended")
	}
}

// ReturnToAgent implements ivr.Call: re-bridges the caller with the
// reserved agent. The media path needs no re-INVITE: both legs keep their
// endpoints and the bridge resumes on them (sequence and timestamp
// continuity are kept by each endpoint's rewriter).
func (c *Interaction) ReturnToAgent(ctx context.Context) error {
	side := c.agentSideNow()
	if side == nil || side.agent == nil && !c.referred() {
		return ivr.ErrNoAgent
	}
	c.stopAgentHold(side)
	c.bridge(side)
	c.endReferral()
	if side.agent != nil {
		c.m.dir.Set(side.agent, acd.Busy)
	}
	c.log.Info().Msg("caller returned to the agent")
	return nil
}

// AgentReserved implements ivr.Call.
func (c *Interaction) AgentReserved() bool {
	return c.referred() && c.agentSideNow() != nil
}

// referred reports whether an agent's referral is in progress: the call
// is Referred, or in a secure segment that returns to Referred.
func (c *Interaction) referred() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.Mode()
	return m == Referred || m == Secure && c.afterSecure == Referred
}

// endReferral ends an agent's referral: the caller is back with the agent,
// elsewhere, or gone. The call is Normal again at once, or, inside the
// flow's secure segment, when the segment ends.
func (c *Interaction) endReferral() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.Mode() {
	case Referred:
		c.setMode(Normal)
	case Secure:
		if c.afterSecure == Referred {
			c.afterSecure = Normal
		}
	}
}
