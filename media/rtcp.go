package media

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// RTCP (RFC 3550 §6) on a leg.
//
// Receiving: RTCP reaches a leg on its RTP socket when multiplexed (RFC
// 5761; the reader tells it apart by the second byte, 192-223, §4) or on
// the socket of the port above (RTP port + 1, §11). With rtp.io: poll
// (a Poller) that socket is read by the leg's poll worker along with the
// RTP socket, so a call costs no goroutine for RTCP; without one, by a
// goroutine of the leg's that sleeps between reports. Either way the datagram
// meets the leg's source rule first (rtcpSourceOK: the RTP rule, with the
// RTCP port), then a rate limit (rtcpMinGap), then pion/rtcp's parser; a
// datagram refused by any of them is counted and dropped. Accepted RTCP
// is liveness for the inactivity timeout (LastReceived).
//
// Sending: a compound packet (RFC 3550 §6.1) of a sender report while we
// have sent RTP since the last report, else a receiver report, with a
// report block about the peer's stream, and an SDES CNAME (§6.5.1); a BYE
// (§6.6) is added when the leg closes. Reports leave from the shared
// Clock's goroutine (one check per leg per tick, no timer per leg) every
// RTCPInterval × a random factor in [0.5, 1.5) (§6.2, §6.3.1).
//
// None of this runs per RTP packet, except what handleDatagram does for
// the receive figures (rxQuality): a sequence and jitter update and two
// atomic stores, without allocating.

// rtcpMinGap is the least time between two RTCP datagrams a leg parses:
// anything closer is counted in Quality.RTCPRateLimited and dropped, so a
// flood from (a spoofer of) the peer's address costs a comparison, not a
// parse. Peers send one compound packet every few seconds (RFC 3550
// §6.2: at least 5 s by default, 360 s/kbps bandwidth reduced).
const rtcpMinGap = 50 * time.Millisecond

// DefaultRTCPInterval is the mean interval between our reports (RFC 3550
// §6.2's minimum).
const DefaultRTCPInterval = 5 * time.Second

// ErrRTCP means an RTCP datagram could not be parsed.
var ErrRTCP = errors.New("media: malformed rtcp")

// rxQuality is the receive-side figures of the peer's stream: updated by
// the reader per accepted packet (seq, jit: the reader's own), published
// in two atomic words for the sender of reports and the API.
type rxQuality struct {
	seq      SeqStats
	jit      Jitter
	stale    staleWindow // the staleness bound's baseline (stale.go)
	ssrc     uint32
	have     bool
	rateSeen uint32 // the reader's copies of rate and pubB, so that
	pubBSeen uint64 // an unchanged value is not stored again
	// pubA is received<<32 | extended highest sequence; pubB is
	// base<<32 | jitter (timestamp units); pubSSRC the stream's SSRC.
	pubA, pubB atomic.Uint64
	pubSSRC    atomic.Uint32
	rate       atomic.Uint32 // the clock rate the jitter is in
}

// update counts one accepted packet; at is its arrival time in timestamp
// units (ArrivalUnits), used when timed (audio of a known clock rate
// rate; RFC 4733 events repeat their event's start timestamp and would
// read as jitter). Called by the reader only; it does not allocate or
// lock. A new SSRC starts the figures and the staleness window afresh.
func (q *rxQuality) update(ssrc uint32, seq uint16, ts uint32, rate uint32, timed bool, at uint32) {
	if !q.have || ssrc != q.ssrc {
		q.seq, q.jit, q.ssrc, q.have = SeqStats{}, Jitter{}, ssrc, true
		q.stale = staleWindow{}
		q.pubSSRC.Store(ssrc)
	}
	q.seq.Update(seq)
	if timed {
		q.jit.Update(at, ts)
		if q.rateSeen != rate {
			q.rateSeen = rate
			q.rate.Store(rate)
		}
	}
	q.pubA.Store(uint64(q.seq.Received())<<32 | uint64(q.seq.ExtendedMax()))
	if b := uint64(q.seq.Base())<<32 | uint64(q.jit.Value()); b != q.pubBSeen {
		q.pubBSeen = b
		q.pubB.Store(b)
	}
}

