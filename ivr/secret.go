package ivr

import (
	"fmt"
	"strconv"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
)

// secret is a flow variable holding collected digits: a dtmf.Secret (the
// one secret type, DESIGN "The secure gate") behind a pointer so scopes can
// wipe it in place. Every printing path shows dtmf.Secret's mask.
type secret struct{ s dtmf.Secret }

func newSecret(digits []byte) *secret {
	s, err := dtmf.NewSecret(digits)
	if err != nil {
		return &secret{} // collected keys are always valid digits
	}
	return &secret{s: s}
}

// String prints the mask.
func (x *secret) String() string { return x.s.Mask() }

// GoString prints the mask, so %#v cannot reveal the digits.
func (x *secret) GoString() string { return "secret(" + x.s.Mask() + ")" }

// Format prints the mask for every verb (%v, %+v, %s, %q, %x, ...).
func (x *secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(x.s.Mask())) }

// MarshalJSON prints the mask as a JSON string.
func (x *secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(x.s.Mask())), nil }

// MarshalText prints the mask (used by encoders that prefer text).
func (x *secret) MarshalText() ([]byte, error) { return []byte(x.s.Mask()), nil }

// last4 returns what the mask shows: the last four of a card-like value,
// "" for anything shorter (a CVV, an expiry).
func (x *secret) last4() string { return x.s.Last4() }

// length is the number of digits.
func (x *secret) length() int { return x.s.Len() }

// clone copies the secret without revealing it.
func (x *secret) clone() *secret { return &secret{s: x.s.Clone()} }

// reveal hands the clear digits to use: payment-gateway data actions only
// (through dtmf.Secret.RevealForPaymentGateway, the one way to them).
func (x *secret) reveal(use func([]byte)) { x.s.RevealForPaymentGateway(use) }

// wipe zeroes the digits.
func (x *secret) wipe() {
	if x != nil {
		x.s.Wipe()
	}
}

// luhnValid reports whether digits pass the Luhn mod-10 check (ISO/IEC
// 7812-1 Annex B); dtmf.Luhn is the one implementation.
func luhnValid(digits []byte) bool { return dtmf.Luhn(digits) }

// expiryValid reports whether digits are MMYY, month 01-12, not before now's
// month and at most 20 years ahead (dtmf.ExpiryValid).
func expiryValid(digits []byte, now time.Time) bool { return dtmf.ExpiryValid(digits, now) }

// allDigits reports whether b is non-empty and only 0-9.
func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// wipeBytes zeroes b.
func wipeBytes(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
