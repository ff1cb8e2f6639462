package call

// Mode is an interaction's mode: what the call is doing, as far as the
// sinks of its data care. It is the only state of the call the sinks
// read, and it is switched in one place (Interaction.setMode): by an
// agent's referral (Referred), and by entering and leaving a secure
// segment (Secure). docs/ARCHITECTURE.md, "The secure gate".
type Mode uint8

// Modes.
const (
	// Normal: the caller talks to the IVR or to the agent.
	Normal Mode = iota
	// Referred: an agent sent the caller into a flow and is reserved for
	// the return; caller and agent do not hear each other. A referred
	// flow's secure segment is Secure; when it ends the call is Referred
	// again until the flow returns the caller or ends.
	Referred
	// Secure: a secure segment collects sensitive data.
	Secure
	// Payment: an agent-assisted payment (payment.go): caller and agent
	// keep talking, the caller's keys go only into the payment's secret
	// fields, and the agent hears each key as a flat tone.
	Payment
	numModes
)

var modeNames = [numModes]string{"normal", "referred", "secure", "payment"}

// String names the mode.
func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return "unknown"
}

// Sink is a destination of call data. Every sink asks the gate what it may
// receive; none decides on its own.
type Sink uint8

// Sinks.
const (
	// AgentAudio is the caller's audio towards the agent (and monitors).
	AgentAudio Sink = iota
	// AgentDTMF is the caller's digits towards the agent: RFC 4733 events,
	// in-band tones, and the digits shown on the agent's screen.
	AgentDTMF
	// CallerAudio is the agent's audio towards the caller.
	CallerAudio
	// Recorder is the call recording.
	Recorder
	// ProtocolCapture is SIP capture (pcap, HEP).
	ProtocolCapture
	// MediaCapture is RTP capture (pcap).
	MediaCapture
	// ParticipantData is the key/value data attached to the interaction.
	ParticipantData
	// FlowTrace is the flow execution history.
	FlowTrace
	// Logs is every log line about the call.
	Logs
	// MonitorCaller is the caller's audio towards a supervisor's monitor
	// leg (monitor.go): Mask is the agent-bound stream with in-band tones
	// removed, whatever the queue's DTMF policy; a monitor never receives
	// an RFC 4733 event, a prompt or a read-back.
	MonitorCaller
	// MonitorAgent is the agent's audio towards a monitor leg.
	MonitorAgent
	// MonitorToAgent is a monitor's voice towards the agent (coach and
	// barge; the monitor's own mode narrows it further).
	MonitorToAgent
	// MonitorToCaller is a monitor's voice towards the caller (barge).
	MonitorToCaller
	numSinks
)

var sinkNames = [numSinks]string{"agent_audio", "agent_dtmf", "caller_audio", "recorder", "protocol_capture", "media_capture", "participant_data", "flow_trace", "logs",
	"monitor_caller", "monitor_agent", "monitor_to_agent", "monitor_to_caller"}

// String names the sink.
func (s Sink) String() string {
	if s < numSinks {
		return sinkNames[s]
	}
	return "unknown"
}

// Decision is what a sink receives.
type Decision uint8

// Decisions.
const (
	// Pass: the sink receives the data as it is.
	Pass Decision = iota
	// Mask: the sink receives the event but every digit or sensitive value
	// is replaced by its mask (`*`, `************1111`); for agent audio,
	// the caller's speech with each key blanked and replaced by the
	// payment's mask tone (payment_tone.go).
	Mask
	// Block: the sink receives nothing. For audio sinks that means silence
	// (or hold audio) in place of the caller, so timelines stay intact; for
	// the recorder a pause with silence fill; for captures, suppression
	// with a marker.
	Block
)

// String names the decision.
func (d Decision) String() string {
	switch d {
	case Mask:
		return "mask"
	case Block:
		return "block"
	}
	return "pass"
}

