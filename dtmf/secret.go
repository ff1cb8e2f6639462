package dtmf

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
)

// cardLikeLen is the length from which a Secret's mask shows the last four
// digits (PCI DSS allows showing the last four of a card number; the
// shortest card numbers have 12 digits).
const cardLikeLen = 12

// shortMask is what any secret shorter than cardLikeLen prints: a fixed
// width, so the mask does not leak the length of a CVV or PIN.
const shortMask = "****"

type secretValue struct{ digits []byte }

// Secret holds sensitive digits (a card number, CVV, expiry, PIN).
//
// Every way of printing it shows only a mask: String, every fmt verb
// (%v %+v %#v %s %q %x %X %d …, through fmt.Formatter and
// fmt.GoStringer), encoding/json, encoding.TextMarshaler, log/slog
// (slog.LogValuer) and zerolog (which uses these). Card-like values
// (12 digits or more) show the last four, e.g. "************1111";
// shorter ones show "****" whatever their length. The digits sit behind a
// pointer, so even a Secret inside another struct printed with %v shows an
// address, not the digits.
//
// The clear value is reachable only through RevealForPaymentGateway. The
// zero Secret is empty. Copies share storage: Wipe clears every copy.
type Secret struct{ v *secretValue }

// NewSecret returns a Secret holding a copy of digits (0-9, *, #, A-D).
func NewSecret(digits []byte) (Secret, error) {
	for _, b := range digits {
		if !IsDigit(b) {
			return Secret{}, fmt.Errorf("secret: %w", ErrInvalidDigit)
		}
	}
	return Secret{v: &secretValue{digits: append([]byte(nil), digits...)}}, nil
}

// Len is the number of digits held.
func (s Secret) Len() int {
	if s.v == nil {
		return 0
	}
	return len(s.v.digits)
}

// Last4 returns the last four digits of a card-like value (12 digits or
// more) and "" for anything shorter, whose last four would be most or all
// of it.
func (s Secret) Last4() string {
	if s.Len() < cardLikeLen {
		return ""
	}
	return string(s.v.digits[len(s.v.digits)-4:])
}

// Mask returns the printable form: "************1111" for card-like
// values, "****" for shorter ones and "" when empty.
func (s Secret) Mask() string {
	n := s.Len()
	switch {
	case n == 0:
		return ""
	case n < cardLikeLen:
		return shortMask
	}
	return strings.Repeat("*", n-4) + s.Last4()
}

// RevealForPaymentGateway calls use with the clear digits. It is the one
// way to them, meant for read-back to the caller and the payment data
// action; grep for it to audit every use. The slice is the secret's own
// storage: use must not keep it or turn it into a string (a Go string
// cannot be wiped), and Wipe zeroes it.
func (s Secret) RevealForPaymentGateway(use func(clear []byte)) {
	if s.v == nil {
		use(nil)
		return
	}
	use(s.v.digits)
}

// Clone returns an independent copy (wiping one leaves the other).
func (s Secret) Clone() Secret {
	if s.v == nil {
		return Secret{}
	}
	return Secret{v: &secretValue{digits: append([]byte(nil), s.v.digits...)}}
}

// Equal reports whether two secrets hold the same digits, without
// revealing either.
func (s Secret) Equal(o Secret) bool {
	if s.Len() != o.Len() {
		return false
	}
	var diff byte
	for i := range s.Len() {
		diff |= s.v.digits[i] ^ o.v.digits[i]
	}
	return diff == 0
}

// Wipe overwrites the digits in memory and empties the secret (and every
// copy of it).
func (s *Secret) Wipe() {
	if s.v == nil {
		return
	}
	for i := range s.v.digits {
		s.v.digits[i] = 0
	}
	s.v.digits = s.v.digits[:0]
	s.v = nil
}

// String returns the mask.
func (s Secret) String() string { return s.Mask() }

// GoString returns the mask, for %#v.
func (s Secret) GoString() string { return "dtmf.Secret(" + s.Mask() + ")" }

// Format prints the mask for every verb and flag: %v, %+v, %s, %q, %x,
// %d and the rest never see the digits.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.Mask())
	case 'v':
		if f.Flag('#') {
			_, _ = f.Write([]byte(s.GoString()))
			return
		}
		_, _ = f.Write([]byte(s.Mask()))
	default:
		_, _ = f.Write([]byte(s.Mask()))
	}
}

// MarshalJSON encodes the mask as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) {
	return []byte(`"` + s.Mask() + `"`), nil
}

// MarshalText returns the mask (encoding.TextMarshaler: YAML, XML, map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Mask()), nil }

// LogValue makes log/slog print the mask.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Mask()) }

// CardFacts returns what fraud screening may know of a card number
// without the number: its BIN (the first 8 digits of a number of 16 or
// more, else the first 6, as PCI DSS allows shown beside the last four),
// its last four, and token, the hex HMAC-SHA-256 of the digits under key
// (a per-deployment key, so equal cards compare equal and a stolen token
// table cannot be brute-forced without it). ok is false, and nothing is
// returned, for a value that is not card-like (fewer than 12 digits, or
// not all 0-9) or an empty key. The digits never leave the Secret.
func (s Secret) CardFacts(key []byte) (bin, last4, token string, ok bool) {
	n := s.Len()
	if n < cardLikeLen {
		return "", "", "", false
	}
	for _, b := range s.v.digits {
		if b < '0' || b > '9' {
			return "", "", "", false
		}
	}
	binLen := 6
	if n >= 16 {
		binLen = 8
	}
	if len(key) > 0 {
		m := hmac.New(sha256.New, key)
		m.Write(s.v.digits)
		token = hex.EncodeToString(m.Sum(nil))
	}
	return string(s.v.digits[:binLen]), string(s.v.digits[n-4:]), token, true
}
