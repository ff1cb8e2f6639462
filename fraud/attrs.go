package fraud

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Sentinel errors.
var (
	// ErrSecret: an attribute carries (or looks like) a card secret; the
	// fraud package refuses it rather than hold it.
	ErrSecret = errors.New("fraud: card secret refused")
	// ErrValue: a value cannot be normalised for its type.
	ErrValue = errors.New("fraud: bad value")
)

// Payment is the non-secret part of a payment: what PCI DSS allows to be
// retained. There is deliberately no field for the full card number, the
// expiry or the CVV.
type Payment struct {
	// BIN is the card's first 6 to 8 digits.
	BIN string
	// Last4 is the card's last four digits.
	Last4 string
	// Brand and Country come from the BIN table when one is configured
	// (Screener fills them when empty).
	Brand, Country string
	// Amount is the amount in the currency's major unit.
	Amount float64
	// Currency is an ISO 4217 code, upper case.
	Currency string
	// CardToken is the keyed HMAC token of the card number computed inside
	// the secure segment (lower-case hex, 64 characters); never the number.
	CardToken string
}

// Attributes is what a screening looks at. Build it, then let Screen check
// and normalise it (Check); a value that looks like a card secret anywhere
// is refused with ErrSecret.
type Attributes struct {
	// Caller is the caller's number (From or P-Asserted-Identity), in any
	// common form; normalised to E.164.
	Caller string
	// Verstat is the carrier's caller-ID verification (RFC 8588 /
	// ATIS-1000074 "verstat": TN-Validation-Passed, TN-Validation-Failed,
	// No-TN-Validation); empty when absent.
	Verstat string
	// Source is the trunk or phone's source address.
	Source netip.Addr
	// Trunk names the trunk the call came in on ("" none).
	Trunk string
	// Route is the called user part; Queue and Agent the interaction's.
	Route, Queue, Agent string
	// Time is when the screening happens (time of day rules).
	Time time.Time
	// Data is the interaction's participant data (email, postcode,
	// extended_postcode, customer_id, …).
	Data map[string]string
	// Payment is nil when screening a call at arrival.
	Payment *Payment
}

// Participant-data keys that feed static lookups.
const (
	KeyEmail            = "email"
	KeyPostcode         = "postcode"
	KeyExtendedPostcode = "extended_postcode"
	KeyCustomerID       = "customer_id"
)

// secretKeys are participant-data key fragments that name a card secret.
var secretKeys = []string{"card_number", "cardnumber", "cvv", "cvc", "cv2", "expiry", "exp_date", "expiration", "security_code"}

// Check refuses anything that could be a card secret: a participant-data key
// naming one, a value (anywhere in the attributes) holding a Luhn-valid run
// of 13-19 digits, a BIN that is not 6-8 digits, a last four that is not 4
// digits, a token that is not a 64-hex token. Errors never quote the value.
func (a *Attributes) Check() error {
	for k, v := range a.Data {
		if secretKey(k) {
			return fmt.Errorf("participant data key %q names a card secret: %w", k, ErrSecret)
		}
		if HasPAN(v) && !intlPhone(v) {
			return fmt.Errorf("participant data %q holds a card number: %w", k, ErrSecret)
		}
		if HasPAN(k) {
			return fmt.Errorf("participant data key holds a card number: %w", ErrSecret)
		}
	}
	if HasPAN(a.Caller) && !intlPhone(a.Caller) {
		return fmt.Errorf("caller holds a card number: %w", ErrSecret)
	}
	for name, v := range map[string]string{"verstat": a.Verstat, "trunk": a.Trunk, "route": a.Route, "queue": a.Queue, "agent": a.Agent} {
		if HasPAN(v) {
			return fmt.Errorf("%s holds a card number: %w", name, ErrSecret)
		}
	}
	if p := a.Payment; p != nil {
		if !isDigits(p.BIN) || len(p.BIN) < 6 || len(p.BIN) > 8 {
			return fmt.Errorf("payment bin: want 6 to 8 digits: %w", ErrSecret)
		}
		if !isDigits(p.Last4) || len(p.Last4) != 4 {
			return fmt.Errorf("payment last4: want 4 digits: %w", ErrSecret)
		}
		if p.CardToken != "" && !isToken(p.CardToken) {
			return fmt.Errorf("payment card token: want 64 lower-case hex characters: %w", ErrSecret)
		}
		for name, v := range map[string]string{"brand": p.Brand, "country": p.Country, "currency": p.Currency} {
			if HasPAN(v) {
				return fmt.Errorf("payment %s holds a card number: %w", name, ErrSecret)
			}
		}
	}
	return nil
}

// HasPAN reports whether s holds a possible card number: a run of digits
// (single spaces or dashes between them allowed) of 13 to 19 digits that
// passes the Luhn check, or a longer run with any 13-19 digit window that
// does (a number glued to other digits).
func HasPAN(s string) bool {
	run := make([]byte, 0, 32)
	flush := func() bool {
		defer func() { run = run[:0] }()
		switch n := len(run); {
		case n < 13:
			return false
		case n <= 19:
			return luhn(run)
		}
		for l := 13; l <= 19; l++ {
			for i := 0; i+l <= len(run); i++ {
				if luhn(run[i : i+l]) {
					return true
				}
			}
		}
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			run = append(run, c)
		case (c == ' ' || c == '-') && len(run) > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
		default:
			if flush() {
				return true
			}
		}
	}
	return flush()
}

// intlPhone reports whether s is a phone number written internationally
// (with + or 00, or a SIP/tel URI of one) of at most 15 digits (ITU-T
// E.164): such a number is not taken for a card number even when its
// digits pass Luhn (one 13-15 digit number in ten does). A card number
// written with a leading + is the price: 16-19 digit cards are still
// refused.
func intlPhone(s string) bool {
	t := strings.TrimSpace(s)
	if i := strings.IndexByte(t, ':'); i >= 0 {
		t = t[i+1:]
	}
	if !strings.HasPrefix(t, "+") && !strings.HasPrefix(t, "00") {
		return false
	}
	_, err := Normaliser{}.Phone(s)
	return err == nil
}

// secretKey reports whether a participant-data key names a card secret.
func secretKey(k string) bool {
	lk := strings.NewReplacer("-", "_", " ", "_", ".", "_").Replace(strings.ToLower(k))
	for _, s := range secretKeys {
		if strings.Contains(lk, s) {
			return true
		}
	}
	for _, part := range strings.Split(lk, "_") {
		if part == "pan" {
			return true
		}
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsCardToken reports whether s has a card token's form: 64 lower-case
// hex characters (a keyed HMAC-SHA-256), so it cannot be a card number.
func IsCardToken(s string) bool { return isToken(s) }

func isToken(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
