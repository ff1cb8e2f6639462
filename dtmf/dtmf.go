package dtmf

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers test them with errors.Is. No error string contains a digit.
var (
	// ErrShortPayload: an RFC 4733 payload shorter than 4 octets.
	ErrShortPayload = errors.New("dtmf: telephone-event payload shorter than 4 octets")
	// ErrInvalidDigit: a byte that is not one of 0-9, *, #, A-D.
	ErrInvalidDigit = errors.New("dtmf: not a DTMF digit")
	// ErrConfig: a configuration value out of range.
	ErrConfig = errors.New("dtmf: invalid configuration")
	// ErrUnsupportedContentType: a SIP INFO body type this package does not parse (415).
	ErrUnsupportedContentType = errors.New("dtmf: unsupported INFO content type")
	// ErrMalformedBody: a SIP INFO body that does not parse (400).
	ErrMalformedBody = errors.New("dtmf: malformed INFO body")
	// ErrBufferTooSmall: an output slice shorter than required.
	ErrBufferTooSmall = errors.New("dtmf: output buffer too small")
)

// Kind says whether an Event opens or closes a digit.
type Kind uint8

const (
	// KindStart: a digit began (start masking now).
	KindStart Kind = iota + 1
	// KindEnd: a digit finished; this is the event that counts as a key press.
	KindEnd
)

// String returns "start" or "end".
func (k Kind) String() string {
	switch k {
	case KindStart:
		return "start"
	case KindEnd:
		return "end"
	}
	return "unknown"
}

// Source says where an Event came from.
type Source uint8

const (
	// SourceRFC4733: RTP telephone-event packets (RFC 4733).
	SourceRFC4733 Source = iota + 1
	// SourceInband: tones detected in the audio.
	SourceInband
	// SourceInfo: a SIP INFO request body.
	SourceInfo
)

// String names the source.
func (s Source) String() string {
	switch s {
	case SourceRFC4733:
		return "rfc4733"
	case SourceInband:
		return "inband"
	case SourceInfo:
		return "info"
	}
	return "unknown"
}

// Event is one digit starting or ending. A key press yields one KindStart
// followed by one KindEnd (SIP INFO yields only KindEnd). The digit is
// sensitive: printing an Event with any fmt verb, or as JSON, shows '*'
// in its place, so an Event logged by accident leaks nothing. Read the
// Digit field to use it.
type Event struct {
	Kind   Kind
	Source Source
	// Digit is the keypad character: '0'-'9', '*', '#', 'A'-'D'.
	Digit byte
	// Duration is the length of the digit so far (Start) or in total (End).
	Duration time.Duration
	// Volume is the RFC 4733 volume field (0 to 63, meaning 0 to -63
	// dBm0), or the measured in-band level rounded to -dBm0.
	Volume uint8
	// Lost is set on an End event that was inferred — the end packets
	// never arrived (RFC 4733) — rather than observed.
	Lost bool
	// SSRC and Timestamp identify an RFC 4733 event (RFC 4733 §2.5.1.1:
	// the timestamp is the event's start; it keys the event).
	SSRC      uint32
	Timestamp uint32
	// Offset is, for in-band events, the sample index in the stream where
	// the tone began (Start, an estimate that errs early) or ended (End).
	Offset int64
}

// digitChars maps RFC 4733 §3.2 event codes 0-15 to keypad characters.
const digitChars = "0123456789*#ABCD"

// DigitForCode returns the keypad character for an RFC 4733 §3.2 DTMF
// event code (0-15); ok is false for any other code.
func DigitForCode(code uint8) (digit byte, ok bool) {
	if code > 15 {
		return 0, false
	}
	return digitChars[code], true
}

// CodeForDigit returns the RFC 4733 §3.2 event code for a keypad
// character; lower-case a-d are accepted.
func CodeForDigit(digit byte) (code uint8, ok bool) {
	switch {
	case digit >= '0' && digit <= '9':
		return digit - '0', true
	case digit == '*':
		return 10, true
	case digit == '#':
		return 11, true
	case digit >= 'A' && digit <= 'D':
		return digit - 'A' + 12, true
	case digit >= 'a' && digit <= 'd':
		return digit - 'a' + 12, true
	}
	return 0, false
}

// IsDigit reports whether b is a DTMF keypad character (upper-case A-D).
func IsDigit(b byte) bool {
	_, ok := CodeForDigit(b)
	return ok && !(b >= 'a' && b <= 'd')
}

// Format prints the event with its digit masked, for every verb.
func (e Event) Format(f fmt.State, _ rune) {
	lost := ""
	if e.Lost {
		lost = " lost"
	}
	fmt.Fprintf(f, "dtmf.Event{%s %s digit=* duration=%v%s}", e.Source, e.Kind, e.Duration, lost)
}

// MarshalJSON encodes the event with its digit masked.
func (e Event) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"kind":%q,"source":%q,"digit":"*","duration_ms":%d,"lost":%t}`,
		e.Kind, e.Source, e.Duration.Milliseconds(), e.Lost), nil
}
