package call

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// Interaction is one call through cloak: its SIP session, its caller leg's
// RTP endpoint, and what answers it.
type Interaction struct {
	// What the media path reads per packet, first: with hundreds of calls
	// an interaction is out of the CPU caches by its next packet, and
	// these share one line instead of costing a miss each.
	mode   atomic.Uint32 // Mode; written only by setMode
	rec    atomic.Pointer[recorder.Recorder]
	caller *media.Endpoint
	pipe   *pipeline // the caller leg's media pipeline (set once, before run)
	// monitors are the supervisors' legs (monitor.go); nil: none.
	monitors atomic.Pointer[monitorSet]
	// payment is the open agent-assisted payment (payment.go), read per
	// packet only in Payment mode.
	payment atomic.Pointer[PaymentSession]

	id       string
	m        *Manager
	s        *sip.Session
	target   string
	log      zerolog.Logger
	answered atomic.Int64 // unix ns of the answer; 0 before
	// recorded is the finished recording (finishRecording), for Summary.
	recorded atomic.Pointer[recorder.Result]

	onHold atomic.Bool
	digits *digitQueue

	mu          sync.Mutex // guards data, segments, trace, side, legs, agentKeys, afterSecure
	afterSecure Mode       // the mode a secure segment returns to
	data        map[string]string
	segments    []SecureSegment
	trace       []ivr.TraceEvent
	side        *agentSide   // the agent leg, once bridged
	legs        []LegQuality // final quality of the legs ended so far
	agentKeys   []byte       // agent's recent keys, for feature codes
	agentKeyAt  time.Time
	talkKeys    int  // digits keyed while talking (masked view only)
	agentPaused bool // the agent paused the recording
	secureOpen  bool // a secure segment began and metrics were not told it ended
	// preSecure names the secure-kind flow whose segment secureFromAnswer
	// opened before the answer; that flow's own EnterSecure adopts it.
	preSecure string
	monHub    *monitorHub // monitoring state, made with the first monitor

	sipCap     *capture.CallCapture // SIP of this call's dialogs (nil: off)
	rtpCap     *capture.CallCapture // RTP of this call's legs (nil: off)
	legCallIDs []string

	secureReq chan secureRequest
	bus       eventBus

	endOnce sync.Once
	ended   chan struct{}
	reason  atomic.Value // string
	created time.Time    // when the call was taken (metrics' duration)

	// ctx is what the routed application runs under: cancelled when the
	// caller's dialog ends (derived from it, so no goroutine watches it) or
	// when end closes ended (end cancels it).
	ctx    context.Context
	cancel context.CancelFunc
}

func newInteraction(m *Manager, s *sip.Session, ep *media.Endpoint, target string) *Interaction {
	ctx, cancel := context.WithCancel(s.Context())
	return &Interaction{
		id: s.ID(), m: m, s: s, caller: ep, target: target,
		log:       s.Log(),
		ended:     make(chan struct{}),
		created:   time.Now(),
		digits:    newDigitQueue(),
		data:      map[string]string{},
		secureReq: make(chan secureRequest, 1),
		ctx:       ctx,
		cancel:    cancel,
	}
}

// publish sends an event to the interaction's API subscribers.
func (c *Interaction) publish(ev Event) {
	ev.Time = time.Now()
	ev.Call = c.id
	c.bus.publish(ev)
}

// Subscribe returns the events so far and a channel of the next ones.
func (c *Interaction) Subscribe() ([]Event, <-chan Event, func()) {
	past, ch, cancel := c.bus.subscribe()
	return past, ch, cancel
}

// Events returns the interaction's recent events.
func (c *Interaction) Events() []Event { return c.bus.events() }

// Mode returns the interaction's mode; every sink asks the gate with it.
func (c *Interaction) Mode() Mode { return Mode(c.mode.Load()) }

// setMode is the one writer of the interaction's mode. The recorder and
// the captures are set for the new mode as the gate says: those that may
// not receive in it go dark before the switch, those that may come back
// after it, so nothing slips through in between. c.mu must be held.
func (c *Interaction) setMode(to Mode) {
	from := c.Mode()
	if from == to {
		return
	}
	c.applySinks(to, true)
	c.mode.Store(uint32(to))
	c.applySinks(to, false)
	c.log.Debug().Str("from", from.String()).Str("to", to.String()).Msg("mode")
}

// ID is the interaction's id (the same as its SIP session's).
func (c *Interaction) ID() string { return c.id }

// applyMedia points the caller's endpoint at what SDP agreed.
func (c *Interaction) applyMedia(m sip.Media) {
	c.caller.SetRemote(m.Remote)
	c.caller.SetRTCP(c.m.rtcpMuxAllowed() && m.RTCPMux, m.RTCP)
	c.caller.SetCodec(m.Codec, m.EventPT)
	c.caller.SetComfortNoise(m.CNPT)
	c.caller.SetDirection(m.Direction)
	c.onHold.Store(m.OnHold())
	c.log.Debug().Str("remote", m.Remote.String()).Str("direction", c.caller.Direction().String()).Msg("caller media applied")
}

