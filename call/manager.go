package call

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
	"github.com/cloak-voip/cloak/tones"
	"github.com/rs/zerolog"
)

// Config configures a Manager.
type Config struct {
	// Pool hands out RTP ports; exhaustion answers 503.
	Pool *media.PortPool
	// Clock paces playback for every call.
	Clock *media.Clock
	// MediaAddr is the address advertised in SDP. A wildcard (0.0.0.0 or
	// ::) or zero means per call: this host's address on the route to the
	// peer (see mediaAddrFor).
	MediaAddr netip.Addr
	// RTPSource is which sources every leg accepts RTP from; the zero
	// value is media.SourceStrict.
	RTPSource media.SourcePolicy
	// LearnPackets is the run media.SourceLearn needs; 0 = its default.
	LearnPackets int
	// MaxStaleness is every leg's media.EndpointConfig.MaxStaleness: voice
	// older than this when read is dropped; 0 keeps all.
	MaxStaleness time.Duration
	// InactivityTimeout hangs up a call that received no RTP for this long
	// (not while the caller holds the call). 0 disables it. Accepted RTCP
	// counts as activity.
	InactivityTimeout time.Duration
	// RTCP turns RTCP on for every leg (RFC 3550 §6), reports every
	// RTCPInterval (0: media.DefaultRTCPInterval); RTCPMux is RTCPMuxOffer
	// (also ""), RTCPMuxRequire or RTCPMuxOff.
	RTCP         bool
	RTCPInterval time.Duration
	RTCPMux      string
	// SRTP is the SRTP policy of the legs cloak places (agents, dial:
	// targets): mandatory offers RTP/SAVP with SDES keys over TLS (rtp.srtp).
	// Inbound calls get theirs from the SIP server's policy.
	SRTP sip.SRTPPolicy
	// ChannelData are the INVITE headers kept as participant data
	// (archive.channel_data).
	ChannelData []ChannelHeader
	// Routes maps the called user part to a target: "echo", "tone",
	// "ring", "prompt:NAME".
	Routes map[string]string
	// RingTimeout is how long the "ring" target rings before 480 (default 60 s).
	RingTimeout time.Duration
	// Prompts is where prompts are read: NAME is NAME.wav in it.
	Prompts fs.FS
	// Flows are the IVR flows "flow:NAME" targets run; a called user part
	// that names a flow and has no route runs that flow.
	Flows *ivr.FlowSet
	// Endpoints resolves data_action endpoint names (payment_gateway) to URLs.
	Endpoints map[string]string
	// HTTPClient sends data_action requests (flows.tls: private CA, client
	// certificate); nil uses ivr's default.
	HTTPClient *http.Client
	// Screener screens payments of fraud: true steps (nil: fraud.enabled
	// false); CardTokenKey keys the card token it sees.
	Screener     ivr.Screener
	CardTokenKey []byte
	// Arrival screens each call at arrival (fraud.call, arrival.go).
	Arrival ArrivalConfig
	// Agents and queues; nil when the deployment has none.
	Directory *acd.Directory
	// SecureCode is the agent's in-call feature code ("*7") that sends the
	// caller into SecureFlow (an agent-referred flow). Empty disables it.
	SecureCode string
	SecureFlow string
	// PaymentCode is the agent's feature code that opens an
	// agent-assisted payment from the call's participant data
	// (features.go); empty disables it.
	PaymentCode string
	// RecordCode is the agent's feature code that pauses and resumes the
	// recording ("*9"). Empty disables it.
	RecordCode string
	// RecordingDir is where recordings go; empty records nothing.
	RecordingDir string
	// RecordingKey signs recordings' sidecars (HMAC-SHA256).
	RecordingKey []byte
	// RecordRoutes is the recording policy per called user part
	// (always, consent, on_demand, never); RecordDefault the rest.
	RecordRoutes  map[string]string
	RecordDefault string
	// RecordingSpace, when set, says whether there is room for a new
	// recording (recorder.Space); RecordOnNoSpace is what a call on
	// a route whose policy is always gets when there is not: "refuse"
	// (503 with Retry-After) or "continue" (answered unrecorded).
	RecordingSpace  interface{ Check() error }
	RecordOnNoSpace string
	// Capture is the protocol and media capture (nil sinks: off).
	Capture Capture
	// DTMF is which of the caller's DTMF sources count as keys (the zero
	// value is dtmf.Auto); DTMFRoutes overrides it per called user part.
	DTMF       dtmf.Policy
	DTMFRoutes map[string]dtmf.Policy
	// DTMFTrunks is the mode of calls from each trunk (trunks[].dtmf:
	// how that carrier sends keys); a route's own mode still wins.
	DTMFTrunks map[string]dtmf.Policy
	// Log is the process logger; each call logs with its id.
	Log zerolog.Logger
	// OnEnded, when set, receives each answered-or-not interaction's
	// Summary once it has ended and its recording is closed (the archive).
	// It runs on the call's goroutine: it must hand off and return, never
	// wait on a disk or a database.
	OnEnded func(Summary)
	// Monitor is supervisors' monitoring of calls (monitor.go).
	Monitor MonitorConfig
	// Payments configures agent-assisted payments (payment.go).
	Payments PaymentConfig
	// Metrics, when set, is told of calls, secure segments, digits,
	// queue waits and recordings (see Metrics); nil counts nothing.
	Metrics Metrics
}

