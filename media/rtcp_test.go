package media

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/pion/rtcp"
)

// newRTCPPair opens a leg with RTCP on a pool's port pair towards the
// far peer (RTP far, RTCP farRTCP), started, with no clock (tests call
// SendRTCP themselves).
func newRTCPPair(t *testing.T, far netip.AddrPort, mux bool) *Endpoint {
	t.Helper()
	lo, hi := freeRange(t, 4)
	pool, err := NewPortPool(loopback, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	conn, rc, port, err := pool.OpenPair()
	if err != nil {
		t.Fatal(err)
	}
	e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Remote: far, Codec: audio.CodecPCMU(),
		RTCP: true, RTCPConn: rc})
	e.SetRTCP(mux, netip.AddrPort{})
	e.Start()
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestOpenPairBindsTheOddNeighbour(t *testing.T) {
	lo, hi := freeRange(t, 3)
	pool, err := NewPortPool(loopback, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else holds lo+1: the pair at lo is skipped.
	busy, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(lo+1))))
	if err != nil {
		t.Skip("lo+1 not free")
	}
	defer busy.Close()
	conn, rc, port, err := pool.OpenPair()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer rc.Close()
	if port != lo+2 || port%2 != 0 {
		t.Fatalf("port %d, want %d (even, its neighbour free)", port, lo+2)
	}
	if got := rc.LocalAddr().(*net.UDPAddr).Port; got != port+1 {
		t.Fatalf("rtcp port %d, want %d", got, port+1)
	}
	if pool.InUse() != 1 {
		t.Fatalf("in use %d: the skipped port was not released", pool.InUse())
	}
}

// TestRTCPBothWays runs a leg against a peer that speaks RTP and RTCP
// from plain sockets, muxed and on port + 1: the leg's SR reaches the
// peer, the peer's RR (with LSR/DLSR) gives the leg a round trip, and
// the leg's own report block carries the loss the peer caused.
func TestRTCPBothWays(t *testing.T) {
	for _, mux := range []bool{false, true} {
		name := "port+1"
		if mux {
			name = "mux"
		}
		t.Run(name, func(t *testing.T) {
			farRTP := newPeer(t)
			farRTCP := farRTP
			if !mux {
				// The peer's RTCP socket must be its RTP port + 1.
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, farRTP.addr().Port()+1)))
				if err != nil {
					t.Skip("peer's port+1 busy")
				}
				t.Cleanup(func() { c.Close() })
				farRTCP = &peer{t: t, conn: c}
			}
			e := newRTCPPair(t, farRTP.addr(), mux)
			rtcpPort := e.LocalPort() + 1
			if mux {
				rtcpPort = e.LocalPort()
			}
			// The peer sends 100 packets, every 20th missing.
			ssrc := uint32(0xfeed)
			for i := range 100 {
				if i%20 == 19 && i != 99 {
					continue
				}
				farRTP.send(e.LocalPort(), rtpPacket(0, uint16(65500+i), uint32(i*160), ssrc, false, make([]byte, 160)))
			}
			waitFor(t, "rtp received", func() bool { return e.Stats().RxPackets == 96 })
			// We send RTP, so our report is an SR.
			if err := e.WriteAudio(make([]byte, 160), 160, true); err != nil {
				t.Fatal(err)
			}
			_, _ = farRTP.recv(time.Second)
			if err := e.SendRTCP(false); err != nil {
				t.Fatal(err)
			}
			b, ok := farRTCP.recv(time.Second)
			if !ok {
				t.Fatal("no RTCP from the leg")
			}
			pkts, err := rtcp.Unmarshal(b)
			if err != nil || len(pkts) != 2 {
				t.Fatalf("compound: %d packets, %v", len(pkts), err)
			}
			sr, ok := pkts[0].(*rtcp.SenderReport)
			if !ok {
				t.Fatalf("first packet %T, want an SR", pkts[0])
			}
			if sdes, ok := pkts[1].(*rtcp.SourceDescription); !ok || sdes.Chunks[0].Items[0].Type != rtcp.SDESCNAME {
				t.Fatalf("second packet %T, want SDES CNAME", pkts[1])
			}
			if len(sr.Reports) != 1 || sr.Reports[0].SSRC != ssrc || sr.Reports[0].TotalLost != 4 ||
				sr.Reports[0].LastSequenceNumber != 65500+99 || sr.Reports[0].FractionLost != 10 { // 4/100·256
				t.Fatalf("report block %+v", sr.Reports)
			}
			if sr.PacketCount != 1 || sr.OctetCount != 160 {
				t.Fatalf("SR counts %d/%d", sr.PacketCount, sr.OctetCount)
			}
			// The peer answers with an RR about our stream, 30 ms later.
			time.Sleep(30 * time.Millisecond)
			rr := &rtcp.ReceiverReport{SSRC: ssrc, Reports: []rtcp.ReceptionReport{{
				SSRC: sr.SSRC, FractionLost: 64, TotalLost: 7, Jitter: 80,
				LastSenderReport: NTPMiddle(sr.NTPTime), Delay: DLSRUnits(20 * time.Millisecond),
			}}}
			out, _ := rtcp.Marshal([]rtcp.Packet{rr})
			farRTCP.send(rtcpPort, out)
			waitFor(t, "rtcp received", func() bool { return e.Quality().RTCPReceived == 1 })
			q := e.Quality()
			if !q.PeerReported || q.PeerFractionLostPct != 25 || q.PeerLost != 7 || q.PeerJitterMs != 10 {
				t.Fatalf("peer figures %+v", q)
			}
			if q.RTTMs < 5 || q.RTTMs > 500 {
				t.Fatalf("rtt %v ms, want about 10", q.RTTMs)
			}
			if q.Received != 96 || q.Expected != 100 || q.Lost != 4 || q.LossPercent != 4 || q.MOS <= 1 || q.MOS >= EstimateMOS(0, 0) {
				t.Fatalf("receive figures %+v", q)
			}
			if q.RTCPMux != mux {
				t.Fatalf("mux %v", q.RTCPMux)
			}
			// Close sends a BYE.
			_ = e.Close()
			b, ok = farRTCP.recv(time.Second)
			if !ok {
				t.Fatal("no BYE at close")
			}
			pkts, err = rtcp.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := pkts[len(pkts)-1].(*rtcp.Goodbye); !ok {
				t.Fatalf("last packet at close %T, want BYE", pkts[len(pkts)-1])
			}
		})
	}
}

