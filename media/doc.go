// Package media owns cloak's RTP legs: UDP sockets handed out by a port pool,
// the readers of those sockets (a few epoll workers, or one goroutine per
// leg), the shared pacing clock, the source filter (strict, learn or
// latching), prompt playback and the filler that keeps an answered leg
// from ever going silent on the wire (fill.go, "Continuous media"), over
// the codecs and directions of package audio. Each leg also speaks RTCP
// (RFC 3550 §6, rtcp.go) and keeps its call-quality figures (quality.go,
// Endpoint.Quality).
//
// # Hot path rules
//
// A leg's socket is read by exactly one reader: with a Poller (Linux, the
// default in cloak) one of a few worker goroutines waiting in epoll_wait on
// many sockets at once, otherwise a goroutine of the leg's own. The reader
// reads into a buffer it reuses, parses the fixed RTP header (RFC 3550
// §5.1) into the leg's reused rtp.Header, filters the packet (source
// first, then payload type, SSRC), drops audio older than the leg's
// staleness bound (stale.go, EndpointConfig.MaxStaleness) and hands the
// rest to the Handler installed with SetHandler. On an SRTP leg (srtp.go)
// the datagram is authenticated and decrypted in place right after the
// source filter, and what the leg sends is protected last, into the
// leg's own send buffer. Nothing on that path logs, touches the disk or allocates in
// steady state; counters are atomics and configuration the reader uses
// (handler, codec, remote, direction) is swapped atomically, so it takes no
// locks of its own. Sending (WriteAudio, WriteEvent, Forward) takes the
// leg's transmit mutex, which only serialises writers of the same outgoing
// stream.
//
// Why a poller: a goroutine per leg parked in Go's netpoller costs a
// goroutine switch and a futex wake-up for every packet, which the load
// bench measured as the largest part of the relay's CPU after the socket
// calls themselves. A worker woken by epoll serves every socket that became
// readable meanwhile (docs/PERFORMANCE.md has the figures). The workers
// park in Go's netpoller on their epoll descriptors; a worker that wakes
// while another is parked readies a keeper goroutine so that an idle
// thread keeps polling for the parked one (see pollWake), without which
// the runtime left its readiness unseen for up to 10 ms under load.
//
// # Which sources a leg accepts
//
// Every wire input is hostile: anyone who can reach a leg's UDP port can
// send it RTP. With plain latching (send to whoever speaks first) an
// attacker who beats the caller to the port takes the call's media: our
// audio goes to the attacker, and the attacker's RFC 4733 events are
// collected as the caller's digits ("RTP bleed"). So the source filter is
// the first thing a packet meets after the header check, before the
// payload type, the Monitor (recorder, capture) or the Handler (decoders,
// detectors, bridge, agent); a packet it refuses is counted in
// Stats.DroppedUnknownSource and goes no further. EndpointConfig.Source
// picks the policy (SourcePolicy):
//
//   - SourceStrict (the zero value, cloak's default): only the address and
//     port the SDP names. With no SDP address yet (a late offer, before
//     the ACK's answer reaches SetRemote) nothing is accepted, and the
//     first packets of such a call may be dropped.
//   - SourceLearn, for symmetric RTP (RFC 4961 §3) behind a NAT that keeps
//     the IP but rewrites the port: the SDP's address and port at once,
//     and another port of the SDP's IP only after a run of LearnPackets
//     (default 4) consecutive packets from it with one SSRC and each
//     sequence number one more than the last (mod 2^16); the packets of
//     the run are dropped, the one completing it is delivered and from
//     then on we send to that source. A binding that moves mid-call is
//     followed after the same run, and only once the learned source has
//     been silent for 250 ms (a moved binding leaves the old one silent;
//     a caller still talking cannot be displaced by a second stream from
//     its IP); the SDP's own address and port takes the leg back at once.
//     Each switch counts in Stats.SourceChanges.
//     A NAT that changes the IP too needs the proxy to rewrite the SDP
//     (Kamailio's fix_nated_sdp) or SourceAny.
//   - SourceAny: plain latching, as before: the first valid packet from
//     anywhere is latched to, packets from any other address are dropped.
//
// SetRemote (a re-INVITE) resets the latch and any learning run: we send
// to the new SDP address until it (or, under learn, a learned source)
// speaks.
//
// Under strict and any, a polled socket is then connected to the latched
// source (connect(2)), which spares the kernel a route lookup per
// datagram each way; the kernel drops other sources' packets itself from
// then on, before any read, so they are counted in the system's UDP
// NoPorts (netstat -su), not on the leg. SetRemote dissolves the
// association. Under learn the socket stays unconnected, or a moved NAT
// binding could never be learned; every foreign packet is then counted on
// the leg.
//
// # SSRC changes
//
// Once a source is latched, a packet carrying a different SSRC is held on
// probation in the spirit of RFC 3550 Appendix A.1: the new SSRC replaces
// the old one only after two packets with consecutive sequence numbers. A
// single stray packet is dropped and counted in Stats.DroppedSSRC; the first
// packet of a genuine new stream is dropped the same way (20 ms of audio).
package media

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with
// context, so callers test them with errors.Is.
var (
	// ErrPortsExhausted means every port of the pool is in use; the
	// caller answers the INVITE with 503 Service Unavailable.
	ErrPortsExhausted = errors.New("media: rtp ports exhausted")
	// ErrBadPortRange means NewPortPool was given an unusable range.
	ErrBadPortRange = errors.New("media: bad rtp port range")
	// ErrClosed means the endpoint was closed.
	ErrClosed = errors.New("media: endpoint closed")
	// ErrNoRemote means there is nowhere to send yet: no SDP address and
	// no latched source.
	ErrNoRemote = errors.New("media: remote address not known")
	// ErrPlaying means a prompt is being played on the endpoint, which
	// owns the outgoing stream until it ends.
	ErrPlaying = errors.New("media: prompt playing")
	// ErrNoClock means Play was called on an endpoint without a Clock.
	ErrNoClock = errors.New("media: no pacing clock")
	// ErrCodec means the codec or payload type is not one this package
	// can handle, or the packet does not match the negotiated one.
	ErrCodec = errors.New("media: unsupported codec")
	// ErrNoEventPT means telephone-event was not negotiated.
	ErrNoEventPT = errors.New("media: telephone-event not negotiated")
	// ErrPacketTooLarge means a packet the endpoint builds would not fit
	// an Ethernet MTU unfragmented (1,472 bytes of UDP payload).
	ErrPacketTooLarge = errors.New("media: packet too large")
	// ErrBadPrompt means a prompt file cannot be used.
	ErrBadPrompt = errors.New("media: bad prompt")
	// ErrSourcePolicy means a source policy name is not one of strict,
	// learn or any.
	ErrSourcePolicy = errors.New("media: unknown rtp source policy")
)
