package media

import "sync/atomic"

// Stats is a snapshot of an endpoint's counters.
type Stats struct {
	// RxPackets and RxBytes count accepted packets (whole datagrams).
	RxPackets, RxBytes uint64
	// TxPackets and TxBytes count packets sent.
	TxPackets, TxBytes uint64
	// TxSuppressed counts packets not sent because the direction forbids
	// sending (hold, inactive).
	TxSuppressed uint64
	// TxErrors counts failed socket writes.
	TxErrors uint64
	// TxFill counts filler packets sent (comfort noise or G.711 noise
	// while nothing else was sent; see StartFill); they are in TxPackets
	// too.
	TxFill uint64
	// DroppedMalformed counts datagrams that are not valid RTP: too short,
	// version != 2, CSRC list, header extension or padding overrunning
	// the datagram (RFC 3550 §5.1).
	DroppedMalformed uint64
	// DroppedUnknownSource counts packets from a source the leg's
	// SourcePolicy does not accept: not the SDP's address (strict), not
	// its IP or not yet learned (learn; the packets of a learning run are
	// counted here), or not the latched source. A polled socket (rtp.io:
	// poll) under strict or any is connected to the latched source, so
	// from then on the kernel drops other sources' packets before they
	// are counted here (netstat's UDP NoPorts counts them).
	DroppedUnknownSource uint64
	// SourceChanges counts sources learned mid-call (SourceLearn: a NAT
	// binding that moved), replacing the one latched before.
	SourceChanges uint64
	// DroppedSSRC counts packets with an unexpected SSRC still on
	// probation (see the package doc).
	DroppedSSRC uint64
	// DroppedPT counts packets of a payload type not negotiated.
	DroppedPT uint64
	// DroppedDirection counts accepted packets not delivered because the
	// direction forbids receiving.
	DroppedDirection uint64
	// SSRCChanges counts accepted changes of the peer's SSRC.
	SSRCChanges uint64
	// DroppedStale counts audio packets dropped for being older than
	// EndpointConfig.MaxStaleness when read (stale.go); they are in
	// RxPackets too, as DroppedDirection's are.
	DroppedStale uint64
	// DroppedSRTP counts RTP datagrams of an SRTP leg (RFC 3711) dropped
	// before anything saw them: failed authentication, replayed, too
	// short, or received before the peer's key was known. None is
	// forwarded or latched to. (RTCP's: Quality.DroppedSRTCP.)
	DroppedSRTP uint64
	// ReadErrors counts socket read errors other than closing.
	ReadErrors uint64
	// HandlerPanics counts packets whose Handler panicked.
	HandlerPanics uint64
}

// Dropped returns the total of the Dropped* counters.
func (s Stats) Dropped() uint64 {
	return s.DroppedMalformed + s.DroppedUnknownSource + s.DroppedSSRC + s.DroppedPT + s.DroppedDirection + s.DroppedStale + s.DroppedSRTP
}

// counters are the receive side's and the rare ones; the transmit side's
// per-packet counters sit with its lock (Endpoint.txPackets), so the two
// directions, served by different workers, do not share a cache line.
type counters struct {
	rxPackets, rxBytes       atomic.Uint64
	txSuppressed, txErrors   atomic.Uint64
	malformed, unknownSource atomic.Uint64
	ssrc, pt, direction      atomic.Uint64
	ssrcChanges, readErrors  atomic.Uint64
	handlerPanics            atomic.Uint64
	sourceChanges            atomic.Uint64
	txFill                   atomic.Uint64
	stale                    atomic.Uint64
	srtp                     atomic.Uint64 // SRTP/SRTCP datagrams dropped
}

// Stats returns a snapshot of the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	c := &e.stats
	return Stats{
		RxPackets:            c.rxPackets.Load(),
		RxBytes:              c.rxBytes.Load(),
		TxPackets:            e.txPackets.Load(),
		TxBytes:              e.txBytes.Load(),
		TxSuppressed:         c.txSuppressed.Load(),
		TxErrors:             c.txErrors.Load(),
		TxFill:               c.txFill.Load(),
		DroppedMalformed:     c.malformed.Load(),
		DroppedUnknownSource: c.unknownSource.Load(),
		DroppedSSRC:          c.ssrc.Load(),
		DroppedPT:            c.pt.Load(),
		DroppedDirection:     c.direction.Load(),
		DroppedStale:         c.stale.Load(),
		DroppedSRTP:          c.srtp.Load(),
		SSRCChanges:          c.ssrcChanges.Load(),
		SourceChanges:        c.sourceChanges.Load(),
		ReadErrors:           c.readErrors.Load(),
		HandlerPanics:        c.handlerPanics.Load(),
	}
}