// snapshot returns the published figures.
func (q *rxQuality) snapshot() (ssrc, received, extMax, base, jitter, rate uint32) {
	a, b := q.pubA.Load(), q.pubB.Load()
	return q.pubSSRC.Load(), uint32(a >> 32), uint32(a), uint32(b >> 32), uint32(b), q.rate.Load()
}

// rtcpState is a leg's RTCP: configuration, what the peer reported, the
// sender's state. Set in NewEndpoint when RTCP is on, then used through
// atomics (receive side, any reader) and sendMu (the sender).
type rtcpState struct {
	conn     net.PacketConn // RTP port + 1; nil when only muxed
	polled   *polledConn    // conn when a Poller's worker reads it (with the RTP socket)
	fastW    udpAddrPortWriter
	fastR    udpAddrPortReader
	interval time.Duration
	cname    string
	ssrc     uint32 // ours, as the Rewriter's

	mux    atomic.Bool                    // RFC 5761 agreed: send on the RTP socket
	remote atomic.Pointer[netip.AddrPort] // a=rtcp (RFC 3605); nil or zero: derived

	rx, tx, malformed, rateLimited, txErrors atomic.Uint64
	srtcpDropped                             atomic.Uint64 // SRTP leg: RTCP that was not valid SRTCP
	lastNano                                 atomic.Int64  // nanotime of the last accepted
	lastUnix                                 atomic.Int64  // unix ns of the last accepted (liveness)
	bye                                      atomic.Bool

	lsr   atomic.Uint32 // middle bits of the peer's last SR's NTP time
	lsrAt atomic.Int64  // nanotime it arrived; 0 none

	peerHave    atomic.Bool
	peerFrac    atomic.Uint32
	peerLost    atomic.Int32
	peerJitter  atomic.Uint32 // timestamp units
	rttNs       atomic.Int64  // -1 unknown
	readerDone  chan struct{}
	untick      func()
	next        atomic.Int64 // unix ns (the clock's tick time) of the next report
	sendMu      sync.Mutex   // the sender's state below
	priorSSRC   uint32
	expPrior    uint32
	rxPrior     uint32
	lastTxCount uint64
}

// newRTCPState returns the RTCP state of a leg whose own SSRC is ssrc.
func newRTCPState(cfg EndpointConfig, ssrc uint32) *rtcpState {
	r := &rtcpState{conn: cfg.RTCPConn, interval: cfg.RTCPInterval, ssrc: ssrc, readerDone: make(chan struct{})}
	if r.interval <= 0 {
		r.interval = DefaultRTCPInterval
	}
	// RFC 7022 §4.2: a random CNAME per leg, unlinkable to the host.
	r.cname = fmt.Sprintf("%016x@cloak", rand.Uint64())
	r.rttNs.Store(-1)
	if r.conn != nil {
		r.fastW, _ = r.conn.(udpAddrPortWriter)
		r.fastR, _ = r.conn.(udpAddrPortReader)
		r.polled, _ = r.conn.(*polledConn)
	} else {
		close(r.readerDone)
	}
	return r
}

// SetRTCP sets how RTCP reaches the peer from (re-)negotiated SDP: mux
// when both sides agreed on rtcp-mux (RFC 5761 §5.1.1), and the address
// of the peer's a=rtcp attribute (RFC 3605), zero when absent (then RTP's
// port + 1, RFC 3550 §11). It does nothing on a leg without RTCP.
func (e *Endpoint) SetRTCP(mux bool, remote netip.AddrPort) {
	r := e.rtcp
	if r == nil {
		return
	}
	r.mux.Store(mux || r.conn == nil)
	remote = unmapAddrPort(remote)
	r.remote.Store(&remote)
}

// RTCPMux reports whether the leg sends RTCP on its RTP port.
func (e *Endpoint) RTCPMux() bool { return e.rtcp != nil && e.rtcp.mux.Load() }

// rtcpDest is where our reports go, and whether on the RTP socket.
func (e *Endpoint) rtcpDest() (netip.AddrPort, bool) {
	r := e.rtcp
	rtpDst := e.Remote()
	if r.mux.Load() {
		return rtpDst, true
	}
	if p := r.remote.Load(); p != nil && p.IsValid() {
		if p.Addr().IsUnspecified() { // a=rtcp without an address: RTP's
			return netip.AddrPortFrom(rtpDst.Addr(), p.Port()), false
		}
		return *p, false
	}
	if !rtpDst.IsValid() || rtpDst.Port() == 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(rtpDst.Addr(), rtpDst.Port()+1), false
}

