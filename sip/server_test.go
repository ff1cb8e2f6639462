package sip

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// portsGone refuses every call the way the call layer does when no RTP
// port is free.
type portsGone struct{}

func (portsGone) HandleCall(s *Session) { _ = s.Reject(503, "Service Unavailable") }

// TestOverloadedCountsRejected503: a 503 sent because RTP ports ran out
// (Session.Reject from the call layer) counts in Stats.Overloaded, the
// sip_overloaded metric, as the call cap's and the drain's 503s do.
func TestOverloadedCountsRejected503(t *testing.T) {
	var buf lockedBuf
	srv, addr := startHostile(t, &buf, portsGone{}, nil)
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	msg := "INVITE sip:ivr@" + addr.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-ovl\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: ovl@test\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:a@" + c.LocalAddr().String() + ">\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		got := readReply(t, c)
		if strings.HasPrefix(got, "SIP/2.0 1") {
			continue
		}
		if !strings.HasPrefix(got, "SIP/2.0 503 ") {
			t.Fatalf("reply %q, want 503", got)
		}
		break
	}
	if got := srv.Stats().Overloaded; got != 1 {
		t.Fatalf("Overloaded = %d after one 503 for want of ports, want 1", got)
	}
}

// TestLargeUDPResponseSent: a response over 1300 bytes goes out over UDP.
// RFC 3261 §18.1.1 moves only requests near the MTU to TCP; §18.2.2 sends
// a response back the way its request came. sipgo refused to write any
// UDP message within 200 bytes of a 1500-byte MTU.
func TestLargeUDPResponseSent(t *testing.T) {
	var buf lockedBuf
	_, addr := startHostile(t, &buf, rejectHandler{}, nil)
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var vias strings.Builder
	vias.WriteString("Via: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-big\r\n")
	for i := range 24 { // proxies on the way: each Via is echoed back
		fmt.Fprintf(&vias, "Via: SIP/2.0/UDP 192.0.2.%d:5060;branch=z9hG4bK-proxy-hop-%02d-padding-padding\r\n", i+1, i)
	}
	msg := "OPTIONS sip:ivr@" + addr.String() + " SIP/2.0\r\n" + vias.String() +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: big@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if len(msg) < 1400 {
		t.Fatalf("request only %d bytes: the response would not pass 1300", len(msg))
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if got := readReply(t, c); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("reply %q, want 200 (a response over 1300 bytes)", got)
	}
}

// panicky panics with a value that quotes a card, as a careless handler
// formatting a request might.
type panicky struct{}

func (panicky) HandleCall(s *Session) { panic(fmt.Errorf("cannot route %s", testCard)) }

// TestHandlerPanicAnswered500: a panic in a request handler is answered 500
// and logged by method and Call-ID only, never with the panic's value; the
// server keeps serving.
func TestHandlerPanicAnswered500(t *testing.T) {
	var buf lockedBuf
	_, addr := startHostile(t, &buf, panicky{}, nil)
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	invite := func(callID string) string {
		msg := "INVITE sip:ivr@" + addr.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-" + callID + "\r\n" +
			"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <sip:a@" + c.LocalAddr().String() + ">\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if got := readReply(t, c); !strings.HasPrefix(got, "SIP/2.0 1") {
				// ACK the final response (RFC 3261 §17.1.1.3): the
				// session's Reject waits for it.
				ack := strings.Replace(strings.Replace(msg, "INVITE sip:", "ACK sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
				if _, err := c.Write([]byte(ack)); err != nil {
					t.Fatal(err)
				}
				return got
			}
		}
		return ""
	}
	for _, id := range []string{"panic-1@test", "panic-2@test"} {
		if got := invite(id); !strings.HasPrefix(got, "SIP/2.0 500 ") {
			t.Fatalf("%s: reply %q, want 500", id, got)
		}
	}
	// The session's cleanup sends the 500 while the panic unwinds; the
	// line is written just after.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(buf.String(), "sip handler panicked") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := buf.String()
	if !strings.Contains(out, "sip handler panicked") {
		t.Fatalf("panic not logged:\n%s", out)
	}
	if strings.Contains(out, testCard) {
		t.Fatalf("log holds the panic's card:\n%s", out)
	}
}