// onMediaChange is the re-INVITE callback: hold, resume, new address or
// codec.
func (c *Interaction) onMediaChange(m sip.Media) error {
	if !m.Codec.Supported() {
		return errors.New("codec not supported")
	}
	if err := applySRTP(c.caller, m); err != nil {
		return err
	}
	c.applyMedia(m)
	return nil
}

// applySRTP keys (or un-keys) a leg's SRTP from the SDES outcome of its
// SDP (sip.Media.SRTP; nil: plain RTP). The endpoint keeps copies of the
// keys and zeroes them at hang-up; the dialog zeroes its own at its end.
func applySRTP(ep *media.Endpoint, m sip.Media) error {
	local, remote := m.SRTP.Keys()
	if err := ep.SetSRTP(local, remote); err != nil {
		return fmt.Errorf("srtp: %w", err)
	}
	return nil
}

// infoHandler answers SIP INFO (RFC 6086) on a leg: a DTMF body
// (application/dtmf-relay, application/dtmf) becomes a digit for on; an
// empty INFO (a keep-alive) is acknowledged; anything else gets the
// parser's 4xx. Bodies are never logged.
func infoHandler(on func(d byte, src dtmf.Source)) func(contentType string, body []byte) int {
	return func(contentType string, body []byte) int {
		if contentType == "" && len(body) == 0 {
			return 200
		}
		ev, err := dtmf.ParseInfo(contentType, body)
		if err != nil {
			var sc interface{ StatusCode() int }
			if errors.As(err, &sc) {
				return sc.StatusCode()
			}
			return 400
		}
		on(ev.Digit, ev.Source)
		return 200
	}
}

// idleSince returns how long the caller has sent no RTP, 0 while on hold.
func (c *Interaction) idleSince(now time.Time) time.Duration {
	answered := c.answered.Load()
	if answered == 0 || c.onHold.Load() {
		return 0
	}
	last := c.caller.LastReceived()
	if a := time.Unix(0, answered); last.Before(a) {
		last = a
	}
	return now.Sub(last)
}

// end asks the interaction to finish with reason; the first reason wins.
// It cancels the interaction's context, which stops what run is doing.
func (c *Interaction) end(reason string) {
	c.endOnce.Do(func() {
		c.reason.Store(reason)
		close(c.ended)
		c.cancel()
	})
}

// run plays the routed application until the caller hangs up or cloak ends
// the call.
func (c *Interaction) run() {
	ctx := c.ctx
	defer c.cancel()
	switch {
	case strings.HasPrefix(c.target, "flow:"):
		// The caller leg's pipeline hands the flow its digits; nothing
		// else needs the caller's packets until a bridge.
		name, _ := flowTarget(c.target)
		c.runFlow(ctx, name)
		c.supervise(ctx)
	case strings.HasPrefix(c.target, "queue:"):
		// A queue as the call's route (fraud.call.route queue:NAME).
		if err := c.Transfer(ctx, c.target); err != nil {
			c.log.Info().Err(err).Msg("queue target did not bridge the caller")
			c.end("queue failed")
			break
		}
		c.supervise(ctx)
	case strings.HasPrefix(c.target, "dial:"):
		// A straight B2BUA relay to a SIP URI through the gate, with DTMF
		// masking on: what load tests and simple trunk-to-agent setups use.
		uri := strings.TrimPrefix(c.target, "dial:")
		side, err := c.dial(ctx, uri, nil, 30*time.Second)
		if err != nil {
			c.log.Info().Err(err).Msg("dial target did not answer")
			c.end("dial failed")
			break
		}
		side.queue = acd.QueueConfig{Name: "dial", MaskDTMF: true, HoldPrompt: "hold"}
		c.bridge(side)
		c.supervise(ctx)
	case c.target == "echo":
		c.caller.SetHandler(media.Echo())
		<-ctx.Done()
	case c.target == "tone":
		for ctx.Err() == nil {
			if err := c.caller.Play(ctx, c.m.tone); err != nil && ctx.Err() == nil {
				c.log.Warn().Err(err).Msg("tone playback failed")
				c.end("error")
			}
		}
	case strings.HasPrefix(c.target, "prompt:"):
		p, _ := c.m.prompt(strings.TrimPrefix(c.target, "prompt:"))
		if p != nil {
			if err := c.caller.Play(ctx, p); err != nil && ctx.Err() == nil {
				c.log.Warn().Err(err).Msg("prompt playback failed")
			}
		}
		c.end("played")
	default:
		c.log.Warn().Str("target", c.target).Msg("unknown target")
		c.end("error")
	}
	c.hangupIfUp()
}

func (c *Interaction) hangupIfUp() {
	select {
	case <-c.s.Done():
		return
	default:
	}
	reason, _ := c.reason.Load().(string)
	c.log.Info().Str("reason", reason).Msg("cloak ends the call")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.s.Hangup(ctx)
}