// rtcpSourceOK applies the leg's source rule (SourcePolicy) to an RTCP
// datagram from from, muxed or on the RTCP port: under strict the
// address and port RTCP is expected from (RTP's source, or its port + 1,
// or the a=rtcp address), under learn the IP of RTP's source, under any
// anything.
func (e *Endpoint) rtcpSourceOK(from netip.AddrPort, muxed bool) bool {
	if e.source == SourceAny {
		return true
	}
	rtpSrc := e.Remote() // latched, else the SDP's
	if !rtpSrc.IsValid() {
		return false
	}
	if p := e.rtcp.remote.Load(); !muxed && p != nil && p.IsValid() && !p.Addr().IsUnspecified() {
		if e.source == SourceLearn {
			return from.Addr() == p.Addr() || from.Addr() == rtpSrc.Addr()
		}
		return from == *p
	}
	if from.Addr() != rtpSrc.Addr() {
		return false
	}
	if e.source == SourceLearn {
		return true
	}
	want := rtpSrc.Port()
	if !muxed {
		want++
		if p := e.rtcp.remote.Load(); p != nil && p.IsValid() {
			want = p.Port()
		}
	}
	return from.Port() == want
}

// handleRTCP takes one RTCP datagram received from from, on the RTP
// socket (muxed) or the RTCP one. It may run on the RTP reader and the
// RTCP reader at once: it touches atomics only. Any error in the
// datagram drops it whole (counted); it never panics on hostile bytes
// (FuzzParseRTCP).
func (e *Endpoint) handleRTCP(b []byte, from netip.AddrPort, muxed bool) {
	r := e.rtcp
	if r == nil {
		e.stats.pt.Add(1) // as before RTCP: a payload type we did not agree
		return
	}
	from = unmapAddrPort(from)
	if !e.rtcpSourceOK(from, muxed) {
		e.stats.unknownSource.Add(1)
		return
	}
	now := nanotime()
	if last := r.lastNano.Load(); last != 0 && now-last < int64(rtcpMinGap) {
		r.rateLimited.Add(1)
		return
	}
	r.lastNano.Store(now)
	if sr := e.srtp.Load(); sr != nil {
		var ok bool
		if b, ok = e.unprotectRTCP(sr, b); !ok {
			return // SRTCP that fails authentication: counted, dropped
		}
	}
	pkts, err := ParseRTCP(b)
	if err != nil {
		r.malformed.Add(1)
		return
	}
	wall := time.Now()
	r.lastUnix.Store(wall.UnixNano())
	arrival := NTPMiddle(NTPTime(wall))
	peerSSRC, _, _, _, _, _ := e.rxq.snapshot()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			r.lsr.Store(NTPMiddle(p.NTPTime))
			r.lsrAt.Store(now)
			e.rtcpReports(p.Reports, arrival)
		case *rtcp.ReceiverReport:
			e.rtcpReports(p.Reports, arrival)
		case *rtcp.Goodbye:
			for _, s := range p.Sources {
				if s == peerSSRC || peerSSRC == 0 {
					r.bye.Store(true)
				}
			}
		}
	}
	r.rx.Add(1) // last: who sees the count sees the figures
}

// rtcpReports takes the report blocks about our stream (RFC 3550 §6.4.1).
func (e *Endpoint) rtcpReports(blocks []rtcp.ReceptionReport, arrival uint32) {
	r := e.rtcp
	for _, rb := range blocks {
		if rb.SSRC != r.ssrc {
			continue
		}
		r.peerFrac.Store(uint32(rb.FractionLost))
		lost := int32(rb.TotalLost<<8) >> 8 // 24-bit two's complement
		r.peerLost.Store(lost)
		r.peerJitter.Store(rb.Jitter)
		if rtt, ok := RoundTrip(arrival, rb.LastSenderReport, rb.Delay); ok && rtt < time.Minute {
			r.rttNs.Store(int64(rtt))
		}
		r.peerHave.Store(true)
	}
}

