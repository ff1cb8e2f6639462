package call

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
)

// Standard test cards, in test code only: 4111… (Visa), 3782… (Amex).
const (
	payTestCard = "4111111111111111"
	payTestAmex = "378282246310005"
)

// newTestPayment is a payment on a bare interaction (no media, no SIP):
// enough for the fields, the focus, the events and the wipe.
func newTestPayment(t *testing.T, interDigit time.Duration) (*Interaction, *PaymentSession) {
	t.Helper()
	c := &Interaction{data: map[string]string{}, id: "call-1"}
	req := PaymentRequest{Amount: "12.50", Currency: "GBP", Reference: "order-7"}
	if err := req.validate(); err != nil {
		t.Fatal(err)
	}
	p := &PaymentSession{id: "pay-1", c: c, req: req, cfg: PaymentConfig{InterDigitTimeout: interDigit}, started: time.Now(),
		tone: maskTone{flat: true}}
	for _, name := range req.Fields {
		f := &payField{name: name}
		f.reset()
		p.fields = append(p.fields, f)
	}
	c.payment.Store(p)
	c.mode.Store(uint32(Payment))
	return c, p
}

func keys(p *PaymentSession, s string) {
	for i := range len(s) {
		p.paymentKey(s[i])
	}
}

// fieldEvents returns the payment_field events for field.
func fieldEvents(c *Interaction, field string) []PaymentEvent {
	var out []PaymentEvent
	for _, ev := range c.Events() {
		if ev.Type == "payment_field" && ev.Payment.Field == field {
			out = append(out, *ev.Payment)
		}
	}
	return out
}

func last(evs []PaymentEvent) PaymentEvent {
	if len(evs) == 0 {
		return PaymentEvent{}
	}
	return evs[len(evs)-1]
}

// TestPaymentFieldsInOrder: card, expiry and CVV keyed in turn fill the
// fields in order; the events carry counts, states and the brand and no
// digit; a '#' after the CVV ended at its length is its terminator.
func TestPaymentFieldsInOrder(t *testing.T) {
	c, p := newTestPayment(t, 5*time.Second)
	keys(p, payTestCard+"#"+"1230"+"737#")
	card := fieldEvents(c, FieldCard)
	if len(card) != 17 || card[0].Count != 1 || card[0].State != FieldEntering || card[15].Count != 16 {
		t.Fatalf("card events %+v, want 17 with counts 1..16", card)
	}
	if l := last(card); l.State != FieldValid || l.Brand != BrandVisa || l.Focus != FieldExpiry {
		t.Errorf("card ended %+v, want valid visa, focus expiry", l)
	}
	if l := last(fieldEvents(c, FieldExpiry)); l.State != FieldValid || l.Count != 4 || l.Focus != FieldCVV {
		t.Errorf("expiry ended %+v, want valid 4, focus cvv", l)
	}
	cvv := fieldEvents(c, FieldCVV)
	if l := last(cvv); l.State != FieldValid || l.Count != 3 || !l.Ready || len(cvv) != 3 {
		t.Errorf("cvv events %+v, want 3 ending valid with ready (the '#' swallowed)", cvv)
	}
	for _, ev := range c.Events() {
		ev.Time = time.Time{} // a timestamp may hold any digits
		b, _ := json.Marshal(ev)
		for _, s := range []string{payTestCard, "1111", "1230", "737"} {
			if strings.Contains(string(b), s) {
				t.Errorf("a %s event carries %q: %s", ev.Type, s, b)
			}
		}
	}
}