// gateTable is the secure gate: for each mode, what each sink receives.
// It is the single source of these decisions (docs/ARCHITECTURE.md, "The
// secure gate"); TestGateTable pins every cell, and
// TestEverySinkAsksTheGate fails if code in this package feeds a sink
// without asking Route.
var gateTable = [numModes][numSinks]Decision{
	Normal: {
		AgentAudio:      Pass, // in-band tones are masked by the DTMF policy, not the mode
		AgentDTMF:       Pass, // subject to the queue's DTMF policy (pass or mask always)
		CallerAudio:     Pass,
		Recorder:        Pass,
		ProtocolCapture: Pass,
		MediaCapture:    Pass,
		ParticipantData: Pass,
		FlowTrace:       Pass,
		Logs:            Mask, // a digit never reaches a log line as text, in any mode
		MonitorCaller:   Mask, // the masked agent-bound stream, even where the queue passes DTMF
		MonitorAgent:    Pass,
		MonitorToAgent:  Pass, // coach and barge
		MonitorToCaller: Pass, // barge
	},
	Referred: {
		AgentAudio:      Block, // the reserved agent hears hold audio
		AgentDTMF:       Block, // the caller's keys are the flow's
		CallerAudio:     Block, // the caller hears the flow, not the agent
		Recorder:        Pass,  // the flow's non-secure part is recorded
		ProtocolCapture: Pass,
		MediaCapture:    Pass,
		ParticipantData: Pass,
		FlowTrace:       Pass,
		Logs:            Mask,
		MonitorCaller:   Block, // the caller is in the flow: a monitor waits, hearing nothing
		MonitorAgent:    Block, // the reserved agent is on hold, not in the call
		MonitorToAgent:  Block,
		MonitorToCaller: Block, // nobody talks to the caller but the flow
	},
	Secure: {
		AgentAudio:      Block, // the agent hears hold audio or silence
		AgentDTMF:       Block, // no event, no tone; progress only as masks through the API
		CallerAudio:     Block, // nobody talks to the caller but the flow
		Recorder:        Block, // paused, silence fill, a marker
		ProtocolCapture: Block, // SIP of the call left out, a marker
		MediaCapture:    Block, // RTP of the call left out, a marker
		ParticipantData: Block, // only non-secret outputs, after the segment
		FlowTrace:       Mask,  // steps and branches, never values
		Logs:            Mask,  // digits as `*`
		MonitorCaller:   Block, // no audio, event, tone, prompt or read-back
		MonitorAgent:    Block,
		MonitorToAgent:  Block,
		MonitorToCaller: Block,
	},
	Payment: {
		AgentAudio:      Mask,  // the caller's speech; every key replaced by the mask tone (or silence)
		AgentDTMF:       Block, // no event, no tone; progress only as counts through the API
		CallerAudio:     Pass,  // the agent keeps talking to the caller
		Recorder:        Block, // paused with a "payment" marker, silence fill
		ProtocolCapture: Block, // a SIP INFO could carry a key
		MediaCapture:    Block, // the RTP carries the keys
		ParticipantData: Block, // the outcome is written when the payment ends
		FlowTrace:       Mask,  // the gateway step's branch, never a value
		Logs:            Mask,
		// Monitors get nothing during an assisted payment (DESIGN.md
		// scenario 5; scenario 4's "any monitor hears the tone" is the
		// weaker promise): the leg hears filler, its voice reaches nobody.
		MonitorCaller:   Block,
		MonitorAgent:    Block,
		MonitorToAgent:  Block,
		MonitorToCaller: Block,
	},
}

// Route returns what sink receives in mode. Unknown values block: the gate
// fails closed.
func Route(mode Mode, sink Sink) Decision {
	if mode >= numModes || sink >= numSinks {
		return Block
	}
	return gateTable[mode][sink]
}

// maskDigit returns what a log line may show of a digit in mode.
func maskDigit(mode Mode, d byte) string {
	if Route(mode, Logs) == Pass {
		return string([]byte{d})
	}
	return "*"
}
