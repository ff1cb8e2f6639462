package call

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
)

// agentSide is the B2BUA leg towards an agent and what the interaction
// knows of it. Guarded by Interaction.mu unless noted.
type agentSide struct {
	agent  *acd.Agent
	leg    *sip.Leg
	ep     *media.Endpoint
	untick func() // stops the agent pipeline's clock ticks
	queue  acd.QueueConfig
	gone   chan struct{} // closed when the agent leg ended
	done   chan struct{} // closed once onAgentGone has run (its quality kept)
	refer  bool          // the secure flow was requested by REFER (NOTIFY owed)
	holdMu sync.Mutex
	hold   context.CancelFunc // stops hold audio towards the agent

	releaseMu sync.Mutex
	released  bool // releaseAgent ran
	freed     bool // the agent was made available (freeAgent ran)
}

// freeAgent makes the side's agent available, once per side: the agent
// leg ending and the call's release both free it, and by the second the
// agent may already ring for another caller of this node (same Agent,
// new call), whom a second free would take the agent from — the shared
// row would say available while they talk, and another node would offer
// them a second call.
func (c *Interaction) freeAgent(side *agentSide) {
	if side.agent == nil {
		return
	}
	side.releaseMu.Lock()
	done := side.freed
	side.freed = true
	side.releaseMu.Unlock()
	if !done {
		c.m.dir.Set(side.agent, acd.Available)
	}
}

// Errors of agent handling.
var (
	ErrNotBridged   = errors.New("call is not bridged to an agent")
	ErrSecureActive = errors.New("a secure flow is already running")
	ErrNotSecure    = errors.New("flow is not an agent-referred secure flow")
)

// dial places the outbound leg with its own RTP endpoint; ringback plays to
// the caller meanwhile.
func (c *Interaction) dial(ctx context.Context, target string, a *acd.Agent, ring time.Duration) (*agentSide, error) {
	var route []string
	if a != nil {
		route = a.Route() // the Path the agent registered with (RFC 3327)
	}
	if target == "" {
		return nil, errors.New("agent has no contact")
	}
	ep, local, err := c.legToward(uriHost(target)) // a name: assume the caller's network
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, ring)
	defer cancel()
	var ringOnce sync.Once
	var stopRing func()
	early := false // the far end plays its own progress (183 with SDP)
	leg, err := c.m.srv.Dial(rctx, target, sip.DialOptions{
		Local: local, FromUser: c.s.Caller(), Log: c.log, Route: route, SRTP: agentSRTP(c.m.cfg.SRTP, a),
		OnRinging: func() {
			if early {
				return
			}
			ringOnce.Do(func() { stopRing = c.loopPrompt(ctx, c.caller, ringbackPrompt) })
		},
		// Early media (RFC 3960 §3): the caller hears the far end's
		// announcements and ringback through the same gate as its voice
		// once answered. Both callbacks run on this goroutine (Dial's).
		OnEarlyMedia: func(m sip.Media) {
			if !m.Codec.Supported() {
				return
			}
			if stopRing != nil {
				stopRing()
				stopRing = nil
			}
			ringOnce.Do(func() {}) // no ringback of ours from now on
			early = true
			ep.SetRemote(m.Remote)
			ep.SetRTCP(false, m.RTCP)
			ep.SetCodec(m.Codec, m.EventPT)
			ep.SetComfortNoise(m.CNPT)
			ep.SetHandler(&agentBridge{c: c})
			ep.StartBeside(c.caller) // one poll worker a call (media.Endpoint.StartBeside)
			c.log.Info().Msg("early media from the far end: relayed to the caller")
		},
	})
	if stopRing != nil {
		stopRing()
	}
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	m := leg.Media()
	if err := applySRTP(ep, m); err != nil {
		_ = ep.Close()
		hctx, hcancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = leg.Hangup(hctx)
		hcancel()
		return nil, err
	}
	ep.SetRemote(m.Remote)
	ep.SetRTCP(false, m.RTCP) // our offer had no a=rtcp-mux: port + 1
	ep.SetCodec(m.Codec, m.EventPT)
	ep.SetComfortNoise(m.CNPT)
	ep.SetDirection(m.Direction)
	// The agent leg's pipeline: its keys are feature codes (in-band only
	// where the agent's phone negotiated no telephone-event), its packets
	// go to media capture; it is not recorded (the caller leg's pipeline
	// records both sides).
	pipe := newPipeline(c, c.rtpCap, false, dtmf.Negotiated, c.onAgentDigit)
	ep.SetMonitor(pipe)
	c.addLegCapture(leg.SIPCallID())
	ep.StartBeside(c.caller) // one poll worker a call (media.Endpoint.StartBeside)
	ep.StartFill()           // answered: the agent hears a packet every 20 ms from here
	side := &agentSide{agent: a, leg: leg, ep: ep, gone: make(chan struct{}), done: make(chan struct{}), untick: c.m.cfg.Clock.Subscribe(pipe.tick)}
	leg.SetCallbacks(func(nm sip.Media) error {
		if !nm.Codec.Supported() {
			return errors.New("codec not supported")
		}
		if err := applySRTP(ep, nm); err != nil {
			return err
		}
		ep.SetRemote(nm.Remote)
		ep.SetRTCP(false, nm.RTCP)
		ep.SetCodec(nm.Codec, nm.EventPT)
		ep.SetComfortNoise(nm.CNPT)
		ep.SetDirection(nm.Direction)
		return nil
	}, infoHandler(c.onAgentDigit), func(flow string) int {
		if err := c.RequestSecure(flow, "refer"); err != nil {
			c.log.Info().Err(err).Msg("REFER refused")
			return 403
		}
		return 202
	})
	// When the agent leg's dialog ends (its BYE, ours, or failure). An
	// AfterFunc rather than a goroutine waiting on leg.Done for the whole
	// call: it runs on its own goroutine once the dialog has ended.
	context.AfterFunc(leg.Context(), func() {
		close(side.gone)
		defer close(side.done)
		c.onAgentGone(side)
	})
	name := "-"
	if a != nil {
		name = a.Name()
	}
	c.log.Info().Str("agent", name).Msg("agent answered: bridging")
	return side, nil
}