// TestPaymentInvalidThenClearAndRestart: a Luhn-invalid card is invalid
// and keeps the focus; the next key starts it again; clear empties a
// field and focuses it; restart empties all; every value is wiped.
func TestPaymentInvalidThenClearAndRestart(t *testing.T) {
	c, p := newTestPayment(t, 5*time.Second)
	keys(p, "4111111111111112#")
	if l := last(fieldEvents(c, FieldCard)); l.State != FieldInvalid || l.Failure != "luhn" || l.Focus != FieldCard {
		t.Fatalf("bad card: %+v, want invalid luhn with the focus kept", l)
	}
	keys(p, "4")
	if l := last(fieldEvents(c, FieldCard)); l.State != FieldEntering || l.Count != 1 {
		t.Fatalf("key after an invalid entry: %+v, want a new entry of 1", l)
	}
	keys(p, payTestCard[1:]+"#1230")
	cardSecret := p.fields[0].value
	if cardSecret.Len() != 16 {
		t.Fatalf("card not kept: %d digits", cardSecret.Len())
	}
	if err := p.Clear(FieldCard); err != nil {
		t.Fatal(err)
	}
	if cardSecret.Len() != 0 {
		t.Error("clear did not wipe the card")
	}
	if l := last(fieldEvents(c, FieldCard)); l.State != FieldEmpty || l.Count != 0 || l.Focus != FieldCard {
		t.Errorf("after clear: %+v, want empty, focused", l)
	}
	if l := last(fieldEvents(c, FieldExpiry)); l.State != FieldValid {
		t.Errorf("clear of the card touched the expiry: %+v", l)
	}
	keys(p, payTestCard+"#")
	if l := last(fieldEvents(c, FieldCard)); l.State != FieldValid || l.Focus != FieldCVV {
		t.Errorf("card again: %+v, want valid, focus on the CVV (the expiry is valid)", l)
	}
	exp := p.fields[1].value
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if exp.Len() != 0 {
		t.Error("restart did not wipe the expiry")
	}
	for _, f := range p.Fields() {
		if f.State != FieldEmpty || f.Focus != FieldCard {
			t.Errorf("after restart %+v, want empty with focus on card", f)
		}
	}
	if err := p.Clear("pin"); err != ErrPaymentField {
		t.Errorf("clear of an unknown field: %v", err)
	}
}

// TestPaymentFocusAndAmexCVV: the agent chooses the field; an Amex card
// wants a 4-digit CVV.
func TestPaymentFocusAndAmexCVV(t *testing.T) {
	c, p := newTestPayment(t, 5*time.Second)
	if err := p.Focus(FieldExpiry); err != nil {
		t.Fatal(err)
	}
	keys(p, "1230")
	if l := last(fieldEvents(c, FieldExpiry)); l.State != FieldValid || l.Focus != FieldCVV {
		t.Fatalf("expiry first: %+v, want valid and the focus on the next field, the CVV", l)
	}
	if err := p.Focus(FieldCard); err != nil {
		t.Fatal(err)
	}
	keys(p, payTestAmex+"#")
	if l := last(fieldEvents(c, FieldCard)); l.Brand != BrandAmex || l.State != FieldValid || l.Focus != FieldCVV {
		t.Fatalf("amex card: %+v", l)
	}
	keys(p, "123#")
	if l := last(fieldEvents(c, FieldCVV)); l.State != FieldInvalid {
		t.Errorf("3-digit CVV of an Amex card: %+v, want invalid", l)
	}
	keys(p, "1234")
	if l := last(fieldEvents(c, FieldCVV)); l.State != FieldValid || !l.Ready {
		t.Errorf("4-digit CVV of an Amex card: %+v, want valid and ready", l)
	}
}

// TestPaymentInterDigitTimeout: the caller stops keying: the entry ends
// as it stands (valid with enough digits, invalid without).
func TestPaymentInterDigitTimeout(t *testing.T) {
	c, p := newTestPayment(t, 150*time.Millisecond)
	keys(p, payTestCard)
	time.Sleep(400 * time.Millisecond)
	if l := last(fieldEvents(c, FieldCard)); l.State != FieldValid || l.Focus != FieldExpiry {
		t.Fatalf("card after the inter-digit timeout: %+v, want valid", l)
	}
	keys(p, "12")
	time.Sleep(400 * time.Millisecond)
	if l := last(fieldEvents(c, FieldExpiry)); l.State != FieldInvalid || l.Failure != "timeout" {
		t.Fatalf("2-digit expiry after the timeout: %+v, want invalid timeout", l)
	}
}

// TestPaymentEndWipesAndRestoresTheGate: however a payment ends, its
// secrets are wiped, the call is Normal again (not after a hang-up), the
// outcome is a segment, and keys afterwards go nowhere near it.
func TestPaymentEndWipesAndRestoresTheGate(t *testing.T) {
	for _, reason := range []string{"cancelled", "agent_left", "transfer", "timeout", "hangup"} {
		t.Run(reason, func(t *testing.T) {
			c, p := newTestPayment(t, 5*time.Second)
			keys(p, payTestCard+"#")
			card := p.fields[0].value
			c.endPayment(p, reason)
			if card.Len() != 0 {
				t.Error("the card was not wiped")
			}
			if c.payment.Load() != nil {
				t.Error("the payment is still open")
			}
			want := Normal
			if reason == "hangup" {
				want = Payment
			}
			if c.Mode() != want {
				t.Errorf("mode %s after %s, want %s", c.Mode(), reason, want)
			}
			segs := c.Segments()
			if len(segs) != 1 || segs[0].Outputs["payment_ended"] != reason || segs[0].Kind != "agent-assisted" {
				t.Errorf("segments %+v", segs)
			}
			if err := p.Cancel(); err != ErrNoPayment {
				t.Errorf("cancel after the end: %v", err)
			}
			if _, err := p.Submit(); err != ErrNoPayment {
				t.Errorf("submit after the end: %v", err)
			}
		})
	}
}

