package sip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// Standard test card numbers: they must never appear in a log.
const (
	testCard       = "4111111111111111"
	testCardSpaced = "4111 1111 1111 1111"
	testCard2      = "5555555555554444"
)

// lockedBuf is an io.Writer safe for the server's goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rejectHandler refuses every call.
type rejectHandler struct{}

func (rejectHandler) HandleCall(s *Session) { _ = s.Reject(486, "Busy Here") }

// startHostile starts a server on UDP and TCP (same port) logging at trace
// into buf.
func startHostile(t *testing.T, buf *lockedBuf, h Handler, observe func(Observed)) (*Server, netip.AddrPort) {
	t.Helper()
	for range 5 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.Close()
		log := zerolog.New(buf).Level(zerolog.TraceLevel)
		srv, err := NewServer(Config{Listen: addr, Log: log, Observe: observe}, h)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := srv.Start(ctx); err != nil {
			cancel()
			_ = srv.Close()
			continue // the TCP port was taken: try another
		}
		t.Cleanup(func() { _ = srv.Close(); cancel() })
		return srv, addr
	}
	t.Fatal("no free port for UDP and TCP")
	return nil, netip.AddrPort{}
}

// hostileMessages are requests sipgo's parser refuses, each carrying the
// test card and DTMF digits in the body, a header or the start line. want
// is the status cloak must answer with, 0 for none; on TCP a Content-Length
// past the end is a message still arriving, so no answer until the peer
// gives up and closes (then it is counted).
func hostileMessages(dst netip.AddrPort, transport string) []struct {
	name string
	msg  string
	want int
} {
	hdr := func(method, ruri, cseq, extra string, body string, clen int) string {
		return fmt.Sprintf("%s %s SIP/2.0\r\n"+
			"Via: SIP/2.0/%s 127.0.0.1:5999;branch=z9hG4bK-%s-%d\r\n"+
			"From: <sip:caller@127.0.0.1>;tag=ft\r\n"+
			"To: <sip:ivr@%s>\r\n"+
			"Call-ID: hostile-%s@test\r\n"+
			"CSeq: %s\r\n"+
			"Max-Forwards: 70\r\n%s"+
			"Content-Length: %d\r\n\r\n%s",
			method, ruri, transport, strings.ToLower(method), clen, dst, strings.ToLower(method), cseq, extra, clen, body)
	}
	dtmf := "Signal=7\r\nDuration=160\r\nCard=" + testCard + "\r\n"
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=" + testCardSpaced + "\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	ruri := "sip:ivr@" + dst.String()
	return []struct {
		name string
		msg  string
		want int
	}{
		{"info content-length one too long", hdr("INFO", ruri, "2 INFO", "Content-Type: application/dtmf-relay\r\n", dtmf, len(dtmf)+1), udpOnly(transport, 400)},
		{"info cseq overflow", hdr("INFO", ruri, "99999999999 INFO", "Content-Type: application/dtmf-relay\r\n", dtmf, len(dtmf)), 400},
		{"invite card in request-uri", hdr("INVITE", "sip:"+testCard+"@"+dst.String(), "1 INVITE", "Contact: <sip:c@127.0.0.1:5999>\r\nContent-Type: application/sdp\r\n", sdp, len(sdp)+3), udpOnly(transport, 400)},
		{"message card in subject, bad cseq", hdr("MESSAGE", ruri, "x MESSAGE", "Subject: "+testCard2+"\r\nContent-Type: text/plain\r\n", "pay "+testCard, len("pay "+testCard)), 400},
		{"card as start line", testCard + " " + testCard2 + "\r\nSignal=9\r\n\r\n", 0},
	}
}

func udpOnly(transport string, code int) int {
	if transport == "UDP" {
		return code
	}
	return 0
}

func readReply(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSpace(line)
}

