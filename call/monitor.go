package call

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
)

// This file is supervisors' monitor legs (docs/MONITORING.md): cloak
// calls a supervisor's phone and attaches it to a bridged call to listen
// (hears caller and agent mixed, says nothing), coach (heard by the agent
// only) or barge (heard by both). A monitor leg is one more sink of the
// gate: what it hears and whom it reaches are the gate's MonitorCaller,
// MonitorAgent, MonitorToAgent and MonitorToCaller cells for the call's
// mode, narrowed by the monitor's own mode.
//
// Media, and where each piece runs:
//
//   - the caller bridge (caller leg's reader) pushes the caller's audio as
//     the pipeline masked it for the agent into the call's fromCaller
//     ring, and adds each coaching or barging monitor's voice (its toAgent
//     ring) into what it sends the agent;
//   - the agent bridge (agent leg's reader) pushes the agent's audio into
//     fromAgent and adds barging monitors' voices (toCaller) into what it
//     sends the caller;
//   - each monitor leg's reader pushes the supervisor's voice into its
//     toAgent and toCaller rings, as its mode and the gate allow;
//   - the call's monitor tick, on the shared media clock, mixes 20 ms of
//     fromCaller and fromAgent and sends it to every monitor leg.
//
// Every ring is a pcmRing: one producer, one consumer, no lock, no
// allocation; a full ring drops and counts. A plain call (no monitor)
// pays one atomic load per packet in each bridge.

// MonitorMode is what a monitor leg does on a call.
type MonitorMode uint8

// Monitor modes (Asterisk ChanSpy's keys 4, 5, 6 switch between them on
// the supervisor's phone).
const (
	// MonitorListen hears caller and agent, and says nothing.
	MonitorListen MonitorMode = iota + 1
	// MonitorCoach hears both and is heard by the agent only.
	MonitorCoach
	// MonitorBarge hears both and is heard by both.
	MonitorBarge
)

// String names the mode.
func (m MonitorMode) String() string {
	switch m {
	case MonitorListen:
		return "listen"
	case MonitorCoach:
		return "coach"
	case MonitorBarge:
		return "barge"
	}
	return "unknown"
}

func (m MonitorMode) toAgent() bool  { return m == MonitorCoach || m == MonitorBarge }
func (m MonitorMode) toCaller() bool { return m == MonitorBarge }

// ParseMonitorMode reads "listen", "coach" or "barge".
func ParseMonitorMode(s string) (MonitorMode, error) {
	switch s {
	case "listen":
		return MonitorListen, nil
	case "coach":
		return MonitorCoach, nil
	case "barge":
		return MonitorBarge, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrMonitorMode, s)
}

// monitorKeys maps a supervisor's key to a mode (as ChanSpy's).
func monitorKey(d byte) (MonitorMode, bool) {
	switch d {
	case '4':
		return MonitorListen, true
	case '5':
		return MonitorCoach, true
	case '6':
		return MonitorBarge, true
	}
	return 0, false
}

// Errors of monitoring.
var (
	ErrMonitorMode      = errors.New("unknown monitor mode (want listen, coach or barge)")
	ErrMonitorTarget    = errors.New("monitor target is neither a SIP URI nor a user with a contact")
	ErrMonitorLimit     = errors.New("the call has its maximum number of monitors")
	ErrNoMonitor        = errors.New("no such monitor on the call")
	ErrNotSupervisor    = errors.New("not a supervisor of the call's queue")
	ErrMonitorSupervise = errors.New("a SIP URI target needs the supervisor's name")
)

