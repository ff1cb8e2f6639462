package media

import (
	"net/netip"

	"github.com/pion/rtp"
)

// Packet is a received RTP packet. It is valid only during the HandleRTP
// call: the endpoint reuses its buffer for the next datagram, so a handler
// that keeps anything must copy it.
type Packet struct {
	// Header is the parsed RTP header (RFC 3550 §5.1).
	Header rtp.Header
	// Payload is the payload without header, extension or padding.
	Payload []byte
	// Raw is the whole datagram; Forward rewrites it in place.
	Raw []byte
	// From is the source address.
	From netip.AddrPort
	// IsEvent is true for the negotiated telephone-event payload type
	// (RFC 4733), false for audio of the negotiated codec.
	IsEvent bool
	// Audio is what the leg's Monitor made of the payload for the Handler
	// (cloak's call pipeline: the decoded audio, DTMF-masked when the
	// bridge asked for it), in one of the packet's scratch buffers; nil
	// when the Monitor made nothing. The reader clears it per packet, so
	// a Handler never sees another packet's audio. It is how per-packet
	// results travel from one stage to the next, so that no stage decodes
	// or detects again (docs/ARCHITECTURE.md, "One digit...").
	Audio []int16

	// arrival is when the reader got the datagram, in nanotime: a poll
	// worker sets it once per batch (the wake-up), so the jitter
	// estimate (RFC 3550 A.8) costs no clock read per packet; 0 (the read
	// loop, tests) means handleDatagram reads the clock itself.
	arrival int64
	// sojourn is how long the datagram waited in its socket's receive
	// queue, in ns, when a poll worker is shedding (stale.go, "Queue
	// sojourn"); 0 when not measured.
	sojourn int64
	// shed is set by handleDatagram when it dropped the datagram as
	// stale: the worker then reads the socket's next one at once, so a
	// backlog drains in one batch instead of one datagram per batch.
	shed bool

	scratch [2][ScratchSamples]int16
}

// ScratchSamples is the length of each of a Packet's scratch buffers:
// 120 ms of 8 kHz audio, twice the longest ptime cloak offers.
const ScratchSamples = 960

// Scratch returns two buffers of ScratchSamples samples that the packet's
// Monitor and Handler may use as working space (decoded audio, processed
// audio) until the handler returns. Like the Packet they belong to its
// reader, which reuses them for its next datagram: a poll worker serves
// many legs with one Packet, so the buffers stay in its CPU cache where
// buffers of each leg's own would be cold at every packet. The monitor
// runs first; what it leaves in them is there for the handler.
func (p *Packet) Scratch() (a, b []int16) { return p.scratch[0][:], p.scratch[1][:] }

// Handler receives the packets an Endpoint accepts. HandleRTP runs on the
// endpoint's reader (its read goroutine, or the Poller worker that serves
// many legs): it must not block, should not allocate, and must not call
// any endpoint's Close (which waits for the reader).
type Handler interface {
	HandleRTP(e *Endpoint, p *Packet)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(e *Endpoint, p *Packet)

// HandleRTP calls f(e, p).
func (f HandlerFunc) HandleRTP(e *Endpoint, p *Packet) { f(e, p) }

// Echo returns a Handler that sends the caller's audio straight back to
// them on the endpoint's own stream (our SSRC, sequence and timestamps):
// the loopback test every VoIP engineer expects. Telephone-event packets
// are not echoed. It does not allocate.
func Echo() Handler {
	return HandlerFunc(func(e *Endpoint, p *Packet) {
		if p.IsEvent {
			return
		}
		_ = e.Forward(p)
	})
}
