package dtmf

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseInfo(t *testing.T) {
	ok := []struct {
		ct, body string
		digit    byte
		dur      time.Duration
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', 160 * time.Millisecond},
		{"application/dtmf-relay", "signal = #\nduration= 250", '#', 250 * time.Millisecond},
		{"Application/DTMF-Relay; charset=utf-8", "Signal=*\r\n", '*', 0},
		{"application/dtmf-relay", "Signal=11\r\nDuration=100\r\nVolume=10\r\n", '#', 100 * time.Millisecond},
		{"application/dtmf-relay", "Signal=d\r\n", 'D', 0},
		{"application/dtmf", "7", '7', 0},
		{"application/dtmf", " 10\r\n", '*', 0},
	}
	for _, tc := range ok {
		ev, err := ParseInfo(tc.ct, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s %q: %v", tc.ct, tc.body, err)
		}
		if ev.Digit != tc.digit || ev.Duration != tc.dur || ev.Kind != KindEnd || ev.Source != SourceInfo {
			t.Fatalf("%s %q: got %+v", tc.ct, tc.body, ev)
		}
	}

	bad := []struct {
		ct, body string
		status   int
		sentinel error
	}{
		{"text/plain", "Signal=5", 415, ErrUnsupportedContentType},
		{"application/sdp", "", 415, ErrUnsupportedContentType},
		{";;", "Signal=5", 415, ErrUnsupportedContentType},
		{"application/dtmf-relay", "", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Duration=100", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Signal=E", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Signal=16", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Signal=5\nSignal=6", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Signal=5\nDuration=-1", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Signal=5\nDuration=ten", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Signal 5", 400, ErrMalformedBody},
		{"application/dtmf-relay", "Signal=5\n" + strings.Repeat("x=y\n", 400), 400, ErrMalformedBody},
		{"application/dtmf", "", 400, ErrMalformedBody},
		{"application/dtmf", "4111", 400, ErrMalformedBody},
	}
	for _, tc := range bad {
		ev, err := ParseInfo(tc.ct, []byte(tc.body))
		var ie *InfoError
		if !errors.As(err, &ie) || ie.StatusCode() != tc.status || !errors.Is(err, tc.sentinel) {
			t.Fatalf("%s %q: err %v, want status %d", tc.ct, tc.body, err, tc.status)
		}
		if ev != (Event{}) {
			t.Fatalf("%s: event returned with error", tc.ct)
		}
		// the body never shows up in the message
		if msg := err.Error(); tc.body != "" && strings.Contains(msg, strings.TrimSpace(tc.body)) {
			t.Fatalf("error echoes the body: %s", msg)
		}
		for _, d := range "0123456789" {
			if strings.ContainsRune(err.Error(), d) && !strings.Contains(err.Error(), "60000") && !strings.Contains(err.Error(), "octets") {
				t.Fatalf("error message contains a digit: %s", err.Error())
			}
		}
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Add("application/dtmf-relay; x=y", []byte("signal=11\nDuration=99999999999"))
	f.Add("text/plain", []byte("Signal=1"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		ev, err := ParseInfo(ct, body)
		if err != nil {
			var ie *InfoError
			if !errors.As(err, &ie) || (ie.StatusCode() != 400 && ie.StatusCode() != 415) {
				t.Fatalf("error without SIP status: %v", err)
			}
			if ev != (Event{}) {
				t.Fatal("event with error")
			}
			// the only numbers a message may hold are the limits and the size
			msg := strings.NewReplacer("0-60000", "", "1024", "", strconv.Itoa(len(body)), "").Replace(err.Error())
			if strings.ContainsAny(msg, "0123456789") {
				t.Fatalf("error message holds a number: %s", err.Error())
			}
			return
		}
		if !IsDigit(ev.Digit) || ev.Kind != KindEnd {
			t.Fatalf("accepted a non-digit event %+v", ev)
		}
	})
}
