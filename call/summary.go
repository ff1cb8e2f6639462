package call

import (
	"strings"
	"time"

	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/recorder"
)

// Summary is what an interaction leaves when it has ended: its general
// information, participant data, secure segments, flow trace and
// recording. It is built from what the gate already let through, so it
// holds no digit of a secure segment: participant data and outputs are
// non-secret by construction (the flow validator refuses a secret there,
// and the gate blocks SetData in secure mode), trace details of a secure
// flow are masked, and a recording's markers name no content. The
// archive stores it (Config.OnEnded).
type Summary struct {
	ID        string `json:"id"`
	SIPCallID string `json:"sip_call_id"`
	// Caller is the user part of From; Called the Request-URI's.
	Caller string `json:"caller"`
	Called string `json:"called"`
	// CallerName is From's display name; AssertedID and AssertedName the
	// first P-Asserted-Identity's user (number) and display name (RFC
	// 3325 §9.1). All as the peer sent them, verified by nobody.
	CallerName   string `json:"caller_name,omitempty"`
	AssertedID   string `json:"asserted_id,omitempty"`
	AssertedName string `json:"asserted_name,omitempty"`
	// Target is what answered the call ("flow:main", "echo", …).
	Target string `json:"target"`
	// Queue and Agent are set when the call reached an agent.
	Queue string `json:"queue,omitempty"`
	Agent string `json:"agent,omitempty"`
	// Offered is when cloak took the call; Answered when it answered
	// (zero if never); Queued when it entered a queue; AgentAnswered when
	// an agent was bridged; Ended when the interaction was closed.
	Offered       time.Time `json:"offered"`
	Answered      time.Time `json:"answered,omitzero"`
	Queued        time.Time `json:"queued,omitzero"`
	AgentAnswered time.Time `json:"agent_answered,omitzero"`
	Ended         time.Time `json:"ended"`
	// EndReason is why cloak ended the interaction ("closed" when the
	// dialog ended first); SIPEndReason why the caller's dialog ended
	// ("bye", "hangup", "cancel", …).
	EndReason    string `json:"end_reason"`
	SIPEndReason string `json:"sip_end_reason"`
	// Consent is "accepted", "declined" or "not_asked".
	Consent  string            `json:"consent"`
	Data     map[string]string `json:"data,omitempty"`
	Segments []SecureSegment   `json:"secure_segments,omitempty"`
	Trace    []ivr.TraceEvent  `json:"trace,omitempty"`
	// Recording is the finished recording, nil when none was kept.
	Recording *recorder.Result `json:"recording,omitempty"`
	// Quality is each ended leg's final call quality (RTP receive and
	// RTCP figures): the caller's first, then the agent legs. A leg
	// still open when the summary is built (an agent leg that outlived
	// close's wait) is missing.
	Quality []LegQuality `json:"quality,omitempty"`
}

// Consent states of Summary.Consent.
const (
	ConsentAccepted = "accepted"
	ConsentDeclined = "declined"
	ConsentNotAsked = "not_asked"
)

// ended hands the interaction's Summary to Config.OnEnded. HandleCall
// defers it before close, so it runs after close: the recording and the
// captures are finished and the caller leg's quality is known; offered
// is when HandleCall took the call.
func (m *Manager) ended(c *Interaction, offered time.Time) {
	if m.cfg.OnEnded == nil {
		return
	}
	m.cfg.OnEnded(c.summary(offered, time.Now()))
}

// summary builds the interaction's Summary.
func (c *Interaction) summary(offered, ended time.Time) Summary {
	reason, _ := c.reason.Load().(string)
	s := Summary{
		ID: c.id, SIPCallID: c.s.SIPCallID(), Caller: c.s.Caller(), Called: c.s.Called(), Target: c.target,
		Offered: offered, Ended: ended, EndReason: reason, SIPEndReason: c.s.EndReason(),
		Data: c.Data(), Segments: c.Segments(), Trace: c.TraceEvents(), Recording: c.recorded.Load(),
		CallerName: c.s.CallerName(), Quality: c.endedLegs(),
	}
	s.AssertedID, s.AssertedName = c.s.AssertedIdentity()
	if a := c.answered.Load(); a != 0 {
		s.Answered = time.Unix(0, a)
	}
	c.mu.Lock()
	if side := c.side; side != nil {
		s.Queue = side.queue.Name
		if side.agent != nil {
			s.Agent = side.agent.Name()
		}
	}
	c.mu.Unlock()
	for _, ev := range c.bus.events() {
		switch {
		case ev.Type == "state" && ev.State == "queued" && s.Queued.IsZero():
			s.Queued = ev.Time
		case ev.Type == "state" && ev.State == "bridged" && s.AgentAnswered.IsZero():
			s.AgentAnswered = ev.Time
		}
	}
	switch {
	case truthy(s.Data[DataDenyRecording]):
		s.Consent = ConsentDeclined
	case strings.EqualFold(s.Data[DataRecordingConsent], "accepted"):
		s.Consent = ConsentAccepted
	default:
		s.Consent = ConsentNotAsked
	}
	return s
}
