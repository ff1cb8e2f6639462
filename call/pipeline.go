package call

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
)

// What a bridge asks of the caller leg's pipeline, in pipeline.want.
const (
	wantPCM    uint32 = 1 << iota // decoded audio (the agent's codec differs)
	wantMasked                    // DTMF-masked audio (the queue masks DTMF)
	// wantNoDigits: bridged to an agent whose queue does not collect
	// keys while talking, so in normal mode nobody counts the caller's
	// digits and in-band detection would be wasted.
	wantNoDigits
)

// pipeline is one leg's media pipeline (docs/ARCHITECTURE.md, "One digit,
// from the socket to the IVR"). It is the leg's media.Monitor, so it sees
// every packet the leg accepts before the leg's Handler does, and every
// packet the leg sends. Per received packet it decodes at most once,
// detects at most once (RFC 4733 events through one dtmf.Decoder, in-band
// tones through the detector inside one dtmf.Masker), masks at most once,
// and hands the results on: digits to onDigit, the masked audio to the
// recorder, and the audio the bridge asked for on the packet (p.Audio),
// where the Handler — the bridge — reads it. No other object of the call
// decodes, detects or masks this leg's audio. Every sink it feeds asks the
// gate first.
//
// Locks: Received and Sent run on the hot path (the leg's reader; a writer
// under the leg's transmit lock) and take none but mu, and mu only for an
// RFC 4733 packet; tick runs on the shared clock and takes mu only while
// a digit is open. Nothing here logs, allocates or touches the disk per
// packet.
type pipeline struct {
	// Read per packet, first.
	c      *Interaction
	rtp    *capture.CallCapture // RTP capture of the leg (nil: off)
	record bool                 // the caller leg: what it says and hears is recorded
	want   atomic.Uint32        // wantPCM | wantMasked | wantNoDigits, set by the bridge
	policy dtmf.Policy
	// sawEvent: an RFC 4733 event arrived on the leg (dtmf.Auto counts
	// events only from then on). Written by the reader, read by it.
	sawEvent bool
	// open: the decoder has a digit whose end has not been seen; tick
	// looks at it without the lock.
	open atomic.Bool

	mu      sync.Mutex // guards dec (the reader and the clock's tick)
	dec     *dtmf.Decoder
	masker  *dtmf.Masker // made at the first frame that needs it: the reader's
	onDigit func(d byte, src dtmf.Source)
	// onKeyDown, when set, is told the moment a key's tone or event
	// begins (the mask tone of an agent-assisted payment starts there).
	// It must not block: it runs on the hot path, under mu for events.
	onKeyDown func()
	oversize  atomic.Uint64 // frames too long for the scratch buffers: passed undecoded
	// nextTS and ssrc: where the masker's input stream should continue
	// (the last frame's RTP timestamp plus its samples) and whose it is;
	// a jump forward of a delay line or more, or a new SSRC, is a gap
	// (dtmf.Masker.Gap). Written and read by the reader only.
	nextTS  uint32
	ssrc    uint32
	started bool
}

// newPipeline returns a leg's pipeline. record makes it feed the recorder
// (the caller leg); onDigit receives the digits its policy counts.
func newPipeline(c *Interaction, rtp *capture.CallCapture, record bool, policy dtmf.Policy, onDigit func(byte, dtmf.Source)) *pipeline {
	dec, _ := dtmf.NewDecoder(dtmf.DecoderConfig{}) // the defaults are valid
	return &pipeline{c: c, rtp: rtp, record: record, policy: policy, dec: dec, onDigit: onDigit}
}

