package call

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
)

// This file is the agent-assisted payment (docs/PAYMENTS.md): on a live
// bridged call the agent opens a payment; while it runs the call is in
// the gate's Payment mode, so the caller's keys go only into the
// payment's secret fields (payment_fields.go), the agent hears each key
// as the mask tone (payment_tone.go), the recorder and the captures are
// paused with a "payment" marker, and the agent's screen sees per-field
// counts and validity on the call's event stream. Submit sends the card
// to the payment gateway through the flows' payment_gateway step
// (ivr.Runner.Charge). However it ends — submit, cancel, hang-up,
// transfer, the agent leaving, the timeout — its secrets are wiped and
// the call is Normal again.

// Payment errors.
var (
	ErrPaymentActive     = errors.New("a payment is already open on this call")
	ErrNoPayment         = errors.New("no such payment on this call")
	ErrPaymentField      = errors.New("unknown payment field")
	ErrPaymentRequest    = errors.New("bad payment request")
	ErrPaymentIncomplete = errors.New("payment fields are not all valid")
	ErrPaymentBusy       = errors.New("payment is being submitted")
	ErrNoGateway         = errors.New("no payment gateway: cloak runs no flows")
	ErrNotNormal         = errors.New("call is in a secure flow or a referral")
)

// PaymentConfig is the payments: section of the configuration.
type PaymentConfig struct {
	// Timeout ends a payment not submitted in time (0: 5 minutes).
	Timeout time.Duration
	// MaskTone is what the agent hears for each key: MaskToneFlat (the
	// default, also "") or MaskToneSilence.
	MaskTone string
	// InterDigitTimeout ends a field's entry when the caller stops keying
	// (0: 5 s); the field is then valid or invalid as it stands.
	InterDigitTimeout time.Duration
	// Fraud screens a submitted payment as a flow's fraud: true step does
	// (held instead of captured); nothing without a fraud screener.
	Fraud bool
	// Attempts is how many entries each field gets (0: 3, as a flow's
	// collect step): a field whose last allowed entry is invalid ends the
	// payment ("attempts"), so a caller cannot try card after card.
	Attempts int
}

func (pc PaymentConfig) attempts() int {
	if pc.Attempts > 0 {
		return min(pc.Attempts, ivr.MaxAttempts)
	}
	return ivr.DefaultAttempts
}

func (pc PaymentConfig) timeout() time.Duration {
	if pc.Timeout > 0 {
		return pc.Timeout
	}
	return 5 * time.Minute
}

func (pc PaymentConfig) interDigit() time.Duration {
	if pc.InterDigitTimeout > 0 {
		return pc.InterDigitTimeout
	}
	return 5 * time.Second
}

// PaymentRequest opens a payment: the fields in their order of entry
// (card, expiry, cvv; all three), the amount ("12.50"), the ISO 4217
// currency ("GBP") and the merchant's reference.
type PaymentRequest struct {
	Fields    []string `json:"fields"`
	Amount    string   `json:"amount"`
	Currency  string   `json:"currency"`
	Reference string   `json:"reference"`
}

