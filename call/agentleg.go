package call

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
)

// agentSide is the B2BUA leg towards an agent and what the interaction
// knows of it. Guarded by Interaction.mu unless noted.
type agentSide struct {
	agent  *Agent
	leg    *sip.Leg
	ep     *media.Endpoint
	untick func() // stops the agent pipeline's clock ticks
	queue  QueueConfig
	gone   chan struct{} // closed when the agent leg ended
	refer  bool          // the secure flow was requested by REFER (NOTIFY owed)
	holdMu sync.Mutex
	hold   context.CancelFunc // stops hold audio towards the agent

	releaseMu sync.Mutex
	released  bool // releaseAgent ran
}

// Errors of agent handling.
var (
	ErrNotBridged   = errors.New("call is not bridged to an agent")
	ErrSecureActive = errors.New("a secure flow is already running")
	ErrNotSecure    = errors.New("flow is not an agent-referred secure flow")
)

// Transfer implements ivr.Call: "queue:NAME" waits for an agent of the
// queue, any other target is dialled as a SIP URI. cloak stays in the
// media path as a B2BUA, so the secure gate keeps applying. It returns nil
// once the caller is bridged; an error takes the flow's failure path.
func (c *Interaction) Transfer(ctx context.Context, target string) error {
	if c.m.dir == nil && strings.HasPrefix(target, "queue:") {
		return fmt.Errorf("transfer to %s: %w", target, ErrUnknownQueue)
	}
	if name, ok := strings.CutPrefix(target, "queue:"); ok {
		q, ok := c.m.dir.Queue(name)
		if !ok {
			return fmt.Errorf("transfer to %s: %w", target, ErrUnknownQueue)
		}
		return c.queueFor(ctx, q)
	}
	if !strings.HasPrefix(target, "sip:") {
		return fmt.Errorf("transfer to %q: not a SIP URI or queue", target)
	}
	side, err := c.dial(ctx, target, nil, 30*time.Second)
	if err != nil {
		return fmt.Errorf("transfer to %s: %w", target, err)
	}
	c.bridge(side)
	return nil
}

