package sip

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxChannelValue bounds a header value kept as channel data, in bytes.
const MaxChannelValue = 256

// Errors of HeaderValue: why a header's value is not kept.
var (
	// ErrHeaderRepeated: the header appears more than once.
	ErrHeaderRepeated = errors.New("sip: header repeated")
	// ErrHeaderTooLong: the value is longer than MaxChannelValue.
	ErrHeaderTooLong = errors.New("sip: header value too long")
	// ErrHeaderControl: the value holds a control character or is not
	// UTF-8.
	ErrHeaderControl = errors.New("sip: header value holds a control character")
)

// HeaderValue is the value of the INVITE's header name (matched without
// regard to case, RFC 3261 §7.3.1), trimmed, for channel data: ok is false
// when the header is absent or empty. A header sent twice (which of two
// claims is true?), a value over MaxChannelValue bytes, or one with a
// control character (RFC 3261 §25.1 allows none in a header value beyond
// folding whitespace) or invalid UTF-8 is an error, which never carries
// the value.
func (s *Session) HeaderValue(name string) (v string, ok bool, err error) {
	hs := s.req.GetHeaders(name)
	switch {
	case len(hs) == 0:
		return "", false, nil
	case len(hs) > 1:
		return "", false, fmt.Errorf("%w: %s %d times", ErrHeaderRepeated, name, len(hs))
	}
	v = strings.Trim(hs[0].Value(), " \t")
	if len(v) > MaxChannelValue {
		return "", false, fmt.Errorf("%w: %s has %d bytes, at most %d", ErrHeaderTooLong, name, len(v), MaxChannelValue)
	}
	if !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) >= 0 {
		return "", false, fmt.Errorf("%w: %s", ErrHeaderControl, name)
	}
	return v, v != "", nil
}