// MonitorConfig configures monitoring (Config.Monitor).
type MonitorConfig struct {
	// MaxPerCall is how many monitor legs one call may have; 0 means 3.
	MaxPerCall int
	// Beep plays a short tone to caller and agent when a monitor joins.
	Beep bool
	// Supervisors maps a queue's name to the supervisors who may monitor
	// its calls. A queue with none cannot be monitored.
	Supervisors map[string][]string
	// RingTimeout is how long a supervisor's phone rings (0: 20 s).
	RingTimeout time.Duration
	// OnAudit, when set, receives every start, mode change and stop (the
	// archive's audit log). It runs on the acting goroutine: it must hand
	// off and return.
	OnAudit func(MonitorAudit)
	// DialCode is the prefix of the number a supervisor dials, followed
	// by an agent's name, to monitor that agent's call on the phone they
	// dial from (features.monitor_code, "*55"; monitor_dialin.go). Empty
	// disables it.
	DialCode string
	// Users maps the SIP user a dial-in authenticated as (agents[].name)
	// to the user it monitors as (agents[].user); a SIP user not listed
	// monitors as itself.
	Users map[string]string
	// MayMonitor is asked whether a dial-in's user may monitor at all:
	// a user whose role grants calls.monitor, as the API's route table
	// asks of the API's callers; queues[].supervisors is checked after
	// it. Nil refuses every dial-in (there are no users to ask).
	MayMonitor func(user string) bool
}

// MonitorAudit is one monitoring action, for the audit log.
type MonitorAudit struct {
	At         time.Time
	Call       string // the interaction monitored
	Monitor    string // the monitor's id on the call
	Supervisor string
	// Action is monitor_start, monitor_mode or monitor_stop.
	Action string
	Mode   string
	// Via is what asked: api, dtmf, hangup, call_ended.
	Via string
}

// Monitor audit actions.
const (
	AuditMonitorStart = "monitor_start"
	AuditMonitorMode  = "monitor_mode"
	AuditMonitorStop  = "monitor_stop"
)

// MonitorRequest asks to attach a supervisor's phone to a call.
type MonitorRequest struct {
	Mode MonitorMode
	// Target is a user with a contact (a registered softphone) or a SIP URI.
	Target string
	// Supervisor is who monitors; empty means Target (a user name).
	Supervisor string
	// Via says who asked ("api").
	Via string
}

// MonitorInfo is a monitor in the call's API view.
type MonitorInfo struct {
	ID         string    `json:"id"`
	Mode       string    `json:"mode"`
	Supervisor string    `json:"supervisor"`
	Since      time.Time `json:"since"`
}

// monitor is one supervisor's leg on a call.
type monitor struct {
	c          *Interaction
	id         string
	supervisor string
	since      time.Time
	mode       atomic.Uint32 // MonitorMode
	leg        monitorLeg
	ep         *media.Endpoint
	untick     func()

	// The supervisor's voice: pushed by this leg's reader, taken by the
	// caller bridge (toAgent) and the agent bridge (toCaller).
	toAgent, toCaller pcmRing

	enc     []byte // the monitor tick's encode buffer
	marked  bool   // the tick sent our first frame (marker set)
	stopped sync.Once
	via     atomic.Value // string: why it ended, for the audit
	done    chan struct{}
}

// monitorLeg is a supervisor's dialog: the leg cloak placed to their
// phone (the API) or their own INVITE (a dial-in, *55).
type monitorLeg interface {
	Hangup(ctx context.Context) error
	Context() context.Context
	SIPCallID() string
}

// monitorHub is a call's monitoring state, made with its first monitor.
type monitorHub struct {
	// The call's two voices for the monitors: pushed by the bridges, mixed
	// by the tick.
	fromCaller, fromAgent pcmRing
	mix                   [audio.SamplesPerFrame]int16 // the tick's
	skipped               atomic.Uint64                // caller packets not tapped: not masked

	mu      sync.Mutex // guards the fields below
	list    []*monitor
	pending int // dials in progress, counted against the limit
	next    int
	untick  func()
	closed  bool
}

// monitorSet is the immutable snapshot the media path reads.
type monitorSet struct {
	hub  *monitorHub
	list []*monitor
}

// maxMonitors is Config.Monitor.MaxPerCall with its default.
func (m *Manager) maxMonitors() int {
	if n := m.cfg.Monitor.MaxPerCall; n > 0 {
		return n
	}
	return 3
}

// hubLocked returns the call's monitor hub, making it (and subscribing
// its tick) on first use. c.mu is held.
func (c *Interaction) hubLocked() *monitorHub {
	if c.monHub == nil {
		c.monHub = &monitorHub{}
		c.monHub.untick = c.m.cfg.Clock.Subscribe(c.monitorTick)
	}
	return c.monHub
}

