package media

import (
	"encoding/binary"

	"github.com/pion/rtp"
)

// Rewriter is the state of one outgoing RTP stream (RFC 3550 §5.1): our
// SSRC, the next sequence number and the next timestamp. It numbers packets
// we generate ourselves (Next) and maps packets forwarded from another
// source onto the same stream (Rewrite), so the receiver sees one
// continuous stream across prompts, bridges and source changes.
//
// Forwarded packets keep the sequence and timestamp deltas of their source
// (loss and reordering stay visible to the receiver); the offsets are
// re-anchored whenever the source SSRC changes or we generated packets
// ourselves in between, so that the timestamp advances by exactly the
// samples sent across prompt, filler and bridge. The marker bit is set at
// a re-anchoring only where the caller says the stream was interrupted
// (Endpoint.Forward: nothing was sent for more than a packet's time).
//
// A Rewriter is not safe for concurrent use; Endpoint guards its own with
// its transmit mutex. It never allocates.
type Rewriter struct {
	// Ordered by size so the struct packs into 24 bytes (it sits in an
	// Endpoint's transmit cache line).
	ssrc   uint32
	nextTS uint32
	inSSRC uint32 // the anchored forwarded source's SSRC
	tsOff  uint32 // out = in + off (mod 2^32)

	nextSeq uint16
	seqOff  uint16 // out = in + off (mod 2^16)
	mapped  bool   // a forwarded source is anchored
}

// NewRewriter returns a stream with the given SSRC, first sequence number
// and first timestamp (all three should be random, RFC 3550 §5.1).
func NewRewriter(ssrc uint32, seq uint16, ts uint32) Rewriter {
	return Rewriter{ssrc: ssrc, nextSeq: seq, nextTS: ts}
}

// SSRC returns the stream's SSRC.
func (r *Rewriter) SSRC() uint32 { return r.ssrc }

// NextSeq returns the sequence number the next packet will carry.
func (r *Rewriter) NextSeq() uint16 { return r.nextSeq }

// NextTimestamp returns the timestamp the next generated packet will carry.
func (r *Rewriter) NextTimestamp() uint32 { return r.nextTS }

// Next returns the sequence number and timestamp for a packet we generate
// that holds samples samples, and advances the stream past it.
func (r *Rewriter) Next(samples uint32) (seq uint16, ts uint32) {
	seq, ts = r.nextSeq, r.nextTS
	r.nextSeq++
	r.nextTS += samples
	r.mapped = false
	return seq, ts
}

// NextSeqOnly returns the next sequence number without advancing the
// timestamp: RFC 4733 §2.3.1 event packets carry the event's start
// timestamp, not a running one.
func (r *Rewriter) NextSeqOnly() uint16 {
	seq := r.nextSeq
	r.nextSeq++
	r.mapped = false
	return seq
}

// Skip advances the timestamp by samples without a packet: time that
// passed in silence, on hold, or while sending was suppressed.
func (r *Rewriter) Skip(samples uint32) {
	r.nextTS += samples
	r.mapped = false
}

// Anchored reports whether packets of source ssrc are mapped onto the
// stream already: no generated packet came in between since its last one.
// A packet for which it is false is anchored anew by Map and Rewrite.
func (r *Rewriter) Anchored(ssrc uint32) bool { return r.mapped && r.inSSRC == ssrc }

// Map returns the sequence number and timestamp a forwarded packet with
// header h and samples timestamp units of audio (0 for RFC 4733 event
// packets, whose timestamp stays fixed) takes on this stream, and advances
// the stream past it. Where the source is not anchored (Anchored is false)
// it is anchored first: its packet gets the stream's next sequence number
// and timestamp, and anchored reports it; mark asks for the marker bit in
// that case (a real discontinuity: the caller knows whether the stream was
// interrupted) and marker says whether to set it. Afterwards the source's
// sequence and timestamp deltas are kept, so its loss and its own gaps
// stay visible to the receiver.
func (r *Rewriter) Map(h *rtp.Header, samples uint32, mark bool) (seq uint16, ts uint32, marker bool) {
	if !r.Anchored(h.SSRC) {
		r.mapped = true
		r.inSSRC = h.SSRC
		r.seqOff = r.nextSeq - h.SequenceNumber
		r.tsOff = r.nextTS - h.Timestamp
		marker = mark
	}
	seq = h.SequenceNumber + r.seqOff
	ts = h.Timestamp + r.tsOff
	if int16(seq-r.nextSeq) >= 0 {
		r.nextSeq = seq + 1
	}
	if end := ts + samples; int32(end-r.nextTS) > 0 {
		r.nextTS = end
	}
	return seq, ts, marker
}

// Rewrite rewrites the RTP packet raw in place onto this stream: SSRC,
// sequence number and timestamp (bytes 2..11 of the fixed header) as Map
// maps them, plus the marker bit when the source is anchored anew and mark
// asks for it (the source's own marker bit stays as it is). h is raw's
// parsed header and samples the packet's duration in timestamp units (0
// for RFC 4733 event packets). raw must hold at least the 12-byte fixed
// header; Rewrite reports false and leaves it alone otherwise.
func (r *Rewriter) Rewrite(raw []byte, h *rtp.Header, samples uint32, mark bool) bool {
	if len(raw) < 12 {
		return false
	}
	seq, ts, marker := r.Map(h, samples, mark)
	if marker {
		raw[1] |= 0x80 // a new talkspurt on our stream (RFC 3551 §4.1)
	}
	binary.BigEndian.PutUint16(raw[2:4], seq)
	binary.BigEndian.PutUint32(raw[4:8], ts)
	binary.BigEndian.PutUint32(raw[8:12], r.ssrc)
	return true
}

// SetPayloadType rewrites the payload type of raw in place, keeping the
// marker bit. raw must hold at least two bytes.
func SetPayloadType(raw []byte, pt uint8) {
	if len(raw) < 2 {
		return
	}
	raw[1] = raw[1]&0x80 | pt&0x7f
}

// putHeader writes a 12-byte RTP fixed header (RFC 3550 §5.1, version 2,
// no padding, extension or CSRC) into b.
func putHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:4], seq)
	binary.BigEndian.PutUint32(b[4:8], ts)
	binary.BigEndian.PutUint32(b[8:12], ssrc)
}

// checkRTP validates the layout of an RTP datagram without allocating
// (RFC 3550 §5.1 fixed header, §5.3.1 header extension, padding) and
// returns the header length and the end of the payload.
func checkRTP(b []byte) (hdrLen, end int, ok bool) {
	n, ok := checkRTPHeader(b)
	if !ok {
		return 0, 0, false
	}
	end = len(b)
	if b[0]&0x20 != 0 {
		pad := int(b[end-1])
		if pad == 0 || end-pad < n {
			return 0, 0, false
		}
		end -= pad
	}
	return n, end, true
}

// checkRTPHeader is checkRTP without the padding: the header's length
// (fixed part, CSRCs, extension), for an SRTP packet whose padding is
// still encrypted.
func checkRTPHeader(b []byte) (hdrLen int, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, false
	}
	n := 12 + 4*int(b[0]&0x0f)
	if len(b) < n {
		return 0, false
	}
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return 0, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:n+4]))
		if len(b) < n {
			return 0, false
		}
	}
	return n, true
}
