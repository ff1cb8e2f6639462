package media

import (
	"net/netip"
	"testing"

	"github.com/cloak-voip/cloak/audio"
)

// FuzzHandleDatagram feeds arbitrary datagrams to the hot path (seeded
// from real packets in testdata/fuzz/FuzzHandleDatagram): it must never
// panic, and every datagram must land in exactly one counter.
func FuzzHandleDatagram(f *testing.F) {
	f.Add(rtpPacket(0, 1, 160, 0x1234, true, make([]byte, 160)))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newMemConn(0)
		e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), EventPT: 101, Remote: sdpAddr})
		defer e.Close()
		echo := Echo()
		e.SetHandler(HandlerFunc(func(e *Endpoint, p *Packet) {
			echo.HandleRTP(e, p)
			if len(p.Payload) > len(p.Raw) || !p.From.IsValid() {
				t.Fatalf("bad packet view: payload %d raw %d from %v", len(p.Payload), len(p.Raw), p.From)
			}
		}))
		buf := append([]byte(nil), data...)
		p := new(Packet)
		e.handleDatagram(buf, sdpAddr, p) // strict: the SDP's address
		buf = append(buf[:0], data...)    // Echo rewrote it in place
		e.handleDatagram(buf, sdpAddr, p)
		buf = append(buf[:0], data...)
		e.handleDatagram(buf, netip.MustParseAddrPort("[2001:db8::1]:7000"), p)
		s := e.Stats()
		if got := s.RxPackets + s.DroppedMalformed + s.DroppedUnknownSource + s.DroppedSSRC + s.DroppedPT; got != 3 {
			t.Fatalf("3 datagrams, counters add up to %d: %+v", got, s)
		}
	})
}

// The hot path allocates nothing per packet in steady state, for plain
// packets, packets with CSRCs and a header extension, and bad datagrams,
// under every source policy, nor for packets it drops by source (an
// attacker's flood) or a learning run that never completes.
func TestHandleDatagramNoAllocs(t *testing.T) {
	ext := append(append([]byte{0x91}, rtpPacket(0, 1, 160, 7, false, nil)[1:12]...),
		0xC5, 0xC5, 0xC5, 0xC5, 0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x00, 0x00)
	ext = append(ext, make([]byte, 160)...)
	sameIP := netip.AddrPortFrom(sdpAddr.Addr(), 40002)
	for _, policy := range []SourcePolicy{SourceStrict, SourceLearn, SourceAny} {
		for _, tc := range []struct {
			name     string
			pkt      []byte
			from     netip.AddrPort
			fixedSeq bool // every packet the same sequence number: no learning run
		}{
			{"plain", rtpPacket(0, 1, 160, 7, false, make([]byte, 160)), sdpAddr, false},
			{"csrc+extension", ext, sdpAddr, false},
			{"unknown source", rtpPacket(0, 1, 160, 7, false, make([]byte, 160)), strayAdr, false},
			{"same IP other port", rtpPacket(0, 1, 160, 9, false, make([]byte, 160)), sameIP, true},
			{"bad PT", rtpPacket(77, 1, 160, 7, false, make([]byte, 160)), sdpAddr, false},
			{"malformed", []byte{0x8F, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0}, sdpAddr, false},
		} {
			c := newMemConn(0)
			e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), EventPT: 101, Remote: sdpAddr, Source: policy,
				MaxStaleness: DefaultMaxStaleness})
			e.SetHandler(Echo())
			p := new(Packet)                                                              // the reader's, reused like a worker's
			e.handleDatagram(rtpPacket(0, 0, 0, 7, false, make([]byte, 160)), sdpAddr, p) // latch
			if !e.Latched() {
				t.Fatalf("%v: did not latch to the SDP address", policy)
			}
			buf := make([]byte, len(tc.pkt))
			seq := uint16(1)
			if n := testing.AllocsPerRun(200, func() {
				copy(buf, tc.pkt)
				buf[2], buf[3] = byte(seq>>8), byte(seq)
				if !tc.fixedSeq {
					seq++
				}
				e.handleDatagram(buf, tc.from, p)
			}); n != 0 {
				t.Errorf("%v/%s: %v allocs per packet", policy, tc.name, n)
			}
			_ = e.Close()
		}
	}
}
