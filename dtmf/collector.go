package dtmf

import (
	"fmt"
	"time"
)

// maxCollect is the most digits a Collector holds.
const maxCollect = 64

// Reason says why a collection ended.
type Reason uint8

const (
	// ReasonNone: still collecting.
	ReasonNone Reason = iota
	// ReasonComplete: the inter-digit timeout passed after at least
	// MinDigits digits — the caller stopped typing with enough entered.
	ReasonComplete
	// ReasonTerminator: the terminator was pressed after at least MinDigits.
	ReasonTerminator
	// ReasonMaxDigits: MaxDigits digits were entered.
	ReasonMaxDigits
	// ReasonTimeout: the first-digit or inter-digit timeout passed with
	// fewer than MinDigits digits.
	ReasonTimeout
	// ReasonInvalid: the entry failed validation (see Result.Failure),
	// or the terminator came before MinDigits.
	ReasonInvalid
)

// String names the reason (as used in flow definitions).
func (r Reason) String() string {
	names := [...]string{"none", "complete", "terminator", "max_digits", "timeout", "invalid"}
	if int(r) < len(names) {
		return names[r]
	}
	return "unknown"
}

// OK reports whether the entry is usable: ended by completion, terminator
// or reaching MaxDigits, and valid.
func (r Reason) OK() bool {
	return r == ReasonComplete || r == ReasonTerminator || r == ReasonMaxDigits
}

// Failure says which validation rule an invalid entry broke.
type Failure uint8

const (
	// FailNone: no validation failure.
	FailNone Failure = iota
	// FailTooShort: fewer than MinDigits when the terminator was pressed.
	FailTooShort
	// FailLength: the length is not one of Lengths.
	FailLength
	// FailLuhn: the Luhn (ISO/IEC 7812-1 annex B) check digit is wrong.
	FailLuhn
	// FailExpiry: not a MMYY date, or in the past.
	FailExpiry
	// FailCharacter: a digit outside 0-9 in an entry that needs numbers.
	FailCharacter
)

// String names the failure.
func (f Failure) String() string {
	names := [...]string{"", "too_short", "length", "luhn", "expiry", "character"}
	if int(f) < len(names) {
		return names[f]
	}
	return "unknown"
}

// CollectorConfig describes what to collect. The zero value collects
// 1 to 64 digits ended by '#', without timeouts.
type CollectorConfig struct {
	// MinDigits and MaxDigits bound the entry. Defaults 1 and 64.
	MinDigits, MaxDigits int
	// Terminator ends the entry; it is not part of it. Default '#'.
	Terminator byte
	// NoTerminator disables the terminator (then '#' is an ordinary digit).
	NoTerminator bool
	// FirstDigitTimeout is how long to wait for the first digit after
	// Start; 0 waits for ever.
	FirstDigitTimeout time.Duration
	// InterDigitTimeout is how long to wait after each digit; 0 waits for ever.
	InterDigitTimeout time.Duration
	// Secret puts the entry into Result.Secret and never into Result.Digits.
	Secret bool
	// Luhn requires a valid Luhn check digit (card numbers).
	Luhn bool
	// Lengths, if set, lists the only lengths accepted (e.g. 15, 16 for
	// card numbers).
	Lengths []int
	// Expiry requires a MMYY date no earlier than the month of "now".
	Expiry bool
	// Numeric requires every key of the entry to be 0-9 (FailCharacter
	// otherwise); Luhn and Expiry imply it.
	Numeric bool
}

// Result is the outcome of a collection.
type Result struct {
	Reason  Reason
	Failure Failure
	// Digits is the entry, when the collector is not secret.
	Digits string
	// Secret is the entry, when the collector is secret.
	Secret Secret
	// Count is the number of digits entered.
	Count int
}

// Collector gathers the digits an IVR prompt asks for; the ivr package's
// collect action drives one per attempt. It starts no timer and reads no
// clock: the caller passes now to Start, Add and Expire, and asks Deadline
// when to call Expire next.
//
// Collector is not safe for concurrent use.
type Collector struct {
	cfg      CollectorConfig
	buf      [maxCollect]byte
	n        int
	deadline time.Time
	done     bool
	result   Result
}

// NewCollector checks cfg and returns a Collector; call Start when the
// prompt has been played.
func NewCollector(cfg CollectorConfig) (*Collector, error) {
	if cfg.MinDigits == 0 {
		cfg.MinDigits = 1
	}
	if cfg.MaxDigits == 0 {
		cfg.MaxDigits = maxCollect
	}
	if cfg.Terminator == 0 && !cfg.NoTerminator {
		cfg.Terminator = '#'
	}
	switch {
	case cfg.MinDigits < 0 || cfg.MaxDigits < cfg.MinDigits || cfg.MaxDigits > maxCollect:
		return nil, fmt.Errorf("collector digits min %d max %d (1 <= min <= max <= %d): %w", cfg.MinDigits, cfg.MaxDigits, maxCollect, ErrConfig)
	case !cfg.NoTerminator && !IsDigit(cfg.Terminator):
		return nil, fmt.Errorf("collector terminator is not a DTMF key: %w", ErrConfig)
	case cfg.FirstDigitTimeout < 0 || cfg.InterDigitTimeout < 0:
		return nil, fmt.Errorf("collector timeouts must not be negative: %w", ErrConfig)
	case cfg.Expiry && (cfg.MinDigits > 4 || cfg.MaxDigits < 4):
		return nil, fmt.Errorf("collector expiry needs 4 digits within min %d max %d: %w", cfg.MinDigits, cfg.MaxDigits, ErrConfig)
	}
	for _, l := range cfg.Lengths {
		if l < cfg.MinDigits || l > cfg.MaxDigits {
			return nil, fmt.Errorf("collector length %d outside min %d max %d: %w", l, cfg.MinDigits, cfg.MaxDigits, ErrConfig)
		}
	}
	return &Collector{cfg: cfg}, nil
}

