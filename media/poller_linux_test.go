package media

import (
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// TestPolledLoopback runs the loopback tests again with every endpoint's
// socket read by a Poller instead of a goroutine per leg.
func TestPolledLoopback(t *testing.T) {
	p, err := NewPoller(2, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	testPoller = p
	defer func() { testPoller = nil; p.Close() }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Play", TestPlayOverLoopback},
		{"PlayCancelAndExclusive", TestPlayCancelAndExclusive},
		{"Echo", TestEchoOverLoopback},
		{"Inactive", TestInactiveSendsNothingOverLoopback},
		{"CloseIdempotentReturnsPort", TestCloseIdempotentReturnsPort},
		{"HandlerPanic", TestHandlerPanicKeepsLoopAlive},
		{"PlayKeepsCodec", TestPlayKeepsCodecWhenRenegotiated},
		{"Monitor", TestMonitorSeesBothDirectionsBeforeRewrite},
	} {
		t.Run(tc.name, tc.f)
	}
}

// newPolledPool returns a poller with workers workers (closed when the
// test ends) and a pool of ports free ports on loopback using it.
func newPolledPool(t *testing.T, workers, ports int) (p *Poller, pool *PortPool, lo, hi int) {
	t.Helper()
	p, err := NewPoller(workers, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	lo, hi = freeRange(t, ports)
	pool, err = NewPortPool(loopback, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	pool.SetPoller(p)
	return p, pool, lo, hi
}

// startEcho opens a port of pool and starts an endpoint on it that sends
// every packet back towards remote; it is closed when the test ends.
func startEcho(t *testing.T, pool *PortPool, remote netip.AddrPort) (*Endpoint, net.PacketConn) {
	t.Helper()
	conn, port, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Codec: audio.CodecPCMU(), Remote: remote})
	e.SetHandler(HandlerFunc(func(e *Endpoint, p *Packet) { _ = e.Forward(p) }))
	e.Start()
	t.Cleanup(func() { _ = e.Close() })
	return e, conn
}

// TestPolledSocketIsPolled checks that a pool with a poller really hands
// out polled sockets, which refuse ReadFrom (so no goroutine can read
// them behind the worker's back).
func TestPolledSocketIsPolled(t *testing.T) {
	_, pool, _, _ := newPolledPool(t, 1, 1)
	c, port, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*polledConn); !ok {
		t.Fatalf("Open with a poller returned %T", c)
	}
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort(); got != netip.AddrPortFrom(loopback, uint16(port)) {
		t.Errorf("LocalAddr = %v, want port %d", got, port)
	}
	if _, _, err := c.ReadFrom(make([]byte, 10)); err == nil {
		t.Error("ReadFrom on a polled socket succeeded")
	}
	// WriteTo works (a user of net.PacketConn can still send).
	peer := newPeer(t)
	if _, err := c.WriteTo(rtpPacket(0, 1, 0, 7, false, make([]byte, 160)), net.UDPAddrFromAddrPort(peer.addr())); err != nil {
		t.Fatal(err)
	}
	if _, ok := peer.recv(time.Second); !ok {
		t.Error("peer got nothing from WriteTo")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo([]byte{1}, net.UDPAddrFromAddrPort(peer.addr())); err == nil {
		t.Error("WriteTo after Close succeeded")
	}
	// Busy ports are skipped as with Go sockets.
	busy, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	pool.Release(port)
	if _, _, err := pool.Open(); err == nil {
		t.Error("Open of a range whose only port is busy succeeded")
	}
}

// TestPollerChurn opens, feeds and closes many endpoints on two workers
// while packets keep arriving: every close must return (the worker let
// go of the socket), every port must come back, and no packet may be
// handed to an endpoint after its Close returned.
func TestPollerChurn(t *testing.T) {
	p, pool, lo, hi := newPolledPool(t, 2, 40)
	peer := newPeer(t)
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() { // spray every port of the range
		defer sender.Done()
		pkt := rtpPacket(0, 1, 0, 7, false, make([]byte, 160))
		for {
			select {
			case <-stop:
				return
			default:
			}
			for port := lo; port <= hi; port += 2 {
				_, _ = peer.conn.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(loopback, uint16(port)))
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for round := 0; round < 10; round++ {
		var eps []*Endpoint
		var closed sync.Map
		for i := 0; i < 40; i++ {
			conn, port, err := pool.Open()
			if err != nil {
				t.Fatal(err)
			}
			e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Codec: audio.CodecPCMU(), Remote: peer.addr()})
			e.SetHandler(HandlerFunc(func(e *Endpoint, p *Packet) {
				if _, ok := closed.Load(e); ok {
					t.Errorf("packet handled after Close on port %d", e.LocalPort())
				}
				_ = e.Forward(p)
			}))
			e.Start()
			eps = append(eps, e)
		}
		// Let traffic reach the legs: at least 20 ms, and until one has
		// received a packet (a loaded machine may take longer), at most 2 s.
		time.Sleep(20 * time.Millisecond)
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			var got uint64
			for _, e := range eps {
				got += e.Stats().RxPackets
			}
			if got > 0 {
				break
			}
		}
		for _, e := range eps {
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			closed.Store(e, true)
		}
		if n := pool.InUse(); n != 0 {
			t.Fatalf("round %d: %d ports still in use after closing every endpoint", round, n)
		}
		var rx uint64
		for _, e := range eps {
			rx += e.Stats().RxPackets
		}
		if rx == 0 {
			t.Fatalf("round %d: no endpoint received anything", round)
		}
	}
	close(stop)
	sender.Wait()
	st := p.Stats()
	if st.Workers != 2 || st.Legs != 0 {
		t.Errorf("stats %+v: want 2 workers and no legs left", st)
	}
	if st.Batches == 0 || st.Served < st.Batches || st.Busy <= 0 {
		t.Errorf("stats %+v: want batches served and busy time", st)
	}
}

