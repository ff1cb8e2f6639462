package call

import (
	"fmt"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
)

// The fields of an agent-assisted payment: entry and validation of each,
// through dtmf.Collector — the one implementation of digit entry the
// IVR's collect uses too (terminator, lengths, inter-digit timeout, Luhn,
// expiry). Pure: time comes in as an argument; payment.go drives it.

// Payment field names.
const (
	FieldCard   = "card"
	FieldExpiry = "expiry"
	FieldCVV    = "cvv"
)

// Field states, as the agent sees them.
const (
	FieldEmpty    = "empty"    // no key yet
	FieldEntering = "entering" // keys coming, not ended
	FieldValid    = "valid"    // ended and valid
	FieldInvalid  = "invalid"  // ended and not valid; the next key starts it again
)

// Card brands from the BIN (ISO/IEC 7812 issuer identification ranges).
const (
	BrandVisa       = "visa"
	BrandMastercard = "mastercard"
	BrandAmex       = "amex"
	BrandDiscover   = "discover"
	BrandDiners     = "diners"
	BrandJCB        = "jcb"
	BrandUnionPay   = "unionpay"
	BrandUnknown    = "unknown"
)

// cardBrand names the brand of a card from its BIN (its first 6 or 8
// digits, dtmf.Secret.CardFacts).
func cardBrand(bin string) string {
	n := func(k int) int {
		if len(bin) < k {
			return -1
		}
		v := 0
		for _, c := range bin[:k] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	switch p1, p2, p3, p4 := n(1), n(2), n(3), n(4); {
	case p1 == 4:
		return BrandVisa
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return BrandMastercard
	case p2 == 34, p2 == 37:
		return BrandAmex
	case p4 == 6011, p2 == 65, p3 >= 644 && p3 <= 649:
		return BrandDiscover
	case p2 == 36, p2 == 38, p3 >= 300 && p3 <= 305:
		return BrandDiners
	case p4 >= 3528 && p4 <= 3589:
		return BrandJCB
	case p2 == 62:
		return BrandUnionPay
	}
	return BrandUnknown
}

// payField is one field of a payment. Not safe for concurrent use
// (Payment.mu guards it).
type payField struct {
	name  string
	col   *dtmf.Collector // the entry in progress; nil before the first key and after it ended
	count int             // keys of the current entry (never a digit)
	// attempts counts the entries started, for the whole payment: an
	// agent's clear or restart does not give them back.
	attempts int
	state    string
	failure  string      // why an invalid entry is invalid ("luhn", "expiry", "too_short", "timeout")
	value    dtmf.Secret // the valid entry
	brand    string      // the card field's brand, once valid
}

// collectorFor returns the field's collector config; cardBrand is the
// brand of the valid card field ("" when there is none yet): an Amex CVV
// has 4 digits, any other card's 3.
func collectorFor(field, brand string, interDigit time.Duration) dtmf.CollectorConfig {
	cfg := dtmf.CollectorConfig{Terminator: '#', InterDigitTimeout: interDigit, Secret: true, Numeric: true}
	switch field {
	case FieldCard:
		cfg.MinDigits, cfg.MaxDigits, cfg.Luhn = 13, 19, true
	case FieldExpiry:
		cfg.MinDigits, cfg.MaxDigits, cfg.Expiry = 4, 4, true
	case FieldCVV:
		cfg.MinDigits, cfg.MaxDigits = 3, 4
		switch {
		case brand == BrandAmex:
			cfg.MinDigits = 4
		case brand != "":
			cfg.MaxDigits = 3
		}
	}
	return cfg
}

// reset empties the field and wipes its value.
func (f *payField) reset() {
	f.col = nil
	f.count = 0
	f.state = FieldEmpty
	f.failure = ""
	f.value.Wipe()
	f.brand = ""
}

// add feeds one key at now. ended reports that the entry ended with it
// (valid or not); atMax that it ended by reaching its maximum length (a
// terminator keyed next belongs to it).
func (f *payField) add(d byte, now time.Time, cardBrand string, interDigit time.Duration) (ended, atMax bool, err error) {
	if f.col == nil {
		f.reset()
		col, err := dtmf.NewCollector(collectorFor(f.name, cardBrand, interDigit))
		if err != nil {
			return false, false, fmt.Errorf("payment field %s: %w", f.name, err)
		}
		col.Start(now)
		f.col = col
		f.state = FieldEntering
		f.attempts++
	}
	res, done := f.col.Add(d, now)
	if !done {
		f.count++
		return false, false, nil
	}
	f.finish(res)
	return true, res.Reason == dtmf.ReasonMaxDigits, nil
}

// expire ends the entry if its inter-digit timeout passed at now.
func (f *payField) expire(now time.Time) bool {
	if f.col == nil {
		return false
	}
	res, done := f.col.Expire(now)
	if done {
		f.finish(res)
	}
	return done
}

// deadline is when expire is due next (zero: none).
func (f *payField) deadline() time.Time {
	if f.col == nil {
		return time.Time{}
	}
	return f.col.Deadline()
}

// finish records the collector's result: the secret kept if valid, wiped
// at once if not.
func (f *payField) finish(res dtmf.Result) {
	f.col = nil
	f.count = res.Count
	if res.Reason.OK() {
		f.state, f.failure, f.value = FieldValid, "", res.Secret
		if f.name == FieldCard {
			if bin, _, _, ok := res.Secret.CardFacts(nil); ok {
				f.brand = cardBrand(bin)
			}
		}
		return
	}
	res.Secret.Wipe()
	f.state = FieldInvalid
	f.failure = res.Failure.String()
	if res.Reason == dtmf.ReasonTimeout {
		f.failure = "timeout"
	}
}

// invalidate marks a valid field invalid after the fact (an Amex card's
// CVV of 3 digits) and wipes it.
func (f *payField) invalidate(why string) {
	f.value.Wipe()
	f.state, f.failure = FieldInvalid, why
}

// validPaymentFields checks a request's field list: each known, none
// twice, all three there (the gateway's contract).
func validPaymentFields(fields []string) error {
	seen := map[string]bool{}
	// Errors name the position, never echo what was sent: an agent may
	// have pasted anything there.
	for i, f := range fields {
		switch f {
		case FieldCard, FieldExpiry, FieldCVV:
		default:
			return fmt.Errorf("fields[%d] is not card, expiry or cvv: %w", i, ErrPaymentField)
		}
		if seen[f] {
			return fmt.Errorf("fields[%d] is %s again: %w", i, f, ErrPaymentRequest)
		}
		seen[f] = true
	}
	if len(seen) != 3 {
		return fmt.Errorf("fields must be card, expiry and cvv, in the order of entry: %w", ErrPaymentRequest)
	}
	return nil
}