// ParseRTCP parses a compound RTCP datagram (RFC 3550 §6.1) with
// pion/rtcp. Beyond pion's checks it wants version 2 and a first packet
// of a report or a BYE (RFC 3550 §6.1 wants an SR or RR first; RFC 5506
// reduced-size packets lead with others, but cloak negotiates none), and
// a datagram no larger than the read buffer. Errors wrap ErrRTCP and
// hold no byte of the datagram.
func ParseRTCP(b []byte) ([]rtcp.Packet, error) {
	if len(b) < 4 || len(b) > readBufSize {
		return nil, fmt.Errorf("rtcp datagram of %d bytes: %w", len(b), ErrRTCP)
	}
	if b[0]>>6 != 2 {
		return nil, fmt.Errorf("rtcp version %d: %w", b[0]>>6, ErrRTCP)
	}
	switch rtcp.PacketType(b[1]) {
	case rtcp.TypeSenderReport, rtcp.TypeReceiverReport, rtcp.TypeGoodbye:
	default:
		return nil, fmt.Errorf("rtcp compound starting with type %d: %w", b[1], ErrRTCP)
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("rtcp: %w", ErrRTCP)
	}
	return pkts, nil
}

// rtcpReadLoop reads the RTCP socket (RTP port + 1) until it is closed.
func (e *Endpoint) rtcpReadLoop() {
	r := e.rtcp
	defer close(r.readerDone)
	buf := make([]byte, readBufSize)
	for {
		var (
			n    int
			from netip.AddrPort
			err  error
		)
		if r.fastR != nil {
			n, from, err = r.fastR.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = r.conn.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				from = ua.AddrPort()
			}
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.closed.Load() {
				return
			}
			e.stats.readErrors.Add(1)
			time.Sleep(time.Millisecond)
			continue
		}
		e.handleRTCP(buf[:n], from, false)
	}
}

// startRTCP starts the RTCP reader and subscribes the sender to the
// clock. Called by Start. A polled RTCP socket has no reader of its own:
// the Poller registers it with the leg's RTP socket (Start), and it can
// only be read that way, so one beside an RTP socket that is not polled
// is left unread.
func (e *Endpoint) startRTCP() {
	r := e.rtcp
	if r == nil {
		return
	}
	if r.conn != nil && r.polled == nil {
		go e.rtcpReadLoop()
	}
	if e.clock != nil {
		// The first report after half an interval (RFC 3550 §6.2's
		// initial Tmin / 2, randomised).
		r.next.Store(time.Now().UnixNano() + int64(jittered(r.interval)/2))
		r.untick = e.clock.Subscribe(e.rtcpTick)
	}
}

