package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ErrMalformedHEP reports input DecodeHEP cannot read as HEPv3.
var ErrMalformedHEP = errors.New("capture: malformed HEPv3 packet")

// HEPv3 framing (HEP/EEP specification, version 3): the magic "HEP3", a
// 16-bit total length including this 6-byte header, then chunks. Each chunk
// is a 16-bit vendor id, a 16-bit chunk type and a 16-bit length including
// its own 6-byte header, then the value. All integers are big-endian.
const (
	hepMagic          = "HEP3"
	hepHeaderLen      = 6
	hepChunkHeaderLen = 6
	hepMaxLen         = 65535
)

// HEPv3 chunk types of the generic vendor (id 0).
const (
	hepChunkIPFamily      = 0x0001
	hepChunkIPProto       = 0x0002
	hepChunkIPv4Src       = 0x0003
	hepChunkIPv4Dst       = 0x0004
	hepChunkIPv6Src       = 0x0005
	hepChunkIPv6Dst       = 0x0006
	hepChunkSrcPort       = 0x0007
	hepChunkDstPort       = 0x0008
	hepChunkTimeSec       = 0x0009
	hepChunkTimeUsec      = 0x000a
	hepChunkProtoType     = 0x000b
	hepChunkAgentID       = 0x000c
	hepChunkAuthKey       = 0x000e
	hepChunkPayload       = 0x000f
	hepChunkCorrelationID = 0x0011
)

// HEP protocol families and types.
const (
	// HEPFamilyIPv4 and HEPFamilyIPv6 are the chunk 0x0001 values (the
	// AF_INET and AF_INET6 numbers HEP uses).
	HEPFamilyIPv4 = 2
	HEPFamilyIPv6 = 10
	// HEPProtoSIP is the chunk 0x000b protocol type of SIP.
	HEPProtoSIP = 1
)

// HEPPacket is one HEPv3 packet.
type HEPPacket struct {
	// Family is HEPFamilyIPv4 or HEPFamilyIPv6. EncodeHEP derives it from
	// Src.
	Family uint8
	// Proto is the transport (IP protocol number).
	Proto Proto
	// Src and Dst are the captured packet's addresses.
	Src, Dst netip.AddrPort
	// Time is the capture time, carried to the microsecond.
	Time time.Time
	// ProtoType is the application protocol, HEPProtoSIP for SIP.
	ProtoType uint8
	// AgentID identifies the capturing instance.
	AgentID uint32
	// AuthKey is the collector's shared key; omitted when empty.
	AuthKey string
	// CorrelationID ties packets of one call together: the SIP Call-ID.
	// Omitted when empty.
	CorrelationID string
	// Payload is the captured message.
	Payload []byte
}

// hepLen returns the encoded length of a packet with addresses of family
// v4 and values of the given lengths (0 omits the optional chunks).
func hepLen(v4 bool, authKey, corrID, payload int) int {
	addr := 16
	if v4 {
		addr = 4
	}
	n := hepHeaderLen +
		2*(hepChunkHeaderLen+1) + // family, proto
		2*(hepChunkHeaderLen+addr) + // addresses
		2*(hepChunkHeaderLen+2) + // ports
		2*(hepChunkHeaderLen+4) + // seconds, microseconds
		hepChunkHeaderLen + 1 + // protocol type
		hepChunkHeaderLen + 4 + // agent id
		hepChunkHeaderLen + payload
	if authKey > 0 {
		n += hepChunkHeaderLen + authKey
	}
	if corrID > 0 {
		n += hepChunkHeaderLen + corrID
	}
	return n
}

// AppendHEP appends p encoded as HEPv3 to b. It allocates only if b lacks
// capacity. The addresses are sent in one family: IPv4 if both are IPv4
// (or IPv4-mapped), IPv6 otherwise.
func AppendHEP(b []byte, p *HEPPacket) ([]byte, error) {
	return appendHEP(b, p.Src, p.Dst, p.Proto, p.Time, p.ProtoType, p.AgentID, p.AuthKey, []byte(p.CorrelationID), p.Payload)
}

