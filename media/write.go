package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/pion/rtp"
)

// WriteAudio sends one packet of our stream holding payload (already
// encoded in the negotiated codec) that lasts samples timestamp units:
// sequence number +1, timestamp +samples. marker starts a talkspurt (RFC
// 3551 §4.1): after a silence the timestamp jumps by the time that passed,
// as RFC 3550 §5.1 asks, and the marker bit is set; when packets were sent
// without a gap until now (filler, another prompt) the stream is
// continuous and the bit stays clear. When the direction forbids sending nothing is sent
// and nil is returned (the timestamp still advances). While a prompt is
// playing it returns ErrPlaying. It does not allocate.
//
// Locks: the transmit mutex, held across the socket write.
func (e *Endpoint) WriteAudio(payload []byte, samples uint32, marker bool) error {
	if e.playing.Load() {
		return ErrPlaying
	}
	return e.writeAudio(e.conf.Load().codec, payload, samples, marker)
}

// writeAudio sends payload encoded in codec on our stream.
func (e *Endpoint) writeAudio(codec audio.Codec, payload []byte, samples uint32, marker bool) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if len(payload)+12 > sendBufSize {
		return ErrPacketTooLarge
	}
	e.txMu.Lock()
	defer e.txMu.Unlock()
	if marker {
		marker = e.skipSilenceLocked(codec.ClockRate)
	}
	if !e.Direction().CanSend() {
		e.tx.Skip(samples)
		e.noteTxLocked(samples)
		e.stats.txSuppressed.Add(1)
		return nil
	}
	dst, connected := e.target()
	if !connected && !dst.IsValid() {
		e.tx.Skip(samples)
		return ErrNoRemote
	}
	seq, ts := e.tx.Next(samples)
	b := e.txBuf[:12+len(payload)]
	putHeader(b, marker, codec.PayloadType, seq, ts, e.tx.SSRC())
	copy(b[12:], payload)
	e.noteTxLocked(samples)
	return e.sendLocked(b, b[12:], dst, connected, sentAudio)
}

// skipSilenceLocked advances the timestamp over a gap in sending longer
// than one packet, so a new talkspurt's timestamp reflects wall time, and
// reports whether the stream is discontinuous here: its first packet, or
// one after such a gap (the marker bit's case, RFC 3551 §4.1).
func (e *Endpoint) skipSilenceLocked(rate uint32) bool {
	if e.lastTx == 0 {
		return true // the stream's first packet
	}
	if rate == 0 || e.lastTxSz == 0 {
		return false
	}
	elapsed := e.mono() - e.lastTx
	gap := uint64(elapsed) * uint64(rate) / uint64(time.Second)
	if gap <= 2*uint64(e.lastTxSz) {
		return false // within one packet of schedule: no gap
	}
	extra := gap - uint64(e.lastTxSz)
	extra -= extra % uint64(e.lastTxSz) // whole packets
	e.tx.Skip(uint32(extra))
	return true
}

// mono is the monotonic time of the transmit side: nanotime, or the
// tests' fake.
func (e *Endpoint) mono() int64 {
	if e.fakeMono != nil {
		return e.fakeMono()
	}
	return nanotime()
}

func (e *Endpoint) noteTxLocked(samples uint32) {
	e.lastTx = max(e.mono(), 1) // 0 is "none"
	if samples != 0 {
		e.lastTxSz = samples
	}
}

// NextTimestamp returns the timestamp the next audio packet of our stream
// will carry: the start timestamp for an RFC 4733 event sent now.
func (e *Endpoint) NextTimestamp() uint32 {
	e.txMu.Lock()
	defer e.txMu.Unlock()
	return e.tx.NextTimestamp()
}

// AdvanceTimestamp moves our stream's timestamp on by samples without
// sending, e.g. by an RFC 4733 event's duration once it ended.
func (e *Endpoint) AdvanceTimestamp(samples uint32) {
	e.txMu.Lock()
	e.tx.Skip(samples)
	e.txMu.Unlock()
}