var (
	amountRe    = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,3})?$`)
	currencyRe  = regexp.MustCompile(`^[A-Z]{3}$`)
	referenceRe = regexp.MustCompile(`^[A-Za-z0-9._:/-]{0,64}$`)
	longDigits  = regexp.MustCompile(`[0-9]{12,}`)
)

// validate checks the request; its errors never echo a value.
func (r *PaymentRequest) validate() error {
	if len(r.Fields) == 0 {
		r.Fields = []string{FieldCard, FieldExpiry, FieldCVV}
	}
	if err := validPaymentFields(r.Fields); err != nil {
		return err
	}
	if !amountRe.MatchString(r.Amount) {
		return fmt.Errorf("amount must be a decimal like 12.50: %w", ErrPaymentRequest)
	}
	if !currencyRe.MatchString(r.Currency) {
		return fmt.Errorf("currency must be three capital letters (ISO 4217): %w", ErrPaymentRequest)
	}
	if !referenceRe.MatchString(r.Reference) {
		return fmt.Errorf("reference must be at most 64 of A-Z a-z 0-9 . _ : / -: %w", ErrPaymentRequest)
	}
	if longDigits.MatchString(r.Reference) {
		// It would go to logs, events and the archive: refuse what could
		// be a card number typed in the wrong box.
		return fmt.Errorf("reference must not hold a run of 12 digits or more: %w", ErrPaymentRequest)
	}
	return nil
}

// PaymentEvent is the payment part of an Event: state, never a digit
// (counts, validity, the brand; the last four only in the gateway's
// result).
type PaymentEvent struct {
	ID string `json:"id"`
	// Field events ("payment_field"): the field, its key count, its
	// state (empty, entering, valid, invalid), why it is invalid, and
	// the card's brand once the card is valid. Focus is the field the
	// next key goes to ("" when every field is valid).
	Field   string `json:"field,omitempty"`
	Count   int    `json:"count"`
	State   string `json:"state,omitempty"`
	Failure string `json:"failure,omitempty"`
	Brand   string `json:"brand,omitempty"`
	Focus   string `json:"focus,omitempty"`
	// Attempts is how many entries of the field the caller has started;
	// AttemptsAllowed how many each field gets (also on
	// "payment_started"). Counts only.
	Attempts        int `json:"attempts,omitempty"`
	AttemptsAllowed int `json:"attempts_allowed,omitempty"`
	// Ready: every field is valid; Submit may be called.
	Ready bool `json:"ready,omitempty"`
	// "payment_started": the fields, the amount and currency.
	Fields   []string `json:"fields,omitempty"`
	Amount   string   `json:"amount,omitempty"`
	Currency string   `json:"currency,omitempty"`
	// "payment_result": the gateway's answer.
	Result *ivr.ChargeResult `json:"result,omitempty"`
	// "payment_ended": why (submitted, cancelled, hangup, transfer,
	// agent_left, timeout, attempts).
	Reason string `json:"reason,omitempty"`
}

// PaymentSession is an agent-assisted payment on a call.
type PaymentSession struct {
	id   string
	c    *Interaction
	req  PaymentRequest
	cfg  PaymentConfig
	tone maskTone

	untick func() // stops the mask tone's clock ticks

	mu         sync.Mutex // guards what follows
	fields     []*payField
	focus      int  // index of the field the next key goes to; -1: all valid
	swallow    bool // a field just ended at its max length: a '#' next is its terminator
	submitting bool
	ended      bool
	started    time.Time
	result     *ivr.ChargeResult
	idle       *time.Timer // the focused field's inter-digit timeout
	expire     *time.Timer // the payment's timeout
}

// ID is the payment's id.
func (p *PaymentSession) ID() string { return p.id }

func newPaymentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "pay-" + hex.EncodeToString(b[:])
}

// StartPayment opens an agent-assisted payment on the call: only on a
// call bridged to an agent, in normal mode, with no payment open. The
// gate switches to Payment before StartPayment returns.
func (c *Interaction) StartPayment(req PaymentRequest) (*PaymentSession, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if c.m.runner == nil {
		return nil, ErrNoGateway
	}
	side := c.agentSideNow()
	if side == nil {
		return nil, ErrNotBridged
	}
	cfg := c.m.cfg.Payments
	p := &PaymentSession{id: newPaymentID(), c: c, req: req, cfg: cfg, started: time.Now(),
		tone: maskTone{flat: cfg.MaskTone != MaskToneSilence}}
	for _, name := range req.Fields {
		f := &payField{name: name}
		f.reset()
		p.fields = append(p.fields, f)
	}
	// The tone's clock and the timeout exist before anyone can see p, so
	// whatever ends it finds them.
	p.untick = c.m.cfg.Clock.Subscribe(func(time.Time) { p.tone.fill(c, side.ep) })
	p.expire = time.AfterFunc(cfg.timeout(), func() { c.endPayment(p, "timeout") })
	c.mu.Lock()
	var err error
	switch {
	case c.payment.Load() != nil:
		err = ErrPaymentActive
	case c.Mode() != Normal:
		err = ErrNotNormal
	default:
		c.payment.Store(p)
		c.setMode(Payment)
	}
	c.mu.Unlock()
	if err != nil {
		p.expire.Stop()
		p.untick()
		return nil, err
	}
	if c.agentSideNow() == nil { // the agent left meanwhile
		c.endPayment(p, "agent_left")
		return nil, ErrNotBridged
	}
	c.digits.flush()
	c.log.Info().Str("payment", p.id).Strs("fields", req.Fields).Str("amount", req.Amount).Str("currency", req.Currency).
		Str("reference", req.Reference).Msg("payment started")
	c.publish(Event{Type: "payment_started", Payment: &PaymentEvent{ID: p.id, Fields: req.Fields, Amount: req.Amount,
		Currency: req.Currency, Focus: req.Fields[0], AttemptsAllowed: cfg.attempts()}})
	return p, nil
}

// PaymentSession returns the call's open payment with id.
func (c *Interaction) PaymentSession(id string) (*PaymentSession, error) {
	p := c.payment.Load()
	if p == nil || p.id != id {
		return nil, ErrNoPayment
	}
	return p, nil
}

// paymentKey takes a caller's key in Payment mode: into the focused
// field, never anywhere else. Runs on the caller leg's reader (or the SIP
// INFO handler).
func (p *PaymentSession) paymentKey(d byte) {
	p.mu.Lock()
	if p.ended || p.submitting || p.focus < 0 {
		p.mu.Unlock()
		return
	}
	if p.swallow && d == '#' {
		p.swallow = false
		p.mu.Unlock()
		return
	}
	p.swallow = false
	f := p.fields[p.focus]
	if f.col == nil && f.attempts >= p.cfg.attempts() {
		// No entry left for this field (the payment is ending, or the
		// agent cleared a field whose entries were used up).
		p.mu.Unlock()
		go p.c.endPayment(p, "attempts") // once: endPayment ends p once
		return
	}
	if f.state == FieldValid || f.state == FieldInvalid {
		f.reset() // a new entry of the focused field
	}
	ended, atMax, err := f.add(d, time.Now(), p.cardBrandLocked(), p.cfg.interDigit())
	if err != nil {
		p.mu.Unlock()
		p.c.log.Warn().Err(err).Str("payment", p.id).Msg("payment field not started")
		return
	}
	if ended {
		p.swallow = atMax
		p.fieldEndedLocked(f)
	}
	p.armIdleLocked(f)
	ev := p.fieldEventLocked(f)
	exhausted := p.exhaustedLocked(f)
	p.mu.Unlock()
	p.c.publish(ev)
	if exhausted {
		// On the caller leg's reader (or the SIP INFO handler): the
		// ending switches the gate, so it runs on its own goroutine;
		// keys meanwhile are refused above.
		go p.c.endPayment(p, "attempts")
	}
}

// exhaustedLocked: f's last allowed entry was invalid.
func (p *PaymentSession) exhaustedLocked(f *payField) bool {
	return f.state == FieldInvalid && f.attempts >= p.cfg.attempts()
}

// cardBrandLocked is the brand of the valid card field, "" if none.
func (p *PaymentSession) cardBrandLocked() string {
	for _, f := range p.fields {
		if f.name == FieldCard && f.state == FieldValid {
			return f.brand
		}
	}
	return ""
}

// fieldEndedLocked moves the focus on after a field ended: past a valid
// field to the next one not valid (in the order of entry, wrapping), -1
// when all are;
// an invalid field keeps the focus (the caller keys it again).
func (p *PaymentSession) fieldEndedLocked(f *payField) {
	if f.state != FieldValid {
		return
	}
	if f.name == FieldCVV {
		if b := p.cardBrandLocked(); b != "" && !cvvFits(f.value.Len(), b) {
			f.invalidate("length")
			return
		}
	}
	p.focus = p.nextOpenLocked(p.focus)
}

// cvvFits: 4 digits for Amex, 3 for any other known brand.
func cvvFits(n int, brand string) bool {
	if brand == BrandAmex {
		return n == 4
	}
	return n == 3
}

// nextOpenLocked returns the first field after from, in the order of
// entry and wrapping, that is not valid; -1 when all are.
func (p *PaymentSession) nextOpenLocked(from int) int {
	for i := 1; i <= len(p.fields); i++ {
		if j := (from + i) % len(p.fields); p.fields[j].state != FieldValid {
			return j
		}
	}
	return -1
}

// armIdleLocked sets the inter-digit timer for the field's entry.
func (p *PaymentSession) armIdleLocked(f *payField) {
	if p.idle != nil {
		p.idle.Stop()
		p.idle = nil
	}
	dl := f.deadline()
	if dl.IsZero() {
		return
	}
	p.idle = time.AfterFunc(time.Until(dl), func() { p.idleExpired(f) })
}

// idleExpired ends the field's entry at its inter-digit timeout.
func (p *PaymentSession) idleExpired(f *payField) {
	p.mu.Lock()
	if p.ended || p.submitting || !f.expire(time.Now()) {
		p.mu.Unlock()
		return
	}
	p.fieldEndedLocked(f)
	ev := p.fieldEventLocked(f)
	exhausted := p.exhaustedLocked(f)
	p.mu.Unlock()
	p.c.publish(ev)
	if exhausted {
		p.c.endPayment(p, "attempts")
	}
}

// fieldEventLocked is a "payment_field" event of f.
func (p *PaymentSession) fieldEventLocked(f *payField) Event {
	pe := &PaymentEvent{ID: p.id, Field: f.name, Count: f.count, State: f.state, Failure: f.failure, Brand: f.brand,
		Attempts: f.attempts, AttemptsAllowed: p.cfg.attempts()}
	if p.focus >= 0 {
		pe.Focus = p.fields[p.focus].name
	} else {
		pe.Ready = true
	}
	return Event{Type: "payment_field", Payment: pe}
}

func (p *PaymentSession) fieldLocked(name string) (int, error) {
	for i, f := range p.fields {
		if f.name == name {
			return i, nil
		}
	}
	return 0, ErrPaymentField
}

// Focus makes name the field the next key goes to. A field being keyed
// ends first (valid or not, as it stands).
func (p *PaymentSession) Focus(name string) error {
	return p.edit(name, func(i int) {
		if cur := p.fields[p.focus0()]; cur.col != nil {
			cur.expire(time.Now().Add(24 * time.Hour)) // end it as it stands
		}
		p.focus = i
	})
}

// focus0 is the focus, or 0 when every field was valid.
func (p *PaymentSession) focus0() int {
	if p.focus < 0 {
		return 0
	}
	return p.focus
}

// Clear empties a field (its secret wiped) and focuses it.
func (p *PaymentSession) Clear(name string) error {
	return p.edit(name, func(i int) {
		p.fields[i].reset()
		p.focus = i
	})
}

// Restart empties every field and focuses the first.
func (p *PaymentSession) Restart() error {
	return p.edit("", func(int) {
		for _, f := range p.fields {
			f.reset()
		}
		p.focus = 0
	})
}

// edit applies an agent's change under the lock and publishes every
// field's state after it.
func (p *PaymentSession) edit(name string, do func(i int)) error {
	p.mu.Lock()
	switch {
	case p.ended:
		p.mu.Unlock()
		return ErrNoPayment
	case p.submitting:
		p.mu.Unlock()
		return ErrPaymentBusy
	}
	i := 0
	if name != "" {
		var err error
		if i, err = p.fieldLocked(name); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	if p.idle != nil {
		p.idle.Stop()
		p.idle = nil
	}
	p.swallow = false
	do(i)
	evs := make([]Event, 0, len(p.fields))
	exhausted := false
	for _, f := range p.fields {
		evs = append(evs, p.fieldEventLocked(f))
		exhausted = exhausted || p.exhaustedLocked(f)
	}
	p.mu.Unlock()
	for _, ev := range evs {
		p.c.publish(ev)
	}
	if exhausted { // a focus change ended the last allowed entry, invalid
		p.c.endPayment(p, "attempts")
	}
	return nil
}

// Submit sends the payment to the gateway (ivr.Runner.Charge) once every
// field is valid, and ends it with the gateway's result, which it
// returns. The secrets are wiped whatever happens.
func (p *PaymentSession) Submit() (ivr.ChargeResult, error) {
	p.mu.Lock()
	switch {
	case p.ended:
		p.mu.Unlock()
		return ivr.ChargeResult{}, ErrNoPayment
	case p.submitting:
		p.mu.Unlock()
		return ivr.ChargeResult{}, ErrPaymentBusy
	}
	// A CVV keyed before the card was checked as 3-4 digits: check it
	// against the brand now.
	for _, f := range p.fields {
		if b := p.cardBrandLocked(); f.name == FieldCVV && f.state == FieldValid && b != "" && !cvvFits(f.value.Len(), b) {
			f.invalidate("length")
			ev := p.fieldEventLocked(f)
			exhausted := p.exhaustedLocked(f)
			p.mu.Unlock()
			p.c.publish(ev)
			if exhausted {
				p.c.endPayment(p, "attempts")
			}
			return ivr.ChargeResult{}, fmt.Errorf("cvv does not fit the card: %w", ErrPaymentIncomplete)
		}
	}
	var ch ivr.Charge
	for _, f := range p.fields {
		if f.state != FieldValid {
			p.mu.Unlock()
			return ivr.ChargeResult{}, fmt.Errorf("%s is %s: %w", f.name, f.state, ErrPaymentIncomplete)
		}
		switch f.name {
		case FieldCard:
			ch.Card = f.value
		case FieldExpiry:
			ch.Expiry = f.value
		case FieldCVV:
			ch.CVV = f.value
		}
	}
	if p.idle != nil {
		p.idle.Stop()
	}
	p.submitting = true
	p.mu.Unlock()
	ch.Amount, ch.Currency, ch.Reference, ch.Fraud = p.req.Amount, p.req.Currency, p.req.Reference, p.cfg.Fraud
	// The card leaves for the gateway (Charge wipes the secrets: the
	// fields' values share their storage). The call's context: should
	// the caller hang up meanwhile, the request is abandoned.
	res, err := p.c.m.runner.Charge(p.c.ctx, p.c, ch)
	p.mu.Lock()
	p.result = &res
	p.mu.Unlock()
	p.c.publish(Event{Type: "payment_result", Payment: &PaymentEvent{ID: p.id, Result: &res}})
	p.c.endPayment(p, "submitted")
	return res, err
}

// Cancel ends the payment unsubmitted.
func (p *PaymentSession) Cancel() error {
	p.mu.Lock()
	busy, ended := p.submitting, p.ended
	p.mu.Unlock()
	switch {
	case ended:
		return ErrNoPayment
	case busy:
		return ErrPaymentBusy
	}
	p.c.endPayment(p, "cancelled")
	return nil
}

// endPaymentIfAny ends the call's open payment, if any, for reason.
func (c *Interaction) endPaymentIfAny(reason string) {
	if p := c.payment.Load(); p != nil {
		c.endPayment(p, reason)
	}
}

// endPayment ends p once: timers stopped, every secret wiped, the gate
// back to Normal (not after a hang-up: the call is over, its recorder
// and captures end paused), the outcome kept as a segment and as
// participant data, "payment_ended" published.
func (c *Interaction) endPayment(p *PaymentSession, reason string) {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	p.ended = true
	for _, t := range []*time.Timer{p.idle, p.expire} {
		if t != nil {
			t.Stop()
		}
	}
	for _, f := range p.fields {
		f.reset()
	}
	res := p.result
	p.mu.Unlock()
	if p.untick != nil {
		p.untick()
	}
	outputs := map[string]string{"payment_ended": reason}
	if res != nil {
		outputs["payment_outcome"] = res.Outcome
		for k, v := range map[string]string{"payment_result": res.Result, "payment_reference": res.Reference, "card_last4": res.Last4} {
			if v != "" {
				outputs[k] = v
			}
		}
	}
	c.mu.Lock()
	c.payment.CompareAndSwap(p, nil)
	if c.Mode() == Payment && reason != "hangup" {
		c.setMode(Normal)
	}
	// An agent gone while the call was in Payment mode left the call to
	// us (onAgentGone ends only a Normal call): end it now.
	var agentGone bool
	if side := c.side; side != nil {
		select {
		case <-side.gone:
			agentGone = true
		default:
		}
	}
	c.segments = append(c.segments, SecureSegment{Flow: "agent-assisted-payment", Kind: "agent-assisted", Start: p.started,
		End: time.Now(), Outputs: outputs})
	if res != nil && Route(c.Mode(), ParticipantData) == Pass {
		for k, v := range outputs {
			if k != "payment_ended" {
				c.data[k] = v
			}
		}
	}
	c.mu.Unlock()
	ev := c.log.Info().Str("payment", p.id).Str("reason", reason)
	if res != nil {
		// The outcome and the last four (PCI DSS allows them), as a
		// secure flow's outputs are logged.
		ev = ev.Str("outcome", res.Outcome).Str("result", res.Result).Str("reference", res.Reference).Str("card_last4", res.Last4)
	}
	ev.Msg("payment ended")
	c.publish(Event{Type: "payment_ended", Payment: &PaymentEvent{ID: p.id, Reason: reason}})
	if agentGone && reason != "hangup" {
		c.end("agent hung up")
	}
}

// paymentDigit routes a caller's key in Payment mode; SIP INFO keys
// start the mask tone here (tones and events start it in the pipeline).
func (c *Interaction) paymentDigit(d byte, src dtmf.Source) {
	p := c.payment.Load()
	if p == nil {
		return
	}
	if src == dtmf.SourceInfo {
		p.tone.start()
	}
	p.paymentKey(d)
}

// Fields returns the payment's field states (for the API), no value.
func (p *PaymentSession) Fields() []PaymentEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PaymentEvent, 0, len(p.fields))
	for _, f := range p.fields {
		out = append(out, *p.fieldEventLocked(f).Payment)
	}
	return out
}
