package media

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// peer is the far end on loopback: a plain UDP socket.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c}
}

func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *peer) recv(timeout time.Duration) ([]byte, bool) {
	buf := make([]byte, 2048)
	_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

func (p *peer) send(to int, b []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(loopback, uint16(to))); err != nil {
		p.t.Fatal(err)
	}
}

// testPoller, when set, makes newLoopbackEndpoint open polled sockets.
// Only TestPolledLoopback (Linux) sets it, and media's tests do not run in
// parallel.
var testPoller *Poller

// newLoopbackEndpoint opens a port from a pool and starts an endpoint
// towards remote.
func newLoopbackEndpoint(t *testing.T, remote netip.AddrPort, codec audio.Codec, clock *Clock) (*Endpoint, *PortPool) {
	t.Helper()
	lo, hi := freeRange(t, 2)
	pool, err := NewPortPool(loopback, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	if testPoller != nil {
		pool.SetPoller(testPoller)
	}
	conn, port, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Remote: remote, Codec: codec, EventPT: 101, Clock: clock})
	e.Start()
	t.Cleanup(func() { _ = e.Close() })
	return e, pool
}

func sinePCM(n int, hz float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/8000))
	}
	return s
}

func TestPlayOverLoopback(t *testing.T) {
	for _, codec := range []audio.Codec{audio.CodecPCMU(), audio.CodecPCMA()} {
		t.Run(codec.Name, func(t *testing.T) {
			clock := NewClock(5 * time.Millisecond) // faster than real time; pacing is what counts
			clock.Start()
			defer clock.Stop()
			far := newPeer(t)
			e, _ := newLoopbackEndpoint(t, far.addr(), codec, clock)

			prompt := NewPromptPCM("sine", sinePCM(1000, 440)) // 125 ms: 7 frames, last one padded
			if prompt.Frames() != 7 || prompt.Duration() != 125*time.Millisecond {
				t.Fatalf("prompt frames %d duration %v", prompt.Frames(), prompt.Duration())
			}
			// A packet before the prompt, then a silence: the prompt must
			// continue its stream as a new talkspurt (marker, RFC 3551
			// §4.1; TestTimestampsAcrossTransitions has the case without
			// a gap, where the marker stays clear).
			if err := e.WriteAudio(make([]byte, 160), 160, true); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			if err := e.Play(context.Background(), prompt); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el < 5*5*time.Millisecond { // 7 ticks, the ticker may bunch one
				t.Errorf("7 frames played in %v: not paced by the clock", el)
			}
			first, ok := far.recv(time.Second)
			if !ok {
				t.Fatal("nothing received")
			}
			prev := parseSent(t, first)
			var payload []byte
			for i := 0; i < 7; i++ {
				b, ok := far.recv(time.Second)
				if !ok {
					t.Fatalf("received %d of 7 prompt packets", i)
				}
				h := parseSent(t, b)
				if h.seq != prev.seq+1 {
					t.Errorf("packet %d: seq %d after %d", i, h.seq, prev.seq)
				}
				if i > 0 && h.ts != prev.ts+160 {
					t.Errorf("packet %d: ts %d after %d, want step 160", i, h.ts, prev.ts)
				}
				if i == 0 && int32(h.ts-prev.ts) < 160 {
					t.Errorf("first prompt packet ts %d does not continue after %d", h.ts, prev.ts)
				}
				if h.marker != (i == 0) {
					t.Errorf("packet %d: marker %v", i, h.marker)
				}
				if h.pt != codec.PayloadType || h.ssrc != e.SSRC() || len(b) != 172 {
					t.Errorf("packet %d: pt %d ssrc %#x len %d", i, h.pt, h.ssrc, len(b))
				}
				payload = append(payload, b[12:]...)
				prev = h
			}
			got := codec.Decode(payload, nil)
			want := codec.Decode(codec.Encode(prompt.PCM(), nil), nil)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("sample %d decodes to %d, want %d", i, got[i], want[i])
				}
			}
			for i := len(want); i < len(got); i++ {
				if got[i] != 0 && got[i] != 8 { // padding is silence (A-law's quietest level is ±8)
					t.Fatalf("padding sample %d = %d, want silence", i, got[i])
				}
			}
			if _, extra := far.recv(30 * time.Millisecond); extra {
				t.Error("more packets than the prompt has frames")
			}
		})
	}
}