// publishMonitors swaps the snapshot the media path reads. h.mu is held.
func (c *Interaction) publishMonitorsLocked(h *monitorHub) {
	if len(h.list) == 0 {
		c.monitors.Store(nil)
		return
	}
	c.monitors.Store(&monitorSet{hub: h, list: slices.Clone(h.list)})
}

// StartMonitor calls the supervisor's phone and attaches it to the call
// in req.Mode once it answers; it returns the monitor's id. The call
// must be bridged to an agent, and the supervisor must supervise its
// queue. Joining a call in a referral or a secure segment is allowed: the
// gate keeps the monitor hearing nothing until the call is Normal again.
func (c *Interaction) StartMonitor(ctx context.Context, req MonitorRequest) (string, error) {
	if req.Mode < MonitorListen || req.Mode > MonitorBarge {
		return "", ErrMonitorMode
	}
	side := c.agentSideNow()
	if side == nil {
		return "", ErrNotBridged
	}
	uri, sup, err := c.monitorTarget(req.Target, req.Supervisor)
	if err != nil {
		return "", err
	}
	if err := c.maySupervise(side, sup); err != nil {
		return "", err
	}
	return c.addMonitor(sup, req.Mode, req.Via, func(id string) (*monitor, error) {
		return c.dialMonitor(ctx, uri, id, sup, req.Mode)
	})
}

// maySupervise checks that sup is a supervisor of side's queue
// (queues[].supervisors).
func (c *Interaction) maySupervise(side *agentSide, sup string) error {
	if !slices.Contains(c.m.cfg.Monitor.Supervisors[side.queue.Name], sup) {
		return fmt.Errorf("%w %q", ErrNotSupervisor, side.queue.Name)
	}
	return nil
}

// addMonitor reserves a monitor slot on the call, has open set up the
// supervisor's leg under the new id, and attaches it; it returns the
// monitor's id. The start is audited (via says who asked) and, with
// monitor.beep, announced.
func (c *Interaction) addMonitor(sup string, mode MonitorMode, via string, open func(id string) (*monitor, error)) (string, error) {
	c.mu.Lock()
	h := c.hubLocked()
	c.mu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return "", ErrNotBridged
	}
	if len(h.list)+h.pending >= c.m.maxMonitors() {
		h.mu.Unlock()
		return "", ErrMonitorLimit
	}
	h.pending++
	h.next++
	id := "m" + strconv.Itoa(h.next)
	h.mu.Unlock()
	mon, err := open(id)
	h.mu.Lock()
	h.pending--
	if err == nil && h.closed {
		err = ErrNotBridged
	}
	if err == nil {
		select {
		case <-mon.done:
			err = errors.New("supervisor hung up at once")
		default:
		}
	}
	if err != nil {
		h.mu.Unlock()
		if mon != nil {
			mon.hangup("call_ended")
		}
		c.log.Info().Str("monitor", id).Str("supervisor", sup).Err(err).Msg("monitor leg failed")
		return "", err
	}
	h.list = append(h.list, mon)
	c.publishMonitorsLocked(h)
	h.mu.Unlock()
	// From now on the caller leg's pipeline masks every frame (the stream
	// the monitors hear), whatever the queue's DTMF policy.
	if c.pipe != nil {
		c.pipe.want.Or(wantMasked)
	}
	c.auditMonitor(mon, AuditMonitorStart, mode, via)
	if side := c.agentSideNow(); side != nil && c.m.cfg.Monitor.Beep {
		c.beep(side)
	}
	return mon.id, nil
}

// monitorTarget resolves a request's target to a URI to dial and names
// the supervisor.
func (c *Interaction) monitorTarget(target, sup string) (uri, who string, err error) {
	if target == "" || len(target) > 256 || strings.ContainsFunc(target, func(r rune) bool { return r < 0x21 || r == 0x7f || r == '<' || r == '>' || r == '"' }) {
		return "", "", ErrMonitorTarget
	}
	if strings.HasPrefix(target, "sip:") || strings.HasPrefix(target, "sips:") {
		if sup == "" {
			return "", "", ErrMonitorSupervise
		}
		return target, sup, nil
	}
	if sup == "" {
		sup = target
	}
	if c.m.dir != nil {
		for _, a := range c.m.dir.Agents() {
			if a.Name == target && a.Contact != "" {
				return a.Contact, sup, nil
			}
		}
	}
	return "", "", fmt.Errorf("%w: %q", ErrMonitorTarget, target)
}