// TestPollerNudgesWhileOthersParked: a worker woken while another is
// parked readies the netpoll keeper (pollWake), so an idle thread goes
// back to waiting in the netpoller for the parked one's sockets.
func TestPollerNudgesWhileOthersParked(t *testing.T) {
	p, pool, _, _ := newPolledPool(t, 2, 2)
	peer := newPeer(t)
	var eps []*Endpoint
	for range 2 { // one per worker: register picks the least loaded
		e, _ := startEcho(t, pool, peer.addr())
		eps = append(eps, e)
	}
	if eps[0].pollW == eps[1].pollW {
		t.Fatal("both endpoints on one worker")
	}
	// Only the first endpoint gets packets: its worker parks and wakes
	// for each while the other stays parked.
	for i := range 20 {
		peer.send(eps[0].LocalPort(), rtpPacket(0, uint16(i), 0, 7, false, make([]byte, 160)))
		if _, ok := peer.recv(time.Second); !ok {
			t.Fatalf("packet %d not echoed", i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if st := p.Stats(); st.Nudges == 0 {
		t.Errorf("stats %+v: no nudge though a worker woke 20 times while the other was parked", st)
	}
}

// TestStartBesideSharesTheWorker: a call's second leg started beside its
// first is read by the first's worker, so the workers carry whole calls;
// placed by leg count alone, a run of two-leg calls put every first leg on
// one worker and every second leg on the other. An endpoint started beside
// nil, itself or a leg of another Poller is placed as Start places it.
func TestStartBesideSharesTheWorker(t *testing.T) {
	p, pool, _, _ := newPolledPool(t, 2, 16)
	peer := newPeer(t)
	open := func(pool *PortPool) *Endpoint {
		t.Helper()
		conn, port, err := pool.Open()
		if err != nil {
			t.Fatal(err)
		}
		e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Codec: audio.CodecPCMU(), Remote: peer.addr()})
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	perWorker := map[*pollWorker]int{}
	for call := range 4 {
		first, second := open(pool), open(pool)
		first.Start()
		second.StartBeside(first)
		if second.pollW != first.pollW {
			t.Fatalf("call %d: the second leg is on another worker than the first", call)
		}
		perWorker[first.pollW] += 2
	}
	if len(perWorker) != 2 || perWorker[p.workers[0]] != 4 || perWorker[p.workers[1]] != 4 {
		t.Errorf("legs per worker %v: want the 4 calls split 2 and 2", perWorker)
	}
	// Beside itself or nil: the least loaded worker (both carry 4 legs: the first).
	e := open(pool)
	e.StartBeside(e)
	if e.pollW != p.workers[0] {
		t.Error("an endpoint started beside itself was not placed as Start places it")
	}
	// Beside a leg of another Poller: placed on this one's.
	_, other, _, _ := newPolledPool(t, 1, 1)
	foreign := open(other)
	foreign.Start()
	x := open(pool)
	x.StartBeside(foreign)
	if x.pollW != p.workers[1] {
		t.Error("an endpoint started beside another Poller's leg was not placed on its own Poller's least loaded worker")
	}
}

// TestPollerCloseEndsGoroutines: Close stops the workers and the keeper.
func TestPollerCloseEndsGoroutines(t *testing.T) {
	// Goroutines of earlier tests may still be ending: count once the
	// number has held still for 60 ms (bounded), so one that ends later
	// does not hide one of ours.
	before := runtime.NumGoroutine()
	for start, still := time.Now(), 0; still < 3 && time.Since(start) < 2*time.Second; {
		time.Sleep(20 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == before {
			still++
		} else {
			before, still = n, 0
		}
	}
	p, err := NewPoller(3, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// The workers and the keeper start asynchronously, and goroutines of
	// earlier tests may still be ending: wait (bounded) to see them.
	for start := time.Now(); runtime.NumGoroutine() < before+4; time.Sleep(time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("%d goroutines after starting 3 workers and the keeper, %d before", runtime.NumGoroutine(), before)
		}
	}
	p.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPolledConnectsToLatchedSource: a polled socket is connected to the
// source it latched (sends go out on the cached route), the kernel then
// keeps other sources out, SetRemote (a re-INVITE) dissolves the
// association so a new source can latch, and a peer that hung up (ICMP
// port unreachable queued on the socket) costs no send error.
func TestPolledConnectsToLatchedSource(t *testing.T) {
	_, pool, _, _ := newPolledPool(t, 1, 2)
	a, b := newPeer(t), newPeer(t)
	e, conn := startEcho(t, pool, a.addr())
	port := e.LocalPort()
	pc := conn.(*polledConn)
	pkt := func(seq uint16, ssrc uint32) []byte { return rtpPacket(0, seq, 0, ssrc, false, make([]byte, 160)) }

	a.send(port, pkt(1, 7))
	if _, ok := a.recv(time.Second); !ok {
		t.Fatal("first packet not echoed to the latched source")
	}
	if p := pc.peer.Load(); p == nil || *p != a.addr() {
		t.Fatalf("socket connected to %v, want %v", p, a.addr())
	}
	if _, connected := e.target(); !connected {
		t.Fatal("sends do not take the connected path after latching")
	}
	// Echoes now go out on the connected path.
	for i := range 5 {
		a.send(port, pkt(uint16(2+i), 7))
		if _, ok := a.recv(time.Second); !ok {
			t.Fatalf("echo %d lost on the connected socket", i)
		}
	}
	// Another source: dropped by the kernel, never handed to the endpoint.
	rx := e.Stats().RxPackets
	b.send(port, pkt(1, 9))
	a.send(port, pkt(7, 7)) // sent after b's: once echoed, b's was handled or dropped
	if _, ok := a.recv(time.Second); !ok {
		t.Fatal("latched source's packet lost")
	}
	if got := e.Stats().RxPackets; got != rx+1 {
		t.Errorf("RxPackets %d -> %d: the other source's packet reached the endpoint", rx, got)
	}
	if _, ok := b.recv(50 * time.Millisecond); ok {
		t.Error("the other source got an echo")
	}

	// Re-INVITE to b: the association goes, b latches, echoes go to b.
	e.SetRemote(b.addr())
	if pc.peer.Load() != nil {
		t.Fatal("still connected after SetRemote")
	}
	if dst, connected := e.target(); connected || dst != b.addr() {
		t.Fatalf("after SetRemote sends go to %v (connected %v), want %v with its address", dst, connected, b.addr())
	}
	b.send(port, pkt(1, 9))
	if _, ok := b.recv(time.Second); !ok {
		t.Fatal("new source not latched after SetRemote")
	}
	if p := pc.peer.Load(); p == nil || *p != b.addr() {
		t.Fatalf("socket connected to %v after re-latch, want %v", p, b.addr())
	}

	// b hangs up: our sends to its closed port draw ICMP port unreachable,
	// which a connected socket reports on the next send; it is retried.
	bAddr := b.addr()
	b.conn.Close()
	txErr := e.Stats().TxErrors
	for i := range 5 {
		if err := e.WriteAudio(make([]byte, 160), 160, false); err != nil {
			t.Fatalf("send %d to a hung-up peer: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.Stats().TxErrors; got != txErr {
		t.Errorf("TxErrors %d -> %d sending to a hung-up peer at %v", txErr, got, bAddr)
	}
}

// TestPolledSendRetriesAfterPortUnreachable: on a connected socket an
// ICMP port unreachable from the peer fails the next send once
// (ECONNREFUSED, nothing sent); sendto sends again. The socket is not
// registered with a worker here, so nothing reads the error first.
func TestPolledSendRetriesAfterPortUnreachable(t *testing.T) {
	_, pool, _, _ := newPolledPool(t, 1, 1)
	conn, _, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pc := conn.(*polledConn)
	gone := newPeer(t)
	dst := gone.addr()
	var gen, connGen atomic.Uint64
	pc.connectLatched(dst, 0, &gen, &connGen)
	if p := pc.peer.Load(); p == nil || *p != dst {
		t.Fatalf("not connected to %v", dst)
	}
	if got := connGen.Load(); got != 1 {
		t.Fatalf("connection generation %d after connecting under latch generation 0, want 1", got)
	}
	gone.conn.Close()
	pkt := rtpPacket(0, 1, 0, 7, false, make([]byte, 160))
	for i := range 3 {
		if err := pc.sendto(pkt, dst); err != nil {
			t.Fatalf("send %d to a closed port: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond) // the ICMP error is queued by now
		if err := sendConnected(pc.fd, pkt); err != nil {
			t.Fatalf("connected send %d to a closed port: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Disconnected, the connected send says so (the endpoint then sends
	// with the address), and a stale generation does not connect.
	pc.disconnect(&connGen)
	if got := connGen.Load(); got != 0 {
		t.Errorf("connection generation %d after disconnect, want 0", got)
	}
	if err := sendConnected(pc.fd, pkt); err != errNotConnected {
		t.Errorf("connected send on a disconnected socket: %v, want errNotConnected", err)
	}
	gen.Store(1)
	pc.connectLatched(dst, 0, &gen, &connGen)
	if p, g := pc.peer.Load(), connGen.Load(); p != nil || g != 0 {
		t.Errorf("connected (peer %v, generation %d) under a stale latch generation", p, g)
	}
}

// TestPollerCloseThenEndpointClose: endpoints still open when the poller
// stops can be closed afterwards without hanging.
func TestPollerCloseThenEndpointClose(t *testing.T) {
	p, pool, _, _ := newPolledPool(t, 1, 1)
	conn, port, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Codec: audio.CodecPCMU()})
	e.Start()
	p.Close()
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Endpoint.Close hung after Poller.Close")
	}
	if pool.InUse() != 0 {
		t.Error("port not returned")
	}
}

// BenchmarkEchoUDPLoopbackPolled is BenchmarkEchoUDPLoopback through a
// Poller: compare the two in one run (-bench EchoUDPLoopback).
func BenchmarkEchoUDPLoopbackPolled(b *testing.B) {
	p, err := NewPoller(1, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	conn, err := openPolled(netip.AddrPortFrom(loopback, 0), p)
	if err != nil {
		b.Fatal(err)
	}
	benchEcho(b, conn)
}

// TestEpollWaitNow checks the raw, non-blocking epoll_wait the workers use:
// nothing ready returns 0 at once, a ready descriptor is reported with its
// data, and a bad descriptor is an error, not a hang or a silent 0.
func TestEpollWaitNow(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(evfd)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		t.Fatal(err)
	}
	evs := make([]unix.EpollEvent, 4)
	if n, err := epollWaitNow(epfd, evs); n != 0 || err != nil {
		t.Fatalf("nothing ready: got %d, %v; want 0, nil", n, err)
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	if _, err := unix.Write(evfd, one); err != nil {
		t.Fatal(err)
	}
	n, err := epollWaitNow(epfd, evs)
	if n != 1 || err != nil || evs[0].Fd != int32(evfd) || evs[0].Events&unix.EPOLLIN == 0 {
		t.Fatalf("eventfd ready: got %d, %v, %+v", n, err, evs[0])
	}
	if _, err := epollWaitNow(evfd, evs); err == nil { // not an epoll fd
		t.Fatal("epoll_wait on a non-epoll descriptor: no error")
	}
}