// TestRTCPHostile: RTCP from a source the leg does not accept, garbage,
// and a flood are dropped and counted; none reaches the figures or
// panics.
func TestRTCPHostile(t *testing.T) {
	c := newMemConn(64)
	e := NewEndpoint(EndpointConfig{Conn: c, Port: 40000, Codec: audio.CodecPCMU(), Remote: sdpAddr, RTCP: true})
	defer e.Close()
	p := new(Packet)
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: e.SSRC(), FractionLost: 255}}}})

	e.handleDatagram(append([]byte(nil), rr...), netip.MustParseAddrPort("203.0.113.9:7000"), p)
	if s := e.Stats(); s.DroppedUnknownSource != 1 || e.Quality().RTCPReceived != 0 {
		t.Fatalf("foreign RTCP: %+v %+v", s, e.Quality())
	}
	for _, bad := range [][]byte{
		{0x80, 200},                         // short
		{0x80, 201, 0, 40, 0, 0},            // length beyond the datagram
		{0x40, 201, 0, 1, 0, 0, 0, 0},       // version 1
		{0x80, 202, 0, 1, 0, 0, 0, 1},       // SDES first
		{0x81, 201, 0, 1, 0, 0, 0, 1},       // one block promised, none there
		{0x80, 201, 0xff, 0xff, 0, 0, 0, 1}, // huge length
	} {
		e.rtcp.lastNano.Store(0) // past the rate limit
		e.handleDatagram(append([]byte(nil), bad...), sdpAddr, p)
	}
	if q := e.Quality(); q.RTCPMalformed != 6 || q.RTCPReceived != 0 || q.PeerReported {
		t.Fatalf("malformed: %+v", q)
	}
	e.rtcp.lastNano.Store(0)
	for range 10 {
		e.handleDatagram(append([]byte(nil), rr...), sdpAddr, p)
	}
	if q := e.Quality(); q.RTCPReceived != 1 || q.RTCPRateLimited != 9 || !q.PeerReported || q.PeerFractionLostPct != 99.61 {
		t.Fatalf("flood: %+v", q)
	}
	if e.Stats().RxPackets != 0 {
		t.Fatal("RTCP counted as RTP")
	}
	// Accepted RTCP is liveness.
	if e.LastReceived().IsZero() {
		t.Fatal("RTCP did not count as liveness")
	}
}

