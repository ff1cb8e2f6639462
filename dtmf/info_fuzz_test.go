package dtmf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzInfoBody: ParseInfo's verdict on a body does not depend on how the
// content type is spelled (media types are case-insensitive and may carry
// parameters, RFC 2045 §5.1); an accepted application/dtmf-relay body
// names its digit in its Signal line; an error never quotes the body.
func FuzzInfoBody(f *testing.F) {
	f.Add(true, []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add(true, []byte("Signal= 11\nDuration=250\nVolume=-10"))
	f.Add(true, []byte("signal=#\r\n"))
	f.Add(false, []byte(" 15 "))
	f.Add(false, []byte("*"))
	f.Add(true, []byte("Signal=4111111111111111\r\n"))
	f.Add(true, []byte("Duration=160\r\nSignal=A\r\nSignal=B"))
	f.Fuzz(func(t *testing.T, relay bool, body []byte) {
		ct := "application/dtmf"
		if relay {
			ct = "application/dtmf-relay"
		}
		ev, err := ParseInfo(ct, body)
		ev2, err2 := ParseInfo(strings.ToUpper(ct)+` ; charset="utf-8"`, body)
		if ev != ev2 || (err == nil) != (err2 == nil) {
			t.Fatalf("content type spelling changed the verdict: %+v/%v vs %+v/%v", ev, err, ev2, err2)
		}
		if err != nil {
			var ie *InfoError
			if !errors.As(err, &ie) || ie.StatusCode() != 400 {
				t.Fatalf("a known content type refused with %v", err)
			}
			if err2.Error() != err.Error() {
				t.Fatalf("error depends on the content type's spelling: %q vs %q", err, err2)
			}
			if b := bytes.TrimSpace(body); len(b) >= 2 && strings.Contains(err.Error(), string(b)) {
				t.Fatalf("error quotes the body: %q", err)
			}
			return
		}
		if !relay {
			return
		}
		// The digit must come from a Signal line.
		found := false
		for _, line := range strings.Split(string(body), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "signal") {
				continue
			}
			if d, ok := parseSignal(strings.TrimSpace(v)); ok && d == ev.Digit {
				found = true
			}
		}
		if !found {
			t.Fatalf("digit %q accepted from a body without that Signal: %q", ev.Digit, body)
		}
	})
}