// dialMonitor places the supervisor's leg with its own RTP endpoint and
// pipeline (the supervisor's keys switch the mode).
func (c *Interaction) dialMonitor(ctx context.Context, target, id, sup string, mode MonitorMode) (*monitor, error) {
	ep, local, err := c.legToward(uriHost(target))
	if err != nil {
		return nil, err
	}
	ring := c.m.cfg.Monitor.RingTimeout
	if ring <= 0 {
		ring = 20 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, ring)
	defer cancel()
	leg, err := c.m.srv.Dial(rctx, target, sip.DialOptions{
		Local: local, FromUser: "cloak-monitor", Log: c.log,
	})
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	m, err := c.attachMonitor(leg, ep, leg.Media(), id, sup, mode)
	if err != nil {
		_ = ep.Close()
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer hcancel()
		_ = leg.Hangup(hctx)
		return nil, err
	}
	leg.SetCallbacks(monitorMedia(ep), infoHandler(m.onKey), func(string) int { return 403 }) // a monitor refers nobody anywhere
	return m, nil
}

// attachMonitor makes the monitor of a supervisor's leg whose dialog is
// up with media md on ep: its own pipeline (the supervisor's keys switch
// the mode), its ticks, and its end when the dialog ends.
func (c *Interaction) attachMonitor(leg monitorLeg, ep *media.Endpoint, md sip.Media, id, sup string, mode MonitorMode) (*monitor, error) {
	if err := monitorMedia(ep)(md); err != nil {
		return nil, err
	}
	m := &monitor{c: c, id: id, supervisor: sup, since: time.Now(), leg: leg, ep: ep, done: make(chan struct{})}
	m.mode.Store(uint32(mode))
	pipe := newPipeline(c, c.rtpCap, false, dtmf.Negotiated, m.onKey)
	ep.SetMonitor(pipe)
	ep.SetHandler(m)
	c.addLegCapture(leg.SIPCallID())
	ep.StartBeside(c.caller) // the call's poll worker (media.Endpoint.StartBeside)
	ep.StartFill()
	m.untick = c.m.cfg.Clock.Subscribe(pipe.tick)
	context.AfterFunc(leg.Context(), func() { c.monitorGone(m) })
	return m, nil
}

// monitorMedia applies a supervisor leg's negotiated media (the answer,
// and each re-INVITE) to its endpoint, SRTP keys first.
func monitorMedia(ep *media.Endpoint) func(sip.Media) error {
	return func(nm sip.Media) error {
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
	}
}

// onKey switches the mode from the supervisor's phone: 4 listen, 5
// coach, 6 barge; other keys do nothing.
func (m *monitor) onKey(d byte, _ dtmf.Source) {
	if mode, ok := monitorKey(d); ok {
		_ = m.c.setMonitorMode(m, mode, "dtmf")
	}
}

// HandleRTP implements media.Handler for the supervisor's leg: their
// voice goes to the agent (coach, barge) and the caller (barge) as the
// gate allows. Their keys are mode switches and reach nobody.
func (m *monitor) HandleRTP(e *media.Endpoint, p *media.Packet) {
	if p.IsEvent {
		return
	}
	mm := MonitorMode(m.mode.Load())
	if !mm.toAgent() {
		return
	}
	mode := m.c.Mode()
	toAgent := Route(mode, MonitorToAgent) == Pass
	toCaller := mm.toCaller() && Route(mode, MonitorToCaller) == Pass
	if !toAgent && !toCaller {
		return
	}
	pcm := audioOf(e, p)
	if pcm == nil {
		return
	}
	if toAgent {
		m.toAgent.push(pcm)
	}
	if toCaller {
		m.toCaller.push(pcm)
	}
}

// SetMonitorMode switches a monitor's mode (the API; the supervisor's
// keys do the same).
func (c *Interaction) SetMonitorMode(id string, mode MonitorMode, via string) error {
	m := c.findMonitor(id)
	if m == nil {
		return ErrNoMonitor
	}
	return c.setMonitorMode(m, mode, via)
}