func TestPlayCancelAndExclusive(t *testing.T) {
	clock := NewClock(0) // never started: ticks come from the test
	far := newPeer(t)
	e, _ := newLoopbackEndpoint(t, far.addr(), audio.CodecPCMU(), clock)
	prompt := NewPromptPCM("long", make([]int16, 8000))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Play(ctx, prompt) }()
	waitFor(t, "play to subscribe", func() bool { return clock.Subscribers() == 1 })

	if err := e.WriteAudio(make([]byte, 160), 160, false); !errors.Is(err, ErrPlaying) {
		t.Errorf("WriteAudio during Play: %v, want ErrPlaying", err)
	}
	if err := e.Play(ctx, prompt); !errors.Is(err, ErrPlaying) {
		t.Errorf("second Play: %v, want ErrPlaying", err)
	}
	clock.Tick(time.Now())
	clock.Tick(time.Now())
	waitFor(t, "two packets", func() bool { return e.Stats().TxPackets == 2 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Play after cancel = %v, want context.Canceled", err)
	}
	if clock.Subscribers() != 0 {
		t.Error("Play left its clock subscription behind")
	}
	if err := e.WriteAudio(make([]byte, 160), 160, false); err != nil {
		t.Errorf("WriteAudio after Play ended: %v", err)
	}

	// Close ends a Play in progress.
	go func() { done <- e.Play(context.Background(), prompt) }()
	waitFor(t, "play to subscribe", func() bool { return clock.Subscribers() == 1 })
	_ = e.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Play when closed = %v, want ErrClosed", err)
	}

	noClock := NewEndpoint(EndpointConfig{Conn: newMemConn(0), Codec: audio.CodecPCMU()})
	defer noClock.Close()
	if err := noClock.Play(context.Background(), prompt); !errors.Is(err, ErrNoClock) {
		t.Errorf("Play without a clock = %v, want ErrNoClock", err)
	}
	if err := noClock.Play(context.Background(), nil); !errors.Is(err, ErrBadPrompt) {
		t.Errorf("Play(nil) = %v, want ErrBadPrompt", err)
	}
}

func TestEchoOverLoopback(t *testing.T) {
	far := newPeer(t)
	// The far end sends from the address its SDP names (strict source;
	// source_test.go covers latching to other sources).
	e, _ := newLoopbackEndpoint(t, far.addr(), audio.CodecPCMU(), nil)
	e.SetHandler(Echo())
	var prev sentHeader
	for i := 0; i < 10; i++ {
		payload := make([]byte, 160)
		for j := range payload {
			payload[j] = byte(i*7 + j)
		}
		far.send(e.LocalPort(), rtpPacket(0, uint16(3000+i), uint32(90000+160*i), 0xFEEDFACE, i == 0, payload))
		b, ok := far.recv(time.Second)
		if !ok {
			t.Fatalf("echo %d not received", i)
		}
		h := parseSent(t, b)
		if string(b[12:]) != string(payload) {
			t.Fatalf("echo %d payload differs", i)
		}
		if h.ssrc != e.SSRC() || h.ssrc == 0xFEEDFACE {
			t.Errorf("echo %d has ssrc %#x, want ours %#x", i, h.ssrc, e.SSRC())
		}
		if i > 0 && (h.seq != prev.seq+1 || h.ts != prev.ts+160 || h.marker) {
			t.Errorf("echo %d: %+v after %+v", i, h, prev)
		}
		if i == 0 && !h.marker {
			t.Error("first echoed packet lacks the marker bit")
		}
		prev = h
	}
	// A DTMF event is not echoed.
	far.send(e.LocalPort(), rtpPacket(101, 3010, 91600, 0xFEEDFACE, true, []byte{1, 0x0a, 0, 160}))
	if _, ok := far.recv(50 * time.Millisecond); ok {
		t.Error("telephone-event packet was echoed")
	}
	if s := e.Stats(); s.RxPackets != 11 || s.TxPackets != 10 {
		t.Errorf("stats %+v", s)
	}
}

