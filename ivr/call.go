package ivr

import (
	"context"
	"errors"
	"time"
)

// Errors a Call implementation returns (wrapped or bare) so the interpreter
// can take the matching branch.
var (
	// ErrDigitTimeout: NextDigit saw no key within its timeout.
	ErrDigitTimeout = errors.New("no digit before timeout")
	// ErrNoAgent: ReturnToAgent found no reserved agent (none was reserved,
	// or the agent hung up during the secure flow).
	ErrNoAgent = errors.New("no reserved agent")
)

// Errors the interpreter returns from Run.
var (
	// ErrSecretSink: a secret was about to reach a sink that may not see it.
	// Validate rejects such flows; this is the run-time backstop.
	ErrSecretSink = errors.New("secret may not reach this sink")
	// ErrUnsetVariable: a step read a variable no earlier step set.
	ErrUnsetVariable = errors.New("variable not set")
	// ErrStepLimit: the run exceeded Runner.MaxSteps (a loop that never
	// blocks on the caller).
	ErrStepLimit = errors.New("step limit exceeded")
	// ErrTransfer: a transfer failed and the step has no on_failure branch.
	ErrTransfer = errors.New("transfer failed")
	// ErrNestedSecure: a secure flow tried to hand over to a secure flow.
	ErrNestedSecure = errors.New("secure flow inside a secure flow")
)

// Call is the interpreter's view of one call. call/ implements it; tests use
// a fake that records what it was asked. Methods other than Trace may block
// and must return promptly once ctx is done. Implementations decide every
// sink by the call's secure mode (the secure gate); the interpreter only
// tells them when the mode changes.
type Call interface {
	// ID identifies the call (interaction id) in traces.
	ID() string
	// Answer answers the call; a no-op when it is already answered.
	Answer(ctx context.Context) error
	// Play plays the prompts in order. Keys pressed meanwhile are queued
	// for NextDigit (type-ahead), with or without bargeIn. With bargeIn it
	// returns early (nil) when a key arrives, or at once when one is
	// already queued; the key stays queued.
	Play(ctx context.Context, bargeIn bool, prompts ...string) error
	// NextDigit returns the next key ('0'-'9', '*', '#'), queued keys
	// first, waiting at most timeout; ErrDigitTimeout when none came.
	NextDigit(ctx context.Context, timeout time.Duration) (byte, error)
	// FlushDigits drops any queued keys (type-ahead), zeroing them.
	FlushDigits()
	// SetData attaches participant data to the interaction. Never called
	// with a secret.
	SetData(key, value string)
	// EnterSecure switches the call's secure gate on for the named secure
	// flow: recorder paused, captures suppressed, agent masked.
	EnterSecure(flow string, kind Kind) error
	// LeaveSecure switches the gate back off, with the flow's non-secret
	// outputs (e.g. payment_result, card_last4) for the agent's screen and
	// the interaction's secure-segment marker. Called once per EnterSecure,
	// after the flow's ending action, also when the run fails.
	LeaveSecure(outputs map[string]string)
	// AgentReserved reports whether an agent is reserved for this caller.
	AgentReserved() bool
	// ReturnToAgent re-bridges the caller with the reserved agent;
	// ErrNoAgent when there is none or the agent has gone.
	ReturnToAgent(ctx context.Context) error
	// Transfer sends the caller to a SIP URI or "queue:NAME". cloak does it
	// as a B2BUA: it stays in the media path and keeps the secure gate.
	Transfer(ctx context.Context, target string) error
	// Hangup ends the call with a reason (never a secret).
	Hangup(ctx context.Context, reason string) error
	// Trace records one flow-execution event. Events never carry secret
	// values: the interpreter masks them before calling.
	Trace(ev TraceEvent)
}

// TraceEvent is one entry of the flow execution history.
type TraceEvent struct {
	Time   time.Time `json:"time"`
	CallID string    `json:"call_id"`
	Flow   string    `json:"flow"`
	Step   string    `json:"step"`
	// Action is the step's action ("collect", "menu", ...), or "enter" /
	// "leave" for a flow's start and end.
	Action string `json:"action"`
	// Branch is the way out taken ("next", "on_valid", "choice 1", ...).
	Branch string `json:"branch,omitempty"`
	// Detail is a short human note. For secrets it shows at most a mask.
	Detail string `json:"detail,omitempty"`
	// Secure is true while a secure flow runs.
	Secure bool `json:"secure,omitempty"`
}

// Ending says how a run ended.
type Ending string

const (
	// EndDisconnected: a disconnect step hung up.
	EndDisconnected Ending = "disconnected"
	// EndTransferred: a transfer step transferred the caller.
	EndTransferred Ending = "transferred"
	// EndReturned: return_to_agent re-bridged the caller with the agent.
	EndReturned Ending = "returned_to_agent"
	// EndCompleted: the call ended under the flow (the caller hung up, or
	// cloak ended the call) when it had nothing left to ask: only closing
	// steps (play, say_digits, set, set_data, disconnect) could still run.
	// A caller who hangs up while "approved" plays has completed the
	// payment; the outputs say payment_result approved.
	EndCompleted Ending = "completed"
	// EndAbandoned: the call ended under the flow while it could still ask
	// the caller something or was waiting on a gateway (a caller hanging up
	// half-way through keying a card). Not a failure either; the outputs
	// say how far the flow got.
	EndAbandoned Ending = "abandoned"
	// EndError: the run failed (see the error from Run).
	EndError Ending = "error"
)

// Result is what a run leaves behind. It never holds secrets.
type Result struct {
	// Flow is the flow that ended the call: after a secure hand-over, the
	// secure flow.
	Flow string `json:"flow"`
	// Ending is how it ended; Target the transfer target or disconnect
	// reason.
	Ending Ending `json:"ending"`
	Target string `json:"target,omitempty"`
	// Outputs are the ending flow's non-secret output variables.
	Outputs map[string]string `json:"outputs,omitempty"`
	// SecureFlows lists the secure flows entered, in order.
	SecureFlows []string `json:"secure_flows,omitempty"`
	// Steps counts the steps executed.
	Steps int `json:"steps"`
}
