package capture

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHEPRoundTrip(t *testing.T) {
	invite := sipMsg("INVITE sip:queue@192.0.2.1 SIP/2.0", "UDP", "rt@192.0.2.10", "1 INVITE", inviteSDP)
	for _, p := range []HEPPacket{
		{Family: HEPFamilyIPv4, Proto: ProtoUDP, Src: trunk, Dst: cloakUA, Time: t0.Add(123456 * time.Microsecond),
			ProtoType: HEPProtoSIP, AgentID: 2001, CorrelationID: "rt@192.0.2.10", Payload: invite},
		{Family: HEPFamilyIPv6, Proto: ProtoTCP, Src: trunk6, Dst: cloak6, Time: t0,
			ProtoType: HEPProtoSIP, AgentID: 7, AuthKey: "homer-key", CorrelationID: "v6@2001:db8::10", Payload: []byte("OPTIONS")},
		{Family: HEPFamilyIPv4, Proto: ProtoUDP, Src: trunk, Dst: cloakUA, Time: t0, ProtoType: HEPProtoSIP, Payload: []byte{}},
	} {
		b, err := AppendHEP(nil, &p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeHEP(b)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, hex.Dump(b))
		}
		if !got.Time.Equal(p.Time) {
			t.Errorf("time %v, want %v", got.Time, p.Time)
		}
		got.Time, p.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, p)
		}
	}
}

// TestHEPEncodingBytes pins the wire format against a packet spelled out
// chunk by chunk from the HEPv3 specification.
func TestHEPEncodingBytes(t *testing.T) {
	p := HEPPacket{Proto: ProtoUDP, Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5080"),
		Time: time.Unix(1700000000, 250000*1000), ProtoType: HEPProtoSIP, AgentID: 99, AuthKey: "k", CorrelationID: "c1", Payload: []byte("SIP")}
	want := "48455033" + "0075" + // "HEP3", total length 117
		"0000" + "0001" + "0007" + "02" + // IPv4
		"0000" + "0002" + "0007" + "11" + // UDP
		"0000" + "0003" + "000a" + "0a000001" +
		"0000" + "0004" + "000a" + "0a000002" +
		"0000" + "0007" + "0008" + "13c4" + // 5060
		"0000" + "0008" + "0008" + "13d8" + // 5080
		"0000" + "0009" + "000a" + "6553f100" + // 1700000000
		"0000" + "000a" + "000a" + "0003d090" + // 250000 µs
		"0000" + "000b" + "0007" + "01" + // SIP
		"0000" + "000c" + "000a" + "00000063" + // agent 99
		"0000" + "000e" + "0007" + "6b" + // "k"
		"0000" + "000f" + "0009" + "534950" + // "SIP"
		"0000" + "0011" + "0008" + "6331" // "c1"
	b, err := AppendHEP(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 117 {
		t.Errorf("encoded %d bytes, header says 117", len(b))
	}
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding:\n got %s\nwant %s", got, want)
	}
}