func TestInactiveSendsNothingOverLoopback(t *testing.T) {
	clock := NewClock(2 * time.Millisecond)
	clock.Start()
	defer clock.Stop()
	far := newPeer(t)
	e, _ := newLoopbackEndpoint(t, far.addr(), audio.CodecPCMU(), clock)
	e.SetHandler(Echo())
	e.SetDirection(audio.Inactive)
	if err := e.Play(context.Background(), NewPromptPCM("p", make([]int16, 480))); err != nil {
		t.Fatal(err)
	}
	far.send(e.LocalPort(), rtpPacket(0, 1, 0, 1, false, make([]byte, 160)))
	if b, ok := far.recv(100 * time.Millisecond); ok {
		t.Fatalf("inactive endpoint sent % x", b[:12])
	}
	if s := e.Stats(); s.TxPackets != 0 || s.TxSuppressed != 3 || s.RxPackets != 1 || s.DroppedDirection != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestCloseIdempotentReturnsPort(t *testing.T) {
	far := newPeer(t)
	e, pool := newLoopbackEndpoint(t, far.addr(), audio.CodecPCMU(), nil)
	if pool.InUse() != 1 {
		t.Fatalf("InUse() = %d, want 1", pool.InUse())
	}
	port := e.LocalPort()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	select {
	case <-e.Done():
	default:
		t.Error("Done() not closed after Close")
	}
	if pool.InUse() != 0 {
		t.Errorf("InUse() after Close = %d, want 0", pool.InUse())
	}
	// The port can really be bound again: the socket is closed.
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(port))))
	if err != nil {
		t.Fatalf("port %d still bound after Close: %v", port, err)
	}
	c.Close()
	e.Start() // no effect after Close
	if err := e.WriteAudio(make([]byte, 160), 160, false); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteAudio after Close = %v", err)
	}
}

func TestHandlerPanicKeepsLoopAlive(t *testing.T) {
	far := newPeer(t)
	e, _ := newLoopbackEndpoint(t, far.addr(), audio.CodecPCMU(), nil)
	if e.LocalAddr() != netip.AddrPortFrom(loopback, uint16(e.LocalPort())) {
		t.Errorf("LocalAddr() = %v, LocalPort() = %d", e.LocalAddr(), e.LocalPort())
	}
	calls := 0
	e.SetHandler(HandlerFunc(func(e *Endpoint, p *Packet) {
		calls++
		if calls == 1 {
			panic("boom")
		}
		_ = e.Forward(p)
	}))
	far.send(e.LocalPort(), rtpPacket(0, 1, 0, 9, false, make([]byte, 160)))
	far.send(e.LocalPort(), rtpPacket(0, 2, 160, 9, false, make([]byte, 160)))
	if _, ok := far.recv(time.Second); !ok {
		t.Fatal("loop stopped after a handler panic")
	}
	if s := e.Stats(); s.HandlerPanics != 1 || s.RxPackets != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestPlayKeepsCodecWhenRenegotiated(t *testing.T) {
	clock := NewClock(0)
	far := newPeer(t)
	e, _ := newLoopbackEndpoint(t, far.addr(), audio.CodecPCMU(), clock)
	done := make(chan error, 1)
	go func() { done <- e.Play(context.Background(), NewPromptPCM("p", make([]int16, 320))) }()
	waitFor(t, "play to subscribe", func() bool { return clock.Subscribers() == 1 })
	e.SetCodec(audio.CodecPCMA(), 0)
	clock.Tick(time.Now())
	clock.Tick(time.Now())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		b, ok := far.recv(time.Second)
		if !ok {
			t.Fatalf("packet %d missing", i)
		}
		if h := parseSent(t, b); h.pt != 0 || b[12] != 0xFF {
			t.Errorf("packet %d: pt %d first byte %#x; want the PCMU the prompt started in", i, h.pt, b[12])
		}
	}
}