// jittered is d × a random factor in [0.5, 1.5) (RFC 3550 §6.3.1).
func jittered(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// rtcpTick runs on the clock's goroutine every tick: when the leg's next
// report is due it sends it. One atomic load per tick otherwise.
func (e *Endpoint) rtcpTick(t time.Time) {
	r := e.rtcp
	now := t.UnixNano()
	if now < r.next.Load() || e.closed.Load() {
		return
	}
	r.next.Store(now + int64(jittered(r.interval)))
	_ = e.SendRTCP(false)
}

// SendRTCP builds and sends one compound report now (see the package's
// RTCP notes), with a BYE when bye is set. It returns ErrNoRemote when
// there is nowhere to send yet.
func (e *Endpoint) SendRTCP(bye bool) error {
	r := e.rtcp
	if r == nil {
		return nil
	}
	b, err := e.buildRTCP(bye)
	if err != nil {
		return err
	}
	if b, err = e.protectRTCP(b); err != nil { // SRTCP on an SRTP leg
		r.txErrors.Add(1)
		return err
	}
	dst, muxed := e.rtcpDest()
	if !dst.IsValid() || dst.Addr().IsUnspecified() {
		return ErrNoRemote
	}
	if muxed {
		e.txMu.Lock()
		if e.closed.Load() && !bye {
			e.txMu.Unlock()
			return ErrClosed
		}
		switch {
		case e.pconn != nil:
			err = e.pconn.sendto(b, dst)
		case e.fastW != nil:
			_, err = e.fastW.WriteToUDPAddrPort(b, dst)
		default:
			_, err = e.conn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
		}
		e.txMu.Unlock()
	} else if r.fastW != nil {
		_, err = r.fastW.WriteToUDPAddrPort(b, dst)
	} else {
		_, err = r.conn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	}
	if err != nil {
		r.txErrors.Add(1)
		return fmt.Errorf("send rtcp from port %d: %w", e.port, err)
	}
	r.tx.Add(1)
	return nil
}

// buildRTCP marshals our compound report: SR or RR, SDES CNAME, and BYE.
func (e *Endpoint) buildRTCP(bye bool) ([]byte, error) {
	r := e.rtcp
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	var blocks []rtcp.ReceptionReport
	if ssrc, received, extMax, base, jitter, _ := e.rxq.snapshot(); received > 0 {
		if ssrc != r.priorSSRC {
			r.priorSSRC, r.expPrior, r.rxPrior = ssrc, 0, 0
		}
		expected := Expected(base, extMax)
		frac := FractionLost(expected-r.expPrior, received-r.rxPrior)
		r.expPrior, r.rxPrior = expected, received
		rb := rtcp.ReceptionReport{
			SSRC:               ssrc,
			FractionLost:       frac,
			TotalLost:          uint32(CumulativeLost(expected, received)) & 0xffffff,
			LastSequenceNumber: extMax,
			Jitter:             jitter,
		}
		if at := r.lsrAt.Load(); at != 0 {
			rb.LastSenderReport = r.lsr.Load()
			rb.Delay = DLSRUnits(time.Duration(nanotime() - at))
		}
		blocks = append(blocks, rb)
	}
	var report rtcp.Packet
	txCount := e.txPackets.Load()
	if txCount != r.lastTxCount {
		r.lastTxCount = txCount
		wall := time.Now()
		report = &rtcp.SenderReport{
			SSRC:        r.ssrc,
			NTPTime:     NTPTime(wall),
			RTPTime:     e.rtpTimeNow(),
			PacketCount: uint32(txCount),
			OctetCount:  uint32(e.txBytes.Load() - 12*txCount), // payload octets (§6.4.1)
			Reports:     blocks,
		}
	} else {
		report = &rtcp.ReceiverReport{SSRC: r.ssrc, Reports: blocks}
	}
	pkts := []rtcp.Packet{report, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: r.ssrc,
		Items:  []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: r.cname}},
	}}}}
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{r.ssrc}})
	}
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		return nil, fmt.Errorf("build rtcp: %w", err)
	}
	return b, nil
}

// rtpTimeNow is our stream's RTP timestamp for the present instant (an
// SR's "RTP timestamp", RFC 3550 §6.4.1): the last packet's timestamp
// plus the time since it was sent.
func (e *Endpoint) rtpTimeNow() uint32 {
	rate := uint64(e.conf.Load().codec.ClockRate)
	e.txMu.Lock()
	defer e.txMu.Unlock()
	ts := e.tx.NextTimestamp()
	if e.lastTx == 0 || rate == 0 {
		return ts
	}
	elapsed := uint64(max(nanotime()-e.lastTx, 0))
	return ts - e.lastTxSz + uint32(elapsed*rate/uint64(time.Second))
}

// closeRTCP sends the BYE (RFC 3550 §6.6), stops the sender and closes
// the RTCP socket. Called by Close before the RTP socket closes.
func (e *Endpoint) closeRTCP(started bool) {
	r := e.rtcp
	if r == nil {
		return
	}
	if r.untick != nil {
		r.untick()
	}
	if started {
		_ = e.SendRTCP(true)
	}
	switch {
	case r.conn == nil:
	case r.polled != nil:
		if !started || e.pconn == nil { // never registered with a worker
			_ = r.polled.close()
		} // else closed by Close once the worker let go (closePolledRTCP)
	default:
		_ = r.conn.Close()
		if started {
			<-r.readerDone
		}
	}
}

// closePolledRTCP closes a polled RTCP socket after Close took the leg
// out of its poll worker, so that its descriptor is never closed (and
// reused) while the worker may still read it.
func (e *Endpoint) closePolledRTCP() {
	if r := e.rtcp; r != nil && r.polled != nil {
		_ = r.polled.close()
	}
}

