package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// rxState is the reader's private state of the leg; only its reader (the
// read loop goroutine or the poll worker, or a test calling
// handleDatagram instead of them) touches it. Ordered by size: with
// Endpoint.lastRx it fills one cache line.
type rxState struct {
	gen       uint64         // latchGen this state belongs to
	from      netip.AddrPort // the latched source
	ssrc      uint32
	probeSSRC uint32
	probeSeq  uint16
	latched   bool
	probing   bool // a new SSRC is on probation
}

// readLoop reads the socket until it is closed.
//
// Locks: none. It reads the socket into one buffer reused for the life of
// the leg and calls handleDatagram; errors.Is(err, net.ErrClosed) ends it.
//
// A panicking Handler does not take the process (and every other call)
// down: the panic is logged without its value, counted in
// Stats.HandlerPanics, and the loop carries on with the next datagram.
func (e *Endpoint) readLoop() {
	defer close(e.done)
	buf := make([]byte, readBufSize)
	p := new(Packet)
	for !e.serve(buf, p) {
	}
}

// serve runs the loop until the socket is closed (true) or a handler
// panics (false). The deferred recover costs once per serve, not per
// packet.
func (e *Endpoint) serve(buf []byte, p *Packet) (closed bool) {
	defer func() {
		if r := recover(); r != nil {
			e.recovered(r)
			closed = false
		}
	}()
	for {
		n, from, err := e.read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.closed.Load() {
				return true
			}
			e.stats.readErrors.Add(1)
			time.Sleep(time.Millisecond) // don't spin on a persistent error
			continue
		}
		e.handleDatagram(buf[:n], from, p)
	}
}

// recovered counts and logs a Handler's panic, recovered by the read loop
// or a poller worker.
func (e *Endpoint) recovered(r any) {
	e.stats.handlerPanics.Add(1)
	// The value may hold packet data: log its type only.
	e.log.Error().Int("port", e.port).Str("panic_type", fmt.Sprintf("%T", r)).
		Msg("rtp handler panicked; packet dropped")
}

func (e *Endpoint) read(buf []byte) (int, netip.AddrPort, error) {
	if e.fastR != nil {
		return e.fastR.ReadFromUDPAddrPort(buf)
	}
	n, addr, err := e.conn.ReadFrom(buf)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	if ua, ok := addr.(*net.UDPAddr); ok {
		return n, ua.AddrPort(), nil
	}
	ap, perr := netip.ParseAddrPort(addr.String())
	if perr != nil {
		return n, netip.AddrPort{}, nil // unknown source: zero AddrPort never latches twice
	}
	return n, ap, nil
}

