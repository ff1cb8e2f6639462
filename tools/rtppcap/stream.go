package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// Codec is a G.711 variant.
type Codec string

// The codecs rtppcap writes, with their static payload types (RFC 3551 §6).
const (
	PCMU Codec = "pcmu"
	PCMA Codec = "pcma"
)

const (
	sampleRate   = 8000
	frameSamples = 160 // 20 ms at 8 kHz
	frameTime    = 20 * time.Millisecond
	// eventUpdate is how often an event in progress is reported
	// (RFC 4733 §2.5.1.2 leaves it to the sender; 50 ms is usual).
	eventUpdate = 50 * time.Millisecond
	// endRepeats is how often the final packet of an event is sent
	// (RFC 4733 §2.5.1.4: three times).
	endRepeats = 3
	// ssrc and firstSeq make the output deterministic.
	ssrc     = 0x0c10a4e5
	firstSeq = 1000
	firstTS  = 16000
)

// Spec describes one RTP stream.
type Spec struct {
	Codec     Codec
	ToneHz    float64 // 0: digital silence
	LevelDBm0 float64 // tone level
	Audio     time.Duration
	// Digits, when not empty, replaces Audio by Lead, then each digit as
	// an RFC 4733 event of DigitLen followed by Gap of audio (Tail after
	// the last one). Audio packets are not sent while an event is on.
	Digits   string
	EventPT  uint8
	Lead     time.Duration
	Tail     time.Duration
	DigitLen time.Duration
	Gap      time.Duration
	Volume   uint8 // RFC 4733 volume: 0-63, in -dBm0
	// Pause is the audio a ',' in Digits stands for (a dialler's pause),
	// so one stream can key several fields at their own times.
	Pause time.Duration
	// InBand sends each digit as its DTMF tone pair (ITU-T Q.23, each
	// tone at LevelDBm0 - 3 dB) in the audio instead of RFC 4733 events.
	InBand bool
}

// dtmfFreqs returns the low and high frequency of a key (ITU-T Q.23).
func dtmfFreqs(key rune) (lo, hi float64, ok bool) {
	const keys = "123A456B789C*0#D"
	i := strings.IndexRune(keys, key)
	if i < 0 {
		i = strings.IndexRune(keys, key-'a'+'A')
		if key < 'a' || key > 'd' || i < 0 {
			return 0, 0, false
		}
	}
	return []float64{697, 770, 852, 941}[i/4], []float64{1209, 1336, 1477, 1633}[i%4], true
}

// Packet is one RTP packet and when it is sent, from the stream start.
type Packet struct {
	At  time.Duration
	RTP rtp.Packet
}

// PayloadType returns the static RTP payload type of the codec.
func (c Codec) PayloadType() (uint8, error) {
	switch c {
	case PCMU:
		return 0, nil
	case PCMA:
		return 8, nil
	}
	return 0, fmt.Errorf("unknown codec %q (want pcmu or pcma)", string(c))
}

// encode turns one linear sample into a G.711 byte.
func (c Codec) encode(s int16) byte {
	if c == PCMA {
		return g711.EncodeAlawFrame(s)
	}
	return g711.EncodeUlawFrame(s)
}

// peak is the amplitude (in 16-bit linear) of a sine at level dBm0. The
// G.711 tables put the largest sine at +3.17 dBm0 (µ-law) and +3.14 dBm0
// (A-law) (ITU-T G.711 §2 and §3, tables 1 and 2).
func (c Codec) peak(dBm0 float64) float64 {
	max := 3.17
	if c == PCMA {
		max = 3.14
	}
	return 32767 * math.Pow(10, (dBm0-max)/20)
}

// EventCode maps a DTMF key to its RFC 4733 event code (§3.2, table 7).
func EventCode(key rune) (uint8, bool) {
	switch {
	case key >= '0' && key <= '9':
		return uint8(key - '0'), true
	case key == '*':
		return 10, true
	case key == '#':
		return 11, true
	case key >= 'A' && key <= 'D':
		return uint8(key-'A') + 12, true
	case key >= 'a' && key <= 'd':
		return uint8(key-'a') + 12, true
	}
	return 0, false
}

// EventPayload is the 4-byte RFC 4733 §2.3 telephone-event payload:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	|     event     |E|R| volume    |          duration             |
func EventPayload(event uint8, end bool, volume uint8, duration uint16) []byte {
	b := make([]byte, 4)
	b[0] = event
	b[1] = volume & 0x3f
	if end {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], duration)
	return b
}

// samples converts a duration to 8 kHz samples; it must be a whole number
// of 20 ms frames.
func samples(name string, d time.Duration) (uint32, error) {
	if d < 0 || d%frameTime != 0 {
		return 0, fmt.Errorf("%s %v is not a multiple of %v", name, d, frameTime)
	}
	return uint32(d / frameTime * frameSamples), nil
}