// TestMalformedNeverLogged feeds requests sipgo cannot parse, carrying a
// test card in body, header and start line and DTMF in an INFO body, over
// UDP and TCP, with the log at trace: the log holds no card and no Signal
// line, each readable request got its 400, and the failures are counted per
// source.
func TestMalformedNeverLogged(t *testing.T) {
	var buf lockedBuf
	var obsMu sync.Mutex
	var observed bytes.Buffer
	srv, addr := startHostile(t, &buf, rejectHandler{}, func(o Observed) { obsMu.Lock(); observed.Write(o.Data); obsMu.Unlock() })

	sent := 0
	for _, transport := range []string{"UDP", "TCP"} {
		for _, m := range hostileMessages(addr, transport) {
			t.Run(transport+" "+m.name, func(t *testing.T) {
				c, err := net.Dial(strings.ToLower(transport), addr.String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte(m.msg)); err != nil {
					t.Fatal(err)
				}
				sent++
				got := readReply(t, c)
				if m.want == 0 {
					if got != "" {
						t.Fatalf("reply %q to an unreadable message, want none", got)
					}
					return
				}
				if want := fmt.Sprintf("SIP/2.0 %d ", m.want); !strings.HasPrefix(got, want) {
					t.Fatalf("reply %q, want %q…", got, want)
				}
			})
		}
	}
	// A well-formed INFO for a dialog cloak does not have: 481, and the
	// capture gets it without its body.
	t.Run("UDP info of no dialog", func(t *testing.T) {
		c, err := net.Dial("udp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := "Signal=4\r\nDuration=160\r\n"
		msg := "INFO sip:ivr@" + addr.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";branch=z9hG4bK-nodlg\r\n" +
			"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>;tag=2\r\nCall-ID: nodlg@test\r\nCSeq: 5 INFO\r\nSubject: " + testCard + "\r\n" +
			"Content-Type: application/dtmf-relay\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := readReply(t, c); !strings.HasPrefix(got, "SIP/2.0 481 ") {
			t.Fatalf("reply %q, want 481", got)
		}
		obsMu.Lock()
		defer obsMu.Unlock()
		if !bytes.Contains(observed.Bytes(), []byte("Call-ID: nodlg@test")) {
			t.Fatal("the INFO was not captured at all")
		}
	})
	// The unreadable start line got no reply: give it time to be logged.
	deadline := time.Now().Add(2 * time.Second)
	for srv.Stats().ParseErrors < uint64(sent) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := srv.Stats()
	if st.ParseErrors != uint64(sent) || st.ParseErrorsBySource["127.0.0.1"] != uint64(sent) {
		t.Errorf("parse errors %d, by source %v; want %d from 127.0.0.1", st.ParseErrors, st.ParseErrorsBySource, sent)
	}
	out := buf.String()
	if !strings.Contains(out, "sip message unparsable") {
		t.Fatalf("no parse failure logged at trace; log:\n%s", out)
	}
	for _, secret := range []string{testCard, testCardSpaced, testCard2, "Signal="} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret[:6], out)
		}
		obsMu.Lock()
		if bytes.Contains(observed.Bytes(), []byte(secret)) {
			t.Errorf("protocol capture saw %q of a message that never parsed", secret[:6])
		}
		obsMu.Unlock()
	}
}

// TestVersionNotSupported: a well-formed request in SIP/7.0 gets "SIP/2.0
// 505" (RFC 3261 §21.5.6), not a 200 in its own version.
func TestVersionNotSupported(t *testing.T) {
	var buf lockedBuf
	_, addr := startHostile(t, &buf, rejectHandler{}, nil)
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "OPTIONS sip:ivr@" + addr.String() + " SIP/7.0\r\n" +
		"Via: SIP/7.0/UDP " + c.LocalAddr().String() + ";branch=z9hG4bK-v7\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: v7@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if got := readReply(t, c); !strings.HasPrefix(got, "SIP/2.0 505 ") {
		t.Fatalf("reply %q, want SIP/2.0 505", got)
	}
}

// TestSafeHandler: what sipgo itself logs goes through the allow-list —
// raw data, start lines and transaction keys are dropped, errors cut at
// what they quote, digit runs masked, multi-line message texts withheld.
func TestSafeHandler(t *testing.T) {
	var buf lockedBuf
	h := sipgoHandlerFor(zerolog.New(&buf).Level(zerolog.TraceLevel))
	var target atomic.Pointer[slog.Handler]
	target.Store(&h)
	log := slog.New(newSafeHandler(&target)).With("caller", "test", "req", "INVITE sip:"+testCard+"@x SIP/2.0")
	log.Error("failed to parse", "data", "INFO sip:x SIP/2.0\r\n\r\nSignal=5", "error",
		fmt.Errorf("field name with no value in header: %q", "X-Card: "+testCard), "raddr", "127.0.0.1:5060")
	log.Error("invalid CSeq", "error", errors.New("invalid CSeq 4111-1111-1111-1111: exceeds"), "tx", "z9hG4bK"+testCard2)
	log.Debug("=== UDP read ===\nINFO sip:x SIP/2.0\r\nSignal=3")
	out := buf.String()
	for _, secret := range []string{testCard, "4111-1111", testCard2, "Signal="} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"failed to parse", "127.0.0.1:5060", "field name with no value in header", withheld} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestMaskDigits(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5060":            "127.0.0.1:5060",
		"ref 12345":                 "ref 12345",
		"pan 4111111111111111 end":  "pan **************** end",
		"4111 1111 1111 1111":       "*******************",
		"cseq 99999999999 too big":  "cseq *********** too big",
		"2 INFO, 3 BYE":             "2 INFO, 3 BYE",
		"call 5555-5555-5555-4444;": "call *******************;",
	} {
		if got := maskDigits(in); got != want {
			t.Errorf("maskDigits(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkGuardParse is the price of the guard: one more parse of each
// message read (a typical INVITE with SDP).
func BenchmarkGuardParse(b *testing.B) {
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
	msg := []byte("INVITE sip:ivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-bench\r\n" +
		"From: \"Caller\" <sip:caller@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: bench@test\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@127.0.0.1:5999>\r\nMax-Forwards: 70\r\nUser-Agent: bench\r\nContent-Type: application/sdp\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(sdp), sdp))
	p := siplib.NewParser()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSafe(p, msg); err != nil {
			b.Fatal(err)
		}
	}
}
