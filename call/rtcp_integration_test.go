package call_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// TestRTCPMuxModes: rtp.rtcp.mux decides whether the answer carries
// a=rtcp-mux (RFC 5761 §5.1.1), and require refuses offers without it;
// with port+1 RTCP cloak's reports reach the caller's RTP port + 1.
func TestRTCPMuxModes(t *testing.T) {
	muxOffer := func(port int) []byte {
		return append(pcmuOffer(port), []byte("a=rtcp-mux\r\n")...)
	}
	tests := []struct {
		mode      string
		offerMux  bool
		status    int
		answerMux bool
	}{
		{"offer", true, 200, true},
		{"offer", false, 200, false},
		{"off", true, 200, false},
		{"require", true, 200, true},
		{"require", false, 488, false},
	}
	for _, tc := range tests {
		name := tc.mode + "/offer-without-mux"
		if tc.offerMux {
			name = tc.mode + "/offer-with-mux"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, opts{rtcp: true, rtcpMux: tc.mode})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			body := pcmuOffer(40000)
			if tc.offerMux {
				body = muxOffer(40000)
			}
			d, err := h.invite(ctx, "echo", body)
			if tc.status != 200 {
				if statusOf(err) != tc.status {
					t.Fatalf("got %v, want %d", err, tc.status)
				}
				if h.pool.InUse() != 0 {
					t.Fatalf("refused call holds %d ports", h.pool.InUse())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = d.Bye(ctx) }()
			if got := strings.Contains(string(d.InviteResponse.Body()), "a=rtcp-mux"); got != tc.answerMux {
				t.Fatalf("answer has rtcp-mux %v, want %v:\n%s", got, tc.answerMux, d.InviteResponse.Body())
			}
		})
	}
}

// TestRTCPPortPlusOne: without mux, cloak's first report reaches the
// caller's RTP port + 1 and names cloak's SSRC as the sender.
func TestRTCPPortPlusOne(t *testing.T) {
	h := newHarness(t, opts{rtcp: true})
	var rtpC, rtcpC *net.UDPConn
	for range 50 {
		rtpC = rtpSocket(t)
		p := rtpC.LocalAddr().(*net.UDPAddr).Port
		if p%2 == 1 || p == 65535 {
			continue
		}
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p+1))))
		if err == nil {
			rtcpC = c
			t.Cleanup(func() { c.Close() })
			break
		}
	}
	if rtcpC == nil {
		t.Skip("no free port pair")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	d, err := h.invite(ctx, "echo", pcmuOffer(rtpC.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Bye(ctx) }()
	// The first report comes after 5 s / 2 × [0.5, 1.5): at most 3.75 s.
	_ = rtcpC.SetReadDeadline(time.Now().Add(6 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := rtcpC.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no RTCP on port+1: %v", err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil || len(pkts) < 2 {
		t.Fatalf("report: %d packets, %v", len(pkts), err)
	}
	if _, ok := pkts[1].(*rtcp.SourceDescription); !ok {
		t.Fatalf("second packet %T, want SDES", pkts[1])
	}
}
