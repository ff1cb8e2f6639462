package call

import (
	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/media"
)

// The bridge forwards RTP between the caller's and the agent's endpoints:
// one media.Handler per direction, each running on the sending leg's
// reader after that leg's pipeline (pipeline.go), whose results it reads
// from the packet. It decodes, detects and masks nothing itself, and
// takes no lock on the way (the mode is an atomic, the endpoints are safe
// for concurrent use).
//
// Caller → agent, per packet, as the gate says (Route):
//   - RFC 4733 events pass only where AgentDTMF passes and the queue does
//     not mask DTMF, with the payload type mapped to the agent leg's;
//   - audio passes only where AgentAudio passes (in a referral or a
//     secure segment the agent hears hold audio on their own stream):
//     unchanged when both legs use the same codec and nothing is masked
//     (an in-place header rewrite), otherwise the pipeline's audio —
//     masked when the queue masks DTMF — encoded for the agent leg.
//
// Agent → caller: audio only where CallerAudio passes, transcoded if the
// codecs differ; the agent's keys are their pipeline's (feature codes)
// and never reach the caller.
type callerBridge struct {
	c *Interaction
	// agent and maskDTMF are copies of what the agent side fixes at
	// construction, so a packet reads them here rather than in two more
	// objects (each a cache miss at a few hundred calls).
	agent    *media.Endpoint
	maskDTMF bool
	enc      []byte // encode buffer, made at first use
}

// newCallerBridge returns the caller → agent handler and tells the caller
// leg's pipeline what audio it needs: masked when the queue masks DTMF,
// decoded when the codecs differ (should a re-INVITE change them later,
// audioOf decodes what the pipeline did not).
func newCallerBridge(c *Interaction, side *agentSide) *callerBridge {
	b := &callerBridge{c: c, agent: side.ep, maskDTMF: side.queue.MaskDTMF}
	var want uint32
	if b.maskDTMF {
		want |= wantMasked
	}
	if !sameCodec(c.caller.Codec(), side.ep.Codec()) {
		want |= wantPCM
	}
	if !side.queue.Collect {
		want |= wantNoDigits
	}
	if c.monitors.Load() != nil {
		want |= wantMasked // the stream monitors hear (monitor.go)
	}
	c.pipe.want.Store(want)
	return b
}

// HandleRTP implements media.Handler for caller → agent.
func (b *callerBridge) HandleRTP(e *media.Endpoint, p *media.Packet) {
	agent := b.agent
	mode := b.c.Mode()
	if p.IsEvent {
		if Route(mode, AgentDTMF) != Pass || b.maskDTMF {
			return
		}
		_ = agent.Forward(p) // maps the event payload type to the agent leg's
		return
	}
	ms := b.c.monitors.Load() // supervisors (monitor.go): nil on a plain call
	if ms != nil {
		ms.tapCaller(mode, p)
	}
	switch Route(mode, AgentAudio) {
	case Pass:
	case Mask:
		b.forwardMasked(p) // an agent-assisted payment (payment_tone.go)
		return
	default:
		return
	}
	if !b.maskDTMF && sameCodec(e.Codec(), agent.Codec()) && (ms == nil || !ms.speaksTo(mode, false)) {
		_ = agent.Forward(p)
		return
	}
	pcm := audioOf(e, p)
	if pcm == nil {
		return
	}
	if ms != nil {
		ms.mixVoices(mode, pcm, false) // coaching or barging supervisors
	}
	b.enc = agent.Codec().Encode(pcm, b.enc[:0])
	_ = agent.ForwardAudio(b.enc, uint32(len(pcm)), &p.Header) // the source's timing, gaps included
}

// audioOf returns the packet's audio as its leg's pipeline left it, or,
// where the pipeline had no need to decode it (no recording, detection or
// masking: the codecs changed since the bridge was built, or the agent
// leg's audio), decodes it into the packet's scratch buffer. nil for a
// payload longer than the scratch buffer (no ptime cloak offers).
func audioOf(e *media.Endpoint, p *media.Packet) []int16 {
	if p.Audio != nil {
		return p.Audio
	}
	in, _ := p.Scratch()
	if len(p.Payload) > len(in) {
		return nil
	}
	return e.Codec().Decode(p.Payload, in[:0])
}

func sameCodec(a, b audio.Codec) bool {
	return a.Name == b.Name && a.PayloadType == b.PayloadType
}

// agentBridge handles agent → caller.
type agentBridge struct {
	c   *Interaction
	enc []byte // transcoding buffer, made at first use
}

// HandleRTP implements media.Handler for agent → caller.
func (b *agentBridge) HandleRTP(e *media.Endpoint, p *media.Packet) {
	if p.IsEvent {
		return // the agent's keys are feature codes
	}
	mode := b.c.Mode()
	ms := b.c.monitors.Load() // supervisors (monitor.go): nil on a plain call
	if ms != nil {
		ms.tapAgent(mode, e, p)
	}
	if Route(mode, CallerAudio) != Pass {
		return // a referred caller is in the flow
	}
	caller := b.c.caller
	if sameCodec(e.Codec(), caller.Codec()) && (ms == nil || !ms.speaksTo(mode, true)) {
		_ = caller.Forward(p)
		return
	}
	pcm := audioOf(e, p)
	if pcm == nil {
		return
	}
	if ms != nil {
		ms.mixVoices(mode, pcm, true) // barging supervisors
	}
	b.enc = caller.Codec().Encode(pcm, b.enc[:0])
	_ = caller.ForwardAudio(b.enc, uint32(len(pcm)), &p.Header)
}

// ringbackPrompt names the synthesised ringback tone.
const ringbackPrompt = "\x00ringback"