// Quality is a leg's call-quality figures: the peer's stream as we
// receive it (RFC 3550 A.3, A.8), our stream as the peer reports it (its
// RR, §6.4.1), the round trip and an estimated MOS. Times are in
// milliseconds.
type Quality struct {
	// Received counts the peer's packets received; Expected those it
	// sent as the sequence numbers say; Lost the difference (negative
	// with duplicates); LossPercent Lost/Expected.
	Received    uint32  `json:"received"`
	Expected    uint32  `json:"expected"`
	Lost        int32   `json:"lost"`
	LossPercent float64 `json:"loss_pct"`
	// JitterMs is the interarrival jitter of the peer's stream.
	JitterMs float64 `json:"jitter_ms"`
	// PeerReported is true once the peer sent a report block about our
	// stream; PeerFractionLostPct, PeerLost and PeerJitterMs are its
	// figures (fraction lost over its last interval).
	PeerReported        bool    `json:"peer_reported"`
	PeerFractionLostPct float64 `json:"peer_fraction_lost_pct"`
	PeerLost            int32   `json:"peer_lost"`
	PeerJitterMs        float64 `json:"peer_jitter_ms"`
	// RTTMs is the round trip from the peer's last report block with an
	// LSR (§6.4.1); -1 until known.
	RTTMs float64 `json:"rtt_ms"`
	// MOS is the estimated listening quality of the peer's stream as we
	// receive it (G.107 E-model for G.711 with PLC: LossPercent, RTT/2 as
	// the one-way delay); 0 before any packet.
	MOS float64 `json:"mos"`
	// RTCPSent and RTCPReceived count compound packets; RTCPMalformed,
	// RTCPRateLimited those dropped. RTCPMux is true when RTCP shares the
	// RTP port. ByeReceived is set by the peer's RTCP BYE.
	RTCPSent        uint64 `json:"rtcp_sent"`
	RTCPReceived    uint64 `json:"rtcp_received"`
	RTCPMalformed   uint64 `json:"rtcp_malformed"`
	RTCPRateLimited uint64 `json:"rtcp_rate_limited"`
	RTCPMux         bool   `json:"rtcp_mux"`
	ByeReceived     bool   `json:"rtcp_bye"`
	// DroppedStale is Stats.DroppedStale: the peer's audio dropped for
	// arriving later than the staleness bound (stale.go).
	DroppedStale uint64 `json:"dropped_stale"`
	// DroppedSRTP is Stats.DroppedSRTP: SRTP datagrams that failed
	// authentication or were replayed (srtp.go); DroppedSRTCP the RTCP
	// datagrams of an SRTP leg that were not valid SRTCP (plain RTCP
	// included).
	DroppedSRTP  uint64 `json:"dropped_srtp"`
	DroppedSRTCP uint64 `json:"dropped_srtcp"`
}

// Quality returns the leg's call-quality figures now. It reads atomics
// only; the hot path is not disturbed.
func (e *Endpoint) Quality() Quality {
	_, received, extMax, base, jitter, rate := e.rxq.snapshot()
	q := Quality{Received: received, RTTMs: -1, DroppedStale: e.stats.stale.Load(), DroppedSRTP: e.stats.srtp.Load()}
	if rate == 0 {
		rate = 8000
	}
	tsMs := func(v uint32) float64 { return round2(float64(v) * 1000 / float64(rate)) }
	if received > 0 {
		q.Expected = Expected(base, extMax)
		q.Lost = CumulativeLost(q.Expected, received)
		if q.Expected > 0 && q.Lost > 0 {
			q.LossPercent = round2(float64(q.Lost) * 100 / float64(q.Expected))
		}
		q.JitterMs = tsMs(jitter)
	}
	if r := e.rtcp; r != nil {
		q.RTCPSent, q.RTCPReceived = r.tx.Load(), r.rx.Load()
		q.RTCPMalformed, q.RTCPRateLimited = r.malformed.Load(), r.rateLimited.Load()
		q.RTCPMux, q.ByeReceived = r.mux.Load(), r.bye.Load()
		q.DroppedSRTCP = r.srtcpDropped.Load()
		if r.peerHave.Load() {
			q.PeerReported = true
			q.PeerFractionLostPct = round2(float64(r.peerFrac.Load()) * 100 / 256)
			q.PeerLost = r.peerLost.Load()
			q.PeerJitterMs = tsMs(r.peerJitter.Load())
		}
		if ns := r.rttNs.Load(); ns >= 0 {
			q.RTTMs = round2(float64(ns) / float64(time.Millisecond))
		}
	}
	if received > 0 {
		oneWay := time.Duration(0)
		if q.RTTMs > 0 {
			oneWay = time.Duration(q.RTTMs * float64(time.Millisecond) / 2)
		}
		q.MOS = EstimateMOS(oneWay, q.LossPercent)
	}
	return q
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
