package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// # Continuous media
//
// Whenever cloak is the media source towards a leg — the IVR between
// prompts and while it waits for digits, a secure segment, a hold loop's
// seam, the moment after a prompt and before a bridge — the leg still
// gets one packet every ptime: carriers' SBCs and phones hang up or alarm
// on media inactivity, and NAT bindings time out. StartFill hands the
// "nothing to send" state of a leg to the shared Clock: on every tick
// fillTick looks whether anything else (a prompt, a forwarded packet,
// transcoded audio, an RFC 4733 event) used the stream since the last
// tick, and when not, sends one filler packet on the same stream
// (sequence +1, timestamp +160, so the stream's timing stays exact):
//
//   - RFC 3389 comfort noise (payload: one noise-level byte, §3) when the
//     peer negotiated CN (SetComfortNoise);
//   - else a 20 ms G.711 frame of low-level noise, about −70 dBm0 (rms 5
//     in 16-bit linear; A-law's smallest codes make it about −66 dBm0),
//     from a precomputed one-second loop. Noise rather than the silence
//     codeword: a line that goes digitally dead sounds like a dropped
//     call (RFC 3389 §1 gives the same reason for comfort noise), and
//     it is the level a quiet phone line has anyway.
//
// A leg the IVR owns (a prompt just ended, or the leg was just answered)
// is filled from the next tick on, so consecutive packets are never more
// than one tick apart. A leg whose packets come from a bridge is filled
// only after fillAfterTicks ticks without a packet (the peer went silent:
// DTX, mute, a dropped key press), so a forwarded packet that is merely
// late is never displaced by filler; the first forwarded packet after a
// filler run re-anchors the forwarded stream on ours (see Rewriter).
//
// The filler is paced by the Clock, not a timer or goroutine per call,
// and sends from the clock's goroutine under the leg's transmit mutex; it
// does not allocate per packet.

// fillAfterTicks is how many clock ticks (20 ms) without any packet sent
// a leg waits before it fills a gap in forwarded media: long enough that
// jittered forwarded packets are not displaced, short enough that a
// silent peer never makes a gap a receiver notices.
const fillAfterTicks = 5

// cnLevel is the noise level of our RFC 3389 comfort noise, in −dBov
// (§3): about −70 dBm0 for G.711, the level of our G.711 filler.
const cnLevel = 73

// fillLoopFrames is the length of the precomputed G.711 noise loop.
const fillLoopFrames = 50

// fillFrames holds the noise loop encoded for both G.711 codecs.
var fillFrames = sync.OnceValue(func() *[2][]byte {
	pcm := make([]int16, fillLoopFrames*audio.SamplesPerFrame)
	x := uint32(0x2545f491)
	for i := range pcm {
		// A sum of four uniform values is close enough to Gaussian
		// noise; its standard deviation is 2·32768/√3 ≈ 37837.
		var s int32
		for range 4 {
			x = x*1664525 + 1013904223
			s += int32(x>>16) - 32768
		}
		pcm[i] = int16(s * 5 / 37837) // rms 5: about −70 dBm0
	}
	return &[2][]byte{
		audio.CodecPCMU().Encode(pcm, nil),
		audio.CodecPCMA().Encode(pcm, nil),
	}
})

// silenceFrames holds one 20 ms frame of the silence codeword of each
// G.711 codec.
var silenceFrames = sync.OnceValue(func() *[2][]byte {
	var f [2][]byte
	for i, c := range []audio.Codec{audio.CodecPCMU(), audio.CodecPCMA()} {
		f[i] = make([]byte, audio.SamplesPerFrame)
		for j := range f[i] {
			f[i][j] = c.SilenceByte()
		}
	}
	return &f
})

// SilenceFrame returns one 20 ms frame of c's silence codeword (nil for a
// codec that is not G.711), e.g. for a recorder that must account for the
// time an RFC 3389 comfort-noise packet stands for. The slice is shared:
// do not modify it.
func SilenceFrame(c audio.Codec) []byte {
	switch {
	case c.IsULaw():
		return silenceFrames()[0]
	case c.IsALaw():
		return silenceFrames()[1]
	}
	return nil
}

// fillState is the filler's state of one leg, owned by the clock's
// goroutine (fillTick); nowAt and stop are the only fields others touch.
type fillState struct {
	stop  func()     // cancels the clock subscription; nil: not filling
	mu    sync.Mutex // guards stop
	seen  uint64     // txPackets after the last tick's look (or our send)
	idle  uint32     // ticks since a packet was last sent
	on    bool       // filling: the stream is ours, one packet per tick
	frame uint32     // position in the noise loop
	// nowAt is 1 + txPackets when a prompt ended or the leg was
	// answered (0: neither): the stream is ours and is filled from the
	// next tick, unless something else sent meanwhile.
	nowAt atomic.Uint64
}

