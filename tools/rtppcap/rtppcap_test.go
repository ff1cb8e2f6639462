package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// record is one packet read back from a pcap file.
type record struct {
	at  time.Time
	rtp rtp.Packet
}

// readPcap parses a file written by WritePcap, checking the container and
// the Ethernet/IPv4/UDP layers.
func readPcap(t *testing.T, data []byte) []record {
	t.Helper()
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("not a little-endian µs pcap file")
	}
	if lt := binary.LittleEndian.Uint32(data[20:]); lt != uint32(layers.LinkTypeEthernet) {
		t.Fatalf("link type %d, want Ethernet", lt)
	}
	var out []record
	for off := 24; off < len(data); {
		if off+16 > len(data) {
			t.Fatalf("truncated record header at %d", off)
		}
		sec := binary.LittleEndian.Uint32(data[off:])
		usec := binary.LittleEndian.Uint32(data[off+4:])
		n := int(binary.LittleEndian.Uint32(data[off+8:]))
		if orig := int(binary.LittleEndian.Uint32(data[off+12:])); orig != n {
			t.Fatalf("record at %d: captured %d of %d bytes", off, n, orig)
		}
		off += 16
		frame := data[off : off+n]
		off += n
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: %v", len(out), el.Error())
		}
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil || pkt.Layer(layers.LayerTypeIPv4) == nil {
			t.Fatalf("frame %d: no IPv4/UDP", len(out))
		}
		var r record
		r.at = time.Unix(int64(sec), int64(usec)*1000)
		if err := r.rtp.Unmarshal(udp.Payload); err != nil {
			t.Fatalf("frame %d: rtp: %v", len(out), err)
		}
		out = append(out, r)
	}
	return out
}

func write(t *testing.T, s Spec) []record {
	t.Helper()
	pkts, err := s.Packets()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePcap(&buf, pkts); err != nil {
		t.Fatal(err)
	}
	return readPcap(t, buf.Bytes())
}

// goertzel returns the power of freq in x (normalised by len²).
func goertzel(x []float64, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/sampleRate)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+k*s1-s2, s1
	}
	n := float64(len(x))
	return (s1*s1 + s2*s2 - k*s1*s2) / (n * n)
}

func TestToneStream(t *testing.T) {
	for _, tc := range []struct {
		codec  Codec
		pt     uint8
		decode func(byte) int16
		max    float64
	}{
		{PCMU, 0, g711.DecodeUlawFrame, 3.17},
		{PCMA, 8, g711.DecodeAlawFrame, 3.14},
	} {
		t.Run(string(tc.codec), func(t *testing.T) {
			recs := write(t, Spec{Codec: tc.codec, ToneHz: 1004, LevelDBm0: -10, Audio: 3 * time.Second})
			if len(recs) != 150 {
				t.Fatalf("%d packets, want 150 (3 s of 20 ms)", len(recs))
			}
			var pcm []float64
			for i, r := range recs {
				h := r.rtp.Header
				if h.PayloadType != tc.pt || h.Version != 2 || h.SSRC != ssrc {
					t.Fatalf("packet %d: header %+v", i, h)
				}
				if want := uint16(firstSeq + i); h.SequenceNumber != want {
					t.Fatalf("packet %d: seq %d, want %d", i, h.SequenceNumber, want)
				}
				if want := uint32(firstTS + 160*i); h.Timestamp != want {
					t.Fatalf("packet %d: timestamp %d, want %d", i, h.Timestamp, want)
				}
				if h.Marker != (i == 0) {
					t.Fatalf("packet %d: marker %v", i, h.Marker)
				}
				if got, want := r.at.Sub(recs[0].at), time.Duration(i)*20*time.Millisecond; got != want {
					t.Fatalf("packet %d: captured at +%v, want +%v", i, got, want)
				}
				if len(r.rtp.Payload) != 160 {
					t.Fatalf("packet %d: %d payload bytes", i, len(r.rtp.Payload))
				}
				for _, b := range r.rtp.Payload {
					pcm = append(pcm, float64(tc.decode(b)))
				}
			}
			// Level: RMS against the 0 dBm0 sine's RMS.
			var sum float64
			for _, v := range pcm {
				sum += v * v
			}
			rms := math.Sqrt(sum / float64(len(pcm)))
			ref := 32767 * math.Pow(10, -tc.max/20) / math.Sqrt2
			if level := 20 * math.Log10(rms/ref); math.Abs(level-(-10)) > 0.5 {
				t.Errorf("level %.2f dBm0, want -10±0.5", level)
			}
			// Frequency: 1004 Hz dominates its neighbours and DTMF rows.
			on := goertzel(pcm, 1004)
			for _, f := range []float64{697, 770, 852, 941, 1209, 1336, 1477, 1633, 900, 1100} {
				if off := goertzel(pcm, f); off*1000 > on {
					t.Errorf("power at %v Hz is %.3g, at 1004 Hz %.3g: not a clean tone", f, off, on)
				}
			}
		})
	}
}