// Manager answers calls. It implements sip.Handler.
type Manager struct {
	cfg  Config
	log  zerolog.Logger
	tone *media.Prompt

	runner   *ivr.Runner
	caps     captures
	dir      *acd.Directory
	srv      Dialer
	ringback *media.Prompt

	mu      sync.Mutex
	calls   map[string]*Interaction
	prompts map[string]*media.Prompt // loaded once, shared by every call

	stop chan struct{}
	wg   sync.WaitGroup

	recStats recordingStats
	quality  qualityStats
	arrival  arrivalStats
	met      Metrics // cfg.Metrics, or one that counts nothing
}

// Dialer places outbound legs (the SIP server).
type Dialer interface {
	Dial(ctx context.Context, target string, o sip.DialOptions) (*sip.Leg, error)
}

// SetDialer gives the manager the SIP side for outbound legs (agents,
// transfers); the server and the manager refer to each other, so this is
// set after both exist.
func (m *Manager) SetDialer(d Dialer) { m.srv = d }

// Directory returns the agents and queues (nil when none).
func (m *Manager) Directory() *acd.Directory { return m.dir }

// Call returns the interaction with id, if in progress.
func (m *Manager) Call(id string) (*Interaction, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.calls[id]
	return c, ok
}

// ErrNoRoute means nothing answers the called user part (404).
var ErrNoRoute = errors.New("no route for called user")

// NewManager returns a Manager and starts its inactivity sweeper; Close
// stops it.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Pool == nil || cfg.Clock == nil {
		return nil, errors.New("call: manager needs a port pool and a clock")
	}
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Log,
		tone:     media.NewPromptPCM("tone", tones.Test(time.Second)),
		ringback: media.NewPromptPCM("ringback", tones.Ringback(3*time.Second)),
		dir:      cfg.Directory,
		caps:     captures{byID: map[string]*capture.CallCapture{}, total: cfg.Capture.SIP},
		calls:    map[string]*Interaction{},
		prompts:  map[string]*media.Prompt{},
		stop:     make(chan struct{}),
		met:      cfg.Metrics,
	}
	if m.met == nil {
		m.met = nopMetrics{}
	}
	if cfg.Flows != nil {
		m.runner = &ivr.Runner{Flows: cfg.Flows, Endpoints: cfg.Endpoints, Client: cfg.HTTPClient,
			Screener: cfg.Screener, CardTokenKey: cfg.CardTokenKey}
		// Load every prompt the flows name now: a missing one is a start-up
		// error, not a silent gap in a caller's call.
		for _, name := range cfg.Flows.Prompts() {
			if _, err := m.prompt(name); err != nil {
				return nil, fmt.Errorf("call: flows: %w", err)
			}
		}
	}
	for user, target := range cfg.Routes {
		if name, ok := strings.CutPrefix(target, "prompt:"); ok {
			if _, err := m.prompt(name); err != nil {
				return nil, fmt.Errorf("call: route %q: %w", user, err)
			}
		}
		if name, ok := flowTarget(target); ok {
			if cfg.Flows == nil {
				return nil, fmt.Errorf("call: route %q: no flows loaded for %q", user, name)
			}
			if _, ok := cfg.Flows.Flow(name); !ok {
				return nil, fmt.Errorf("call: route %q: %w %q", user, ivr.ErrUnknownFlow, name)
			}
		}
	}
	if err := m.checkArrivalRoute(); err != nil {
		return nil, err
	}
	if cfg.InactivityTimeout > 0 {
		m.wg.Add(1)
		go m.sweep()
	}
	return m, nil
}

// prompt returns a loaded prompt, loading it on first use.
func (m *Manager) prompt(name string) (*media.Prompt, error) {
	m.mu.Lock()
	p, ok := m.prompts[name]
	m.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := m.loadPrompt(name)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.prompts[name] = p
	m.mu.Unlock()
	return p, nil
}

