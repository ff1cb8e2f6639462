package archive

import (
	"encoding/json"
	"time"
)

// Interaction is one archived interaction with everything kept of it.
// Times are UTC; a zero time never happened.
type Interaction struct {
	ID         string `json:"id"`
	SIPCallID  string `json:"sip_call_id"`
	Caller     string `json:"caller"`
	CallerName string `json:"caller_name,omitempty"`
	// AssertedID and AssertedName are the P-Asserted-Identity's number
	// and name (RFC 3325), as the peer sent them.
	AssertedID    string    `json:"asserted_id,omitempty"`
	AssertedName  string    `json:"asserted_name,omitempty"`
	Called        string    `json:"called"`
	Route         string    `json:"route"`
	Queue         string    `json:"queue,omitempty"`
	Agent         string    `json:"agent,omitempty"`
	Offered       time.Time `json:"offered"`
	Answered      time.Time `json:"answered,omitzero"`
	Queued        time.Time `json:"queued,omitzero"`
	AgentAnswered time.Time `json:"agent_answered,omitzero"`
	Ended         time.Time `json:"ended"`
	// Wait is from queued to agent answered (or to the end when no agent
	// answered); Talk from agent answered (else answered) to the end.
	Wait time.Duration `json:"wait_ns"`
	Talk time.Duration `json:"talk_ns"`
	// EndedBy is "caller", "cloak" or "agent"; EndReason says why.
	EndedBy   string `json:"ended_by"`
	EndReason string `json:"end_reason"`
	// Consent is accepted, declined or not_asked.
	Consent string `json:"consent"`
	// Node names the cloak node that handled the call.
	Node string `json:"node,omitempty"`

	Data      []DataItem  `json:"data,omitempty"`
	Segments  []Segment   `json:"secure_segments,omitempty"`
	Trace     []TraceStep `json:"trace,omitempty"`
	Recording *Recording  `json:"recording,omitempty"`
	// Quality is each leg's final call quality, the caller's first.
	Quality []LegQuality `json:"quality,omitempty"`
}

// LegQuality is one leg's final call quality (call.LegQuality): what
// cloak received from the leg's peer (RFC 3550 §6.4.1 figures), what the
// peer reported of cloak's stream, and the estimated MOS. No personal
// data.
type LegQuality struct {
	// Leg is "caller" or "agent"; Agent the agent's configured name on
	// an agent leg, when known.
	Leg   string `json:"leg"`
	Agent string `json:"agent,omitempty"`
	// Received counts the packets received, Lost those missing (negative
	// with duplicates), LossPct Lost over expected; JitterMs is the
	// interarrival jitter.
	Received uint32  `json:"received"`
	Lost     int32   `json:"lost"`
	LossPct  float64 `json:"loss_pct"`
	JitterMs float64 `json:"jitter_ms"`
	// RTTMs is the round trip from RTCP, -1 when never measured.
	RTTMs float64 `json:"rtt_ms"`
	// MOS is the G.107 estimate of the received stream, 0 without RTP.
	MOS float64 `json:"mos"`
	// PeerLossPct and PeerJitterMs are the peer's last RTCP report of
	// cloak's stream (0 when none came).
	PeerLossPct  float64 `json:"peer_loss_pct"`
	PeerJitterMs float64 `json:"peer_jitter_ms"`
	// DroppedStale counts the peer's packets dropped as too late.
	DroppedStale uint64 `json:"dropped_stale"`
}

// DataItem is one participant-data key as stored: Value is the clear
// value under policy keep, a mask under mask_after_call (Token is then
// the search token).
type DataItem struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Token  string `json:"token,omitempty"`
	Policy string `json:"policy"`
}

// Segment is a secure segment: when, which flow, and its non-secret
// outputs. Never a digit.
type Segment struct {
	Flow    string            `json:"flow"`
	Kind    string            `json:"kind"`
	Start   time.Time         `json:"start"`
	End     time.Time         `json:"end,omitzero"`
	Outputs map[string]string `json:"outputs,omitempty"`
}

// TraceStep is one step of the flow trace.
type TraceStep struct {
	At     time.Time `json:"at"`
	Flow   string    `json:"flow"`
	Step   string    `json:"step"`
	Action string    `json:"action"`
	Branch string    `json:"branch,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Secure bool      `json:"secure,omitempty"`
}

// Recording is an interaction's entry in the recordings index.
type Recording struct {
	File     string        `json:"file"`
	Sidecar  string        `json:"sidecar,omitempty"`
	SHA256   string        `json:"sha256,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Markers are the sidecar's pause markers (JSON array).
	Markers json.RawMessage `json:"markers,omitempty"`
	// Status is "" (complete), "truncated" or "recovered".
	Status    string    `json:"status,omitempty"`
	DeletedAt time.Time `json:"deleted_at,omitzero"`
	DeletedBy string    `json:"deleted_by,omitempty"`
}
