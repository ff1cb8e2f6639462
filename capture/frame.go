package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Proto is the transport a captured payload travelled over.
type Proto uint8

// Transports. SIP carried over TLS or WebSocket is captured as its cleartext
// message with ProtoTCP.
const (
	ProtoUDP Proto = 17 // IANA protocol number of UDP
	ProtoTCP Proto = 6  // IANA protocol number of TCP
)

// String returns "udp" or "tcp".
func (p Proto) String() string {
	switch p {
	case ProtoUDP:
		return "udp"
	case ProtoTCP:
		return "tcp"
	default:
		return fmt.Sprintf("proto(%d)", uint8(p))
	}
}

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	tcpHeaderLen  = 20
	// maxHeaderLen is the longest synthesised header: IPv6 + TCP.
	maxHeaderLen = ipv6HeaderLen + tcpHeaderLen

	// MaxPayload is the largest payload a synthesised frame can carry: an
	// IPv4 datagram's 16-bit total length less the IPv4 and TCP headers.
	MaxPayload = 65535 - ipv4HeaderLen - tcpHeaderLen

	tcpFlagPSH = 0x08
	tcpFlagACK = 0x10
)

// headerSpec is everything needed to synthesise the headers in front of
// one payload.
type headerSpec struct {
	src, dst netip.AddrPort
	proto    Proto
	ipID     uint16 // IPv4 identification
	seq, ack uint32 // TCP only
}

// normalise returns src and dst in one address family: IPv4-mapped IPv6
// addresses become IPv4, and if the families still differ both become IPv6.
func normalise(src, dst netip.AddrPort) (netip.AddrPort, netip.AddrPort) {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	if !sa.IsValid() {
		sa = netip.IPv4Unspecified()
	}
	if !da.IsValid() {
		da = netip.IPv4Unspecified()
	}
	if sa.Is4() != da.Is4() {
		sa, da = netip.AddrFrom16(sa.As16()), netip.AddrFrom16(da.As16())
	}
	return netip.AddrPortFrom(sa.WithZone(""), src.Port()), netip.AddrPortFrom(da.WithZone(""), dst.Port())
}

// putHeaders writes the IP and transport headers for payload into hdr and
// returns their length. src and dst must be normalised. hdr must hold
// maxHeaderLen bytes and len(payload) must not exceed MaxPayload.
func putHeaders(hdr []byte, h headerSpec, payload []byte) int {
	tl := udpHeaderLen
	if h.proto == ProtoTCP {
		tl = tcpHeaderLen
	}
	var il int
	if h.src.Addr().Is4() {
		il = ipv4HeaderLen
		ip := hdr[:ipv4HeaderLen]
		ip[0] = 0x45 // version 4, IHL 5 words
		ip[1] = 0
		binary.BigEndian.PutUint16(ip[2:], uint16(il+tl+len(payload)))
		binary.BigEndian.PutUint16(ip[4:], h.ipID)
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF, no fragment offset
		ip[8] = 64                                 // TTL
		ip[9] = byte(h.proto)
		ip[10], ip[11] = 0, 0
		s, d := h.src.Addr().As4(), h.dst.Addr().As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^uint16(fold(sum(0, ip))))
	} else {
		il = ipv6HeaderLen
		ip := hdr[:ipv6HeaderLen]
		binary.BigEndian.PutUint32(ip[0:], 6<<28) // version 6, no class or flow label
		binary.BigEndian.PutUint16(ip[4:], uint16(tl+len(payload)))
		ip[6] = byte(h.proto)
		ip[7] = 64 // hop limit
		s, d := h.src.Addr().As16(), h.dst.Addr().As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
	}
	t := hdr[il : il+tl]
	binary.BigEndian.PutUint16(t[0:], h.src.Port())
	binary.BigEndian.PutUint16(t[2:], h.dst.Port())
	var csumAt int
	if h.proto == ProtoTCP {
		binary.BigEndian.PutUint32(t[4:], h.seq)
		binary.BigEndian.PutUint32(t[8:], h.ack)
		t[12] = (tcpHeaderLen / 4) << 4 // data offset, no options
		t[13] = tcpFlagPSH | tcpFlagACK
		binary.BigEndian.PutUint16(t[14:], 65535) // window
		t[16], t[17] = 0, 0                       // checksum, below
		t[18], t[19] = 0, 0                       // urgent pointer
		csumAt = 16
	} else {
		binary.BigEndian.PutUint16(t[4:], uint16(udpHeaderLen+len(payload)))
		t[6], t[7] = 0, 0
		csumAt = 6
	}
	c := transportChecksum(h, t, payload)
	if c == 0 && h.proto == ProtoUDP {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(t[csumAt:], c)
	return il + tl
}

// transportChecksum is the UDP or TCP checksum over the pseudo-header
// (RFC 768, RFC 9293 section 3.1, RFC 8200 section 8.1), the transport
// header t (checksum field zero) and the payload.
func transportChecksum(h headerSpec, t, payload []byte) uint16 {
	var acc uint32
	n := len(t) + len(payload)
	if h.src.Addr().Is4() {
		s, d := h.src.Addr().As4(), h.dst.Addr().As4()
		acc = sum(acc, s[:])
		acc = sum(acc, d[:])
	} else {
		s, d := h.src.Addr().As16(), h.dst.Addr().As16()
		acc = sum(acc, s[:])
		acc = sum(acc, d[:])
	}
	acc += uint32(h.proto) + uint32(n>>16) + uint32(n&0xffff)
	acc = sum(acc, t) // even length, so the payload stays word aligned
	acc = sum(acc, payload)
	return ^uint16(fold(acc))
}

// sum adds b to the ones' complement accumulator acc as big-endian 16-bit
// words, padding an odd final byte with zero.
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if acc >= 1<<31 {
			acc = fold(acc)
		}
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold reduces acc to 16 bits with end-around carry.
func fold(acc uint32) uint32 {
	for acc > 0xffff {
		acc = acc&0xffff + acc>>16
	}
	return acc
}