// WriteEvent sends one RFC 4733 telephone-event packet (payload: the
// 4-byte event block of §2.3) on our stream with the negotiated event
// payload type: sequence number +1, timestamp ts (the event's start, the
// same for all its packets, §2.3.1). marker is set on the first packet of
// an event (§2.3.1). It respects the direction like WriteAudio and does
// not allocate.
//
// Locks: the transmit mutex, held across the socket write.
func (e *Endpoint) WriteEvent(payload []byte, ts uint32, marker bool) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if len(payload)+12 > sendBufSize {
		return ErrPacketTooLarge
	}
	cs := e.conf.Load()
	if cs.eventPT == 0 {
		return ErrNoEventPT
	}
	e.txMu.Lock()
	defer e.txMu.Unlock()
	if !e.Direction().CanSend() {
		e.stats.txSuppressed.Add(1)
		return nil
	}
	dst, connected := e.target()
	if !connected && !dst.IsValid() {
		return ErrNoRemote
	}
	seq := e.tx.NextSeqOnly()
	b := e.txBuf[:12+len(payload)]
	putHeader(b, marker, cs.eventPT, seq, ts, e.tx.SSRC())
	copy(b[12:], payload)
	e.noteTxLocked(0)
	return e.sendLocked(b, b[12:], dst, connected, sentEvent)
}

// Forward sends a packet received on another endpoint (or this one: Echo)
// on our stream. It rewrites p.Raw in place (SSRC, sequence number,
// timestamp, payload type: the negotiated audio PT, or the event PT for
// RFC 4733 packets) and sends it, with the Rewriter's continuity rules:
// where the forwarded source is anchored anew (its first packet, a new
// SSRC, or after packets we generated) its timestamps continue ours, moved
// on by the time nothing was sent, and the marker bit is set only when
// there was such a gap.
// The caller makes sure the audio codec matches ours (transcoding is not
// done here). While a prompt plays it returns ErrPlaying; when the
// direction forbids sending nothing is sent. It does not allocate.
//
// Locks: the transmit mutex, held across the socket write.
func (e *Endpoint) Forward(p *Packet) error {
	if e.playing.Load() {
		return ErrPlaying
	}
	if e.closed.Load() {
		return ErrClosed
	}
	cs := e.conf.Load()
	pt := cs.codec.PayloadType
	var samples uint32
	if p.IsEvent {
		if cs.eventPT == 0 {
			return ErrNoEventPT
		}
		pt = cs.eventPT
	} else {
		samples = uint32(len(p.Payload)) // G.711: one byte per sample
	}
	e.txMu.Lock()
	defer e.txMu.Unlock()
	if !e.Direction().CanSend() {
		e.tx.Skip(samples)
		e.stats.txSuppressed.Add(1)
		return nil
	}
	dst, connected := e.target()
	if !connected && !dst.IsValid() {
		return ErrNoRemote
	}
	if len(p.Raw) < 12 {
		return fmt.Errorf("forward %d-byte packet: %w", len(p.Raw), ErrCodec)
	}
	e.tx.Rewrite(p.Raw, &p.Header, samples, e.anchorLocked(&p.Header, cs.codec.ClockRate))
	SetPayloadType(p.Raw, pt)
	e.noteTxLocked(samples)
	kind := sentAudio
	if p.IsEvent {
		kind = sentEvent
	}
	return e.sendLocked(p.Raw, p.Payload, dst, connected, kind)
}

