package call

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
)

// This file makes an Interaction the ivr.Call the interpreter drives. Every
// sink it feeds (participant data, the trace, logs) asks the gate first.

var _ ivr.Call = (*Interaction)(nil)

// Answer implements ivr.Call: the call is answered before its flow runs.
func (c *Interaction) Answer(ctx context.Context) error { return nil }

// Play implements ivr.Call: plays prompts by name; with bargeIn a key stops
// playback and stays queued.
func (c *Interaction) Play(ctx context.Context, bargeIn bool, prompts ...string) error {
	for _, name := range prompts {
		p, err := c.m.prompt(name)
		if err != nil {
			c.log.Warn().Err(err).Msg("prompt missing: skipped")
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		if bargeIn {
			ch, queued := c.digits.waitChan()
			if queued {
				cancel()
				return nil
			}
			go func() {
				select {
				case <-ch:
					cancel()
				case <-pctx.Done():
				}
			}()
		}
		err = c.caller.Play(pctx, p)
		interrupted := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if interrupted {
			return nil // barge-in
		}
		if err != nil {
			return fmt.Errorf("play %s: %w", name, err)
		}
	}
	return nil
}

// NextDigit implements ivr.Call.
func (c *Interaction) NextDigit(ctx context.Context, timeout time.Duration) (byte, error) {
	d, ok, err := c.digits.next(ctx, timeout)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ivr.ErrDigitTimeout
	}
	return d, nil
}

// FlushDigits implements ivr.Call.
func (c *Interaction) FlushDigits() { c.digits.flush() }

// SetData implements ivr.Call: participant data, as the gate allows.
func (c *Interaction) SetData(key, value string) {
	if Route(c.Mode(), ParticipantData) != Pass {
		c.log.Debug().Str("key", key).Msg("participant data withheld in secure mode")
		return
	}
	c.mu.Lock()
	c.data[key] = value
	c.mu.Unlock()
	c.onConsentData(key, value)
}

// FraudFacts implements ivr.FraudCall: the caller's number, the route and
// a copy of the participant data, for a payment's fraud screening.
func (c *Interaction) FraudFacts() ivr.FraudFacts {
	return ivr.FraudFacts{Caller: c.s.Caller(), Route: c.s.Called(), Data: c.Data()}
}

// Data returns a copy of the participant data.
func (c *Interaction) Data() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.data))
	for k, v := range c.data {
		out[k] = v
	}
	return out
}

// SecureSegment marks a secure segment: times and outcome, never digits.
type SecureSegment struct {
	Flow    string            `json:"flow"`
	Kind    string            `json:"kind"`
	Start   time.Time         `json:"start"`
	End     time.Time         `json:"end,omitempty"`
	Outputs map[string]string `json:"outputs,omitempty"`
}

// EnterSecure implements ivr.Call: switches the gate to secure.
func (c *Interaction) EnterSecure(flow string, kind ivr.Kind) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pre := c.preSecure; pre != "" {
		c.preSecure = ""
		if pre == flow && c.Mode() == Secure {
			return nil // the segment secureFromAnswer opened for this flow
		}
	}
	if c.Mode() == Secure {
		return ivr.ErrNestedSecure
	}
	c.afterSecure = c.Mode()
	c.setMode(Secure)
	c.segments = append(c.segments, SecureSegment{Flow: flow, Kind: string(kind), Start: time.Now()})
	c.secureOpen = true
	c.m.met.SecureStarted(flow)
	c.log.Info().Str("flow", flow).Str("kind", string(kind)).Msg("secure segment started")
	go c.publish(Event{Type: "secure_started", Flow: flow})
	return nil
}

// LeaveSecure implements ivr.Call: switches the gate back to the mode the
// segment began in (normal, or referred while an agent waits) and
// attaches the flow's non-secret outputs as participant data.
func (c *Interaction) LeaveSecure(outputs map[string]string) {
	c.mu.Lock()
	if n := len(c.segments); n > 0 && c.segments[n-1].End.IsZero() {
		c.segments[n-1].End = time.Now()
		c.segments[n-1].Outputs = outputs
	}
	c.secureEndedLocked("left")
	if c.Mode() == Secure {
		c.setMode(c.afterSecure)
	}
	if Route(c.Mode(), ParticipantData) == Pass {
		for k, v := range outputs {
			c.data[k] = v
		}
	}
	c.mu.Unlock()
	// Outputs are non-secret by construction (the validator refuses a flow
	// that exports a secret), so the outcome is logged for the record:
	// payment_result, card_last4 (PCI DSS allows the last four).
	c.log.Info().Fields(map[string]any{"outputs": outputs}).Msg("secure segment ended")
	c.publish(Event{Type: "secure_ended", Outputs: outputs})
}

