package call

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/tones"
)

// The mask tone of an agent-assisted payment: what the agent hears in
// place of each of the caller's keys, so they know a key was pressed and
// never which. One pure sine of fixed pitch, level and length whatever
// the key and however long it was held (a DTMF digit is two tones at
// once, ITU-T Q.23; one tone decodes to none), starting where the key
// began: the pipeline's masker blanks the key itself, leading edge
// included (its 40 ms delay line), and its detector, or the RFC 4733
// decoder, calls keyDown as the key begins.
const (
	// MaskToneHz is the mask tone's pitch: below every DTMF frequency
	// (697 Hz is the lowest) and apart from the usual test tones.
	MaskToneHz = 500
	// MaskToneLevel is its level in dBm0: audible, softer than speech.
	MaskToneLevel = -20.0
	// MaskToneLength is its length.
	MaskToneLength = 100 * time.Millisecond
)

// Mask tone settings (payments.mask_tone).
const (
	MaskToneFlat    = "flat"    // the mask tone above
	MaskToneSilence = "silence" // nothing: the key is only blanked
)

// maskToneSamples is the mask tone, computed once.
var maskToneSamples = sync.OnceValue(func() []int16 {
	n := int(MaskToneLength.Seconds() * tones.SampleRate)
	out := make([]int16, n)
	amp := tones.Amplitude(MaskToneLevel)
	for i := range out {
		// A 2 ms ramp at each end: no click, which would be broadband.
		g := 1.0
		if r := 16; i < r {
			g = float64(i) / float64(r)
		} else if i >= n-r {
			g = float64(n-1-i) / float64(r)
		}
		out[i] = int16(g * amp * math.Sin(2*math.Pi*MaskToneHz*float64(i)/tones.SampleRate))
	}
	return out
})

// maskTone plays the mask tone into the audio towards the agent. start
// (a key began) and overlay (the bridge, per caller packet) run on the
// caller leg's reader; fill on the shared clock: they share only atomics.
type maskTone struct {
	flat bool
	// left is how many samples of the current tone are still to play.
	left atomic.Int32
	// lastAudio is when the bridge last sent the caller's audio to the
	// agent (unix ns): while it does, the tone rides on it; when the
	// caller sends nothing (a phone pauses its audio during an RFC 4733
	// event) fill sends the tone on the clock.
	lastAudio atomic.Int64
	enc       []byte  // fill's encode buffer (the clock's goroutine only)
	pcm       []int16 // fill's frame (the clock's goroutine only)
}

// start begins one tone, from its first sample (a key began).
func (t *maskTone) start() {
	if t.flat {
		t.left.Store(int32(len(maskToneSamples())))
	}
}

// take claims up to n samples of the current tone and returns the offset
// of the first in the tone and how many were claimed.
func (t *maskTone) take(n int) (from, got int) {
	total := len(maskToneSamples())
	for {
		left := t.left.Load()
		if left <= 0 {
			return 0, 0
		}
		got = min(int(left), n)
		if t.left.CompareAndSwap(left, left-int32(got)) {
			return total - int(left), got
		}
	}
}

// overlay replaces the start of pcm (the caller's masked audio) with
// what is left of the tone, and notes that the caller's audio flows.
func (t *maskTone) overlay(pcm []int16) {
	t.lastAudio.Store(time.Now().UnixNano())
	from, n := t.take(len(pcm))
	copy(pcm[:n], maskToneSamples()[from:from+n])
}

// fill sends one 20 ms frame of the tone to the agent when the caller's
// audio has stopped (no packet for more than a frame and a half) and a
// tone is playing, as long as the gate masks the agent's audio; on the
// shared clock.
func (t *maskTone) fill(c *Interaction, ep *media.Endpoint) {
	if Route(c.Mode(), AgentAudio) != Mask || t.left.Load() <= 0 {
		return
	}
	// The time now, not the tick's: a tick delivered late (a loaded
	// machine) would see the caller's audio as still flowing.
	if time.Now().UnixNano()-t.lastAudio.Load() < int64(30*time.Millisecond) {
		return
	}
	if t.pcm == nil {
		t.pcm = make([]int16, audio.SamplesPerFrame)
	}
	clear(t.pcm)
	from, n := t.take(len(t.pcm))
	copy(t.pcm[:n], maskToneSamples()[from:from+n])
	t.enc = ep.Codec().Encode(t.pcm, t.enc[:0])
	_ = ep.WriteAudio(t.enc, uint32(len(t.pcm)), false)
}

// forwardMasked sends the caller's audio to the agent as the pipeline
// masked it, with the payment's mask tone over each key. Audio the
// pipeline did not mask (an oversize frame) is not sent: fail closed.
func (b *callerBridge) forwardMasked(p *media.Packet) {
	pcm := p.Audio
	if pcm == nil {
		return
	}
	if ps := b.c.payment.Load(); ps != nil {
		ps.tone.overlay(pcm)
	}
	b.enc = b.agent.Codec().Encode(pcm, b.enc[:0])
	_ = b.agent.ForwardAudio(b.enc, uint32(len(pcm)), &p.Header)
}

// onCallerKeyDown is the caller pipeline's onKeyDown: a key began.
func (c *Interaction) onCallerKeyDown() {
	if ps := c.payment.Load(); ps != nil {
		ps.tone.start()
	}
}
