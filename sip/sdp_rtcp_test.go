package sip

import (
	"net/netip"
	"strings"
	"testing"
)

// TestOfferRTCPAttributes: a=rtcp-mux (RFC 5761) and a=rtcp (RFC 3605)
// in an offer, and a=rtcp-mux in the answer only when both sides want it.
func TestOfferRTCPAttributes(t *testing.T) {
	base := "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\nm=audio 20000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
	tests := []struct {
		name     string
		extra    string
		wantMux  bool
		wantRTCP netip.AddrPort
	}{
		{"none", "", false, netip.AddrPort{}},
		{"mux", "a=rtcp-mux\n", true, netip.AddrPort{}},
		{"rtcp port only", "a=rtcp:20011\n", false, netip.MustParseAddrPort("0.0.0.0:20011")},
		{"rtcp port and address", "a=rtcp:53020 IN IP4 126.16.64.4\n", false, netip.MustParseAddrPort("126.16.64.4:53020")},
		{"rtcp ipv6", "a=rtcp:53020 IN IP6 2001:db8::1\n", false, netip.MustParseAddrPort("[2001:db8::1]:53020")},
		{"rtcp garbage ignored", "a=rtcp:notaport\n", false, netip.AddrPort{}},
		{"rtcp port 0 ignored", "a=rtcp:0\n", false, netip.AddrPort{}},
		{"rtcp bad address ignored", "a=rtcp:9 IN IP4 nohost\n", false, netip.AddrPort{}},
		{"rtcp extra fields ignored", "a=rtcp:9 IN\n", false, netip.AddrPort{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer(crlf(base + tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			if o.Media.RTCPMux != tc.wantMux || o.Media.RTCP != tc.wantRTCP {
				t.Fatalf("mux %v rtcp %v, want %v %v", o.Media.RTCPMux, o.Media.RTCP, tc.wantMux, tc.wantRTCP)
			}
			for _, ours := range []bool{false, true} {
				body, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, RTCPMux: ours})
				if err != nil {
					t.Fatal(err)
				}
				if got, want := strings.Contains(string(body), "a=rtcp-mux"), ours && tc.wantMux; got != want {
					t.Fatalf("ours %v: answer has rtcp-mux %v, want %v", ours, got, want)
				}
			}
		})
	}
}