// StartFill makes the endpoint send filler whenever nothing else is sent
// (see "Continuous media" above), from the next tick of its Clock on: call
// it when the leg is answered. It does nothing without a Clock or on an
// endpoint that fills already; Close stops it.
func (e *Endpoint) StartFill() {
	if e.clock == nil || e.closed.Load() {
		return
	}
	e.fill.mu.Lock()
	defer e.fill.mu.Unlock()
	if e.fill.stop != nil {
		return
	}
	e.fill.markOurs(e) // nothing plays yet: the stream is ours
	e.fill.stop = e.clock.Subscribe(e.fillTick)
}

// markOurs says the stream is ours from here (a prompt ended, the leg
// was answered): the filler sends from the next tick on, unless another
// packet is sent before it.
func (f *fillState) markOurs(e *Endpoint) { f.nowAt.Store(e.txPackets.Load() + 1) }

// stopFill ends filling (Close).
func (e *Endpoint) stopFill() {
	e.fill.mu.Lock()
	stop := e.fill.stop
	e.fill.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Filling reports whether StartFill is in effect.
func (e *Endpoint) Filling() bool {
	e.fill.mu.Lock()
	defer e.fill.mu.Unlock()
	return e.fill.stop != nil
}

// fillTick runs on the clock's goroutine for every tick: it sends one
// filler packet when the stream is ours (a prompt ended and nothing took
// over), or when no packet at all was sent for fillAfterTicks ticks. It
// takes the transmit mutex only to send, and does not allocate.
func (e *Endpoint) fillTick(time.Time) {
	f := &e.fill
	if e.closed.Load() {
		return
	}
	if n := e.txPackets.Load(); n != f.seen {
		f.seen, f.idle, f.on = n, 0, false // something else sent: it displaces the filler
	} else if f.idle < fillAfterTicks {
		f.idle++
	}
	if e.playing.Load() {
		f.idle, f.on = 0, false // the prompt owns the stream
		return
	}
	var gap uint32
	cont := f.on // a run goes on: a stall of the clock shows in the timestamp
	if a := f.nowAt.Swap(0); a != 0 && a-1 == e.txPackets.Load() {
		f.on = true
	}
	if !f.on {
		if f.idle < fillAfterTicks || Shedding() {
			// Shedding: the gap is the relay's backlog, not the peer's
			// silence (stale.go, "Queue sojourn").
			return
		}
		// A gap in forwarded media: the last packet went out about
		// idle ticks ago and covered the first of them.
		gap = f.idle - 1
	}
	f.on = true
	e.sendFiller(gap, cont)
}

// sendFiller sends one filler packet on our stream: RFC 3389 CN when
// negotiated, else a G.711 noise frame. gap is the number of 20 ms frames
// nothing was sent for before it: the timestamp moves on by them (RFC
// 3550 §5.1) and the packet carries the marker bit (RFC 3551 §4.1). cont
// says it continues a filler run: should the clock have stalled since the
// run's last packet (more than two frames' time), the timestamp moves on
// by the time lost, with the marker bit, as for a prompt. When the
// direction forbids sending, the timestamp advances as for any suppressed
// packet.
//
// Locks: the transmit mutex, held across the socket write.
func (e *Endpoint) sendFiller(gap uint32, cont bool) {
	cs := e.conf.Load()
	const samples = audio.SamplesPerFrame
	var payload []byte
	pt, kind := cs.codec.PayloadType, sentAudio
	switch {
	case cs.cnPT != 0:
		payload, pt, kind = cnPayload[:], cs.cnPT, sentComfortNoise
	case cs.codec.IsULaw():
		payload = fillFrames()[0]
	case cs.codec.IsALaw():
		payload = fillFrames()[1]
	default:
		return // no codec yet (a late offer before its answer)
	}
	if len(payload) > samples {
		i := int(e.fill.frame % fillLoopFrames)
		payload = payload[i*samples : (i+1)*samples]
		e.fill.frame++
	}
	e.txMu.Lock()
	defer e.txMu.Unlock()
	if e.closed.Load() {
		return
	}
	if !e.Direction().CanSend() {
		e.tx.Skip((gap + 1) * samples)
		e.noteTxLocked(samples)
		e.stats.txSuppressed.Add(1)
		return
	}
	dst, connected := e.target()
	if !connected && !dst.IsValid() {
		e.tx.Skip((gap + 1) * samples)
		return
	}
	marker := gap > 0
	if marker {
		e.tx.Skip(gap * samples)
	} else if cont {
		marker = e.skipSilenceLocked(cs.codec.ClockRate)
	}
	seq, ts := e.tx.Next(samples)
	b := e.txBuf[:12+len(payload)]
	putHeader(b, marker, pt, seq, ts, e.tx.SSRC())
	copy(b[12:], payload)
	e.noteTxLocked(samples)
	e.stats.txFill.Add(1)
	_ = e.sendLocked(b, b[12:], dst, connected, kind)
	e.fill.seen = e.txPackets.Load() // our own packet does not displace us
}

// cnPayload is our RFC 3389 §3 comfort-noise payload: the noise level
// only, no spectral information (a receiver then generates white noise).
var cnPayload = [1]byte{cnLevel}
