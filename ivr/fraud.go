package ivr

import (
	"context"
	"strconv"
	"strings"

	"github.com/cloak-voip/cloak/fraud"
)

// Screener screens a payment before a payment_gateway step marked
// fraud: true sends it, and records the hold of a payment it held
// (docs/FRAUD.md). The server implements it over fraud.Screener and the
// archive; a Runner without one sends every payment unscreened.
type Screener interface {
	// Screen decides on a's score; a never holds a card secret.
	Screen(ctx context.Context, a fraud.Attributes) (fraud.Decision, error)
	// Hold records an authorised, uncaptured payment held for review
	// (code fraud-auto).
	Hold(ctx context.Context, h Hold) error
}

// PaymentRecorder, when the Screener implements it, is told each screened
// payment's gateway result (declined: the gateway's "result" was
// "declined"), for the velocity attributes of later screenings. a is what
// was screened: no card secret.
type PaymentRecorder interface {
	RecordPayment(ctx context.Context, a fraud.Attributes, interaction string, declined bool)
}

// Hold is a held payment as the runner reports it: the interaction, the
// decision (its matches name entries and rules, never a card) and the
// gateway's reference of the authorisation.
type Hold struct {
	Interaction string
	Decision    fraud.Decision
	Reference   string
}

// FraudFacts is what a call tells a screening besides the card: its
// caller's number, route (called user part) and participant data.
type FraudFacts struct {
	Caller, Route string
	Data          map[string]string
}

// FraudCall is implemented by a Call that can tell a screening its facts;
// a Call that does not is screened on the card and amount only.
type FraudCall interface {
	FraudFacts() FraudFacts
}

// fraudAttributes builds the screening's attributes: the card's BIN, last
// four and token from the secret (CardFacts: the digits stay in it), the
// amount and currency from the step's constants or plain variables, and
// the call's facts. A card that is not card-like (no BIN) is screened
// without a payment.
func (st *run) fraudAttributes(d *DataAction, sc *scope) fraud.Attributes {
	a := fraud.Attributes{Time: st.now()}
	if fc, ok := st.call.(FraudCall); ok {
		f := fc.FraudFacts()
		a.Caller, a.Route, a.Data = f.Caller, f.Route, f.Data
	}
	sec, ok := sc.secrets[d.Send["card_number"]]
	if !ok {
		return a // not a card: screened as a call (validated: cannot happen)
	}
	bin, last4, token, ok := sec.s.CardFacts(st.r.CardTokenKey)
	if !ok {
		return a
	}
	p := &fraud.Payment{BIN: bin, Last4: last4, CardToken: token}
	field := func(name string) string {
		if v, ok := d.Constants[name]; ok {
			return v
		}
		if v, ok := d.Send[name]; ok {
			return sc.plain[v]
		}
		return ""
	}
	if amt, err := strconv.ParseFloat(strings.TrimSpace(field("amount")), 64); err == nil {
		p.Amount = amt
	}
	p.Currency = strings.ToUpper(strings.TrimSpace(field("currency")))
	a.Payment = p
	return a
}