func TestSilence(t *testing.T) {
	recs := write(t, Spec{Codec: PCMA, Audio: 100 * time.Millisecond})
	if len(recs) != 5 {
		t.Fatalf("%d packets, want 5", len(recs))
	}
	for _, r := range recs {
		for _, b := range r.rtp.Payload {
			if b != 0xd5 { // A-law for 0
				t.Fatalf("payload byte %#x, want A-law silence 0xd5", b)
			}
		}
	}
}

func TestEventPayload(t *testing.T) {
	for _, tc := range []struct {
		event    uint8
		end      bool
		volume   uint8
		duration uint16
		want     []byte
	}{
		{1, false, 10, 400, []byte{0x01, 0x0a, 0x01, 0x90}},
		{11, true, 10, 800, []byte{0x0b, 0x8a, 0x03, 0x20}},
		{15, true, 63, 0xffff, []byte{0x0f, 0xbf, 0xff, 0xff}},
	} {
		if got := EventPayload(tc.event, tc.end, tc.volume, tc.duration); !bytes.Equal(got, tc.want) {
			t.Errorf("EventPayload(%d, %v, %d, %d) = % x, want % x", tc.event, tc.end, tc.volume, tc.duration, got, tc.want)
		}
	}
}

func TestDigitStream(t *testing.T) {
	recs := write(t, Spec{
		Codec: PCMU, Digits: "7#", EventPT: 101, Volume: 10,
		Lead: 100 * time.Millisecond, Tail: 200 * time.Millisecond,
		DigitLen: 120 * time.Millisecond, Gap: 200 * time.Millisecond,
	})
	type ev struct {
		code         uint8
		ts           uint32
		marker, end  bool
		dur          uint16
		offsetMillis int64
	}
	var events []ev
	start := recs[0].at
	lastTS := map[uint8]uint32{}
	for i, r := range recs {
		h := r.rtp.Header
		if want := uint16(firstSeq + i); h.SequenceNumber != want {
			t.Fatalf("packet %d: seq %d, want %d", i, h.SequenceNumber, want)
		}
		if i > 0 && r.at.Before(recs[i-1].at) {
			t.Fatalf("packet %d captured before packet %d", i, i-1)
		}
		switch h.PayloadType {
		case 101:
			p := r.rtp.Payload
			if len(p) != 4 {
				t.Fatalf("packet %d: event payload of %d bytes", i, len(p))
			}
			events = append(events, ev{p[0], h.Timestamp, h.Marker, p[1]&0x80 != 0, binary.BigEndian.Uint16(p[2:]), r.at.Sub(start).Milliseconds()})
		case 0:
			if ts, ok := lastTS[0]; ok && h.Timestamp <= ts {
				t.Fatalf("packet %d: audio timestamp %d not after %d", i, h.Timestamp, ts)
			}
			lastTS[0] = h.Timestamp
		default:
			t.Fatalf("packet %d: payload type %d", i, h.PayloadType)
		}
	}
	// Digit 7 starts at 100 ms (timestamp +800), lasts 960 samples:
	// start+updates at 100, 150, 200 ms, end ×3 at 220, 270, 320 ms.
	// Digit # starts at 100+120+200 = 420 ms (timestamp +3360).
	want := []ev{
		{7, firstTS + 800, true, false, 400, 100},
		{7, firstTS + 800, false, false, 800, 150},
		{7, firstTS + 800, false, false, 960, 200},
		{7, firstTS + 800, false, true, 960, 220},
		{7, firstTS + 800, false, true, 960, 270},
		{7, firstTS + 800, false, true, 960, 320},
		{11, firstTS + 3360, true, false, 400, 420},
		{11, firstTS + 3360, false, false, 800, 470},
		{11, firstTS + 3360, false, false, 960, 520},
		{11, firstTS + 3360, false, true, 960, 540},
		{11, firstTS + 3360, false, true, 960, 590},
		{11, firstTS + 3360, false, true, 960, 640},
	}
	if len(events) != len(want) {
		t.Fatalf("%d event packets, want %d: %+v", len(events), len(want), events)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Errorf("event packet %d = %+v, want %+v", i, events[i], want[i])
		}
	}
	// No audio while a digit is on: between 100 and 220 ms, 420 and 540 ms.
	for _, r := range recs {
		ms := r.at.Sub(start).Milliseconds()
		if r.rtp.PayloadType == 0 && ((ms >= 100 && ms < 220) || (ms >= 420 && ms < 540)) {
			t.Errorf("audio packet at %d ms during an event", ms)
		}
	}
}

