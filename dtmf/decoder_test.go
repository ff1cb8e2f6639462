package dtmf

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type pkt struct {
	ssrc, ts uint32
	hex      string
	at       int // ms since t0
}

// render turns events into a compact string: "S5" start, "E5" end,
// "L5" end inferred (lost), with the duration in clock units for ends.
func render(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		switch {
		case ev.Kind == KindStart:
			fmt.Fprintf(&b, "S%c ", ev.Digit)
		case ev.Lost:
			fmt.Fprintf(&b, "L%c/%d ", ev.Digit, ev.Duration*8000/time.Second)
		default:
			fmt.Fprintf(&b, "E%c/%d ", ev.Digit, ev.Duration*8000/time.Second)
		}
	}
	return strings.TrimSpace(b.String())
}

func feedAll(t *testing.T, d *Decoder, pkts []pkt) string {
	t.Helper()
	var all []Event
	for _, p := range pkts {
		payload, err := hex.DecodeString(p.hex)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := d.Feed(p.ssrc, p.ts, payload, t0.Add(time.Duration(p.at)*time.Millisecond))
		if err != nil {
			t.Fatalf("feed %s: %v", p.hex, err)
		}
		all = append(all, evs...)
	}
	return render(all)
}

func newDec(t *testing.T) *Decoder {
	t.Helper()
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDecoderTable(t *testing.T) {
	cases := []struct {
		name string
		pkts []pkt
		want string
	}{
		{"start updates three ends", []pkt{
			{1, 1000, "050a00a0", 0}, {1, 1000, "050a0190", 20}, {1, 1000, "050a0320", 50},
			{1, 1000, "058a0320", 100}, {1, 1000, "058a0320", 101}, {1, 1000, "058a0320", 102},
		}, "S5 E5/800"},
		{"star and hash and D", []pkt{
			{1, 100, "0a0a00a0", 0}, {1, 100, "0a8a0320", 100},
			{1, 2000, "0b0a00a0", 200}, {1, 2000, "0b8a0320", 300},
			{1, 4000, "0f0a00a0", 400}, {1, 4000, "0f8a0320", 500},
		}, "S* E*/800 S# E#/800 SD ED/800"},
		{"end packets only", []pkt{
			{1, 500, "098a0320", 0}, {1, 500, "098a0320", 1}, {1, 500, "098a0320", 2},
		}, "S9 E9/800"},
		{"same digit twice", []pkt{
			{1, 100, "010a00a0", 0}, {1, 100, "018a0320", 100}, {1, 100, "018a0320", 101},
			{1, 1900, "010a00a0", 230}, {1, 1900, "018a0320", 330},
		}, "S1 E1/800 S1 E1/800"},
		{"unsupported events ignored", []pkt{
			{1, 100, "100a00a0", 0}, {1, 100, "108a0320", 100}, {1, 300, "ff8a0320", 120},
		}, ""},
		{"reordered update after end", []pkt{
			{1, 100, "030a00a0", 0}, {1, 100, "038a0320", 100}, {1, 100, "030a0190", 120},
		}, "S3 E3/800"},
		{"late packet of previous digit", []pkt{
			{1, 100, "030a00a0", 0}, {1, 100, "038a0320", 100},
			{1, 2000, "040a00a0", 200}, {1, 100, "038a0320", 201}, {1, 50, "078a0320", 202},
			{1, 2000, "048a0320", 300},
		}, "S3 E3/800 S4 E4/800"},
		{"new timestamp closes digit with lost ends", []pkt{
			{1, 100, "020a00a0", 0}, {1, 100, "020a0320", 100},
			{1, 9000, "060a00a0", 400}, {1, 9000, "068a0320", 500},
		}, "S2 L2/800 S6 E6/800"},
		{"missing marker and volume change are irrelevant", []pkt{
			{7, 100, "08000190", 0}, {7, 100, "083f0320", 50}, {7, 100, "08bf0320", 100},
		}, "S8 E8/800"},
		{"new SSRC closes old digit", []pkt{
			{1, 100, "020a00a0", 0}, {2, 100, "020a00a0", 20}, {2, 100, "028a0320", 100},
		}, "S2 L2/160 S2 E2/800"},
		{"timestamp wrap", []pkt{
			{1, 0xffffff00, "050a00a0", 0}, {1, 0xffffff00, "058a0320", 100},
			{1, 0x00000400, "060a00a0", 200}, {1, 0x00000400, "068a0320", 300},
		}, "S5 E5/800 S6 E6/800"},
		// RFC 4733 §2.5.1.3: the sender ends a segment at 0xFFFF and goes on
		// with timestamp + 0xFFFF and a restarted duration.
		{"long press across segments", []pkt{
			{1, 1000, "000affa0", 8185}, {1, 1000, "000affff", 8190},
			{1, 1000 + 0xffff, "000a0190", 8240}, {1, 1000 + 0xffff, "008a0320", 8290},
		}, "S0 E0/66335"},
		// a sender that re-stamps each packet while the duration keeps growing
		{"re-stamped press, growing duration", []pkt{
			{1, 1000, "070a00a0", 0}, {1, 1160, "070a0140", 20}, {1, 1320, "070a01e0", 40},
			{1, 1480, "070a0280", 60}, {1, 1640, "078a0320", 80}, {1, 1640, "078a0320", 81},
		}, "S7 E7/800"},
		// a sender that re-stamps and restarts the duration at each stamp
		{"re-stamped press, restarted duration", []pkt{
			{1, 1000, "070a00a0", 0}, {1, 1000, "070a0140", 20},
			{1, 1320, "070a00a0", 40}, {1, 1320, "078a0140", 60},
		}, "S7 E7/640"},
		{"sender resets its timestamps", []pkt{
			{1, 90000, "030a00a0", 0}, {1, 90000, "038a0320", 100},
			{1, 500, "040a00a0", 5000}, {1, 500, "048a0320", 5100},
		}, "S3 E3/800 S4 E4/800"},
		{"duplicated start", []pkt{
			{1, 100, "050a00a0", 0}, {1, 100, "050a00a0", 0}, {1, 100, "058a0320", 100},
		}, "S5 E5/800"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := feedAll(t, newDec(t), tc.pkts); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecoderCounters(t *testing.T) {
	d := newDec(t)
	feedAll(t, d, []pkt{
		{1, 100, "100a00a0", 0}, {1, 200, "050a00a0", 10}, {1, 200, "058a0320", 110},
		{1, 200, "058a0320", 111}, {1, 200, "058a0320", 112}, {1, 50, "058a0320", 120},
	})
	st := d.Stats()
	if st.Packets != 6 || st.Unsupported != 1 || st.Duplicates != 2 || st.Late != 1 || st.Digits != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := d.Feed(1, 1, []byte{1, 2}, t0); !errors.Is(err, ErrShortPayload) {
		t.Fatalf("short payload: err %v", err)
	}
	if d.Stats().Malformed != 1 {
		t.Fatal("malformed not counted")
	}
}

func TestDecoderExpire(t *testing.T) {
	d := newDec(t)
	feedAll(t, d, []pkt{{1, 100, "040a00a0", 0}, {1, 100, "040a0190", 50}})
	if evs := d.Expire(t0.Add(200 * time.Millisecond)); len(evs) != 0 {
		t.Fatalf("expired too early: %s", render(evs))
	}
	if got := render(d.Expire(t0.Add(400 * time.Millisecond))); got != "L4/400" {
		t.Fatalf("expire: %q", got)
	}
	if evs := d.Expire(t0.Add(time.Second)); len(evs) != 0 {
		t.Fatal("expired twice")
	}
	// end packets arriving after the timeout do not make a second digit
	if got := feedAll(t, d, []pkt{{1, 100, "048a0320", 1000}}); got != "" {
		t.Fatalf("late end after timeout: %q", got)
	}
}

// The loss matrix: each digit, each pattern of lost packets, one digit.
func TestDecoderLossMatrix(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]func(i, n, ends int) bool{ // lost?
		"none":      func(i, n, ends int) bool { return false },
		"first":     func(i, n, ends int) bool { return i == 0 },
		"middle":    func(i, n, ends int) bool { return i == (n-ends)/2 },
		"last end":  func(i, n, ends int) bool { return i == n-1 },
		"all ends":  func(i, n, ends int) bool { return i >= n-ends },
		"all but 1": func(i, n, ends int) bool { return i != n-1 },
		"updates":   func(i, n, ends int) bool { return i < n-ends },
	}
	for _, digit := range []byte(digitChars) {
		for name, lost := range patterns {
			t.Run(fmt.Sprintf("%c/%s", digit, name), func(t *testing.T) {
				d := newDec(t)
				var starts, ends string
				ts := uint32(12345)
				now := t0
				for k := range 3 { // three presses of the same digit, 300 ms apart
					pk, err := enc.Append(nil, digit, ts)
					if err != nil {
						t.Fatal(err)
					}
					for i, p := range pk {
						if lost(i, len(pk), 3) {
							continue
						}
						evs, err := d.Feed(99, p.Timestamp, p.Payload[:], now.Add(p.SendAt))
						if err != nil {
							t.Fatal(err)
						}
						starts, ends = collect(evs, starts, ends)
					}
					starts, ends = collect(d.Expire(now.Add(time.Second)), starts, ends)
					_ = k
					ts += 2400
					now = now.Add(1200 * time.Millisecond)
				}
				want := strings.Repeat(string(digit), 3)
				if starts != want || ends != want {
					t.Fatalf("starts %q ends %q, want %q", starts, ends, want)
				}
			})
		}
	}
}

func collect(evs []Event, starts, ends string) (string, string) {
	for _, ev := range evs {
		if ev.Kind == KindStart {
			starts += string(ev.Digit)
		} else {
			ends += string(ev.Digit)
		}
	}
	return starts, ends
}

func TestEncoderRoundTrip(t *testing.T) {
	for _, dur := range []time.Duration{40 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 8 * time.Second} {
		enc, err := NewEncoder(EncoderConfig{Duration: dur, Volume: 7})
		if err != nil {
			t.Fatal(err)
		}
		d := newDec(t)
		var pk []Packet
		ts := uint32(0xfffff000)
		for _, digit := range []byte("4111#*") {
			pk, err = enc.Append(pk, digit, ts)
			if err != nil {
				t.Fatal(err)
			}
			ts += enc.Units() + 800
		}
		var got []Event
		now := t0
		last := uint32(0)
		for i, p := range pk {
			if i > 0 && p.Timestamp != last {
				now = now.Add(dur + 100*time.Millisecond)
			}
			last = p.Timestamp
			evs, err := d.Feed(5, p.Timestamp, p.Payload[:], now.Add(p.SendAt))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, evs...)
		}
		var ends string
		for _, ev := range got {
			if ev.Kind == KindEnd {
				ends += string(ev.Digit)
				if ev.Duration != dur || ev.Volume != 7 || ev.Lost {
					t.Fatalf("dur %v: end event duration %v volume %d lost %v", dur, ev.Duration, ev.Volume, ev.Lost)
				}
			}
		}
		if ends != "4111#*" {
			t.Fatalf("dur %v: round trip gave %q", dur, ends)
		}
	}
}

func TestEncoderPackets(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := enc.Append(nil, '5', 777)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pk {
		got = append(got, fmt.Sprintf("%x/%v/%v/%d", p.Payload, p.Marker, p.SendAt, p.Timestamp))
	}
	want := []string{
		"050a0190/true/0s/777",
		"058a0320/false/100ms/777", "058a0320/false/100ms/777", "058a0320/false/100ms/777",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") || enc.PacketCount() != len(pk) {
		t.Fatalf("packets %v (count %d), want %v", got, enc.PacketCount(), want)
	}
	if _, err := enc.Append(nil, 'x', 0); !errors.Is(err, ErrInvalidDigit) {
		t.Fatalf("bad digit: %v", err)
	}
	for _, bad := range []EncoderConfig{{Duration: 9 * time.Second}, {Volume: 64}, {EndRepeats: -1}, {Interval: -time.Second}} {
		if _, err := NewEncoder(bad); !errors.Is(err, ErrConfig) {
			t.Fatalf("config %+v: %v", bad, err)
		}
	}
}

func TestDigitCodes(t *testing.T) {
	for code := range uint8(16) {
		d, ok := DigitForCode(code)
		if !ok {
			t.Fatalf("code %d", code)
		}
		back, ok := CodeForDigit(d)
		if !ok || back != code || !IsDigit(d) {
			t.Fatalf("code %d -> %c -> %d", code, d, back)
		}
		lo, hi, ok := Frequencies(d)
		if !ok || lo < 690 || lo > 950 || hi < 1200 || hi > 1640 {
			t.Fatalf("frequencies of code %d: %v %v", code, lo, hi)
		}
	}
	if _, ok := DigitForCode(16); ok {
		t.Fatal("code 16 accepted")
	}
	if IsDigit('E') || IsDigit('a') {
		t.Fatal("IsDigit accepts non-digits")
	}
}

func TestEventPrintsNoDigit(t *testing.T) {
	ev := Event{Kind: KindEnd, Source: SourceRFC4733, Digit: '9', Duration: 120 * time.Millisecond}
	for _, out := range []string{fmt.Sprint(ev), fmt.Sprintf("%+v %#v %d %s %q", ev, ev, ev, ev, ev), fmt.Sprintf("%v", []Event{ev})} {
		if strings.ContainsRune(out, '9') || !strings.Contains(out, "digit=*") {
			t.Fatalf("event printed as %s", out)
		}
	}
	j, err := json.Marshal(ev)
	if err != nil || strings.ContainsRune(string(j), '9') || !strings.Contains(string(j), `"digit":"*"`) {
		t.Fatalf("event JSON %s %v", j, err)
	}
}