// supervise keeps a bridged call going: it runs agent-referred secure
// flows when the agent asks, until either side hangs up.
func (c *Interaction) supervise(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ended:
			return
		case req := <-c.secureReq:
			c.runReferred(ctx, req)
		}
	}
}

// close releases the media of the interaction and its agent leg, and
// finishes its recording and captures.
func (c *Interaction) close() {
	c.end("closed")
	c.endPaymentIfAny("hangup")
	c.mu.Lock()
	c.secureEndedLocked("call_ended") // a segment the call ended inside
	c.mu.Unlock()
	defer c.endEvents()
	defer c.closeCaptures()
	defer c.finishRecording()
	c.stopMonitors()
	c.mu.Lock()
	side := c.side
	c.mu.Unlock()
	if side != nil {
		c.releaseAgent(side, "call ended")
		select {
		case <-side.done: // the agent leg's quality is kept for the summary
		case <-time.After(6 * time.Second):
		}
	}
	_ = c.caller.Close() // sends the RTCP BYE
	st, q := c.caller.Stats(), c.caller.Quality()
	c.legDone(LegQuality{Leg: "caller", Quality: q})
	logQuality(c.log.Info().Str("leg", "caller").Uint64("rtp_rx", st.RxPackets).Uint64("rtp_tx", st.TxPackets).Uint64("rtp_dropped", st.Dropped()).
		Uint64("rtp_dropped_source", st.DroppedUnknownSource).Uint64("rtp_source_changes", st.SourceChanges), q).Msg("media closed")
}

// endEvents publishes the call's last event, "ended" with the reason, and
// closes its subscribers' streams.
func (c *Interaction) endEvents() {
	reason, _ := c.reason.Load().(string)
	sipReason := c.s.EndReason()
	c.m.met.CallEnded(routeLabel(c.target), ending(reason, sipReason), time.Since(c.created))
	if reason == "closed" { // nothing of cloak's ended it: the SIP dialog did
		if sipReason != "" {
			reason = sipReason
		}
	}
	ev := Event{Type: "ended", Reason: reason, Time: time.Now(), Call: c.id}
	c.bus.close(ev)
}

// Info is a snapshot of an interaction for the API. It holds no digit.
type Info struct {
	ID     string `json:"id"`
	Caller string `json:"caller"`
	Called string `json:"called"`
	// Trunk is the trunk the call came in on ("" when none).
	Trunk    string            `json:"trunk,omitempty"`
	Target   string            `json:"target"`
	Mode     string            `json:"mode"`
	Agent    string            `json:"agent,omitempty"`
	Reserved bool              `json:"agent_reserved"`
	Answered time.Time         `json:"answered,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
	Segments []SecureSegment   `json:"secure_segments,omitempty"`
	// Quality is each leg's call quality (RTCP and receive figures).
	Quality []LegQuality `json:"quality"`
	// Monitors are the supervisors listening, coaching or barging.
	Monitors []MonitorInfo `json:"monitors,omitempty"`
	// Recording is the recording's state now: "on", "paused" or "off"
	// (none: not recorded by policy, declined, no room, or failed).
	// RecordingPaused lists why it is paused ("agent", "api", "secure",
	// "payment", "consent"), so a reloaded desk knows which pause its
	// resume button lifts.
	Recording       string   `json:"recording"`
	RecordingPaused []string `json:"recording_paused,omitempty"`
}

// Info returns a snapshot of the interaction.
func (c *Interaction) Info() Info {
	in := Info{ID: c.id, Caller: c.s.Caller(), Called: c.s.Called(), Trunk: c.s.Trunk(), Target: c.target, Mode: c.Mode().String(),
		Reserved: c.AgentReserved(), Data: c.Data(), Segments: c.Segments(), Monitors: c.Monitors()}
	if a := c.answered.Load(); a != 0 {
		in.Answered = time.Unix(0, a)
	}
	in.Recording, in.RecordingPaused = c.recordingState()
	in.Quality = []LegQuality{{Leg: "caller", Quality: c.caller.Quality()}}
	if side := c.agentSideNow(); side != nil {
		if side.agent != nil {
			in.Agent = side.agent.Name()
		}
		in.Quality = append(in.Quality, LegQuality{Leg: "agent", Agent: in.Agent, Quality: side.ep.Quality()})
	}
	return in
}

// legDone hands an ended leg's final quality figures to the node's
// totals and metrics and keeps them for the Summary.
func (c *Interaction) legDone(q LegQuality) {
	c.m.legEnded(q.Leg, q.Quality)
	c.mu.Lock()
	c.legs = append(c.legs, q)
	c.mu.Unlock()
}

// endedLegs returns the quality of the legs ended so far, the caller's
// first, then the agent legs in the order they ended.
func (c *Interaction) endedLegs() []LegQuality {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]LegQuality, 0, len(c.legs))
	for _, l := range c.legs {
		if l.Leg == "caller" {
			out = append(out, l)
		}
	}
	for _, l := range c.legs {
		if l.Leg != "caller" {
			out = append(out, l)
		}
	}
	return out
}