// ForwardAudio sends payload (encoded in our codec, samples long) in
// place of the audio of a packet received with header src: the transcoded
// or masked audio of a forwarded packet. Its sequence number and timestamp
// are src's mapped as Forward maps them (Rewriter.Map), so the stream
// keeps its source's timing — gaps included, such as a key press whose
// RFC 4733 packets were dropped — rather than counting packets. It sets
// the marker bit where src has it or the stream was interrupted. While a
// prompt plays it returns ErrPlaying; when the direction forbids sending
// nothing is sent. It does not allocate.
//
// Locks: the transmit mutex, held across the socket write.
func (e *Endpoint) ForwardAudio(payload []byte, samples uint32, src *rtp.Header) error {
	if e.playing.Load() {
		return ErrPlaying
	}
	if e.closed.Load() {
		return ErrClosed
	}
	if len(payload)+12 > sendBufSize {
		return ErrPacketTooLarge
	}
	codec := e.conf.Load().codec
	e.txMu.Lock()
	defer e.txMu.Unlock()
	if !e.Direction().CanSend() {
		e.tx.Skip(samples)
		e.noteTxLocked(samples)
		e.stats.txSuppressed.Add(1)
		return nil
	}
	dst, connected := e.target()
	if !connected && !dst.IsValid() {
		return ErrNoRemote
	}
	seq, ts, marker := e.tx.Map(src, samples, e.anchorLocked(src, codec.ClockRate))
	b := e.txBuf[:12+len(payload)]
	putHeader(b, marker || src.Marker, codec.PayloadType, seq, ts, e.tx.SSRC())
	copy(b[12:], payload)
	e.noteTxLocked(samples)
	return e.sendLocked(b, b[12:], dst, connected, sentAudio)
}

// anchorLocked prepares our stream for a forwarded packet with header h:
// when h's source is to be anchored anew, it moves the timestamp on over
// any gap in sending (skipSilenceLocked) and reports whether the packet
// starts a talkspurt (the marker bit). Called with txMu held.
func (e *Endpoint) anchorLocked(h *rtp.Header, rate uint32) (mark bool) {
	if e.tx.Anchored(h.SSRC) {
		return false
	}
	return e.skipSilenceLocked(rate)
}

// sentKind is what a packet sendLocked sends carries.
type sentKind uint8

const (
	sentAudio        sentKind = iota // audio in the negotiated codec
	sentEvent                        // an RFC 4733 telephone-event
	sentComfortNoise                 // RFC 3389 comfort noise
)

// errNotConnected: a polled socket's sendConnected found it no longer
// connected.
var errNotConnected = errors.New("media: socket not connected")

// sendLocked writes b to dst, or, connected, on the polled socket's
// connection (see target), and shows it to the monitor. b is an RTP
// packet whose header this package wrote or checked (RFC 3550 §5.1),
// payload its payload within b, kind what it carries. On an SRTP leg
// what goes on the wire is b protected (srtp.go); the monitor still sees
// b. Called with txMu held.
func (e *Endpoint) sendLocked(b, payload []byte, dst netip.AddrPort, connected bool, kind sentKind) error {
	var err error
	plain := b
	if e.txSRTP {
		// SRTP (srtp.go): encrypted last, into the leg's own buffer; b
		// stays plain for the monitor and other legs.
		if b, err = e.protectRTPLocked(b); err != nil {
			e.stats.txErrors.Add(1)
			return err
		}
	}
	if e.pconn != nil {
		if connected {
			// Close closes the socket holding txMu, after setting closed:
			// not closed here, the descriptor is open. Neither the
			// latch nor the polledConn is read (two cache misses).
			if e.closed.Load() {
				err = net.ErrClosed
			} else if err = sendConnected(int(e.pfd), b); err == errNotConnected {
				err = e.pconn.sendto(b, e.Remote()) // SetRemote disconnected it meanwhile
			}
		} else {
			err = e.pconn.sendto(b, dst)
		}
	} else if e.fastW != nil {
		_, err = e.fastW.WriteToUDPAddrPort(b, dst)
	} else {
		_, err = e.conn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	}
	if err != nil {
		e.stats.txErrors.Add(1)
		return fmt.Errorf("send rtp from port %d: %w", e.port, err)
	}
	e.txPackets.Add(1)
	e.txBytes.Add(uint64(len(plain)))
	if m := e.conf.Load().monitor; m != nil {
		m.Sent(e, SentPacket{Raw: plain, Payload: payload, IsEvent: kind == sentEvent, ComfortNoise: kind == sentComfortNoise})
	}
	return nil
}