// appendHEP is AppendHEP with the correlation id as bytes, so the sender
// can pass a slice of the SIP message without allocating.
func appendHEP(b []byte, src, dst netip.AddrPort, proto Proto, ts time.Time, protoType uint8, agentID uint32, authKey string, corrID, payload []byte) ([]byte, error) {
	src, dst = normalise(src, dst)
	v4 := src.Addr().Is4()
	n := hepLen(v4, len(authKey), len(corrID), len(payload))
	if n > hepMaxLen {
		return b, fmt.Errorf("hep packet of %d bytes: %w", n, ErrTooLarge)
	}
	b = append(b, hepMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	family, srcType, dstType := uint8(HEPFamilyIPv6), uint16(hepChunkIPv6Src), uint16(hepChunkIPv6Dst)
	if v4 {
		family, srcType, dstType = HEPFamilyIPv4, hepChunkIPv4Src, hepChunkIPv4Dst
	}
	b = appendChunkU8(b, hepChunkIPFamily, family)
	b = appendChunkU8(b, hepChunkIPProto, uint8(proto))
	if v4 {
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = appendChunk(b, srcType, s[:])
		b = appendChunk(b, dstType, d[:])
	} else {
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = appendChunk(b, srcType, s[:])
		b = appendChunk(b, dstType, d[:])
	}
	b = appendChunkU16(b, hepChunkSrcPort, src.Port())
	b = appendChunkU16(b, hepChunkDstPort, dst.Port())
	us := ts.UnixMicro()
	b = appendChunkU32(b, hepChunkTimeSec, uint32(us/1e6))
	b = appendChunkU32(b, hepChunkTimeUsec, uint32(us%1e6))
	b = appendChunkU8(b, hepChunkProtoType, protoType)
	b = appendChunkU32(b, hepChunkAgentID, agentID)
	if authKey != "" {
		b = appendChunkHeader(b, hepChunkAuthKey, len(authKey))
		b = append(b, authKey...)
	}
	b = appendChunk(b, hepChunkPayload, payload)
	if len(corrID) > 0 {
		b = appendChunk(b, hepChunkCorrelationID, corrID)
	}
	return b, nil
}

// hepChunkSize is the value size of a fixed-size generic chunk type, or 0
// for a variable-size or unknown one.
func hepChunkSize(typ uint16) int {
	switch typ {
	case hepChunkIPFamily, hepChunkIPProto, hepChunkProtoType:
		return 1
	case hepChunkSrcPort, hepChunkDstPort:
		return 2
	case hepChunkIPv4Src, hepChunkIPv4Dst, hepChunkTimeSec, hepChunkTimeUsec, hepChunkAgentID:
		return 4
	case hepChunkIPv6Src, hepChunkIPv6Dst:
		return 16
	}
	return 0
}

func appendChunkHeader(b []byte, typ uint16, valueLen int) []byte {
	b = binary.BigEndian.AppendUint16(b, 0) // generic vendor
	b = binary.BigEndian.AppendUint16(b, typ)
	return binary.BigEndian.AppendUint16(b, uint16(hepChunkHeaderLen+valueLen))
}

func appendChunk(b []byte, typ uint16, v []byte) []byte {
	return append(appendChunkHeader(b, typ, len(v)), v...)
}

func appendChunkU8(b []byte, typ uint16, v uint8) []byte {
	return append(appendChunkHeader(b, typ, 1), v)
}

func appendChunkU16(b []byte, typ uint16, v uint16) []byte {
	return binary.BigEndian.AppendUint16(appendChunkHeader(b, typ, 2), v)
}

func appendChunkU32(b []byte, typ uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(appendChunkHeader(b, typ, 4), v)
}

// DecodeHEP decodes one HEPv3 packet. Chunks of other vendors and unknown
// generic chunk types are skipped; a packet must carry the IP family, both
// addresses of that family and a payload. The returned packet does not
// alias b. Errors wrap ErrMalformedHEP.
func DecodeHEP(b []byte) (HEPPacket, error) {
	var p HEPPacket
	if len(b) < hepHeaderLen || string(b[:4]) != hepMagic {
		return p, fmt.Errorf("hep header: %w", ErrMalformedHEP)
	}
	total := int(binary.BigEndian.Uint16(b[4:]))
	if total < hepHeaderLen || total > len(b) {
		return p, fmt.Errorf("hep total length %d of %d bytes: %w", total, len(b), ErrMalformedHEP)
	}
	var (
		src4, dst4, src6, dst6 []byte
		sport, dport           uint16
		sec, usec              uint32
		havePayload            bool
	)
	for rest := b[hepHeaderLen:total]; len(rest) > 0; {
		if len(rest) < hepChunkHeaderLen {
			return p, fmt.Errorf("hep chunk header at offset %d: %w", total-len(rest), ErrMalformedHEP)
		}
		vendor := binary.BigEndian.Uint16(rest[0:])
		typ := binary.BigEndian.Uint16(rest[2:])
		cl := int(binary.BigEndian.Uint16(rest[4:]))
		if cl < hepChunkHeaderLen || cl > len(rest) {
			return p, fmt.Errorf("hep chunk 0x%04x length %d: %w", typ, cl, ErrMalformedHEP)
		}
		v := rest[hepChunkHeaderLen:cl]
		rest = rest[cl:]
		if vendor != 0 {
			continue
		}
		want := hepChunkSize(typ)
		if want != 0 && len(v) != want {
			return p, fmt.Errorf("hep chunk 0x%04x value of %d bytes, want %d: %w", typ, len(v), want, ErrMalformedHEP)
		}
		switch typ {
		case hepChunkIPFamily:
			p.Family = v[0]
		case hepChunkIPProto:
			p.Proto = Proto(v[0])
		case hepChunkIPv4Src:
			src4 = v
		case hepChunkIPv4Dst:
			dst4 = v
		case hepChunkIPv6Src:
			src6 = v
		case hepChunkIPv6Dst:
			dst6 = v
		case hepChunkSrcPort:
			sport = binary.BigEndian.Uint16(v)
		case hepChunkDstPort:
			dport = binary.BigEndian.Uint16(v)
		case hepChunkTimeSec:
			sec = binary.BigEndian.Uint32(v)
		case hepChunkTimeUsec:
			usec = binary.BigEndian.Uint32(v)
		case hepChunkProtoType:
			p.ProtoType = v[0]
		case hepChunkAgentID:
			p.AgentID = binary.BigEndian.Uint32(v)
		case hepChunkAuthKey:
			p.AuthKey = string(v)
		case hepChunkPayload:
			p.Payload = append([]byte{}, v...)
			havePayload = true
		case hepChunkCorrelationID:
			p.CorrelationID = string(v)
		}
	}
	var sa, da netip.Addr
	switch p.Family {
	case HEPFamilyIPv4:
		if src4 == nil || dst4 == nil {
			return p, fmt.Errorf("hep IPv4 packet without both addresses: %w", ErrMalformedHEP)
		}
		sa, da = netip.AddrFrom4([4]byte(src4)), netip.AddrFrom4([4]byte(dst4))
	case HEPFamilyIPv6:
		if src6 == nil || dst6 == nil {
			return p, fmt.Errorf("hep IPv6 packet without both addresses: %w", ErrMalformedHEP)
		}
		sa, da = netip.AddrFrom16([16]byte(src6)), netip.AddrFrom16([16]byte(dst6))
	default:
		return p, fmt.Errorf("hep IP family %d: %w", p.Family, ErrMalformedHEP)
	}
	if !havePayload {
		return p, fmt.Errorf("hep packet without payload: %w", ErrMalformedHEP)
	}
	if usec >= 1e6 {
		return p, fmt.Errorf("hep timestamp microseconds %d: %w", usec, ErrMalformedHEP)
	}
	p.Src, p.Dst = netip.AddrPortFrom(sa, sport), netip.AddrPortFrom(da, dport)
	p.Time = time.Unix(int64(sec), int64(usec)*1e3)
	return p, nil
}