// handleDatagram filters one received datagram and hands it to the
// handler in p, the reader's Packet: one per read loop or poll worker,
// reused for every datagram it reads (its Header's slices too), so the
// worker's stays in the CPU cache where one per leg would not. This is
// the hot path.
//
// The source filter comes before anything else looks at the packet: a
// datagram from a source the leg's SourcePolicy does not accept is
// counted in Stats.DroppedUnknownSource and goes no further, so no
// decoder, detector, recorder, bridge or agent (Monitor and Handler)
// sees it or any event it carries. In steady state (from the latched
// source) the filter is one comparison, as it was for plain latching.
//
// Locks: none. It reads the handler, codec, direction and latch generation
// with atomic loads and updates atomic counters; it allocates only when
// it latches a new source (once per SetRemote or learned source). The
// handler it calls may take the transmit mutex (Forward, WriteAudio).
func (e *Endpoint) handleDatagram(b []byte, from netip.AddrPort, p *Packet) {
	st := &e.rx
	if len(b) >= 2 && b[1]-192 < 32 {
		// RTCP multiplexed on the RTP port (RFC 5761 §4): second byte
		// 192-223. Off the RTP path; subject to the same source rule.
		e.handleRTCP(b, from, true)
		return
	}
	sr := e.srtp.Load()
	var hdrLen, end int
	var ok bool
	if sr == nil {
		hdrLen, end, ok = checkRTP(b)
	} else {
		// SRTP: the padding is encrypted; the header is checked now, the
		// padding once decrypted.
		hdrLen, ok = checkRTPHeader(b)
	}
	if !ok {
		e.stats.malformed.Add(1)
		return
	}
	h := &p.Header
	if _, err := h.Unmarshal(b); err != nil {
		e.stats.malformed.Add(1)
		return
	}
	if from.Addr().Is4In6() {
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	}
	if g := e.latchGen.Load(); g != st.gen {
		*st = rxState{gen: g}
		e.learn = learnState{}
		e.rxq.stale = staleWindow{} // a new remote: a new baseline
	}
	switch {
	case st.latched && from == st.from: // steady state
	case st.latched && e.source != SourceLearn, !e.mayAccept(from):
		e.stats.unknownSource.Add(1)
		return
	}
	if sr != nil {
		// A shedding worker measured this datagram's wait in the kernel
		// (p.sojourn, stale.go "Queue sojourn"): voice beyond half the bound
		// is dropped before it costs authentication and decryption, the
		// dearest work on the path, when CPU is what the relay lacks.
		if e.shedBeforeAuth(p) {
			return
		}
		// Authenticated and decrypted before any other stage sees the
		// packet or its source is latched (srtp.go).
		if b, ok = e.unprotectRTP(sr, p, b); !ok {
			return
		}
		if hdrLen, end, ok = checkRTP(b); !ok {
			e.stats.malformed.Add(1)
			return
		}
	}

	cs := e.conf.Load()
	isEvent, isCN := false, false
	switch pt := h.PayloadType; {
	case !cs.codec.IsZero() && pt == cs.codec.PayloadType:
	case cs.eventPT != 0 && pt == cs.eventPT:
		isEvent = true
	case cs.cnPT != 0 && pt == cs.cnPT:
		// RFC 3389 comfort noise from a peer in silence suppression:
		// it latches and keeps the leg alive, but is not audio for the
		// pipeline or the bridge (the other leg's filler covers it).
		isCN = true
	default:
		e.stats.pt.Add(1)
		return
	}

	switch {
	case !st.latched || from != st.from:
		if e.source == SourceLearn && from != *e.sdp.Load() {
			// A source other than the SDP's: only after a run, and
			// mid-call only once the learned source has gone quiet.
			if !e.learn.step(from, h, e.learnN) ||
				st.latched && e.now()-e.lastRx.Load() < int64(learnQuiet) {
				e.stats.unknownSource.Add(1)
				return
			}
			e.learn = learnState{}
		}
		if st.latched {
			e.stats.sourceChanges.Add(1)
		}
		st.latched, st.from, st.ssrc, st.probing = true, from, h.SSRC, false
		e.storeLatch(from, st.gen)
		if e.pconn != nil && e.source != SourceLearn {
			// Connected, the kernel keeps every other source out, which
			// would also keep a NAT's new port from being learned.
			e.pconn.connectLatched(from, st.gen, &e.latchGen, &e.connGen)
		}
	case h.SSRC != st.ssrc:
		// RFC 3550 A.1 probation: a new SSRC must show two packets in
		// sequence before it replaces the current one.
		if st.probing && h.SSRC == st.probeSSRC && h.SequenceNumber == st.probeSeq+1 {
			st.ssrc, st.probing = h.SSRC, false
			e.stats.ssrcChanges.Add(1)
		} else {
			st.probing, st.probeSSRC, st.probeSeq = true, h.SSRC, h.SequenceNumber
			e.stats.ssrc.Add(1)
			return
		}
	}

	e.stats.rxPackets.Add(1)
	e.stats.rxBytes.Add(uint64(len(b)))
	e.lastRx.Store(e.now())
	// Arrival in timestamp units, for the jitter (RFC 3550 A.8) and the
	// staleness bound (stale.go): a poll worker's batch time, else one
	// clock read per packet.
	rate := cs.codec.ClockRate
	timed := !isEvent && rate != 0
	var now int64
	var at uint32
	if timed {
		if now = p.arrival; now == 0 {
			now = nanotime()
		}
		at = ArrivalUnits(now, rate)
	}
	e.rxq.update(h.SSRC, h.SequenceNumber, h.Timestamp, rate, timed, at)
	if isCN {
		return
	}
	if timed && e.maxStale > 0 && (p.sojourn > e.shedAge() ||
		e.rxq.stale.late(Transit(at, h.Timestamp), now, rate, e.maxStale)) {
		// Stale voice (older than the bound, or than half of it in a
		// shedding worker's queue) goes nowhere: no Monitor (recorder,
		// capture, detectors), no Handler (bridge, agent).
		e.stats.stale.Add(1)
		p.shed = true
		return
	}

	if !audio.Direction(e.dir.Load()).CanReceive() {
		e.stats.direction.Add(1)
		return
	}
	if cs.handler == nil && cs.monitor == nil {
		return
	}
	p.Payload = b[hdrLen:end]
	p.Raw = b
	p.From = from
	p.IsEvent = isEvent
	p.Audio = nil
	if cs.monitor != nil {
		cs.monitor.Received(e, p) // before the handler, which may rewrite p.Raw
	}
	if cs.handler != nil {
		cs.handler.HandleRTP(e, p)
	}
}

// mayAccept reports whether the leg's SourcePolicy lets packets from
// from in at all, against the SDP address: strict wants its address and
// port, learn its address (the port is then learned), any anything. With
// no SDP address yet (late offer) strict and learn accept nothing.
func (e *Endpoint) mayAccept(from netip.AddrPort) bool {
	switch e.source {
	case SourceAny:
		return true
	case SourceLearn:
		sdp := e.sdp.Load()
		return sdp.IsValid() && sdp.Addr() == from.Addr()
	default: // SourceStrict, and any value not known: fail closed
		sdp := e.sdp.Load()
		return sdp.IsValid() && *sdp == from
	}
}

// storeLatch publishes the latched source for the send path. Kept out of
// line so the heap copy is made only when latching, not per packet.
//
//go:noinline
func (e *Endpoint) storeLatch(from netip.AddrPort, gen uint64) {
	e.latch.Store(&latchState{addr: from, gen: gen})
}