// paymentEnded waits (bounded) for the payment's "payment_ended" event
// and returns its reason ("" if none came).
func paymentEnded(c *Interaction) string {
	for range 200 {
		for _, ev := range c.Events() {
			if ev.Type == "payment_ended" {
				return ev.Payment.Reason
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ""
}

// TestPaymentAttemptsPerField: each field's events carry the entries
// used and allowed (3 by default); the third invalid card ends the
// payment ("attempts"), its keys after that go nowhere; an agent's clear
// does not give entries back; payments.attempts sets the number.
func TestPaymentAttemptsPerField(t *testing.T) {
	t.Run("three invalid", func(t *testing.T) {
		c, p := newTestPayment(t, 5*time.Second)
		if l := p.Fields()[0]; l.Attempts != 0 || l.AttemptsAllowed != 3 {
			t.Fatalf("before a key: %+v, want 0 of 3", l)
		}
		for i := 1; i <= 2; i++ {
			keys(p, "4111111111111112#")
			if l := last(fieldEvents(c, FieldCard)); l.State != FieldInvalid || l.Attempts != i || l.AttemptsAllowed != 3 {
				t.Fatalf("invalid card %d: %+v, want attempt %d of 3", i, l, i)
			}
		}
		if r := paymentEnded(c); r != "" {
			t.Fatalf("the payment ended (%s) after two invalid entries of three", r)
		}
		keys(p, "4111111111111112#")
		if r := paymentEnded(c); r != "attempts" {
			t.Fatalf("after the third invalid card the payment ended %q, want attempts", r)
		}
		if l := last(fieldEvents(c, FieldCard)); l.Attempts != 3 || l.State != FieldInvalid {
			t.Errorf("last card event %+v, want invalid, 3 of 3", l)
		}
		n := len(c.Events())
		keys(p, payTestCard+"#")
		if len(c.Events()) != n || c.Mode() != Normal || c.payment.Load() != nil {
			t.Errorf("keys after the end: %d events (was %d), mode %s", len(c.Events()), n, c.Mode())
		}
		if l := last(fieldEvents(c, FieldExpiry)); l.Attempts != 0 {
			t.Errorf("the expiry's attempts moved: %+v", l)
		}
	})
	t.Run("clear gives none back", func(t *testing.T) {
		c, p := newTestPayment(t, 5*time.Second)
		p.cfg.Attempts = 2
		keys(p, "4111111111111112#"+payTestCard+"#")
		if l := last(fieldEvents(c, FieldCard)); l.State != FieldValid || l.Attempts != 2 || l.AttemptsAllowed != 2 {
			t.Fatalf("card: %+v, want valid at 2 of 2", l)
		}
		if r := paymentEnded(c); r != "" {
			t.Fatalf("a valid last entry ended the payment (%s)", r)
		}
		if err := p.Clear(FieldCard); err != nil {
			t.Fatal(err)
		}
		keys(p, "4")
		if r := paymentEnded(c); r != "attempts" {
			t.Errorf("a third entry after clear: payment ended %q, want attempts", r)
		}
		if l := last(fieldEvents(c, FieldCard)); l.State != FieldEmpty || l.Count != 0 {
			t.Errorf("the refused entry shows %+v", l)
		}
	})
}

// TestPaymentSubmitNeedsValidFields: nothing is sent before every field
// is valid.
func TestPaymentSubmitNeedsValidFields(t *testing.T) {
	_, p := newTestPayment(t, 5*time.Second)
	keys(p, payTestCard+"#")
	if _, err := p.Submit(); err == nil || !strings.Contains(err.Error(), "expiry is empty") {
		t.Fatalf("submit with the expiry empty: %v", err)
	}
}

// TestPaymentCVVBeforeAmexCard: a 3-digit CVV keyed before an Amex card
// is refused at submit, and nothing is sent.
func TestPaymentCVVBeforeAmexCard(t *testing.T) {
	c, p := newTestPayment(t, 5*time.Second)
	if err := p.Focus(FieldCVV); err != nil {
		t.Fatal(err)
	}
	keys(p, "123#"+payTestAmex+"#1230")
	if l := last(fieldEvents(c, FieldCVV)); l.State != FieldValid {
		t.Fatalf("cvv before the card: %+v, want valid for now", l)
	}
	if _, err := p.Submit(); err == nil || !strings.Contains(err.Error(), "cvv") {
		t.Fatalf("submit with a 3-digit CVV and an Amex card: %v", err)
	}
	if l := last(fieldEvents(c, FieldCVV)); l.State != FieldInvalid || l.Failure != "length" {
		t.Errorf("cvv after the submit: %+v, want invalid length", l)
	}
}

func TestPaymentRequestValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  PaymentRequest
		ok   bool
	}{
		{"defaults", PaymentRequest{Amount: "10.00", Currency: "GBP"}, true},
		{"order", PaymentRequest{Fields: []string{"expiry", "card", "cvv"}, Amount: "10", Currency: "EUR", Reference: "A-1"}, true},
		{"missing cvv", PaymentRequest{Fields: []string{"card", "expiry"}, Amount: "10", Currency: "GBP"}, false},
		{"twice", PaymentRequest{Fields: []string{"card", "card", "cvv"}, Amount: "10", Currency: "GBP"}, false},
		{"unknown", PaymentRequest{Fields: []string{"card", "expiry", "pin"}, Amount: "10", Currency: "GBP"}, false},
		{"amount", PaymentRequest{Amount: "ten", Currency: "GBP"}, false},
		{"currency", PaymentRequest{Amount: "10", Currency: "gbp"}, false},
		{"card as reference", PaymentRequest{Amount: "10", Currency: "GBP", Reference: "x" + payTestCard}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.validate()
			if (err == nil) != tc.ok {
				t.Fatalf("validate: %v, want ok %v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), payTestCard) {
				t.Error("the error echoes the card")
			}
		})
	}
}

func TestCardBrand(t *testing.T) {
	for bin, want := range map[string]string{
		"41111111": BrandVisa, "55555555": BrandMastercard, "22230000": BrandMastercard, "378282": BrandAmex,
		"601111": BrandDiscover, "352800": BrandJCB, "305693": BrandDiners, "620000": BrandUnionPay, "999999": BrandUnknown,
	} {
		if got := cardBrand(bin); got != want {
			t.Errorf("cardBrand(%s) = %s, want %s", bin, got, want)
		}
	}
}

// TestMaskToneIsOneFixedTone: each key start gives exactly
// MaskToneLength of the tone, over the caller's audio or on the clock,
// never twice the same samples, and silence mode gives none.
func TestMaskToneIsOneFixedTone(t *testing.T) {
	var tone maskTone
	tone.flat = true
	tone.start()
	var heard []int16
	for range 20 {
		pcm := make([]int16, 160)
		for i := range pcm {
			pcm[i] = 7 // the caller's (masked) audio
		}
		tone.overlay(pcm)
		heard = append(heard, pcm...)
	}
	n := int(MaskToneLength.Seconds() * 8000)
	for i, s := range heard[n:] {
		if s != 7 {
			t.Fatalf("sample %d is %d: the tone lasts longer than %d samples", n+i, s, n)
		}
	}
	if want := maskToneSamples(); !slices.Equal(heard[:n], want) {
		t.Error("the tone is not the mask tone")
	}
	if tone.left.Load() != 0 {
		t.Error("the tone did not end")
	}
	quiet := maskTone{}
	quiet.start()
	pcm := make([]int16, 160)
	quiet.overlay(pcm)
	for _, s := range pcm {
		if s != 0 {
			t.Fatal("mask_tone silence played a tone")
		}
	}
	_ = ivr.ChargeSuccess
}

// newGuardedCall is an interaction bridged to an agent (no media), on a
// manager that can take payments with cfg.
func newGuardedCall(t *testing.T, cfg PaymentConfig) (*Interaction, *agentSide) {
	t.Helper()
	clock := media.NewClock(20 * time.Millisecond)
	m := &Manager{cfg: Config{Clock: clock, Payments: cfg}, runner: &ivr.Runner{}, met: nopMetrics{}}
	c := &Interaction{id: "call-1", m: m, data: map[string]string{}, digits: newDigitQueue(), ended: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(c.cancel)
	side := &agentSide{gone: make(chan struct{}), done: make(chan struct{})}
	c.side = side
	return c, side
}

// TestStartPaymentGuards: only on a call bridged to an agent, in normal
// mode, one at a time; a second one after the first ended is fine.
func TestStartPaymentGuards(t *testing.T) {
	req := PaymentRequest{Amount: "1.00", Currency: "GBP"}
	c, side := newGuardedCall(t, PaymentConfig{})
	p, err := c.StartPayment(req)
	if err != nil || c.Mode() != Payment {
		t.Fatalf("start: %v, mode %s", err, c.Mode())
	}
	if _, err := c.StartPayment(req); err != ErrPaymentActive {
		t.Errorf("a second payment: %v, want ErrPaymentActive", err)
	}
	if got, err := c.PaymentSession(p.ID()); err != nil || got != p {
		t.Errorf("PaymentSession(%s): %v", p.ID(), err)
	}
	if _, err := c.PaymentSession("pay-other"); err != ErrNoPayment {
		t.Errorf("an unknown payment: %v", err)
	}
	if err := p.Cancel(); err != nil || c.Mode() != Normal {
		t.Fatalf("cancel: %v, mode %s", err, c.Mode())
	}
	if _, err := c.StartPayment(req); err != nil {
		t.Errorf("a payment after the first ended: %v", err)
	}
	c.endPaymentIfAny("cancelled")

	c.mu.Lock()
	c.setMode(Referred)
	c.mu.Unlock()
	if _, err := c.StartPayment(req); err != ErrNotNormal {
		t.Errorf("a payment in a referral: %v, want ErrNotNormal", err)
	}
	c.mu.Lock()
	c.setMode(Normal)
	c.mu.Unlock()
	close(side.gone)
	if _, err := c.StartPayment(req); err != ErrNotBridged {
		t.Errorf("a payment with the agent gone: %v, want ErrNotBridged", err)
	}
	bad := PaymentRequest{Amount: "x", Currency: "GBP"}
	if _, err := c.StartPayment(bad); !errors.Is(err, ErrPaymentRequest) {
		t.Errorf("a bad request: %v", err)
	}
}

// TestPaymentTimeout: a payment not submitted in time ends "timeout",
// its secrets wiped, the call Normal again.
func TestPaymentTimeout(t *testing.T) {
	c, _ := newGuardedCall(t, PaymentConfig{Timeout: 200 * time.Millisecond})
	p, err := c.StartPayment(PaymentRequest{Amount: "1.00", Currency: "GBP"})
	if err != nil {
		t.Fatal(err)
	}
	keys(p, payTestCard+"#")
	p.mu.Lock()
	card := p.fields[0].value // a copy sharing the digits' storage
	p.mu.Unlock()
	deadline := time.Now().Add(3 * time.Second)
	for c.payment.Load() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.payment.Load() != nil || c.Mode() != Normal || card.Len() != 0 {
		t.Fatalf("after the timeout: payment open %v, mode %s, card %d digits", c.payment.Load() != nil, c.Mode(), card.Len())
	}
	var reason string
	for _, ev := range c.Events() {
		if ev.Type == "payment_ended" {
			reason = ev.Payment.Reason
		}
	}
	if reason != "timeout" {
		t.Errorf("payment_ended %q, want timeout", reason)
	}
}

// TestPaymentFeatureCode: the agent keying the payment code opens a
// payment for the amount, currency and reference in the call's
// participant data; without an amount the code is refused, and the
// refusal is on the event stream without any value of the data.
func TestPaymentFeatureCode(t *testing.T) {
	c, _ := newGuardedCall(t, PaymentConfig{})
	c.m.cfg.PaymentCode = "*8"
	key := func(s string) {
		for i := 0; i < len(s); i++ {
			c.onAgentDigit(s[i], dtmf.SourceRFC4733)
		}
	}
	waitEvent := func(typ string) Event {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			for _, ev := range c.Events() {
				if ev.Type == typ {
					return ev
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no %s event: %+v", typ, c.Events())
		return Event{}
	}

	key("*8") // no amount in the data yet
	ev := waitEvent("payment_refused")
	if c.Mode() != Normal || !strings.Contains(ev.Reason, "amount") {
		t.Fatalf("refused: mode %s, reason %q", c.Mode(), ev.Reason)
	}

	c.mu.Lock()
	c.data[DataPaymentAmount], c.data[DataPaymentCurrency], c.data[DataPaymentReference] = "19.99", "EUR", "order-8"
	c.mu.Unlock()
	key("1*8") // a key before the code does not stop it
	started := waitEvent("payment_started")
	if c.Mode() != Payment || started.Payment.Amount != "19.99" || started.Payment.Currency != "EUR" ||
		strings.Join(started.Payment.Fields, ",") != "card,expiry,cvv" {
		t.Fatalf("started: mode %s, %+v", c.Mode(), started.Payment)
	}
	c.endPaymentIfAny("cancelled")
}
