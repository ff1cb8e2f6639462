package call

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"
)

// pipeFeed drives one leg's pipeline with packets as its reader would.
type pipeFeed struct {
	t      *testing.T
	pl     *pipeline
	ep     *media.Endpoint
	seq    uint16
	ts     uint32
	digits strings.Builder
	p      media.Packet
}

func newPipeFeed(t *testing.T, policy dtmf.Policy, eventPT uint8) *pipeFeed {
	t.Helper()
	m := &Manager{log: zerolog.Nop()}
	c := &Interaction{id: "t", m: m, log: zerolog.Nop(), ended: make(chan struct{}), digits: newDigitQueue(), data: map[string]string{}}
	f := &pipeFeed{t: t}
	f.ep = media.NewEndpoint(media.EndpointConfig{Codec: audio.CodecPCMU(), EventPT: eventPT, Log: zerolog.Nop()})
	f.pl = newPipeline(c, nil, true, policy, func(d byte, _ dtmf.Source) { f.digits.WriteByte(d) })
	return f
}

func (f *pipeFeed) packet(pt uint8, marker bool, ts uint32, payload []byte) {
	f.seq++
	raw, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: f.seq, Timestamp: ts, SSRC: 0xCAFE, Marker: marker}, Payload: payload}).Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	f.p = media.Packet{Raw: raw, Payload: raw[12:], IsEvent: pt != 0}
	_, _ = f.p.Header.Unmarshal(raw)
	f.pl.Received(f.ep, &f.p)
}

// audio sends pcm in 20 ms frames.
func (f *pipeFeed) audio(pcm []int16) {
	for i := 0; i+160 <= len(pcm); i += 160 {
		f.packet(0, false, f.ts, audio.CodecPCMU().Encode(pcm[i:i+160], nil))
		f.ts += 160
	}
}

// inband keys digits as 80 ms tones with 120 ms of silence after each.
func (f *pipeFeed) inband(digits string) {
	for i := 0; i < len(digits); i++ {
		tone, err := dtmf.AppendTone(nil, digits[i], dtmf.ToneSpec{Duration: 80 * time.Millisecond})
		if err != nil {
			f.t.Fatal(err)
		}
		f.audio(append(tone, make([]int16, 960)...))
	}
}

// events keys digits as RFC 4733 events on PT 101, each followed by
// 100 ms of silence.
func (f *pipeFeed) events(digits string) {
	enc, _ := dtmf.NewEncoder(dtmf.EncoderConfig{})
	for i := 0; i < len(digits); i++ {
		pkts, err := enc.Append(nil, digits[i], f.ts)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, p := range pkts {
			f.packet(101, p.Marker, p.Timestamp, p.Payload[:])
		}
		f.ts += 8000 / 10
		f.audio(make([]int16, 800))
	}
}