func (c *Interaction) setMonitorMode(m *monitor, mode MonitorMode, via string) error {
	if mode < MonitorListen || mode > MonitorBarge {
		return ErrMonitorMode
	}
	if MonitorMode(m.mode.Swap(uint32(mode))) == mode {
		return nil
	}
	c.auditMonitor(m, AuditMonitorMode, mode, via)
	return nil
}

// StopMonitor hangs up a monitor leg.
func (c *Interaction) StopMonitor(id, via string) error {
	m := c.findMonitor(id)
	if m == nil {
		return ErrNoMonitor
	}
	m.hangup(via)
	select {
	case <-m.done:
	case <-time.After(6 * time.Second): // the dialog ends on its own timers
	}
	return nil
}

func (c *Interaction) findMonitor(id string) *monitor {
	ms := c.monitors.Load()
	if ms == nil {
		return nil
	}
	for _, m := range ms.list {
		if m.id == id {
			return m
		}
	}
	return nil
}

// hangup ends the monitor's leg; monitorGone runs when its dialog ends.
func (m *monitor) hangup(via string) {
	m.via.CompareAndSwap(nil, via)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.leg.Hangup(ctx)
}

// monitorGone runs once the monitor's dialog has ended: it leaves the
// call and its media is released.
func (c *Interaction) monitorGone(m *monitor) {
	m.stopped.Do(func() {
		defer close(m.done)
		c.mu.Lock()
		h := c.monHub
		c.mu.Unlock()
		if h != nil {
			h.mu.Lock()
			if i := slices.Index(h.list, m); i >= 0 {
				h.list = slices.Delete(h.list, i, i+1)
				c.publishMonitorsLocked(h)
			}
			h.mu.Unlock()
		}
		m.untick()
		_ = m.ep.Close()
		m.via.CompareAndSwap(nil, "hangup")
		via, _ := m.via.Load().(string)
		c.auditMonitor(m, AuditMonitorStop, MonitorMode(m.mode.Load()), via)
	})
}

// stopMonitors ends every monitor of a call that is ending.
func (c *Interaction) stopMonitors() {
	c.mu.Lock()
	h := c.monHub
	c.mu.Unlock()
	if h == nil {
		return
	}
	h.mu.Lock()
	h.closed = true
	list := slices.Clone(h.list)
	h.mu.Unlock()
	for _, m := range list {
		m.hangup("call_ended")
	}
	for _, m := range list {
		select {
		case <-m.done:
		case <-time.After(6 * time.Second):
		}
	}
	h.untick()
}

// Monitors lists the call's monitors.
func (c *Interaction) Monitors() []MonitorInfo {
	ms := c.monitors.Load()
	if ms == nil {
		return nil
	}
	out := make([]MonitorInfo, 0, len(ms.list))
	for _, m := range ms.list {
		out = append(out, MonitorInfo{ID: m.id, Mode: MonitorMode(m.mode.Load()).String(), Supervisor: m.supervisor, Since: m.since})
	}
	return out
}

// auditMonitor logs a monitoring action with who and which call, and
// hands it to the audit log.
func (c *Interaction) auditMonitor(m *monitor, action string, mode MonitorMode, via string) {
	c.log.Info().Str("monitor", m.id).Str("supervisor", m.supervisor).Str("action", action).
		Str("monitor_mode", mode.String()).Str("via", via).Msg("monitor " + strings.TrimPrefix(action, "monitor_"))
	if f := c.m.cfg.Monitor.OnAudit; f != nil {
		f(MonitorAudit{At: time.Now(), Call: c.id, Monitor: m.id, Supervisor: m.supervisor, Action: action, Mode: mode.String(), Via: via})
	}
}

// beepPrompt is the tone caller and agent hear when a monitor joins
// (monitor.beep): 250 ms of 850 Hz at -20 dBm0.
var beepPrompt = sync.OnceValue(func() *media.Prompt {
	pcm := make([]int16, 2000)
	amp := 32768 * math.Pow(10, (-20-3.17)/20) * math.Sqrt2
	for i := range pcm {
		pcm[i] = int16(amp * math.Sin(2*math.Pi*850*float64(i)/8000))
	}
	return media.NewPromptPCM("monitor-beep", pcm)
})