// Packets builds the stream, in send order, with consecutive sequence
// numbers.
func (s Spec) Packets() ([]Packet, error) {
	pt, err := s.Codec.PayloadType()
	if err != nil {
		return nil, err
	}
	if s.ToneHz < 0 || s.ToneHz >= sampleRate/2 {
		return nil, fmt.Errorf("tone %v Hz outside 0-%d Hz", s.ToneHz, sampleRate/2)
	}
	if s.ToneHz > 0 && s.LevelDBm0 > 3 {
		return nil, fmt.Errorf("tone level %v dBm0 above the G.711 maximum", s.LevelDBm0)
	}
	amp := s.Codec.peak(s.LevelDBm0)
	var out []Packet
	// audio appends n samples of audio starting at sample position pos.
	audio := func(pos, n uint32) {
		s.audioOf(&out, pos, n, pt, []float64{s.ToneHz}, amp)
	}
	if s.Digits == "" {
		n, err := samples("audio", s.Audio)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("no audio: -seconds must be positive")
		}
		audio(0, n)
		return number(out), nil
	}

	if !s.InBand && (s.EventPT < 96 || s.EventPT > 127) {
		return nil, fmt.Errorf("event payload type %d is not dynamic (96-127)", s.EventPT)
	}
	lead, err := samples("lead", s.Lead)
	if err != nil {
		return nil, err
	}
	tail, err := samples("tail", s.Tail)
	if err != nil {
		return nil, err
	}
	gap, err := samples("gap", s.Gap)
	if err != nil {
		return nil, err
	}
	pause, err := samples("pause", s.Pause)
	if err != nil {
		return nil, err
	}
	dlen, err := samples("digit length", s.DigitLen)
	if err != nil {
		return nil, err
	}
	if dlen == 0 || dlen > math.MaxUint16 {
		return nil, fmt.Errorf("digit length %v out of range", s.DigitLen)
	}
	update := uint32(eventUpdate * sampleRate / time.Second)
	pos := uint32(0)
	audio(pos, lead)
	pos += lead
	keys := []rune(s.Digits)
	for i, key := range keys {
		after := gap
		if i == len(keys)-1 {
			after = tail
		}
		if key == ',' {
			audio(pos, pause)
			pos += pause
			if i == len(keys)-1 {
				audio(pos, tail)
				pos += tail
			}
			continue
		}
		code, ok := EventCode(key)
		if !ok {
			return nil, fmt.Errorf("digit %q is not a DTMF key (0-9 * # A-D) or a pause (,)", strings.ToUpper(string(key)))
		}
		if s.InBand {
			lo, hi, _ := dtmfFreqs(key)
			// Each tone 3 dB under the level, so the pair peaks near it.
			s.audioOf(&out, pos, dlen, pt, []float64{lo, hi}, s.Codec.peak(s.LevelDBm0-3))
			pos += dlen
			audio(pos, after)
			pos += after
			continue
		}
		// One event: a start packet with the marker bit, an update every
		// 50 ms, all with the event's start timestamp and the duration so
		// far (RFC 4733 §2.5.1.2-3), then the final packet with the E bit
		// three times (§2.5.1.4).
		ev := func(at uint32, end, marker bool, dur uint32) {
			out = append(out, Packet{
				At: time.Duration(at) * time.Second / sampleRate,
				RTP: rtp.Packet{
					Header:  rtp.Header{Version: 2, PayloadType: s.EventPT, Timestamp: firstTS + pos, SSRC: ssrc, Marker: marker},
					Payload: EventPayload(code, end, s.Volume, uint16(dur)),
				},
			})
		}
		for k := uint32(0); k*update < dlen; k++ {
			ev(pos+k*update, false, k == 0, min((k+1)*update, dlen))
		}
		for r := uint32(0); r < endRepeats; r++ {
			ev(pos+dlen+r*update, true, false, dlen)
		}
		pos += dlen
		audio(pos, after)
		pos += after
	}
	return number(out), nil
}

// audioOf appends n samples (whole frames) of the sum of sines at freqs
// (0 Hz adds nothing: digital silence), each of peak amplitude amp,
// starting at sample position pos.
func (s Spec) audioOf(out *[]Packet, pos, n uint32, pt uint8, freqs []float64, amp float64) {
	for f := uint32(0); f < n; f += frameSamples {
		payload := make([]byte, frameSamples)
		for i := range payload {
			v := 0.0
			t := float64(pos+f+uint32(i)) / sampleRate
			for _, hz := range freqs {
				if hz > 0 {
					v += amp * math.Sin(2*math.Pi*hz*t)
				}
			}
			payload[i] = s.Codec.encode(int16(math.Round(v)))
		}
		*out = append(*out, Packet{
			At: time.Duration(pos+f) * time.Second / sampleRate,
			RTP: rtp.Packet{
				Header:  rtp.Header{Version: 2, PayloadType: pt, Timestamp: firstTS + pos + f, SSRC: ssrc, Marker: pos+f == 0},
				Payload: payload,
			},
		})
	}
}

// number sorts the packets into send order (stable, so an event's end
// packet goes before audio sent at the same instant) and numbers them.
func number(pkts []Packet) []Packet {
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].At < pkts[j].At })
	for i := range pkts {
		pkts[i].RTP.SequenceNumber = uint16(firstSeq + i)
	}
	return pkts
}
