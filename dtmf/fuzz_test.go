package dtmf

import (
	"testing"
	"time"
)

// FuzzDecoder feeds a sequence of packets encoded in data (each record:
// 1 octet SSRC, 2 octets timestamp step, 1 octet ms step, 4 octets
// payload) and checks the decoder's invariants: no panic, every End
// follows a Start of the same digit, never two Ends for one Start, and
// only digits 0-9 * # A-D.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 5, 10, 0, 160, 1, 0, 0, 50, 5, 138, 3, 32, 1, 0, 0, 1, 5, 138, 3, 32})
	f.Add([]byte{1, 0, 0, 0, 9, 138, 3, 32, 1, 0, 0, 0, 9, 138, 3, 32, 1, 3, 32, 200, 9, 138, 3, 32})
	f.Add([]byte{1, 0, 0, 0, 0, 10, 255, 255, 1, 255, 255, 50, 0, 10, 1, 144, 1, 0, 0, 50, 0, 138, 3, 32})
	f.Add([]byte{1, 0, 0, 0, 7, 10, 0, 160, 1, 0, 160, 20, 7, 10, 1, 64, 1, 0, 160, 20, 7, 138, 1, 224})
	f.Add([]byte{2, 0, 0, 0, 200, 10, 0, 160, 3, 0, 0, 255, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDecoder(DecoderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		ts := uint32(0)
		open := byte(0)
		check := func(evs []Event) {
			if len(evs) > 3 {
				t.Fatalf("%d events from one packet", len(evs))
			}
			for _, ev := range evs {
				if !IsDigit(ev.Digit) {
					t.Fatalf("event with digit %q", ev.Digit)
				}
				switch ev.Kind {
				case KindStart:
					if open != 0 {
						t.Fatal("start while a digit is open")
					}
					open = ev.Digit
				case KindEnd:
					if open != ev.Digit {
						t.Fatalf("end of %q while %q open", ev.Digit, open)
					}
					open = 0
				default:
					t.Fatal("bad kind")
				}
			}
		}
		for len(data) >= 4 {
			ssrc := uint32(data[0] % 3)
			ts += uint32(data[1])<<8 | uint32(data[2])
			now = now.Add(time.Duration(data[3]) * time.Millisecond)
			data = data[4:]
			n := min(4, len(data))
			payload := data[:n]
			data = data[n:]
			evs, err := d.Feed(ssrc, ts, payload, now)
			if err != nil && n == 4 {
				t.Fatalf("error on a 4-octet payload: %v", err)
			}
			check(evs)
			check(d.Expire(now))
		}
		check(d.Expire(now.Add(time.Hour)))
		if open != 0 {
			t.Fatal("digit left open after expiry")
		}
	})
}