// beep announces a monitor to caller and agent, where the gate lets
// anything reach them (never into a referral or secure segment).
func (c *Interaction) beep(side *agentSide) {
	mode := c.Mode()
	p := beepPrompt()
	if Route(mode, CallerAudio) == Pass {
		go func() { _ = c.caller.Play(c.ctx, p) }()
	}
	if Route(mode, AgentAudio) == Pass {
		go func() { _ = side.ep.Play(c.ctx, p) }()
	}
}

// monitorTick runs on the shared clock: 20 ms of the call's two voices,
// as the gate lets monitors hear them, mixed and sent to every monitor
// leg. Nothing queued while the gate blocks a voice is kept for later.
func (c *Interaction) monitorTick(time.Time) {
	ms := c.monitors.Load()
	if ms == nil {
		return
	}
	h := ms.hub
	mode := c.Mode()
	mix := h.mix[:]
	clear(mix)
	n := 0
	if Route(mode, MonitorCaller) != Block {
		n = h.fromCaller.addTo(mix)
	} else {
		h.fromCaller.flush()
	}
	if Route(mode, MonitorAgent) == Pass {
		n = max(n, h.fromAgent.addTo(mix))
	} else {
		h.fromAgent.flush()
	}
	if n == 0 {
		return // nothing to hear: the legs' filler keeps them alive
	}
	for _, m := range ms.list {
		m.enc = m.ep.Codec().Encode(mix, m.enc[:0])
		marker := !m.marked
		m.marked = true
		_ = m.ep.WriteAudio(m.enc, uint32(len(mix)), marker)
	}
}

// tapCaller hands the caller's audio, as the pipeline masked it for the
// agent, to the monitors; on the caller leg's reader. A frame the
// pipeline did not mask (the first packet after a monitor joined, or
// a pipeline that had nothing to decode) is not tapped: the gate says
// Mask, and only the masked stream will do.
func (ms *monitorSet) tapCaller(mode Mode, p *media.Packet) {
	switch Route(mode, MonitorCaller) {
	case Block:
		return
	case Mask:
		_, out := p.Scratch()
		if len(p.Audio) == 0 || &p.Audio[0] != &out[0] {
			ms.hub.skipped.Add(1)
			return
		}
	}
	ms.hub.fromCaller.push(p.Audio)
}

// tapAgent hands the agent's audio to the monitors; on the agent leg's
// reader.
func (ms *monitorSet) tapAgent(mode Mode, e *media.Endpoint, p *media.Packet) {
	if Route(mode, MonitorAgent) != Pass {
		return
	}
	if pcm := audioOf(e, p); pcm != nil {
		ms.hub.fromAgent.push(pcm)
	}
}

// speaksTo reports whether any monitor's voice may reach the agent
// (toCaller false) or the caller (toCaller true) now.
func (ms *monitorSet) speaksTo(mode Mode, toCaller bool) bool {
	sink := MonitorToAgent
	if toCaller {
		sink = MonitorToCaller
	}
	if Route(mode, sink) != Pass {
		return false
	}
	for _, m := range ms.list {
		mm := MonitorMode(m.mode.Load())
		if toCaller && mm.toCaller() || !toCaller && mm.toAgent() {
			return true
		}
	}
	return false
}

// mixVoices adds the voices of the monitors that may speak to the agent
// (toCaller false) or the caller (toCaller true) into pcm, in place;
// the rings of those that may not are emptied. On the consuming leg's
// reader.
func (ms *monitorSet) mixVoices(mode Mode, pcm []int16, toCaller bool) {
	sink := MonitorToAgent
	if toCaller {
		sink = MonitorToCaller
	}
	open := Route(mode, sink) == Pass
	for _, m := range ms.list {
		mm := MonitorMode(m.mode.Load())
		q, may := &m.toAgent, mm.toAgent()
		if toCaller {
			q, may = &m.toCaller, mm.toCaller()
		}
		if open && may {
			q.addTo(pcm)
		} else {
			q.flush()
		}
	}
}
