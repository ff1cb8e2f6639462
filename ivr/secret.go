package ivr

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
)

// secret holds collected digits that must not leak: String, GoString,
// Format, MarshalJSON and MarshalText print a mask; the clear value is
// reachable only through revealDigits. It mirrors dtmf.Secret but hands out
// the digits as a byte slice it owns and zeroes on wipe, so the payment
// request body is built without an unwipeable Go string copy
// (dtmf.Secret.RevealForPaymentGateway returns a string).
type secret struct {
	b []byte
}

func newSecret(digits []byte) *secret {
	return &secret{b: append([]byte(nil), digits...)}
}

// mask shows only the length and the last four characters, e.g.
// "************1111"; values of four or fewer characters are fully masked.
func (s *secret) mask() string {
	if s == nil || len(s.b) == 0 {
		return ""
	}
	n := len(s.b)
	if n <= 4 {
		return strings.Repeat("*", n)
	}
	return strings.Repeat("*", n-4) + string(s.b[n-4:])
}

// String prints the mask.
func (s *secret) String() string { return s.mask() }

// GoString prints the mask, so %#v cannot reveal the digits.
func (s *secret) GoString() string { return "secret(" + s.mask() + ")" }

// Format prints the mask for every verb (%v, %+v, %s, %q, %x, ...).
func (s *secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.mask())) }

// MarshalJSON prints the mask as a JSON string.
func (s *secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.mask())), nil }

// MarshalText prints the mask (used by encoders that prefer text).
func (s *secret) MarshalText() ([]byte, error) { return []byte(s.mask()), nil }

// last4 returns the last four characters (what the mask shows); values of
// four or fewer characters give "" so that nothing of a short secret (a CVV)
// leaks.
func (s *secret) last4() string {
	if s == nil || len(s.b) <= 4 {
		return ""
	}
	return string(s.b[len(s.b)-4:])
}

// revealDigits is the one way to the clear value. Callers must not keep,
// copy into strings, or format the returned slice; it is zeroed by wipe.
// Used only by say_digits (last four) and payment-gateway data actions.
func (s *secret) revealDigits() []byte { return s.b }

// wipe zeroes the digits.
func (s *secret) wipe() {
	if s == nil {
		return
	}
	for i := range s.b {
		s.b[i] = 0
	}
	s.b = nil
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
