package call

import (
	"sync"
	"time"
)

// Event is what an agent's screen (through the API) learns of a call:
// progress of a secure flow only as masks, the flow's non-secret outputs,
// state changes. It never carries a digit.
type Event struct {
	Time time.Time `json:"time"`
	Call string    `json:"call"`
	// Type: "state", "digit" (a masked key press), "step", "secure_started",
	// "secure_ended", "talk_digits" (masked digits keyed while talking),
	// "recording_unavailable" (answered unrecorded: no room to record),
	// "recording_failed" (writing the recording failed mid-call),
	// "payment_started", "payment_field", "payment_result",
	// "payment_ended" (an agent-assisted payment, see Payment),
	// "payment_refused" (the agent's payment code refused: Reason),
	// "fraud_risk" (the call was screened at arrival: Risk), "ended"
	// (the call is over: always the last event, then the stream closes).
	Type string `json:"type"`
	// Reason says why an "ended" call ended ("bye", "flow finished", …).
	Reason string `json:"reason,omitempty"`
	// Mask is the masked progress ("****", "************1111").
	Mask string `json:"mask,omitempty"`
	// Step and Branch report a flow step outcome (valid / invalid…).
	Step   string `json:"step,omitempty"`
	Branch string `json:"branch,omitempty"`
	// State is the interaction's state for "state" events.
	State string `json:"state,omitempty"`
	// Flow names the secure flow.
	Flow string `json:"flow,omitempty"`
	// Outputs are a secure flow's non-secret outputs.
	Outputs map[string]string `json:"outputs,omitempty"`
	// Payment is an agent-assisted payment's state for the "payment_*"
	// events: "payment_started", "payment_field" (a field's count and
	// validity), "payment_result" (the gateway's answer), "payment_ended".
	Payment *PaymentEvent `json:"payment,omitempty"`
	// Risk is the call-arrival screening's mark for "fraud_risk".
	Risk *FraudRisk `json:"risk,omitempty"`
}

// eventBus keeps an interaction's recent events and fans them out to
// subscribers without ever blocking the publisher.
type eventBus struct {
	mu   sync.Mutex
	past []Event
	subs map[chan Event]struct{}
	// closed: the call has ended; subscribers' channels are closed and a
	// late subscriber gets the past and a closed channel.
	// Late events (an agent leg's end) still join the past.
	closed bool
}

const maxPastEvents = 256

func (b *eventBus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.past) >= maxPastEvents {
		copy(b.past, b.past[1:])
		b.past = b.past[:len(b.past)-1]
	}
	b.past = append(b.past, ev)
	for ch := range b.subs {
		select {
		case ch <- ev:
		default: // a slow reader loses events, never stalls the call
		}
	}
}

func (b *eventBus) subscribe() (past []Event, ch chan Event, cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[chan Event]struct{}{}
	}
	ch = make(chan Event, 64)
	past = append([]Event(nil), b.past...)
	if b.closed {
		close(ch)
		return past, ch, func() {}
	}
	b.subs[ch] = struct{}{}
	return past, ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

// close publishes last, the call's "ended" event, and closes every
// subscriber's channel: a stream ends with the call. A subscriber whose
// buffer was full misses last but still sees its channel close.
func (b *eventBus) close(last Event) {
	b.publish(last)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for ch := range b.subs {
		close(ch)
	}
	b.subs = nil
}

func (b *eventBus) events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.past...)
}