// Received implements media.Monitor.
func (pl *pipeline) Received(e *media.Endpoint, p *media.Packet) {
	c := pl.c
	mode := c.Mode()
	if pl.rtp != nil && Route(mode, MediaCapture) == Pass {
		_ = pl.rtp.WritePacket(time.Now(), p.From, e.LocalAddr(), capture.ProtoUDP, p.Raw)
	}
	if p.IsEvent {
		pl.event(p)
		return
	}
	var rec *recorder.Recorder
	if pl.record {
		rec = c.rec.Load()
	}
	want := pl.want.Load()
	detect := pl.policy.Counts(dtmf.SourceInband, e.EventPT() != 0, pl.sawEvent) &&
		(want&wantNoDigits == 0 || mode != Normal)
	want &^= wantNoDigits
	// agentMasked: the agent hears the caller through the masker whatever
	// the queue says (an agent-assisted payment): decode and mask always.
	agentMasked := Route(mode, AgentAudio) == Mask
	if agentMasked {
		want |= wantMasked
	}
	if rec == nil && want == 0 && !detect {
		return // nothing here needs the audio: no decode
	}
	in, out := p.Scratch()
	if len(p.Payload) > len(in) {
		pl.oversize.Add(1) // longer than any ptime offered: not decoded
		return
	}
	pcm := e.Codec().Decode(p.Payload, in[:0])
	p.Audio = pcm
	if rec == nil && want&wantMasked == 0 && !detect {
		return // transcoding only
	}
	if pl.masker == nil {
		pl.masker, _ = dtmf.NewMasker(dtmf.MaskerConfig{}) // the defaults are valid
	}
	// Where the recorder may not hear the caller (a secure segment) the
	// delay line is blanked too, so none of its last 40 ms comes out
	// after it ends — unless the agent hears the masked audio meanwhile
	// (an agent-assisted payment), where the masker's detection does it.
	if Route(mode, Recorder) == Pass || agentMasked {
		pl.masker.Release()
	} else {
		pl.masker.Hold()
	}
	h := &p.Header
	if pl.started && (h.SSRC != pl.ssrc || int32(h.Timestamp-pl.nextTS) >= dtmf.MaskerDelay) {
		pl.masker.Gap() // 40 ms of audio from before it must not follow it
	}
	pl.started, pl.ssrc, pl.nextTS = true, h.SSRC, h.Timestamp+uint32(len(pcm))
	out = out[:len(pcm)]
	evs, err := pl.masker.Process(pcm, out)
	if err != nil {
		return
	}
	if want&wantMasked != 0 {
		p.Audio = out
	}
	if detect {
		for _, ev := range evs {
			switch ev.Kind {
			case dtmf.KindStart:
				pl.keyDown()
			case dtmf.KindEnd:
				pl.onDigit(ev.Digit, ev.Source)
			}
		}
	}
	if rec != nil && Route(mode, Recorder) == Pass {
		rec.WriteCaller(out)
	}
}

// event feeds an RFC 4733 packet to the decoder. A digit's start blanks
// the masker's delay line and the next 160 ms (phones often send a few ms
// of in-band tone before they switch to events).
func (pl *pipeline) event(p *media.Packet) {
	pl.sawEvent = true
	if pl.masker != nil {
		pl.masker.Suppress(160 * 8)
	}
	now := time.Now()
	pl.mu.Lock()
	evs, _ := pl.dec.Feed(p.Header.SSRC, p.Header.Timestamp, p.Payload, now)
	pl.deliver(evs)
	pl.mu.Unlock()
}

// deliver hands the decoder's completed digits on, as the policy says.
// pl.mu is held.
func (pl *pipeline) deliver(evs []dtmf.Event) {
	for _, ev := range evs {
		switch ev.Kind {
		case dtmf.KindStart:
			pl.open.Store(true)
			pl.keyDown()
		case dtmf.KindEnd:
			pl.open.Store(false)
			if !pl.policy.Counts(dtmf.SourceRFC4733, true, true) {
				continue
			}
			pl.onDigit(ev.Digit, ev.Source)
		}
	}
}

// keyDown tells onKeyDown a key began.
func (pl *pipeline) keyDown() {
	if pl.onKeyDown != nil {
		pl.onKeyDown()
	}
}

// tick closes digits whose end packets were all lost; on the shared clock.
func (pl *pipeline) tick(now time.Time) {
	if !pl.open.Load() {
		return
	}
	pl.mu.Lock()
	pl.deliver(pl.dec.Expire(now))
	pl.mu.Unlock()
}

// Sent implements media.Monitor: what the leg sent goes to RTP capture
// and, on the caller leg, to the recorder's agent channel (what the
// caller hears), as the gate allows.
func (pl *pipeline) Sent(e *media.Endpoint, s media.SentPacket) {
	mode := pl.c.Mode()
	if pl.rtp != nil && Route(mode, MediaCapture) == Pass {
		_ = pl.rtp.WritePacket(time.Now(), e.LocalAddr(), e.Remote(), capture.ProtoUDP, s.Raw)
	}
	if !pl.record || s.IsEvent || Route(mode, Recorder) != Pass {
		return
	}
	if rec := pl.c.rec.Load(); rec != nil {
		// Queued as the G.711 it is; the recorder's writer expands it,
		// off the hot path. Comfort noise (RFC 3389) stands for 20 ms of
		// near silence: the silence codeword keeps the channels aligned.
		payload := s.Payload
		if s.ComfortNoise {
			payload = media.SilenceFrame(e.Codec())
		}
		rec.WriteCompanded(recorder.Agent, payload, e.Codec().Expansion())
	}
}