// TestPipelinedtmf.Policys: which sources each DTMF mode counts, with the
// same traffic: in-band digits, then RFC 4733 digits, then in-band again.
func TestPipelineDTMFPolicies(t *testing.T) {
	for _, tc := range []struct {
		mode    dtmf.Policy
		eventPT uint8
		want    string
	}{
		// auto: in-band until the first event, events only after it.
		{dtmf.Auto, 101, "4179"},
		{dtmf.RFC4733, 101, "9"},
		{dtmf.Inband, 101, "4175"},
		{dtmf.Info, 101, ""},
		// negotiated (agent legs): events where telephone-event was
		// negotiated, in-band where it was not.
		{dtmf.Negotiated, 101, "9"},
		{dtmf.Negotiated, 0, "4175"},
	} {
		t.Run(fmt.Sprintf("%s/pt%d", tc.mode, tc.eventPT), func(t *testing.T) {
			f := newPipeFeed(t, tc.mode, tc.eventPT)
			f.audio(make([]int16, 1600))
			f.inband("417")
			if tc.eventPT != 0 {
				f.events("9")
			}
			f.inband("5")
			f.audio(make([]int16, 1600)) // let the last tone leave the delay line
			if got := f.digits.String(); got != tc.want {
				t.Fatalf("counted %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPipelineAutoCountsASwitchingPhoneOnce: a phone that sends a key's
// first 80 ms in-band, then switches to RFC 4733 events for the same key
// press, is counted once: the tone's end is confirmed only after the
// first event, when auto trusts events alone.
func TestPipelineAutoCountsASwitchingPhoneOnce(t *testing.T) {
	f := newPipeFeed(t, dtmf.Auto, 101)
	f.audio(make([]int16, 1600))
	tone, _ := dtmf.AppendTone(nil, '7', dtmf.ToneSpec{Duration: 80 * time.Millisecond})
	f.audio(tone)
	f.events("7")
	f.audio(make([]int16, 1600))
	if got := f.digits.String(); got != "7" {
		t.Fatalf("counted %q, want one 7", got)
	}
}

// TestPipelineDecodesOnlyWhenNeeded: with nothing to record, detect or
// mask (a bridge that passes DTMF on the same codec, events trusted),
// the pipeline leaves the packet undecoded; with recording it decodes,
// and hands the bridge masked audio only when asked.
func TestPipelineDecodesOnlyWhenNeeded(t *testing.T) {
	f := newPipeFeed(t, dtmf.RFC4733, 101)
	f.pl.record = false
	f.audio(make([]int16, 160))
	if f.p.Audio != nil {
		t.Fatal("decoded audio nobody needs")
	}
	f.pl.want.Store(wantPCM)
	f.audio(make([]int16, 160))
	if len(f.p.Audio) != 160 {
		t.Fatalf("transcoding bridge got %d samples", len(f.p.Audio))
	}
	// Masked for the bridge: a tone keyed now is silence in what the
	// bridge reads, after the 40 ms delay line.
	f.pl.want.Store(wantMasked)
	tone, _ := dtmf.AppendTone(nil, '5', dtmf.ToneSpec{Duration: 200 * time.Millisecond})
	var loud int
	for i := 0; i+160 <= len(tone); i += 160 {
		f.packet(0, false, f.ts, audio.CodecPCMU().Encode(tone[i:i+160], nil))
		f.ts += 160
		for _, v := range f.p.Audio {
			if v > 2000 || v < -2000 {
				loud++
			}
		}
	}
	if loud != 0 {
		t.Fatalf("%d samples of the tone reached the bridge's audio", loud)
	}
}

// After a gap in the caller's stream (frames lost, or shed by the relay
// as stale), the masker's delay line must not play the audio from before
// the gap after it: the first frame after a jump of a delay line or more
// carries silence, not the loud frame that preceded the gap; a single
// lost frame (less than the delay line) leaves the line alone.
func TestPipelineGapFlushesTheDelayLine(t *testing.T) {
	loud := make([]int16, 160)
	for i := range loud {
		loud[i] = 8000
		if i%2 == 1 {
			loud[i] = -8000
		}
	}
	peak := func(a []int16) int {
		m := 0
		for _, v := range a {
			m = max(m, int(v), -int(v))
		}
		return m
	}
	for _, c := range []struct {
		name    string
		skip    uint32 // samples missing before the next frame
		wantOld bool   // the pre-gap audio comes out after it
	}{
		{"in order", 0, true},
		{"one frame lost", 160, true},
		{"shed 1 s", 8000, false},
		{"a delay line lost", 320, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newPipeFeed(t, dtmf.RFC4733, 101)
			f.pl.want.Store(wantMasked)
			f.audio(make([]int16, 320)) // fill the line with silence
			f.audio(loud)
			f.audio(loud) // the line now holds 40 ms of loud audio
			f.ts += c.skip
			f.audio(make([]int16, 160))
			if got := peak(f.p.Audio) > 4000; got != c.wantOld {
				t.Fatalf("after a gap of %d samples the frame out has peak %d: pre-gap audio out = %v, want %v",
					c.skip, peak(f.p.Audio), got, c.wantOld)
			}
		})
	}
}

// TestPipelineAllocatesNothing: the steady state of the caller leg's
// pipeline (decode, detect, mask) allocates nothing per packet.
func TestPipelineAllocatesNothing(t *testing.T) {
	f := newPipeFeed(t, dtmf.Auto, 101)
	f.pl.want.Store(wantMasked)
	frame := audio.CodecPCMU().Encode(make([]int16, 160), nil)
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 1}, Payload: frame}).Marshal()
	p := media.Packet{Raw: raw, Payload: raw[12:]}
	_, _ = p.Header.Unmarshal(raw)
	f.pl.Received(f.ep, &p) // makes the masker
	if n := testing.AllocsPerRun(200, func() { f.pl.Received(f.ep, &p) }); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}