func TestDecodeHEPSkipsUnknownAndVendorChunks(t *testing.T) {
	p := HEPPacket{Proto: ProtoUDP, Src: trunk, Dst: cloakUA, Time: t0, ProtoType: HEPProtoSIP, Payload: []byte("SIP/2.0 200 OK\r\n\r\n")}
	b, err := AppendHEP(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	// A vendor chunk that would be a bad IP family if read as generic, and
	// an unknown generic chunk type.
	b = append(b, 0x00, 0x01, 0x00, 0x01, 0x00, 0x08, 0xde, 0xad)
	b = append(b, 0x00, 0x00, 0x00, 0x20, 0x00, 0x07, 0x42)
	b[4], b[5] = byte(len(b)>>8), byte(len(b))
	got, err := DecodeHEP(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Family != HEPFamilyIPv4 || !bytes.Equal(got.Payload, p.Payload) {
		t.Fatalf("decoded %+v", got)
	}
	// Trailing bytes after the total length are not part of the packet.
	if _, err := DecodeHEP(append(b, 0xff, 0xff, 0xff)); err != nil {
		t.Fatalf("trailing bytes: %v", err)
	}
}

func TestDecodeHEPDoesNotAlias(t *testing.T) {
	p := HEPPacket{Proto: ProtoUDP, Src: trunk, Dst: cloakUA, Time: t0, Payload: []byte("abc")}
	b, _ := AppendHEP(nil, &p)
	got, err := DecodeHEP(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if string(got.Payload) != "abc" {
		t.Fatalf("payload aliases input: %q", got.Payload)
	}
}

func TestDecodeHEPMalformed(t *testing.T) {
	good, err := AppendHEP(nil, &HEPPacket{Proto: ProtoUDP, Src: trunk, Dst: cloakUA, Time: t0, ProtoType: 1, Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	// chunk returns a valid packet with one extra generic chunk.
	chunk := func(typ uint16, v ...byte) []byte {
		return mod(func(b []byte) []byte {
			b = appendChunk(b, typ, v)
			b[4], b[5] = byte(len(b)>>8), byte(len(b))
			return b
		})
	}
	// without returns a valid packet minus the chunk of type typ.
	without := func(typ uint16) []byte {
		out := append([]byte(nil), good[:hepHeaderLen]...)
		for rest := good[hepHeaderLen:]; len(rest) > 0; {
			cl := int(rest[4])<<8 | int(rest[5])
			if int(rest[2])<<8|int(rest[3]) != int(typ) {
				out = append(out, rest[:cl]...)
			}
			rest = rest[cl:]
		}
		out[4], out[5] = byte(len(out)>>8), byte(len(out))
		return out
	}
	cases := map[string][]byte{
		"empty":              nil,
		"short header":       []byte("HEP3\x00"),
		"bad magic":          mod(func(b []byte) []byte { b[3] = '2'; return b }),
		"HEPv2":              {0x02, 0x10, 0x02, 0x11, 0x13, 0xc4, 0x13, 0xc4},
		"total below header": mod(func(b []byte) []byte { b[4], b[5] = 0, 5; return b }),
		"total beyond input": mod(func(b []byte) []byte { return b[:len(b)-1] }),
		"truncated chunk header": mod(func(b []byte) []byte {
			b = append(b, 0, 0, 0)
			b[4], b[5] = byte(len(b)>>8), byte(len(b))
			return b
		}),
		"chunk longer than packet":  mod(func(b []byte) []byte { b[hepHeaderLen+5] = 0xff; return b }),
		"family of two bytes":       chunk(hepChunkIPFamily, 2, 2),
		"port of one byte":          chunk(hepChunkSrcPort, 1),
		"IPv4 address of 16 bytes":  chunk(hepChunkIPv4Src, make([]byte, 16)...),
		"unknown family":            chunk(hepChunkIPFamily, 99),
		"IPv6 family, IPv4 addrs":   chunk(hepChunkIPFamily, HEPFamilyIPv6),
		"no family":                 without(hepChunkIPFamily),
		"no source":                 without(hepChunkIPv4Src),
		"no payload":                without(hepChunkPayload),
		"microseconds out of range": chunk(hepChunkTimeUsec, 0x00, 0x0f, 0x42, 0x40),
	}
	// A chunk whose length field says 5.
	short := mod(func(b []byte) []byte {
		b = append(b, 0, 0, 0, 0x20, 0, 5)
		b[4], b[5] = byte(len(b)>>8), byte(len(b))
		return b
	})
	cases["chunk length below header"] = short
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeHEP(in)
			if !errors.Is(err, ErrMalformedHEP) {
				t.Fatalf("err %v, want ErrMalformedHEP", err)
			}
		})
	}
}

func TestAppendHEPTooLarge(t *testing.T) {
	_, err := AppendHEP(nil, &HEPPacket{Src: trunk, Dst: cloakUA, Payload: make([]byte, 65535)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
}

func TestAppendHEPDoesNotAllocate(t *testing.T) {
	p := HEPPacket{Proto: ProtoUDP, Src: trunk, Dst: cloakUA, Time: t0, ProtoType: 1, CorrelationID: "c@h", Payload: make([]byte, 800)}
	buf := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(1000, func() {
		buf, _ = appendHEP(buf[:0], p.Src, p.Dst, p.Proto, p.Time, p.ProtoType, p.AgentID, p.AuthKey, sipCallID(p.Payload), p.Payload)
	}); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
}

func FuzzDecodeHEP(f *testing.F) {
	seed, _ := AppendHEP(nil, &HEPPacket{Proto: ProtoUDP, Src: trunk, Dst: cloakUA, Time: t0, ProtoType: 1, AgentID: 1,
		AuthKey: "k", CorrelationID: "c@h", Payload: sipMsg("BYE sip:a@b SIP/2.0", "UDP", "c@h", "2 BYE", "")})
	seed6, _ := AppendHEP(nil, &HEPPacket{Proto: ProtoTCP, Src: trunk6, Dst: cloak6, Time: t0, Payload: []byte("x")})
	f.Add(seed)
	f.Add(seed6)
	f.Add([]byte("HEP3\x00\x06"))
	f.Add([]byte("HEP3\x00\x0c\x00\x00\x00\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeHEP(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedHEP) {
				t.Fatalf("error %v does not wrap ErrMalformedHEP", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same packet.
		b2, err := AppendHEP(nil, &p)
		if errors.Is(err, ErrTooLarge) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p2, err := DecodeHEP(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if p2.Src != p.Src || p2.Dst != p.Dst || p2.Proto != p.Proto || !p2.Time.Equal(p.Time) ||
			p2.AgentID != p.AgentID || p2.AuthKey != p.AuthKey || p2.CorrelationID != p.CorrelationID ||
			!bytes.Equal(p2.Payload, p.Payload) || p2.ProtoType != p.ProtoType {
			t.Fatalf("re-encode changed the packet:\n%+v\n%+v", p, p2)
		}
	})
}

func TestSIPCallID(t *testing.T) {
	for name, tc := range map[string]struct{ msg, want string }{
		"canonical":    {"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nCall-ID: abc@host\r\n\r\n", "abc@host"},
		"lower case":   {"SIP/2.0 200 OK\r\ncall-id:  spaced@host \r\n\r\n", "spaced@host"},
		"compact form": {"BYE sip:a@b SIP/2.0\r\ni: short@host\r\n\r\n", "short@host"},
		"space before": {"BYE sip:a@b SIP/2.0\r\nCall-ID : sp@host\r\n\r\n", "sp@host"},
		"LF only":      {"BYE sip:a@b SIP/2.0\nCall-ID: lf@host\n\n", "lf@host"},
		"missing":      {"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", ""},
		"only in body": {"MESSAGE sip:a@b SIP/2.0\r\nVia: x\r\n\r\nCall-ID: body@host\r\n", ""},
		"not SIP":      {"\x80\x00\x01", ""},
		"Call-Info":    {"INVITE sip:a@b SIP/2.0\r\nCall-Info: <x>\r\nCall-ID: id@h\r\n\r\n", "id@h"},
	} {
		if got := string(sipCallID([]byte(tc.msg))); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

// collector is a HEP collector on loopback.
func collector(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHEPSenderToCollector(t *testing.T) {
	col := collector(t)
	s, err := NewHEPSender(col.LocalAddr().String(), HEPOptions{AgentID: 42, AuthKey: "secret-key"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []sample{
		{trunk, cloakUA, ProtoUDP, sipMsg("INVITE sip:queue@192.0.2.1 SIP/2.0", "UDP", "hep-call@192.0.2.10", "1 INVITE", inviteSDP)},
		{cloakUA, trunk, ProtoUDP, sipMsg("SIP/2.0 200 OK", "UDP", "hep-call@192.0.2.10", "1 INVITE", inviteSDP)},
		{trunk6, cloak6, ProtoTCP, sipMsg("BYE sip:queue@[2001:db8::1] SIP/2.0", "TCP", "hep-six@2001:db8::10", "2 BYE", "")},
	}
	for i, m := range msgs {
		if err := s.WritePacket(t0.Add(time.Duration(i)*time.Second), m.src, m.dst, m.proto, m.payload); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 65536)
	for i, m := range msgs {
		_ = col.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := col.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("collector read %d: %v", i, err)
		}
		p, err := DecodeHEP(buf[:n])
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		wantFamily := uint8(HEPFamilyIPv4)
		if m.src.Addr().Is6() {
			wantFamily = HEPFamilyIPv6
		}
		if p.Src != m.src || p.Dst != m.dst || p.Proto != m.proto || p.Family != wantFamily {
			t.Errorf("datagram %d: %v %v→%v family %d", i, p.Proto, p.Src, p.Dst, p.Family)
		}
		if !bytes.Equal(p.Payload, m.payload) || p.ProtoType != HEPProtoSIP || p.AgentID != 42 || p.AuthKey != "secret-key" {
			t.Errorf("datagram %d: %+v", i, p)
		}
		if want := string(sipCallID(m.payload)); p.CorrelationID != want || !strings.HasPrefix(want, "hep-") {
			t.Errorf("datagram %d: correlation id %q, want %q", i, p.CorrelationID, want)
		}
		if want := t0.Add(time.Duration(i) * time.Second); !p.Time.Equal(want) {
			t.Errorf("datagram %d: time %v, want %v", i, p.Time, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != 3 || st.Dropped != 0 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := s.WritePacket(t0, trunk, cloakUA, ProtoUDP, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestHEPSenderCollectorDown(t *testing.T) {
	// A port nobody listens on: sends fail (ICMP port unreachable on
	// loopback) or vanish; either way the caller never blocks or sees it.
	col := collector(t)
	addr := col.LocalAddr().String()
	col.Close()
	s, err := NewHEPSender(addr, HEPOptions{QueueLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	msg := sipMsg("OPTIONS sip:a@b SIP/2.0", "UDP", "down@h", "1 OPTIONS", "")
	for range 100 {
		if err := s.WritePacket(t0, trunk, cloakUA, ProtoUDP, msg); err != nil && !errors.Is(err, ErrQueueFull) {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written+st.Dropped+st.Errors != 100 {
		t.Fatalf("stats %+v do not add up to 100", st)
	}
}

func TestNewHEPSenderBadAddress(t *testing.T) {
	if _, err := NewHEPSender("not an address", HEPOptions{}); err == nil {
		t.Fatal("want an error")
	}
}

func TestHEPSenderWritePacketDoesNotAllocate(t *testing.T) {
	col := collector(t)
	s, err := NewHEPSender(col.LocalAddr().String(), HEPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := sipMsg("INVITE sip:queue@192.0.2.1 SIP/2.0", "UDP", "alloc@192.0.2.10", "1 INVITE", inviteSDP)
	if n := testing.AllocsPerRun(200, func() {
		_ = s.WritePacket(t0, trunk, cloakUA, ProtoUDP, msg)
	}); n != 0 {
		t.Fatalf("%v allocations per message, want 0", n)
	}
}
