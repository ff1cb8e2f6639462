package dtmf

import (
	"bytes"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// maxInfoBody bounds the INFO bodies parsed; real ones are a few dozen octets.
const maxInfoBody = 1024

// InfoError is the error ParseInfo returns. It carries the SIP status the
// INFO request should be answered with (RFC 3261 §21.4.16 415 Unsupported
// Media Type, §21.4.1 400 Bad Request). Its message never quotes the
// body, which may hold a digit.
type InfoError struct {
	status int
	reason string
	err    error
}

// Error describes the problem without echoing the body.
func (e *InfoError) Error() string { return e.reason + ": " + e.err.Error() }

// StatusCode is the SIP response status to send.
func (e *InfoError) StatusCode() int { return e.status }

// Unwrap returns ErrUnsupportedContentType or ErrMalformedBody.
func (e *InfoError) Unwrap() error { return e.err }

func malformed(reason string) error {
	return &InfoError{status: 400, reason: reason, err: ErrMalformedBody}
}

// ParseInfo turns the body of a SIP INFO request carrying a key press into
// a KindEnd Event with Source SourceInfo. Two bodies are understood:
//
//   - application/dtmf-relay (the de facto format of Cisco and most
//     PBXes): lines "Signal=5" and "Duration=160" (milliseconds,
//     optional), keys case-insensitive, CRLF or LF line ends;
//   - application/dtmf: the digit alone, e.g. "5" (also the RFC 4733
//     event codes 10-15 for *, #, A-D).
//
// Any other content type gives an *InfoError with status 415; a body that
// does not parse, status 400. No event is returned with an error.
func ParseInfo(contentType string, body []byte) (Event, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return Event{}, &InfoError{status: 415, reason: "unparsable content type", err: ErrUnsupportedContentType}
	}
	if len(body) > maxInfoBody {
		return Event{}, malformed(fmt.Sprintf("body of %d octets (limit %d)", len(body), maxInfoBody))
	}
	switch mt {
	case "application/dtmf-relay":
		return parseRelay(body)
	case "application/dtmf":
		digit, ok := parseSignal(string(bytes.TrimSpace(body)))
		if !ok {
			return Event{}, malformed("application/dtmf body is not one digit")
		}
		return Event{Kind: KindEnd, Source: SourceInfo, Digit: digit}, nil
	}
	// The type is not echoed either: it is caller-controlled text.
	return Event{}, &InfoError{status: 415, reason: "content type is neither application/dtmf-relay nor application/dtmf", err: ErrUnsupportedContentType}
}

func parseRelay(body []byte) (Event, error) {
	ev := Event{Kind: KindEnd, Source: SourceInfo}
	haveSignal, haveDuration := false, false
	for line := range strings.SplitSeq(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return Event{}, malformed("dtmf-relay line without '='")
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "signal":
			if haveSignal {
				return Event{}, malformed("dtmf-relay body with two Signal lines")
			}
			digit, ok := parseSignal(val)
			if !ok {
				return Event{}, malformed("dtmf-relay Signal is not a DTMF digit")
			}
			ev.Digit, haveSignal = digit, true
		case "duration":
			if haveDuration {
				return Event{}, malformed("dtmf-relay body with two Duration lines")
			}
			ms, err := strconv.ParseUint(val, 10, 32)
			if err != nil || ms > 60000 {
				return Event{}, malformed("dtmf-relay Duration is not 0-60000 ms")
			}
			ev.Duration, haveDuration = time.Duration(ms)*time.Millisecond, true
		default:
			// other keys (e.g. Volume) are allowed and ignored
		}
	}
	if !haveSignal {
		return Event{}, malformed("dtmf-relay body without Signal")
	}
	return ev, nil
}

// parseSignal accepts one keypad character or an RFC 4733 event code 0-15.
func parseSignal(s string) (byte, bool) {
	if len(s) == 1 {
		if code, ok := CodeForDigit(s[0]); ok {
			d, _ := DigitForCode(code)
			return d, true
		}
		return 0, false
	}
	if len(s) == 2 && s[0] == '1' && s[1] >= '0' && s[1] <= '5' {
		return DigitForCode(10 + s[1] - '0')
	}
	return 0, false
}
