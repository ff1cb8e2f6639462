package ivr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
)

// ErrChargeInput: a Charge without a card number, or with a secret
// variable missing.
var ErrChargeInput = errors.New("charge: card number, expiry and cvv are required")

// PaymentGatewayEndpoint is the endpoint name a Charge is sent to, the
// same one flows' payment_gateway steps name.
const PaymentGatewayEndpoint = "payment_gateway"

// Charge is a payment taken outside a flow: an agent-assisted payment,
// whose card, expiry and CVV the caller keyed while talking to an agent
// (docs/PAYMENTS.md). Runner.Charge sends it exactly as a flow's
// payment_gateway step does.
type Charge struct {
	// Card, Expiry and CVV are the collected secrets. Charge wipes them
	// when it returns, whatever the outcome.
	Card, Expiry, CVV dtmf.Secret
	// Amount and Currency ("10.00", "GBP") and Reference (the merchant's
	// order reference, sent as order_reference) are plain fields.
	Amount, Currency, Reference string
	// Fraud screens the payment first, as a step's fraud: true does; it
	// does nothing on a Runner without a Screener.
	Fraud bool
	// Timeout bounds the request (0: DefaultDataTimeout).
	Timeout time.Duration
}

// Charge outcomes (ChargeResult.Outcome): the data_action's branches.
const (
	ChargeSuccess = "success" // 2xx with a JSON object: see Result
	ChargeHeld    = "held"    // fraud screening held it, the gateway authorised it
	ChargeFailure = "failure" // refused, transport error, non-2xx, bad body
	ChargeTimeout = "timeout"
)

// ChargeResult is what the gateway said, without the card: Outcome is one
// of the Charge* constants; Result ("approved", "declined"), Reason (a
// decline's, "expired"), Reference
// and Last4 are the gateway's fields (Last4 falls back to the card's own
// last four); Detail says why a failure failed, naming no value.
type ChargeResult struct {
	Outcome   string `json:"outcome"`
	Result    string `json:"result,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Reference string `json:"reference,omitempty"`
	Last4     string `json:"last4,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// Charge sends ch to the payment_gateway endpoint through the very code
// of a flow's payment_gateway data_action (DataAction.run): https or
// loopback only, no redirects, secret bytes straight into the request
// body and the body wiped after, the same fraud screening and hold. It is
// run as a one-step flow named "agent-assisted-payment" on call, whose
// Trace sees the step's branch and never a value. The secrets of ch are
// wiped before Charge returns. The error is for a call that ended under
// it; every gateway outcome is in the result.
func (r *Runner) Charge(ctx context.Context, call Call, ch Charge) (ChargeResult, error) {
	sc := newScope()
	defer sc.wipe()
	defer ch.Card.Wipe()
	defer ch.Expiry.Wipe()
	defer ch.CVV.Wipe()
	if ch.Card.Len() == 0 || ch.Expiry.Len() == 0 || ch.CVV.Len() == 0 {
		return ChargeResult{Outcome: ChargeFailure, Detail: ErrChargeInput.Error()}, nil
	}
	last4 := ch.Card.Last4()
	sc.setSecret("card", &secret{s: ch.Card})
	sc.setSecret("expiry", &secret{s: ch.Expiry})
	sc.setSecret("cvv", &secret{s: ch.CVV})
	d := &DataAction{
		Endpoint: PaymentGatewayEndpoint, PaymentGateway: true, Fraud: ch.Fraud,
		Send:      map[string]string{"card_number": "card", "expiry": "expiry", "cvv": "cvv"},
		Constants: map[string]string{},
		Receive: map[string]string{"result": "result", "reference": "reference", "card_last4": "card_last4",
			"reason": "reason"},
		Timeout:   Duration(ch.Timeout),
		OnSuccess: ChargeSuccess, OnFailure: ChargeFailure, OnTimeout: ChargeTimeout,
	}
	if ch.Fraud {
		d.OnHold = ChargeHeld
	}
	for k, v := range map[string]string{"amount": ch.Amount, "currency": ch.Currency, "order_reference": ch.Reference} {
		if v != "" {
			d.Constants[k] = v
		}
	}
	f := &Flow{Name: "agent-assisted-payment", Kind: KindNormal}
	s := &Step{Name: "charge", Action: d}
	f.Steps = []Step{*s}
	st := &run{r: r, call: call, client: r.Client, now: r.Now, max: 1, flow: f, at: s}
	if st.client == nil {
		st.client = &http.Client{Timeout: 30 * time.Second}
	}
	if st.now == nil {
		st.now = time.Now
	}
	o, err := d.run(ctx, &exec{st: st, f: f, sc: sc, s: s})
	if err != nil {
		return ChargeResult{Outcome: ChargeFailure, Detail: "call ended"}, fmt.Errorf("charge: %w", err)
	}
	res := ChargeResult{Outcome: o.next, Result: sc.plain["result"], Reason: sc.plain["reason"], Reference: sc.plain["reference"],
		Last4: sc.plain["card_last4"]}
	if res.Last4 == "" || !allDigits([]byte(res.Last4)) || len(res.Last4) != 4 {
		res.Last4 = last4
	}
	switch res.Outcome {
	case ChargeFailure, ChargeTimeout:
		res.Detail = "gateway " + res.Outcome
	}
	return res, nil
}
