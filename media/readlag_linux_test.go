package media

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// TestPollerReadLag checks the sampled read lag: datagrams queued behind a
// handler that holds the worker for 40 ms show a lag of about that; the
// window resets on TakeLag, and without traffic nothing is sampled.
// polledPeer is a one-worker Poller with one PCMU leg whose remote is
// peer, a loopback socket the test sends from; cfg adds to the leg's
// config. The leg is not started.
func polledPeer(t *testing.T, cfg EndpointConfig) (p *Poller, e *Endpoint, peer *net.UDPConn, port int) {
	t.Helper()
	p, pool, _, _ := newPolledPool(t, 1, 2)
	peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	conn, port, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Conn, cfg.Port, cfg.Pool, cfg.Codec = conn, port, pool, audio.CodecPCMU()
	cfg.Remote = peer.LocalAddr().(*net.UDPAddr).AddrPort()
	return p, NewEndpoint(cfg), peer, port
}

func TestPollerReadLag(t *testing.T) {
	p, e, peer, port := polledPeer(t, EndpointConfig{})
	var stall atomic.Bool
	var got atomic.Int64
	e.SetHandler(HandlerFunc(func(_ *Endpoint, _ *Packet) {
		got.Add(1)
		if stall.Swap(false) {
			time.Sleep(40 * time.Millisecond)
		}
	}))
	e.Start()
	defer e.Close()
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(port)))
	seq := uint16(1)
	send := func(n int) {
		for range n {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 7}, Payload: make([]byte, 160)}
			seq++
			b, _ := pkt.Marshal()
			if _, err := peer.WriteToUDP(b, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitGot := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for got.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("handled %d packets, want %d", got.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Warm up: the socket is registered and stamped from now on.
	send(1)
	waitGot(1)
	time.Sleep(20 * time.Millisecond)
	_ = p.TakeLag()

	stall.Store(true)
	send(1) // holds the worker 40 ms
	time.Sleep(5 * time.Millisecond)
	send(3) // wait ~35 ms in the kernel's queue
	waitGot(5)
	if lag := p.TakeLag(); lag < 25*time.Millisecond || lag > 2*time.Second {
		t.Fatalf("read lag behind a 40 ms stall = %v, want about 35 ms", lag)
	}
	if lag := p.TakeLag(); lag != 0 {
		t.Fatalf("TakeLag did not start a new window: %v", lag)
	}
}

// TestPolledReadAllocatesNothingWithLagSampling pins that the sampling
// hook (the last-read descriptor kept per batch) does not make a batch
// allocate.
func TestPolledReadAllocatesNothingWithLagSampling(t *testing.T) {
	p, _, _, _ := newPolledPool(t, 1, 1)
	w := p.workers[0]
	buf := make([]byte, readBufSize)
	pkt := new(Packet)
	if a := testing.AllocsPerRun(100, func() { _ = w.serveAll(nil, buf, pkt, true) }); a != 0 {
		t.Fatalf("serveAll allocates %v per batch", a)
	}
}

// BenchmarkSampleLag is the cost of one read-lag sample: the ioctl and
// the wall clock read a poll worker makes at most every lagEvery.
func BenchmarkSampleLag(b *testing.B) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	enableReadStamp(fd)
	if err := unix.Sendto(fd, []byte("x"), 0, sa); err != nil {
		b.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	buf := make([]byte, 16)
	if _, _, err := recvFrom(fd, buf); err != nil {
		b.Fatal(err)
	}
	w := &pollWorker{}
	if _, ok := w.sampleLag(fd); !ok {
		b.Fatal("no receive timestamp after a read")
	}
	b.ReportAllocs()
	for b.Loop() {
		w.sampleLag(fd)
	}
}

// TestPollerLagSeesAStuckWorker: a worker held up by a Handler shows as
// lag while it is, before any datagram behind it is read and sampled.
func TestPollerLagSeesAStuckWorker(t *testing.T) {
	p, pool, _, _ := newPolledPool(t, 1, 2)
	peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	conn, port, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Codec: audio.CodecPCMU(),
		Remote: peer.LocalAddr().(*net.UDPAddr).AddrPort()})
	entered, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	e.SetHandler(HandlerFunc(func(_ *Endpoint, _ *Packet) {
		if once.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}))
	e.Start()
	defer e.Close()
	defer close(release) // before Close: Close waits for the worker
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 7}, Payload: make([]byte, 160)}
	b, _ := pkt.Marshal()
	if _, err := peer.WriteToUDP(b, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(port)))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never ran")
	}
	time.Sleep(60 * time.Millisecond)
	if lag := p.TakeLag(); lag < 50*time.Millisecond {
		t.Fatalf("lag %v with the worker held 60 ms, want at least 50 ms", lag)
	}
}

// TestPollerShedsStaleQueue checks queue-sojourn shedding (stale.go):
// voice that waited in the socket longer than the leg's staleness bound,
// behind a handler that held the worker, is dropped and counted — though
// its RTP timestamps say it is on time, so the transit baseline alone
// would pass it — while RFC 4733 events in the same queue still reach
// the handler; fresh packets after the backlog pass, and the worker stops
// shedding once it is back in time.
func TestPollerShedsStaleQueue(t *testing.T) {
	p, e, peer, port := polledPeer(t, EndpointConfig{EventPT: 101, MaxStaleness: 50 * time.Millisecond})
	var stall atomic.Bool
	var voice, events atomic.Int64
	e.SetHandler(HandlerFunc(func(_ *Endpoint, pk *Packet) {
		if pk.IsEvent {
			events.Add(1)
		} else {
			voice.Add(1)
		}
		if stall.Swap(false) {
			time.Sleep(150 * time.Millisecond)
		}
	}))
	e.Start()
	defer e.Close()
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(port)))
	seq, ts := uint16(1), uint32(160)
	send := func(n int, pt uint8) {
		t.Helper()
		for range n {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 7}, Payload: make([]byte, 160)}
			if pt == 101 {
				pkt.Payload = []byte{1, 0x0a, 0, 160} // RFC 4733: digit 1, volume 10, 160 units
			} else {
				ts += 160
			}
			seq++
			b, _ := pkt.Marshal()
			if _, err := peer.WriteToUDP(b, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor := func(what string, c *atomic.Int64, n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for c.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: handled %d, want %d", what, c.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	send(1, 0)
	waitFor("warm-up", &voice, 1)
	time.Sleep(20 * time.Millisecond)

	stall.Store(true)
	send(1, 0) // holds the worker 150 ms
	time.Sleep(5 * time.Millisecond)
	send(10, 0)  // queued ~145 ms: stale by sojourn
	send(2, 101) // an event in the same queue is never shed
	send(10, 0)
	waitFor("events", &events, 2)
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().DroppedStale < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := e.Stats().DroppedStale; got != 20 {
		t.Fatalf("dropped %d stale packets of the 20 queued, want 20 (voice handled %d)", got, voice.Load())
	}
	if v := voice.Load(); v != 2 {
		t.Fatalf("voice handled %d, want 2 (the queued 20 shed)", v)
	}
	if n := p.Stats().ShedEpisodes; n != 1 {
		t.Fatalf("shed episodes %d, want 1", n)
	}
	// Back in time: fresh voice passes and the worker stops shedding.
	for i := range 10 {
		send(1, 0)
		waitFor("fresh", &voice, int64(3+i))
		time.Sleep(12 * time.Millisecond)
	}
	if Shedding() {
		t.Fatal("still shedding after the backlog was gone")
	}
	if got := e.Stats().DroppedStale; got != 20 {
		t.Fatalf("fresh voice dropped: %d stale, want 20", got)
	}
}