func TestBadSpecs(t *testing.T) {
	for name, s := range map[string]Spec{
		"codec":     {Codec: "g729", Audio: time.Second},
		"no audio":  {Codec: PCMU},
		"odd audio": {Codec: PCMU, Audio: 25 * time.Millisecond},
		"nyquist":   {Codec: PCMU, ToneHz: 4000, Audio: time.Second},
		"digit":     {Codec: PCMU, Digits: "1x", EventPT: 101, DigitLen: 100 * time.Millisecond},
		"static pt": {Codec: PCMU, Digits: "1", EventPT: 8, DigitLen: 100 * time.Millisecond},
		"no length": {Codec: PCMU, Digits: "1", EventPT: 101},
	} {
		if _, err := s.Packets(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCommittedFiles checks the pcaps in testdata/sipp/pcap are what the
// go:generate lines produce.
func TestCommittedFiles(t *testing.T) {
	for name, args := range map[string][]string{
		"pcmu-tone-3s.pcap":         {"-codec", "pcmu", "-tone", "1004", "-level", "-10", "-seconds", "3"},
		"pcma-tone-3s.pcap":         {"-codec", "pcma", "-tone", "1004", "-level", "-10", "-seconds", "3"},
		"pay-rfc4733.pcap":          {"-codec", "pcmu", "-tone", "1004", "-level", "-20", "-digits", "4111111111111111#,,,,,,,,,,1230,,,,737#", "-lead", "3s", "-pause", "500ms", "-tail", "8s"},
		"pay-invalid3.pcap":         {"-codec", "pcmu", "-tone", "1004", "-level", "-20", "-digits", "4111111111111112#,,,,,,,,,,4111111111111112#,,,,,,,,,,4111111111111112#", "-lead", "3s", "-pause", "500ms", "-tail", "11s"},
		"pay-card-expiry.pcap":      {"-codec", "pcmu", "-tone", "1004", "-level", "-20", "-digits", "4111111111111111#,,,,,,,,,,1230", "-lead", "3s", "-pause", "500ms", "-tail", "14s"},
		"caller-agent-rfc4733.pcap": {"-codec", "pcmu", "-tone", "1004", "-level", "-20", "-digits", "2,,,,,,,,,,,,,,,,4111111111111111#,,,,,,,,,1230,,,,737#", "-lead", "2400ms", "-pause", "500ms", "-tail", "12s"},
		"caller-agent-inband.pcap":  {"-codec", "pcmu", "-tone", "1004", "-level", "-20", "-inband", "-digits", "2,,,,,,,,,,,,,,,,4111111111111111#,,,,,,,,,1230,,,,737#", "-lead", "2400ms", "-pause", "500ms", "-tail", "12s"},
		"agent-star7.pcap":          {"-codec", "pcmu", "-tone", "600", "-level", "-20", "-digits", "*7", "-lead", "3s", "-tail", "30s"},
		"agent-talk.pcap":           {"-codec", "pcmu", "-tone", "600", "-level", "-20", "-seconds", "35"},
		"supervisor-talk.pcap":      {"-codec", "pcmu", "-tone", "1800", "-level", "-20", "-seconds", "40"},
		"supervisor-keys.pcap":      {"-codec", "pcmu", "-tone", "1800", "-level", "-20", "-digits", "5,,,,,,,,,,,6", "-lead", "5s", "-pause", "500ms", "-tail", "25s"},
	} {
		committed, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sipp", "pcap", name))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), name)
		if code := run(append([]string{"-o", out}, args...), io.Discard); code != 0 {
			t.Fatalf("%s: exit %d", name, code)
		}
		fresh, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, fresh) {
			t.Errorf("%s differs from the generator's output: run go generate ./tools/rtppcap", name)
		}
	}
}

// TestPauseAndInBand: ',' inserts -pause of audio and no event; -inband
// sends each digit as its DTMF pair in the audio (cloak's in-band detector
// reads them back at the right times) and no event packet at all.
func TestPauseAndInBand(t *testing.T) {
	base := Spec{Codec: PCMU, Digits: "1,,2", EventPT: 101, Volume: 10, LevelDBm0: -10,
		Lead: 200 * time.Millisecond, Tail: 200 * time.Millisecond, DigitLen: 100 * time.Millisecond,
		Gap: 100 * time.Millisecond, Pause: 500 * time.Millisecond}
	var starts []int64
	recs := write(t, base)
	for _, r := range recs {
		if r.rtp.PayloadType == 101 && r.rtp.Marker {
			starts = append(starts, r.at.Sub(recs[0].at).Milliseconds())
		}
	}
	// 1 at 200 ms; 2 after 100 ms digit + 100 ms gap + 2 × 500 ms pause.
	if len(starts) != 2 || starts[0] != 200 || starts[1] != 1400 {
		t.Errorf("event starts at %v ms, want [200 1400]", starts)
	}

	in := base
	in.InBand = true
	in.Digits = "1,,#"
	recs = write(t, in)
	det, err := dtmf.NewDetector(dtmf.DetectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var at []int64
	for _, r := range recs {
		if r.rtp.PayloadType != 0 {
			t.Fatalf("payload type %d in an in-band stream", r.rtp.PayloadType)
		}
		pcm := make([]int16, len(r.rtp.Payload))
		for i, b := range r.rtp.Payload {
			pcm[i] = g711.DecodeUlawFrame(b)
		}
		for _, ev := range det.Process(pcm) {
			if ev.Kind == dtmf.KindStart {
				got = append(got, fmt.Sprintf("%c@%d", ev.Digit, ev.Offset/8))
				at = append(at, ev.Offset/8)
			}
		}
	}
	// Offsets are the detector's estimate of the tone's start (it errs
	// early by up to a block, 12.75 ms).
	if len(got) != 2 || got[0][0] != '1' || got[1][0] != '#' ||
		at[0] < 185 || at[0] > 200 || at[1] < 1385 || at[1] > 1400 {
		t.Errorf("in-band digits %v, want 1 at ~200 ms and # at ~1400 ms", got)
	}
	if _, err := (Spec{Codec: PCMU, Digits: "x", InBand: true, DigitLen: 100 * time.Millisecond}).Packets(); err == nil {
		t.Error("in-band stream with a bad digit: no error")
	}
}
