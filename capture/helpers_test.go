package capture

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Fixture addresses (documentation ranges, RFC 5737 and RFC 3849).
var (
	trunk   = netip.MustParseAddrPort("192.0.2.10:5060")
	cloakUA = netip.MustParseAddrPort("192.0.2.1:5060")
	trunk6  = netip.MustParseAddrPort("[2001:db8::10]:5060")
	cloak6  = netip.MustParseAddrPort("[2001:db8::1]:5060")
	rtpA    = netip.MustParseAddrPort("192.0.2.10:40000")
	rtpB    = netip.MustParseAddrPort("192.0.2.1:30000")
	t0      = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
)

const inviteSDP = "v=0\r\n" +
	"o=- 1 1 IN IP4 192.0.2.10\r\n" +
	"s=-\r\n" +
	"c=IN IP4 192.0.2.10\r\n" +
	"t=0 0\r\n" +
	"m=audio 40000 RTP/AVP 0 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n"

// sipMsg builds a SIP message with a correct Content-Length.
func sipMsg(startLine, transport, callID, cseq, body string) []byte {
	var b strings.Builder
	b.WriteString(startLine + "\r\n")
	b.WriteString("Via: SIP/2.0/" + transport + " 192.0.2.10:5060;branch=z9hG4bK-" + cseq[:1] + "\r\n")
	b.WriteString("From: <sip:caller@example.com>;tag=a1\r\n")
	b.WriteString("To: <sip:queue@example.com>\r\n")
	b.WriteString("Call-ID: " + callID + "\r\n")
	b.WriteString("CSeq: " + cseq + "\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

// rtpPacket builds an RTP packet (RFC 3550 section 5.1) with payload
// type pt and a payload of n bytes of fill.
func rtpPacket(seq uint16, ts, ssrc uint32, pt uint8, n int, fill byte) []byte {
	p := make([]byte, 12+n)
	p[0] = 0x80
	p[1] = pt
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	for i := 12; i < len(p); i++ {
		p[i] = fill
	}
	return p
}

// pcapRecord is one record read back from a pcap file.
type pcapRecord struct {
	ts       time.Time
	data     []byte
	src, dst netip.AddrPort
	proto    Proto
	payload  []byte
	tcp      *layers.TCP
}

// readPcap parses a nanosecond LINKTYPE_RAW pcap file and decodes each
// record with gopacket, independently of the writer's code.
func readPcap(t *testing.T, path string) []pcapRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != pcapMagicNanos || binary.LittleEndian.Uint32(b[20:]) != LinkTypeRaw {
		t.Fatalf("not a nanosecond raw-IP pcap: % x", b[:min(24, len(b))])
	}
	var out []pcapRecord
	for rest := b[24:]; len(rest) > 0; {
		if len(rest) < 16 {
			t.Fatalf("truncated record header")
		}
		sec, nsec := binary.LittleEndian.Uint32(rest), binary.LittleEndian.Uint32(rest[4:])
		incl, orig := binary.LittleEndian.Uint32(rest[8:]), binary.LittleEndian.Uint32(rest[12:])
		if incl != orig || int(incl) > len(rest)-16 {
			t.Fatalf("record lengths incl=%d orig=%d left=%d", incl, orig, len(rest)-16)
		}
		data := rest[16 : 16+incl]
		rest = rest[16+incl:]
		first := layers.LayerTypeIPv4
		if data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
		pkt := gopacket.NewPacket(data, first, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("gopacket: %v", el.Error())
		}
		r := pcapRecord{ts: time.Unix(int64(sec), int64(nsec)), data: data}
		var sa, da netip.Addr
		if ip, ok := pkt.NetworkLayer().(*layers.IPv4); ok {
			sa, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			da, _ = netip.AddrFromSlice(ip.DstIP.To4())
			if int(ip.Length) != len(data) {
				t.Fatalf("IPv4 total length %d, record %d", ip.Length, len(data))
			}
		} else if ip, ok := pkt.NetworkLayer().(*layers.IPv6); ok {
			sa, _ = netip.AddrFromSlice(ip.SrcIP)
			da, _ = netip.AddrFromSlice(ip.DstIP)
			if int(ip.Length) != len(data)-40 {
				t.Fatalf("IPv6 payload length %d, record %d", ip.Length, len(data))
			}
		}
		if ip, ok := pkt.NetworkLayer().(*layers.IPv4); ok {
			if err, res := ip.VerifyChecksum(); err != nil || res.Correct != res.Actual {
				t.Fatalf("IPv4 checksum %#04x, want %#04x (%v)", res.Actual, res.Correct, err)
			}
		}
		type verifier interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			VerifyChecksum() (error, gopacket.ChecksumVerificationResult)
		}
		if v, ok := pkt.TransportLayer().(verifier); ok {
			if err := v.SetNetworkLayerForChecksum(pkt.NetworkLayer()); err != nil {
				t.Fatal(err)
			}
			if err, res := v.VerifyChecksum(); err != nil || res.Correct != res.Actual {
				t.Fatalf("%v checksum %#04x, want %#04x (%v)", pkt.TransportLayer().LayerType(), res.Actual, res.Correct, err)
			}
		}
		switch tl := pkt.TransportLayer().(type) {
		case *layers.UDP:
			r.proto = ProtoUDP
			r.src, r.dst = netip.AddrPortFrom(sa, uint16(tl.SrcPort)), netip.AddrPortFrom(da, uint16(tl.DstPort))
			r.payload = tl.Payload
			if int(tl.Length) != len(tl.Contents)+len(tl.Payload) {
				t.Fatalf("UDP length %d, segment %d", tl.Length, len(tl.Contents)+len(tl.Payload))
			}
		case *layers.TCP:
			r.proto = ProtoTCP
			r.src, r.dst = netip.AddrPortFrom(sa, uint16(tl.SrcPort)), netip.AddrPortFrom(da, uint16(tl.DstPort))
			r.payload = tl.Payload
			r.tcp = tl
		default:
			t.Fatalf("record without UDP or TCP: %v", pkt)
		}
		out = append(out, r)
	}
	return out
}

// needTshark returns tshark's path, skipping the test when it is missing
// unless CI is set.
func needTshark(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tshark is required in CI: %v", err)
		}
		t.Skip("tshark not installed")
	}
	return p
}

// tshark runs tshark -r file with args and returns its output lines.
func tshark(t *testing.T, file string, args ...string) []string {
	t.Helper()
	bin := needTshark(t)
	cmd := exec.Command(bin, append([]string{"-n", "-r", file}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