// Start begins the first-digit timeout at now.
func (c *Collector) Start(now time.Time) {
	c.deadline = time.Time{}
	if c.cfg.FirstDigitTimeout > 0 {
		c.deadline = now.Add(c.cfg.FirstDigitTimeout)
	}
}

// Deadline is when Expire should next be called; the zero time means no
// timeout is pending.
func (c *Collector) Deadline() time.Time {
	if c.done {
		return time.Time{}
	}
	return c.deadline
}

// Done reports whether the collection has ended.
func (c *Collector) Done() bool { return c.done }

// Add records a key press at now. When it ends the collection, done is
// true and res holds the outcome; digits after that are ignored.
func (c *Collector) Add(digit byte, now time.Time) (res Result, done bool) {
	if c.done {
		return c.result, true
	}
	if !IsDigit(digit) {
		return Result{}, false
	}
	if !c.cfg.NoTerminator && digit == c.cfg.Terminator {
		if c.n < c.cfg.MinDigits {
			return c.finish(ReasonInvalid, FailTooShort, now), true
		}
		return c.finish(ReasonTerminator, FailNone, now), true
	}
	c.buf[c.n] = digit
	c.n++
	if c.n >= c.cfg.MaxDigits {
		return c.finish(ReasonMaxDigits, FailNone, now), true
	}
	c.deadline = time.Time{}
	if c.cfg.InterDigitTimeout > 0 {
		c.deadline = now.Add(c.cfg.InterDigitTimeout)
	}
	return Result{}, false
}

// Expire ends the collection if its deadline has passed at now.
func (c *Collector) Expire(now time.Time) (res Result, done bool) {
	if c.done {
		return c.result, true
	}
	if c.deadline.IsZero() || now.Before(c.deadline) {
		return Result{}, false
	}
	if c.n >= c.cfg.MinDigits {
		return c.finish(ReasonComplete, FailNone, now), true
	}
	return c.finish(ReasonTimeout, FailNone, now), true
}

// finish validates, builds the result and wipes the buffer.
func (c *Collector) finish(reason Reason, fail Failure, now time.Time) Result {
	digits := c.buf[:c.n]
	if reason.OK() {
		if f := c.validate(digits, now); f != FailNone {
			reason, fail = ReasonInvalid, f
		}
	}
	res := Result{Reason: reason, Failure: fail, Count: c.n}
	if c.cfg.Secret {
		res.Secret, _ = NewSecret(digits)
	} else {
		res.Digits = string(digits)
	}
	for i := range c.buf {
		c.buf[i] = 0
	}
	c.done, c.result = true, res
	return res
}

func (c *Collector) validate(d []byte, now time.Time) Failure {
	if len(c.cfg.Lengths) > 0 {
		ok := false
		for _, l := range c.cfg.Lengths {
			ok = ok || l == len(d)
		}
		if !ok {
			return FailLength
		}
	}
	if c.cfg.Luhn || c.cfg.Expiry || c.cfg.Numeric {
		for _, b := range d {
			if b < '0' || b > '9' {
				return FailCharacter
			}
		}
	}
	if c.cfg.Luhn && !Luhn(d) {
		return FailLuhn
	}
	if c.cfg.Expiry && !ExpiryValid(d, now) {
		return FailExpiry
	}
	return FailNone
}

// Luhn reports whether digits (ASCII 0-9) end in a valid Luhn check digit
// (ISO/IEC 7812-1 annex B). Fewer than two digits, or any other
// character, is invalid.
func Luhn(digits []byte) bool {
	if len(digits) < 2 {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		b := digits[i]
		if b < '0' || b > '9' {
			return false
		}
		v := int(b - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ExpiryValid reports whether digits are a card expiry MMYY that has not
// passed at now: a card is valid through the last day of its month. Dates
// more than 20 years ahead are refused as typos.
func ExpiryValid(digits []byte, now time.Time) bool {
	if len(digits) != 4 {
		return false
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return false
		}
	}
	month := int(digits[0]-'0')*10 + int(digits[1]-'0')
	year := 2000 + int(digits[2]-'0')*10 + int(digits[3]-'0')
	if month < 1 || month > 12 {
		return false
	}
	cur := now.Year()*12 + int(now.Month()) - 1
	exp := year*12 + month - 1
	return exp >= cur && exp <= cur+20*12
}