// TestRTCPOffCountsAsPayloadType: a leg without RTCP treats it as before.
func TestRTCPOffCountsAsPayloadType(t *testing.T) {
	e, _ := newTestEndpoint(t, sdpAddr.String())
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}})
	e.handleDatagram(rr, sdpAddr, new(Packet))
	if s := e.Stats(); s.DroppedPT != 1 {
		t.Fatalf("%+v", s)
	}
}

// FuzzParseRTCP: ParseRTCP and the leg's RTCP path never panic on any
// bytes, and an accepted datagram is counted exactly once.
func FuzzParseRTCP(f *testing.F) {
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 5, Reports: []rtcp.ReceptionReport{{SSRC: 6, TotalLost: 0xffffff}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 5, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x@y"}}}}},
		&rtcp.Goodbye{Sources: []uint32{5}, Reason: "bye"}})
	f.Add(sr)
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0x80, 207, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseRTCP(data)
		c := newMemConn(0)
		e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), Remote: sdpAddr, RTCP: true})
		defer e.Close()
		e.handleRTCP(data, sdpAddr, true)
		q := e.Quality()
		if q.RTCPReceived+q.RTCPMalformed != 1 {
			t.Fatalf("one datagram, counted %d", q.RTCPReceived+q.RTCPMalformed)
		}
		_ = e.SendRTCP(true)
	})
}

// TestRTCPTickSchedule: reports leave from the shared clock's ticks, the
// first within half an interval × [0.5, 1.5), then one per interval ×
// [0.5, 1.5) (RFC 3550 §6.2, §6.3.1), and none after Close but the BYE.
func TestRTCPTickSchedule(t *testing.T) {
	c := newMemConn(64)
	clock := NewClock(0) // stopped: the test ticks it
	e := NewEndpoint(EndpointConfig{Conn: c, Port: 40000, Codec: audio.CodecPCMU(), Remote: sdpAddr,
		Clock: clock, RTCP: true, RTCPInterval: 4 * time.Second})
	e.Start()
	defer e.Close()
	if clock.Subscribers() != 1 {
		t.Fatalf("%d clock subscribers, want 1 (the leg's report check)", clock.Subscribers())
	}
	t0 := time.Now()
	clock.Tick(t0.Add(900 * time.Millisecond)) // < 4s/2·0.5: not yet
	if n := c.writes.Load(); n != 0 {
		t.Fatalf("%d reports before the first is due", n)
	}
	clock.Tick(t0.Add(3100 * time.Millisecond)) // > 4s/2·1.5: due
	if n := c.writes.Load(); n != 1 {
		t.Fatalf("%d reports when the first was due, want 1", n)
	}
	clock.Tick(t0.Add(3100*time.Millisecond + 1900*time.Millisecond)) // < 4s·0.5 later
	if n := c.writes.Load(); n != 1 {
		t.Fatalf("%d reports: the second came early", n)
	}
	clock.Tick(t0.Add(3100*time.Millisecond + 6100*time.Millisecond)) // > 4s·1.5 later
	if n := c.writes.Load(); n != 2 {
		t.Fatalf("%d reports, want 2", n)
	}
	d := <-c.out
	pkts, err := rtcp.Unmarshal(d.b)
	if err != nil || d.addr != sdpAddr {
		t.Fatalf("report to %v: %v", d.addr, err)
	}
	if _, ok := pkts[0].(*rtcp.ReceiverReport); !ok { // we sent no RTP
		t.Fatalf("first packet %T, want RR", pkts[0])
	}
	_ = e.Close()
	if clock.Subscribers() != 0 {
		t.Fatal("closed leg still subscribed to the clock")
	}
	if n := c.writes.Load(); n != 3 {
		t.Fatalf("%d writes after close, want the BYE as the third", n)
	}
}
