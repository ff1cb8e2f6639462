package media

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/pion/rtcp"
)

// TestRTCPPortPlusOnePolled: with a Poller the RTCP socket of RTP's port
// + 1 is read by the leg's poll worker, not by a goroutine of the leg's:
// the peer's report arrives, Close sends the BYE, takes the socket out
// of the worker and closes it.
func TestRTCPPortPlusOnePolled(t *testing.T) {
	p, pool, _, _ := newPolledPool(t, 1, 4)
	farRTP := newPeer(t)
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, farRTP.addr().Port()+1)))
	if err != nil {
		t.Skip("peer's port+1 busy")
	}
	t.Cleanup(func() { c.Close() })
	farRTCP := &peer{t: t, conn: c}

	conn, rc, port, err := pool.OpenPair()
	if err != nil {
		t.Fatal(err)
	}
	prc, ok := rc.(*polledConn)
	if !ok {
		t.Fatalf("rtcp socket %T, want a polled one", rc)
	}
	e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Remote: farRTP.addr(), Codec: audio.CodecPCMU(),
		RTCP: true, RTCPConn: rc})
	e.SetRTCP(false, netip.AddrPort{})
	before := runtime.NumGoroutine()
	e.Start()
	t.Cleanup(func() { _ = e.Close() })
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines %d -> %d: the leg started a reader", before, n)
	}

	farRTP.send(port, rtpPacket(0, 1, 160, 0xfeed, false, make([]byte, 160)))
	waitFor(t, "rtp received", func() bool { return e.Stats().RxPackets == 1 })
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0xfeed, Reports: []rtcp.ReceptionReport{{
		SSRC: e.rtcp.ssrc, FractionLost: 64, TotalLost: 7, Jitter: 80}}}})
	farRTCP.send(port+1, rr)
	waitFor(t, "rtcp received by the worker", func() bool { return e.Quality().RTCPReceived == 1 })
	if q := e.Quality(); !q.PeerReported || q.PeerLost != 7 {
		t.Fatalf("peer figures %+v", q)
	}
	// From another port of the peer's IP: strict refuses it.
	farRTP.send(port+1, rr)
	waitFor(t, "foreign rtcp counted", func() bool { return e.Stats().DroppedUnknownSource == 1 })

	_ = e.Close()
	b, ok := farRTCP.recv(time.Second)
	if !ok {
		t.Fatal("no BYE at close")
	}
	if pkts, err := rtcp.Unmarshal(b); err != nil {
		t.Fatal(err)
	} else if _, ok := pkts[len(pkts)-1].(*rtcp.Goodbye); !ok {
		t.Fatalf("last packet at close %T, want BYE", pkts[len(pkts)-1])
	}
	if !prc.closed {
		t.Fatal("rtcp socket not closed")
	}
	for _, w := range p.workers {
		for fd, x := range w.rtcpEps {
			if x == e {
				t.Fatalf("worker still holds the closed leg's rtcp descriptor %d", fd)
			}
		}
	}
}