// Segments returns the secure segments so far.
func (c *Interaction) Segments() []SecureSegment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]SecureSegment(nil), c.segments...)
}

// Hangup implements ivr.Call.
func (c *Interaction) Hangup(ctx context.Context, reason string) error {
	c.end("flow: " + reason)
	return nil
}

// Trace implements ivr.Call: the flow execution history, as the gate allows.
func (c *Interaction) Trace(ev ivr.TraceEvent) {
	if Route(c.Mode(), FlowTrace) != Pass {
		ev.Detail = "" // steps and branches only
	}
	c.mu.Lock()
	c.trace = append(c.trace, ev)
	c.mu.Unlock()
	if ev.Secure && (ev.Action == "collect" || ev.Action == "data_action") && ev.Branch != "" {
		c.publish(Event{Type: "step", Flow: ev.Flow, Step: ev.Step, Branch: ev.Branch})
	}
	c.log.Debug().Str("flow", ev.Flow).Str("step", ev.Step).Str("action", ev.Action).Str("branch", ev.Branch).Bool("secure", ev.Secure).Msg("flow step")
}

// TraceEvents returns the flow execution history.
func (c *Interaction) TraceEvents() []ivr.TraceEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ivr.TraceEvent(nil), c.trace...)
}

// onDigitReceived is called by the DTMF tap and for SIP INFO.
func (c *Interaction) onDigitReceived(d byte, src dtmf.Source) {
	c.m.met.Digit(src.String()) // the source only: never the digit
	mode := c.Mode()
	c.log.Debug().Str("digit", maskDigit(mode, d)).Str("source", src.String()).Msg("digit")
	if mode == Payment {
		c.paymentDigit(d, src) // the payment's fields, and nothing else
		return
	}
	side := c.agentSideNow()
	if side != nil && mode == Normal && side.queue.Collect {
		// Keyed while talking to the agent: the agent sees only a mask.
		c.mu.Lock()
		c.talkKeys++
		n := c.talkKeys
		c.mu.Unlock()
		c.publish(Event{Type: "talk_digits", Mask: strings.Repeat("*", n)})
		return
	}
	if side != nil && mode == Normal {
		return // bridged, not collecting: digits are not the IVR's
	}
	c.digits.push(d)
	if mode == Secure {
		c.publish(Event{Type: "digit", Mask: "*"})
	}
}

// runFlow runs the routed flow to its end.
func (c *Interaction) runFlow(ctx context.Context, name string) {
	res, err := c.m.runner.Run(ctx, c, name)
	ev := c.log.Info().Str("flow", res.Flow).Str("ending", string(res.Ending)).Int("steps", res.Steps)
	if len(res.SecureFlows) > 0 {
		ev = ev.Strs("secure_flows", res.SecureFlows)
	}
	if err != nil && ctx.Err() == nil {
		ev = ev.Str("error", err.Error())
	}
	ev.Msg("flow finished")
	if res.Ending != ivr.EndTransferred || err != nil {
		c.end("flow finished")
	}
}

// secureFromAnswer closes the secure gate before the call is listed or
// answered when its route is a secure-kind flow (the demo "pay"): the
// gate would otherwise close only when the flow starts, after the answer,
// so the call's first audio would reach the recording and the RTP
// capture, and the API would list a secure route's call as normal. The
// flow's own EnterSecure then adopts the segment (preSecure); a call that
// ends before its flow runs closes it as any segment ("call_ended").
func (c *Interaction) secureFromAnswer() {
	name, ok := flowTarget(c.target)
	if !ok || c.m.cfg.Flows == nil {
		return
	}
	f, ok := c.m.cfg.Flows.Flow(name)
	if !ok || !f.Kind.Secure() {
		return
	}
	if err := c.EnterSecure(f.Name, f.Kind); err != nil {
		c.log.Warn().Err(err).Msg("secure route: gate not closed before the answer")
		return
	}
	c.mu.Lock()
	c.preSecure = f.Name
	c.mu.Unlock()
}

// flowTarget returns the flow name of a "flow:NAME" target.
func flowTarget(target string) (string, bool) {
	return strings.CutPrefix(target, "flow:")
}

// secureEndedLocked tells metrics that the open secure segment ended with
// outcome ("left", or "call_ended" from close); once per segment. c.mu
// must be held.
func (c *Interaction) secureEndedLocked(outcome string) {
	if !c.secureOpen {
		return
	}
	c.secureOpen = false
	if n := len(c.segments); n > 0 {
		seg := c.segments[n-1]
		c.m.met.SecureEnded(seg.Flow, outcome, time.Since(seg.Start))
	}
}
