package media

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

var (
	sdpAddr  = netip.MustParseAddrPort("192.0.2.10:30000")
	natAddr  = netip.MustParseAddrPort("198.51.100.7:41000")
	strayAdr = netip.MustParseAddrPort("203.0.113.9:5004")
)

func TestLatchingSymmetricRTP(t *testing.T) {
	e, conn := newTestEndpoint(t, sdpAddr.String())
	rec := &recorder{}
	e.SetHandler(rec)

	// Before any packet we send to the SDP address.
	if err := e.WriteAudio(make([]byte, 160), 160, true); err != nil {
		t.Fatal(err)
	}
	if d := <-conn.out; d.addr != sdpAddr {
		t.Fatalf("before latching sent to %v, want SDP address %v", d.addr, sdpAddr)
	}
	if e.Latched() {
		t.Fatal("latched before any packet")
	}

	// The first valid packet comes from behind a NAT: we latch to it.
	e.handleDatagram(rtpPacket(0, 1, 160, 0x1111, true, make([]byte, 160)), natAddr, new(Packet))
	if !e.Latched() || e.Remote() != natAddr {
		t.Fatalf("after first packet Remote() = %v latched=%v, want %v", e.Remote(), e.Latched(), natAddr)
	}
	if err := e.WriteAudio(make([]byte, 160), 160, false); err != nil {
		t.Fatal(err)
	}
	if d := <-conn.out; d.addr != natAddr {
		t.Fatalf("after latching sent to %v, want %v", d.addr, natAddr)
	}

	// Packets from anywhere else are dropped and counted, the SDP address too.
	e.handleDatagram(rtpPacket(0, 2, 320, 0x1111, false, make([]byte, 160)), strayAdr, new(Packet))
	e.handleDatagram(rtpPacket(0, 2, 320, 0x1111, false, make([]byte, 160)), sdpAddr, new(Packet))
	if s := e.Stats(); s.DroppedUnknownSource != 2 || s.RxPackets != 1 {
		t.Errorf("stats after strays = %+v; want 2 unknown-source drops and 1 packet received", s)
	}
	if rec.len() != 1 {
		t.Errorf("handler saw %d packets, want 1", rec.len())
	}

	// A re-INVITE resets the latch: the next valid source wins.
	newSDP := netip.MustParseAddrPort("192.0.2.20:32000")
	e.SetRemote(newSDP)
	if e.Latched() || e.Remote() != newSDP {
		t.Fatalf("after SetRemote Remote() = %v latched=%v", e.Remote(), e.Latched())
	}
	e.handleDatagram(rtpPacket(0, 900, 9000, 0x2222, false, make([]byte, 160)), strayAdr, new(Packet))
	if e.Remote() != strayAdr || rec.len() != 2 {
		t.Errorf("after re-latch Remote() = %v, handler saw %d", e.Remote(), rec.len())
	}
	if p := rec.pkts[1]; p.From != strayAdr || p.Header.SSRC != 0x2222 || len(p.Payload) != 160 || p.IsEvent {
		t.Errorf("delivered packet = from %v ssrc %#x payload %d event %v", p.From, p.Header.SSRC, len(p.Payload), p.IsEvent)
	}
}

func TestSSRCProbation(t *testing.T) {
	e, _ := newTestEndpoint(t, "")
	rec := &recorder{}
	e.SetHandler(rec)
	send := func(seq uint16, ssrc uint32) {
		e.handleDatagram(rtpPacket(0, seq, uint32(seq)*160, ssrc, false, make([]byte, 160)), natAddr, new(Packet))
	}
	send(10, 0xAAAA) // latches with SSRC A
	send(11, 0xAAAA)
	send(500, 0xBBBB) // a single stray: dropped
	send(12, 0xAAAA)
	if s := e.Stats(); s.DroppedSSRC != 1 || s.SSRCChanges != 0 || rec.len() != 3 {
		t.Fatalf("after one stray: %+v, delivered %d; want 1 SSRC drop, 3 delivered", s, rec.len())
	}
	send(700, 0xCCCC) // new SSRC, first packet: on probation
	send(702, 0xCCCC) // not consecutive: still on probation
	send(703, 0xCCCC) // consecutive: accepted from here
	send(704, 0xCCCC)
	send(13, 0xAAAA) // the old SSRC is now the stray
	s := e.Stats()
	if s.DroppedSSRC != 4 || s.SSRCChanges != 1 {
		t.Errorf("stats = %+v; want 4 SSRC drops and 1 change", s)
	}
	var got []uint16
	for _, p := range rec.pkts {
		got = append(got, p.Header.SequenceNumber)
	}
	want := []uint16{10, 11, 12, 703, 704}
	if len(got) != len(want) {
		t.Fatalf("delivered seqs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivered seqs %v, want %v", got, want)
		}
	}
}