// agentSRTP is the SRTP policy of a leg to agent a: the node's (rtp.srtp),
// with the agent's own mode where it has one (config agents[].srtp,
// checked at load). A dial: leg has no agent.
func agentSRTP(node sip.SRTPPolicy, a *acd.Agent) sip.SRTPPolicy {
	if a == nil || a.SRTP() == "" {
		return node
	}
	if m, err := sip.ParseSRTPMode(a.SRTP()); err == nil {
		node.Mode = m
	}
	return node
}

// bridge connects caller and agent media through the gate.
func (c *Interaction) bridge(side *agentSide) {
	if c.agentSideNow() != side {
		c.endPaymentIfAny("transfer") // the caller goes to someone else
	}
	c.mu.Lock()
	c.side = side
	c.mu.Unlock()
	c.caller.SetHandler(newCallerBridge(c, side))
	side.ep.SetHandler(&agentBridge{c: c})
	state := "bridged"
	if side.agent != nil {
		c.publish(Event{Type: "state", State: state, Flow: side.agent.Name()})
	} else {
		c.publish(Event{Type: "state", State: state})
	}
}

// onAgentGone runs when the agent leg ends: in a secure flow the caller
// carries on and cannot return; otherwise the call ends.
func (c *Interaction) onAgentGone(side *agentSide) {
	c.endPaymentIfAny("agent_left")
	c.stopAgentHold(side)
	side.untick()
	_ = side.ep.Close()
	q := side.ep.Quality()
	lq := LegQuality{Leg: "agent", Quality: q}
	if side.agent != nil {
		lq.Agent = side.agent.Name()
	}
	c.legDone(lq)
	logQuality(c.log.Info().Str("leg", "agent"), q).Msg("agent media quality")
	c.freeAgent(side)
	c.log.Info().Str("reason", side.leg.EndReason()).Bool("secure", c.Mode() == Secure).Msg("agent leg ended")
	c.publish(Event{Type: "state", State: "agent_left"})
	if c.Mode() == Normal {
		c.end("agent hung up")
	}
}

// agentSideNow returns the agent side if its leg is still up.
func (c *Interaction) agentSideNow() *agentSide {
	c.mu.Lock()
	side := c.side
	c.mu.Unlock()
	if side == nil {
		return nil
	}
	select {
	case <-side.gone:
		return nil
	default:
		return side
	}
}

// releaseAgent hangs up an agent leg we no longer need and makes the agent
// available.
func (c *Interaction) releaseAgent(side *agentSide, why string) {
	side.releaseMu.Lock()
	done := side.released
	side.released = true
	side.releaseMu.Unlock()
	if done {
		return
	}
	c.stopAgentHold(side)
	c.freeAgent(side)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = side.leg.Hangup(ctx)
	c.log.Info().Str("why", why).Msg("agent released")
}

// uriHost returns the host of a SIP URI ("sip:user@192.0.2.7:5062;x=y")
// when it is an IP address, else the zero Addr.
func uriHost(uri string) netip.Addr {
	h := uri
	if i := strings.IndexByte(h, ':'); i >= 0 && !strings.HasPrefix(h, "[") {
		h = h[i+1:] // the scheme
	}
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		h = h[i+1:]
	}
	if i := strings.IndexAny(h, ";?>"); i >= 0 {
		h = h[:i]
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}