// queueFor plays hold audio to the caller and offers the call to the
// queue's agents, longest idle first, until one answers or the queue times
// out.
func (c *Interaction) queueFor(ctx context.Context, q QueueConfig) error {
	qctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	stopHold := c.loopPrompt(qctx, c.caller, q.HoldPrompt)
	defer stopHold()
	c.log.Info().Str("queue", q.Name).Msg("caller queued")
	c.publish(Event{Type: "state", State: "queued"})
	tried := map[string]bool{}
	for {
		changed := c.m.dir.Changed()
		a := c.m.dir.Offer(q.Name, c.id, tried)
		if a == nil && len(tried) > 0 {
			tried = map[string]bool{} // everyone was tried: start over
			a = c.m.dir.Offer(q.Name, c.id, tried)
		}
		if a != nil {
			stopHold()
			side, err := c.dial(qctx, a.target(), a, q.RingTimeout)
			if err == nil {
				side.queue = q
				c.m.dir.Set(a, Busy)
				c.bridge(side)
				return nil
			}
			c.m.dir.Set(a, Available)
			tried[a.Name()] = true
			c.log.Info().Str("agent", a.Name()).Err(err).Msg("agent did not take the call")
			if qctx.Err() != nil {
				break
			}
			stopHold = c.loopPrompt(qctx, c.caller, q.HoldPrompt)
			continue
		}
		select {
		case <-changed:
		case <-time.After(500 * time.Millisecond):
		case <-qctx.Done():
		}
		if qctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.log.Info().Str("queue", q.Name).Msg("queue timeout")
	return fmt.Errorf("queue %s: %w", q.Name, ErrQueueTimeout)
}

// dial places the outbound leg with its own RTP endpoint; ringback plays to
// the caller meanwhile.
func (c *Interaction) dial(ctx context.Context, target string, a *Agent, ring time.Duration) (*agentSide, error) {
	if target == "" {
		return nil, errors.New("agent has no contact")
	}
	to := uriHost(target)
	if !to.IsValid() {
		to = c.s.Source().Addr() // a name: assume the caller's network
	}
	mediaAddr, err := c.m.mediaAddrFor(to)
	if err != nil {
		return nil, err
	}
	conn, port, err := c.m.cfg.Pool.Open()
	if err != nil {
		return nil, err
	}
	ep := media.NewEndpoint(c.m.endpointConfig(conn, port, c.log))
	rctx, cancel := context.WithTimeout(ctx, ring)
	defer cancel()
	var ringOnce sync.Once
	var stopRing func()
	leg, err := c.m.srv.Dial(rctx, target, sip.DialOptions{
		Local: sip.LocalSDP{Addr: mediaAddr, Port: port}, FromUser: c.s.Caller(), Log: c.log,
		OnRinging: func() {
			ringOnce.Do(func() { stopRing = c.loopPrompt(ctx, c.caller, ringbackPrompt) })
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
	ep.SetRemote(m.Remote)
	ep.SetCodec(m.Codec, m.EventPT)
	ep.SetDirection(m.Direction)
	// The agent leg's pipeline: its keys are feature codes (in-band only
	// where the agent's phone negotiated no telephone-event), its packets
	// go to media capture; it is not recorded (the caller leg's pipeline
	// records both sides).
	pipe := newPipeline(c, c.rtpCap, false, dtmf.Negotiated, func(d byte, _ dtmf.Source) { c.onAgentDigit(d) })
	ep.SetMonitor(pipe)
	c.addLegCapture(leg.SIPCallID())
	ep.Start()
	side := &agentSide{agent: a, leg: leg, ep: ep, gone: make(chan struct{}), untick: c.m.cfg.Clock.Subscribe(pipe.tick)}
	leg.SetCallbacks(func(nm sip.Media) error {
		if !nm.Codec.Supported() {
			return errors.New("codec not supported")
		}
		ep.SetRemote(nm.Remote)
		ep.SetCodec(nm.Codec, nm.EventPT)
		ep.SetDirection(nm.Direction)
		return nil
	}, func(ct string, body []byte) int {
		ev, err := dtmf.ParseInfo(ct, body)
		if err != nil {
			var sc interface{ StatusCode() int }
			if errors.As(err, &sc) {
				return sc.StatusCode()
			}
			return 400
		}
		c.onAgentDigit(ev.Digit)
		return 200
	}, func(flow string) int {
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
		c.onAgentGone(side)
	})
	name := "-"
	if a != nil {
		name = a.Name()
	}
	c.log.Info().Str("agent", name).Msg("agent answered: bridging")
	return side, nil
}

// bridge connects caller and agent media through the gate.
func (c *Interaction) bridge(side *agentSide) {
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
	c.stopAgentHold(side)
	side.untick()
	_ = side.ep.Close()
	if side.agent != nil {
		c.m.dir.Set(side.agent, Available)
	}
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
		c.m.dir.Set(side.agent, Reserved)
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
	if side.agent != nil {
		c.m.dir.Set(side.agent, Available)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = side.leg.Hangup(ctx)
	c.log.Info().Str("why", why).Msg("agent released")
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
		c.m.dir.Set(side.agent, Busy)
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

// startAgentHold plays hold audio to the agent (never the caller's
// audio, never a tone, never an RFC 4733 event).
func (c *Interaction) startAgentHold(side *agentSide) {
	side.holdMu.Lock()
	defer side.holdMu.Unlock()
	if side.hold != nil {
		return
	}
	hold := side.queue.HoldPrompt
	if hold == "" {
		hold = "hold"
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := c.loopPrompt(ctx, side.ep, hold)
	side.hold = func() { stop(); cancel() }
}

func (c *Interaction) stopAgentHold(side *agentSide) {
	side.holdMu.Lock()
	defer side.holdMu.Unlock()
	if side.hold != nil {
		side.hold()
		side.hold = nil
	}
}

// loopPrompt plays a prompt to an endpoint again and again until the
// returned stop is called or ctx ends; stop waits for playback to end.
func (c *Interaction) loopPrompt(ctx context.Context, ep *media.Endpoint, name string) (stop func()) {
	var p *media.Prompt
	if name == ringbackPrompt {
		p = c.m.ringback
	} else if lp, err := c.m.prompt(name); err == nil {
		p = lp
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p == nil {
			<-pctx.Done()
			return
		}
		for pctx.Err() == nil {
			if err := ep.Play(pctx, p); err != nil && pctx.Err() == nil {
				// Another Play owns the stream or the endpoint closed.
				select {
				case <-pctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// onAgentDigit handles a key from the agent: feature codes ("*7" sends the
// caller into the secure flow, "*9" pauses or resumes the recording).
// Agent keys are never forwarded to the caller.
func (c *Interaction) onAgentDigit(d byte) {
	c.mu.Lock()
	now := time.Now()
	if now.Sub(c.agentKeyAt) > 3*time.Second {
		c.agentKeys = c.agentKeys[:0]
	}
	c.agentKeyAt = now
	c.agentKeys = append(c.agentKeys, d)
	if len(c.agentKeys) > 8 {
		c.agentKeys = c.agentKeys[len(c.agentKeys)-8:]
	}
	keys := string(c.agentKeys)
	secure := c.m.cfg.SecureCode != "" && c.m.cfg.SecureFlow != "" && strings.HasSuffix(keys, c.m.cfg.SecureCode)
	record := c.m.cfg.RecordCode != "" && strings.HasSuffix(keys, c.m.cfg.RecordCode)
	if secure || record {
		c.agentKeys = c.agentKeys[:0]
	}
	c.mu.Unlock()
	switch {
	case secure:
		if err := c.RequestSecure(c.m.cfg.SecureFlow, "feature-code"); err != nil {
			c.log.Info().Err(err).Msg("feature code refused")
		}
	case record:
		c.toggleAgentPause()
	}
}

// toggleAgentPause pauses the recording for the agent, or resumes it.
func (c *Interaction) toggleAgentPause() {
	rec := c.rec.Load()
	if rec == nil {
		return
	}
	c.mu.Lock()
	c.agentPaused = !c.agentPaused
	paused := c.agentPaused
	c.mu.Unlock()
	var err error
	if paused {
		err = c.PauseRecording("agent")
	} else {
		err = c.ResumeRecording("agent")
	}
	c.log.Info().Bool("paused", paused).Err(err).Msg("agent toggled the recording")
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