func TestBadDatagramCounters(t *testing.T) {
	good := rtpPacket(0, 1, 0, 7, false, make([]byte, 160))
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name  string
		b     []byte
		check func(s Stats) bool
	}{
		{"empty", nil, func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"truncated header", good[:7], func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"version 0 (STUN-like)", mod(func(b []byte) []byte { b[0] = 0x00; return b }), func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"version 3", mod(func(b []byte) []byte { b[0] = 0xC0; return b }), func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"csrc count past end", mod(func(b []byte) []byte { b[0] = 0x8F; return b[:20] }), func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"extension length past end", mod(func(b []byte) []byte { b[0] = 0x90; b[14], b[15] = 0xFF, 0xFF; return b }), func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"padding past end", mod(func(b []byte) []byte { b[0] = 0xA0; b[len(b)-1] = 255; return b }), func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"padding zero", mod(func(b []byte) []byte { b[0] = 0xA0; b[len(b)-1] = 0; return b }), func(s Stats) bool { return s.DroppedMalformed == 1 }},
		{"unnegotiated PT 18", mod(func(b []byte) []byte { b[1] = 18; return b }), func(s Stats) bool { return s.DroppedPT == 1 }},
		{"RTCP sender report", []byte{0x80, 200, 0, 6, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0}, func(s Stats) bool { return s.DroppedPT == 1 }},
		{"valid", good, func(s Stats) bool { return s.RxPackets == 1 && s.Dropped() == 0 }},
		{"telephone-event", mod(func(b []byte) []byte { b[1] = 101; return b[:16] }), func(s Stats) bool { return s.RxPackets == 1 && s.Dropped() == 0 }},
	} {
		e, _ := newTestEndpoint(t, "")
		rec := &recorder{}
		e.SetHandler(rec)
		e.handleDatagram(tc.b, natAddr, new(Packet))
		s := e.Stats()
		if !tc.check(s) {
			t.Errorf("%s: stats %+v", tc.name, s)
		}
		if s.RxPackets == 0 && (rec.len() != 0 || e.Latched()) {
			t.Errorf("%s: a dropped datagram reached the handler or latched", tc.name)
		}
	}
}

func TestEventPacketsFlaggedAndPTChange(t *testing.T) {
	e, _ := newTestEndpoint(t, "")
	rec := &recorder{}
	e.SetHandler(rec)
	e.handleDatagram(rtpPacket(101, 1, 0, 7, true, []byte{5, 0x8a, 0, 160}), natAddr, new(Packet))
	if rec.len() != 1 || !rec.pkts[0].IsEvent {
		t.Fatal("telephone-event packet not delivered as an event")
	}
	e.SetCodec(audio.CodecPCMA(), 0) // re-INVITE: PCMA, no telephone-event
	e.handleDatagram(rtpPacket(101, 2, 0, 7, false, []byte{5, 0x8a, 0, 160}), natAddr, new(Packet))
	e.handleDatagram(rtpPacket(0, 3, 0, 7, false, make([]byte, 160)), natAddr, new(Packet))
	e.handleDatagram(rtpPacket(8, 4, 0, 7, false, make([]byte, 160)), natAddr, new(Packet))
	if s := e.Stats(); s.DroppedPT != 2 || rec.len() != 2 || rec.pkts[1].Header.PayloadType != 8 {
		t.Errorf("after SetCodec(PCMA): %+v, delivered %d", s, rec.len())
	}
}

// TestComfortNoiseReceived: with CN negotiated, a peer's RFC 3389
// packets count as received (activity for the inactivity timeout, the
// source latched) but reach no handler: they are not audio. Without CN
// negotiated they are a payload type not negotiated.
func TestComfortNoiseReceived(t *testing.T) {
	e, _ := newTestEndpoint(t, "")
	rec := &recorder{}
	e.SetHandler(rec)
	e.handleDatagram(rtpPacket(13, 1, 0, 7, false, []byte{60}), natAddr, new(Packet))
	if s := e.Stats(); s.DroppedPT != 1 || s.RxPackets != 0 {
		t.Errorf("CN not negotiated: %+v", s)
	}
	e.SetComfortNoise(13)
	e.handleDatagram(rtpPacket(13, 2, 160, 7, false, []byte{60}), natAddr, new(Packet))
	if s := e.Stats(); s.DroppedPT != 1 || s.RxPackets != 1 || rec.len() != 0 || !e.Latched() || e.LastReceived().IsZero() {
		t.Errorf("CN negotiated: stats %+v, delivered %d, latched %v, last received %v", s, rec.len(), e.Latched(), e.LastReceived())
	}
}