func (m *Manager) loadPrompt(name string) (*media.Prompt, error) {
	if m.cfg.Prompts == nil {
		return nil, fmt.Errorf("prompt %q: no prompt directory", name)
	}
	file := name
	if !strings.HasSuffix(file, ".wav") {
		file += ".wav"
	}
	return media.LoadPrompt(m.cfg.Prompts, file)
}

func (m *Manager) ringLimit() time.Duration {
	if m.cfg.RingTimeout > 0 {
		return m.cfg.RingTimeout
	}
	return 60 * time.Second
}

// Close stops the sweeper. Calls in progress are not touched: see HangupAll.
func (m *Manager) Close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
}

// Active returns the number of interactions in progress.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// Calls returns the interactions in progress.
func (m *Manager) Calls() []*Interaction {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Interaction, 0, len(m.calls))
	for _, c := range m.calls {
		out = append(out, c)
	}
	return out
}

// HangupAll ends every call in progress with the given reason.
func (m *Manager) HangupAll(reason string) {
	m.mu.Lock()
	calls := make([]*Interaction, 0, len(m.calls))
	for _, c := range m.calls {
		calls = append(calls, c)
	}
	m.mu.Unlock()
	for _, c := range calls {
		c.end(reason)
	}
}

// target resolves the route for a called user part.
func (m *Manager) target(user string) (string, error) {
	if t, ok := m.cfg.Routes[user]; ok {
		return t, nil
	}
	if m.cfg.Flows != nil {
		if _, ok := m.cfg.Flows.Flow(user); ok {
			return "flow:" + user, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrNoRoute, user)
}

// HandleCall implements sip.Handler: it answers the session and runs the
// routed application until the call ends.
func (m *Manager) HandleCall(s *sip.Session) {
	log := s.Log()
	if agent, ok := m.dialInAgent(s.Called()); ok {
		m.monitorDialIn(s, agent)
		return
	}
	target, err := m.target(s.Called())
	if err != nil {
		log.Info().Str("called", s.Called()).Msg("no route")
		_ = s.Reject(404, "Not Found")
		return
	}
	if !m.admitRecording(s) {
		return
	}
	mediaAddr, err := m.mediaAddrFor(s.Source().Addr())
	if err != nil {
		log.Warn().Err(err).Msg("no address to advertise for RTP")
		_ = s.Refuse(sip.RefusedPorts)
		return
	}
	offered, early := s.Offer()
	if early && m.cfg.RTCP && m.cfg.RTCPMux == RTCPMuxRequire && !offered.RTCPMux {
		log.Info().Msg("offer without a=rtcp-mux refused (rtp.rtcp.mux: require)")
		_ = s.Reject(488, "Not Acceptable Here")
		return
	}
	cfg, port, err := m.openLeg(log)
	if err != nil {
		log.Warn().Err(err).Msg("no RTP port for call")
		_ = s.Refuse(sip.RefusedPorts)
		return
	}
	if early {
		cfg.Remote = offered.Remote
		cfg.Codec = offered.Codec
		cfg.EventPT = offered.EventPT
		cfg.CNPT = offered.CNPT
	}
	ep := media.NewEndpoint(cfg)
	if early {
		ep.SetDirection(offered.Direction)
		// SRTP keys before the first packet is read (media/srtp.go).
		if err := applySRTP(ep, offered); err != nil {
			log.Warn().Err(err).Msg("srtp setup failed")
			_ = ep.Close()
			_ = s.Reject(488, "Not Acceptable Here")
			return
		}
	}
	ep.Start()
	c := newInteraction(m, s, ep, target)
	trunkData(c, s.Identity())
	channelData(c, s, m.cfg.ChannelData)
	defer m.ended(c, time.Now()) // after close: the recording is finished
	defer c.close()
	admit := m.screenArrival(c) // may change c.target: before anyone reads it
	target = c.target
	if admit {
		c.secureFromAnswer() // before the call is listed, recorded or captured
	}
	// The captures before the answer: a secure route's 200 OK and the ACK
	// racing it are inside its segment and must find them dark
	// (capture.go), not the process-wide sink of calls not yet known.
	c.openCaptures()
	m.register(c)
	defer m.unregister(c)
	m.met.CallStarted(routeLabel(target))
	if !admit {
		// RFC 3261 §21.6.2: 603 Decline, a global failure — a proxy in
		// front (Kamailio's dispatcher) must not retry another node,
		// which would screen the caller again (§16.7: a 6xx ends the
		// forking). The reason phrase tells the caller nothing more.
		c.end("fraud-reject")
		_ = s.Reject(603, "Decline")
		return
	}

	s.SetCallbacks(c.onMediaChange, infoHandler(c.onDigitReceived))
	if early {
		c.applyMedia(offered)
	}
	if target == "ring" {
		// Ring until the caller gives up (CANCEL) or the ring limit passes.
		// The only route that sends 180: every other one answers at once
		// (after the server's 100 Trying), with no ringing nobody hears
		// that a multi-worker proxy could deliver after the 200. An
		// agent's phone rings only after the caller was answered, and the
		// caller hears that as ringback audio (agentleg.go).
		if err := s.Ringing(); err != nil {
			return
		}
		select {
		case <-s.Done():
			log.Info().Str("reason", s.EndReason()).Msg("caller gave up while ringing")
		case <-c.ended:
			_ = s.Reject(503, "Service Unavailable")
		case <-time.After(m.ringLimit()):
			_ = s.Reject(480, "Temporarily Unavailable")
		}
		return
	}
	agreed, err := s.Answer(sip.LocalSDP{Addr: mediaAddr, Port: port, RTCPMux: m.rtcpMuxAllowed()})
	if err != nil {
		log.Info().Err(err).Msg("call not answered")
		return
	}
	// The media was applied from the offer before answering, or by the
	// callback (late offer, re-INVITEs) in order: agreed is used only for
	// the codec name.
	c.answered.CompareAndSwap(0, time.Now().UnixNano())
	m.met.CallAnswered(routeLabel(target), time.Since(c.created))
	c.startRecording(agreed.Codec.Name)
	if mode := c.Mode(); mode != Normal {
		// The gate closed before the answer (secureFromAnswer): the
		// recording, which exists only from now on, starts dark.
		c.mu.Lock()
		c.applySinks(mode, true)
		c.mu.Unlock()
	}
	c.pipe = newPipeline(c, c.rtpCap, true, m.dtmfMode(s.Called(), s.Trunk()), c.onDigitReceived)
	c.pipe.onKeyDown = c.onCallerKeyDown // an agent-assisted payment's mask tone
	ep.SetMonitor(c.pipe)
	// From the answer on the caller hears a packet every 20 ms: prompts,
	// the agent, or between them the filler (media.Endpoint.StartFill).
	ep.StartFill()
	untick := m.cfg.Clock.Subscribe(c.pipe.tick)
	defer untick()
	c.run()
}

// dtmfMode returns the DTMF mode of calls to the called user part from
// trunk ("" for none): the route's, else the trunk's, else dtmf.mode.
func (m *Manager) dtmfMode(called, trunk string) dtmf.Policy {
	if mode, ok := m.cfg.DTMFRoutes[called]; ok {
		return mode
	}
	if mode, ok := m.cfg.DTMFTrunks[trunk]; ok && trunk != "" {
		return mode
	}
	return m.cfg.DTMF
}

// endpointConfig is a leg's media.EndpointConfig on conn: every leg gets
// the configured source policy.
func (m *Manager) endpointConfig(conn net.PacketConn, port int, log zerolog.Logger) media.EndpointConfig {
	return media.EndpointConfig{Conn: conn, Port: port, Pool: m.cfg.Pool, Clock: m.cfg.Clock, Log: log,
		Source: m.cfg.RTPSource, LearnPackets: m.cfg.LearnPackets, MaxStaleness: m.cfg.MaxStaleness}
}

// mediaAddrFor is the address our SDP advertises to a peer at dst:
// MediaAddr, or when that is a wildcard the address of this host's
// interface on the route to dst (media.LocalAddrToward).
func (m *Manager) mediaAddrFor(dst netip.Addr) (netip.Addr, error) {
	if a := m.cfg.MediaAddr; a.IsValid() && !a.IsUnspecified() {
		return a, nil
	}
	return media.LocalAddrToward(dst)
}

func (m *Manager) register(c *Interaction) {
	m.mu.Lock()
	m.calls[c.id] = c
	m.mu.Unlock()
}

func (m *Manager) unregister(c *Interaction) {
	m.mu.Lock()
	delete(m.calls, c.id)
	m.mu.Unlock()
}

// sweep is the one goroutine that checks every call for RTP inactivity,
// once a second, rather than a timer per call.
func (m *Manager) sweep() {
	defer m.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.mu.Lock()
			var idle []*Interaction
			for _, c := range m.calls {
				if c.idleSince(now) > m.cfg.InactivityTimeout {
					idle = append(idle, c)
				}
			}
			m.mu.Unlock()
			for _, c := range idle {
				c.log.Info().Str("timeout", m.cfg.InactivityTimeout.String()).Msg("no RTP received: hanging up")
				c.end("rtp-timeout")
			}
		}
	}
}
