package call

import (
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
)

// The bridge forwards RTP between the caller's and the agent's endpoints.
// Each direction is a media.Handler running on the sending leg's read
// goroutine; it takes no lock on the way (the gate's mode is an atomic, the
// endpoints are safe for concurrent use) except the DTMF tap's own mutex.
//
// Caller → agent, per packet:
//   - every packet goes through the DTMF tap first (IVR digits, and the
//     masked view of digits keyed while talking);
//   - the gate decides: in secure mode nothing reaches the agent (the agent
//     hears hold audio played on their own stream); RFC 4733 events pass
//     only in normal mode when the queue does not mask DTMF, with the
//     payload type mapped to the agent leg's;
//   - audio goes through unchanged when both legs use the same codec and
//     nothing is masked (an in-place header rewrite); otherwise it is
//     decoded, run through dtmf.Masker (40 ms delay line, tones replaced
//     by silence, leading edge included) when masking, and re-encoded for
//     the agent leg.
//
// Agent → caller: audio only (transcoded if the codecs differ), and only in
// normal mode; the agent's keys are consumed for feature codes and never
// reach the caller.
type callerBridge struct {
	c *Interaction
	// agent, maskDTMF and tapInband are copies of what the agent side and
	// the tap fix at construction, so a packet reads them here rather
	// than in two more objects (each a cache miss at a few hundred calls).
	agent     *media.Endpoint
	maskDTMF  bool
	tapInband bool
	tap       *dtmfTap
	masker    *dtmf.Masker
	// Decode, mask and encode buffers, made at first use: a bridge of one
	// codec whose caller's monitor masks never needs pcm and out.
	pcm    []int16
	out    []int16
	enc    []byte
	marker bool
}

func newCallerBridge(c *Interaction, side *agentSide) *callerBridge {
	b := &callerBridge{c: c, agent: side.ep, maskDTMF: side.queue.MaskDTMF}
	b.tap, _ = newDTMFTap(c.onDigitReceived)
	if b.maskDTMF {
		if c.callerMon != nil {
			c.callerMon.shareMask.Store(true) // one masker per caller leg
		}
		b.masker, _ = dtmf.NewMasker(dtmf.MaskerConfig{})
		// The masker's detector finds the in-band digits; the tap need not.
		b.tap.inband = false
		b.tap.onStart = b.suppress
	}
	b.tapInband = b.tap.inband
	return b
}

// suppress blanks audio as soon as an RFC 4733 digit starts (phones often
// send a few ms of in-band tone first).
func (b *callerBridge) suppress() {
	if b.masker != nil {
		b.masker.Suppress(160 * 8) // the event so far plus 160 ms
	}
}

// HandleRTP implements media.Handler for caller → agent.
func (b *callerBridge) HandleRTP(e *media.Endpoint, p *media.Packet) {
	// The tap takes events, and audio only when it detects in-band
	// digits (no RFC 4733 negotiated); otherwise it would do nothing
	// with it but take its lock.
	if p.IsEvent || (b.tapInband && e.EventPT() == 0) {
		b.tap.HandleRTP(e, p)
	}
	agent := b.agent
	mode := b.c.Mode()
	if p.IsEvent {
		if b.masker != nil {
			b.masker.Suppress(160 * 8)
		}
		if Route(mode, AgentDTMF) != Pass || b.maskDTMF {
			return
		}
		_ = agent.Forward(p) // maps the event payload type to the agent leg's
		return
	}
	if Route(mode, AgentAudio) != Pass {
		if b.masker != nil {
			b.masker.Hold() // nothing of the secure part leaks on return
		}
		return
	}
	if b.masker == nil && sameCodec(e.Codec(), agent.Codec()) {
		_ = agent.Forward(p)
		return
	}
	var pcm []int16
	if b.masker != nil {
		masked, evs, ok := b.c.callerMon.maskedFor(p)
		if !ok { // no shared monitor output: mask here
			b.pcm = e.Codec().Decode(p.Payload, b.pcm[:0])
			b.masker.Release()
			if len(b.out) < len(b.pcm) {
				b.out = make([]int16, len(b.pcm))
			}
			out := b.out[:len(b.pcm)]
			var err error
			if evs, err = b.masker.Process(b.pcm, out); err != nil {
				return
			}
			masked = out
		}
		for _, ev := range evs {
			if ev.Kind == dtmf.KindEnd {
				b.c.onDigitReceived(ev.Digit, ev.Source)
			}
		}
		pcm = masked
	} else {
		b.pcm = e.Codec().Decode(p.Payload, b.pcm[:0])
		pcm = b.pcm
	}
	b.enc = agent.Codec().Encode(pcm, b.enc[:0])
	_ = agent.WriteAudio(b.enc, uint32(len(pcm)), p.Header.Marker)
}

func sameCodec(a, b media.Codec) bool {
	return a.Name == b.Name && a.PayloadType == b.PayloadType
}

// agentBridge handles agent → caller.
type agentBridge struct {
	c   *Interaction
	tap *dtmfTap
	pcm []int16 // transcoding buffers, made at first use
	enc []byte
}

func newAgentBridge(c *Interaction) *agentBridge {
	b := &agentBridge{c: c}
	b.tap, _ = newDTMFTap(func(d byte, _ dtmf.Source) { c.onAgentDigit(d) })
	return b
}

// HandleRTP implements media.Handler for agent → caller.
func (b *agentBridge) HandleRTP(e *media.Endpoint, p *media.Packet) {
	if p.IsEvent {
		b.tap.HandleRTP(e, p) // feature codes; never forwarded
		return
	}
	if b.c.Mode() != Normal || b.c.secureRunning.Load() {
		return // the caller is in the IVR
	}
	caller := b.c.caller
	if sameCodec(e.Codec(), caller.Codec()) {
		_ = caller.Forward(p)
		return
	}
	b.pcm = e.Codec().Decode(p.Payload, b.pcm[:0])
	b.enc = caller.Codec().Encode(b.pcm, b.enc[:0])
	_ = caller.WriteAudio(b.enc, uint32(len(b.pcm)), p.Header.Marker)
}

// ringbackPrompt names the synthesised ringback tone.
const ringbackPrompt = "\x00ringback"