func TestDirectionReceiveSide(t *testing.T) {
	e, _ := newTestEndpoint(t, "")
	rec := &recorder{}
	e.SetHandler(rec)
	for i, d := range []audio.Direction{audio.SendRecv, audio.RecvOnly, audio.SendOnly, audio.Inactive} {
		e.SetDirection(d)
		e.handleDatagram(rtpPacket(0, uint16(i), 0, 7, false, make([]byte, 160)), natAddr, new(Packet))
	}
	if s := e.Stats(); rec.len() != 2 || s.DroppedDirection != 2 || s.RxPackets != 4 {
		t.Errorf("delivered %d, stats %+v; want sendrecv and recvonly delivered, sendonly and inactive held back", rec.len(), s)
	}
	if !e.LastReceived().After(time.Now().Add(-time.Minute)) {
		t.Errorf("LastReceived() = %v, want about now", e.LastReceived())
	}
}

func TestDirectionSendSide(t *testing.T) {
	e, conn := newTestEndpoint(t, sdpAddr.String())
	e.SetDirection(audio.Inactive)
	for i := 0; i < 3; i++ {
		if err := e.WriteAudio(make([]byte, 160), 160, i == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.WriteEvent([]byte{1, 0, 0, 160}, 0, true); err != nil {
		t.Fatal(err)
	}
	e.SetDirection(audio.RecvOnly)
	_ = e.WriteAudio(make([]byte, 160), 160, false)
	if n := conn.writes.Load(); n != 0 {
		t.Fatalf("inactive/recvonly endpoint sent %d packets", n)
	}
	if s := e.Stats(); s.TxSuppressed != 5 || s.TxPackets != 0 {
		t.Errorf("stats %+v; want 5 suppressed, 0 sent", s)
	}
	// Back to sendrecv: the stream's timestamp kept running while muted.
	e.SetDirection(audio.SendRecv)
	_ = e.WriteAudio(make([]byte, 160), 160, false)
	_ = e.WriteAudio(make([]byte, 160), 160, false)
	a, b := parseSent(t, (<-conn.out).b), parseSent(t, (<-conn.out).b)
	if b.seq != a.seq+1 || b.ts != a.ts+160 {
		t.Errorf("after resume: %+v then %+v", a, b)
	}
}

func TestWriteErrors(t *testing.T) {
	e, _ := newTestEndpoint(t, "")
	if err := e.WriteAudio(make([]byte, 160), 160, true); !errors.Is(err, ErrNoRemote) {
		t.Errorf("WriteAudio with no remote: %v, want ErrNoRemote", err)
	}
	if err := e.WriteAudio(make([]byte, sendBufSize-11), 160, true); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("WriteAudio too large: %v, want ErrPacketTooLarge", err)
	}
	if err := e.WriteAudio(make([]byte, sendBufSize-12), 160, true); !errors.Is(err, ErrNoRemote) {
		t.Errorf("WriteAudio of the largest packet: %v, want it past the size check (ErrNoRemote)", err)
	}
	e.SetCodec(audio.CodecPCMU(), 0)
	if err := e.WriteEvent([]byte{1, 0, 0, 0}, 0, true); !errors.Is(err, ErrNoEventPT) {
		t.Errorf("WriteEvent without telephone-event: %v, want ErrNoEventPT", err)
	}
	_ = e.Close()
	if err := e.WriteAudio(make([]byte, 160), 160, true); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteAudio after Close: %v, want ErrClosed", err)
	}
	nilConn := NewEndpoint(EndpointConfig{})
	nilConn.Start()
	if err := nilConn.Close(); err != nil {
		t.Errorf("Close of an endpoint without a socket: %v", err)
	}
}

func TestWriteEventKeepsTimestamp(t *testing.T) {
	e, conn := newTestEndpoint(t, sdpAddr.String())
	_ = e.WriteAudio(make([]byte, 160), 160, true)
	start := e.NextTimestamp()
	for i := 0; i < 3; i++ {
		if err := e.WriteEvent([]byte{5, 0x0a, 0, byte(160 * (i + 1))}, start, i == 0); err != nil {
			t.Fatal(err)
		}
	}
	audio := parseSent(t, (<-conn.out).b)
	for i := 0; i < 3; i++ {
		ev := parseSent(t, (<-conn.out).b)
		if ev.pt != 101 || ev.ts != start || ev.seq != audio.seq+uint16(i+1) || ev.marker != (i == 0) || ev.ssrc != audio.ssrc {
			t.Errorf("event packet %d = %+v (audio was %+v)", i, ev, audio)
		}
	}
}
