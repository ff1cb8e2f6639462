package sip

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	siplib "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/rs/zerolog"
)

// fakeTrunks: 127.0.0.2 is an IP trunk, 127.0.0.3 a trunk with
// inbound_auth (user "carrier", password "pw").
type fakeTrunks struct{ reg *Registrar }

func (f *fakeTrunks) Match(ip netip.Addr) (string, bool, bool) {
	switch ip.String() {
	case "127.0.0.2":
		return "iptrunk", false, true
	case "127.0.0.3":
		return "authtrunk", true, true
	}
	return "", false, false
}

func (f *fakeTrunks) Authenticator(name string) *Registrar {
	if name == "authtrunk" || name == "" {
		return f.reg
	}
	return nil
}

func (f *fakeTrunks) ByUser(u string) (string, bool) { return "authtrunk", u == "carrier" }

func (f *fakeTrunks) Identity(trunk string, req *siplib.Request) Identity {
	return Identity{Trunk: trunk, Caller: "+441632960001"}
}

// seenHandler rejects every call with 486 and remembers what it saw.
type seenHandler struct {
	mu   sync.Mutex
	seen []string // trunk|caller|name
}

func (h *seenHandler) HandleCall(s *Session) {
	h.mu.Lock()
	h.seen = append(h.seen, s.Trunk()+"|"+s.Caller()+"|"+s.CallerName())
	h.mu.Unlock()
	_ = s.Reject(486, "Busy Here")
}

func (h *seenHandler) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		return ""
	}
	return h.seen[len(h.seen)-1]
}

// sendInvite sends an INVITE from src with extra headers over UDP and
// returns the final response.
func sendInvite(t *testing.T, src string, dst netip.AddrPort, callID string, extra ...string) string {
	t.Helper()
	return sendInviteFrom(t, src, dst, callID, `"Bob" <sip:01632960001@127.0.0.1>`, extra...)
}

// sendInviteFrom is sendInvite with from as the From header's value
// (without its tag).
func sendInviteFrom(t *testing.T, src string, dst netip.AddrPort, callID, from string, extra ...string) string {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	msg := "INVITE sip:ivr@" + dst.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-" + callID + "\r\n" +
		"From: " + from + ";tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:a@" + c.LocalAddr().String() + ">\r\nContent-Type: application/sdp\r\nMax-Forwards: 70\r\n"
	for _, h := range extra {
		msg += h + "\r\n"
	}
	msg += "Content-Length: " + itoa(len(sdp)) + "\r\n\r\n" + sdp
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for range 5 {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("INVITE from %s: no response: %v", src, err)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, "SIP/2.0 1") {
			return got
		}
	}
	t.Fatal("no final response")
	return ""
}

func startTrunked(t *testing.T, h Handler, cfg Config) netip.AddrPort {
	t.Helper()
	cfg.Listen = freeUDP(t)
	cfg.Transports = []string{"udp"}
	cfg.Log = zerolog.Nop()
	srv, err := NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(); cancel() })
	return cfg.Listen
}

func statusLine(msg string) string { return strings.SplitN(msg, "\r\n", 2)[0] }

// TestUnknownSourcePolicy: with sip.unknown reject, an INVITE from no
// trunk gets 403 with a reason saying why, and the handler never sees it;
// an IP trunk's source is accepted and the call carries its trunk.
func TestUnknownSourcePolicy(t *testing.T) {
	h := &seenHandler{}
	dst := startTrunked(t, h, Config{Trunks: &fakeTrunks{}, Unknown: UnknownPolicy{Reject: true, RejectLoopback: true}})
	if got := statusLine(sendInvite(t, "127.0.0.1", dst, "u1")); got != "SIP/2.0 403 Forbidden: Unknown Source" {
		t.Fatalf("unknown source: %q", got)
	}
	if h.last() != "" {
		t.Fatal("the handler saw a call from an unknown source")
	}
	if got := statusLine(sendInvite(t, "127.0.0.2", dst, "u2")); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("trunk source: %q", got)
	}
	if got := h.last(); got != "iptrunk|+441632960001|Bob" {
		t.Fatalf("trunk call seen as %q", got)
	}
	// Privacy: id withholds the number and the name.
	if got := statusLine(sendInvite(t, "127.0.0.2", dst, "u3", "Privacy: id")); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("private: %q", got)
	}
	if got := h.last(); got != "iptrunk|anonymous|" {
		t.Fatalf("private call seen as %q", got)
	}
	// A registered agent's phone is no unknown source.
	h3 := &seenHandler{}
	reg := &Registrar{}
	reg.setGoodSource("demo", "127.0.0.1")
	dst3 := startTrunked(t, h3, Config{Registrar: reg, Unknown: UnknownPolicy{Reject: true, RejectLoopback: true}})
	if got := statusLine(sendInvite(t, "127.0.0.1", dst3, "u5")); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("registered agent's source: %q", got)
	}
	if got := statusLine(sendInvite(t, "127.0.0.4", dst3, "u6")); got != "SIP/2.0 403 Forbidden: Unknown Source" {
		t.Fatalf("another source: %q", got)
	}
	// The zero policy keeps the old behaviour: every source allowed.
	h2 := &seenHandler{}
	dst2 := startTrunked(t, h2, Config{})
	if got := statusLine(sendInvite(t, "127.0.0.1", dst2, "u4")); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("zero policy: %q", got)
	}
	if got := h2.last(); got != "|01632960001|Bob" {
		t.Fatalf("untrunked call seen as %q", got)
	}
}

// TestTrunkInboundDigest: a trunk with inbound_auth is challenged (401,
// RFC 3261 §22.2), accepted with its credentials, refused with wrong ones.
func TestTrunkInboundDigest(t *testing.T) {
	h := &seenHandler{}
	reg := &Registrar{Realm: "carrier", Algorithms: []string{"MD5"}, Password: func(u string) (string, bool) { return "pw", u == "carrier" }}
	dst := startTrunked(t, h, Config{Trunks: &fakeTrunks{reg: reg}, Unknown: UnknownPolicy{Reject: true, RejectLoopback: true}})
	res := sendInvite(t, "127.0.0.3", dst, "d1")
	if statusLine(res) != "SIP/2.0 401 Unauthorized" || header(res, "WWW-Authenticate") == "" {
		t.Fatalf("no challenge: %q", res)
	}
	if h.last() != "" {
		t.Fatal("unauthenticated call reached the handler")
	}
	authz := func(res, pw string) string {
		ch, err := digest.ParseChallenge(header(res, "WWW-Authenticate"))
		if err != nil {
			t.Fatal(err)
		}
		cr, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: "sip:ivr@" + dst.String(), Username: "carrier", Password: pw, Count: 1, Cnonce: "abc"})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + cr.String()
	}
	if got := statusLine(sendInvite(t, "127.0.0.3", dst, "d2", authz(res, "wrong"))); got != "SIP/2.0 401 Unauthorized" {
		t.Fatalf("wrong password: %q", got)
	}
	res = sendInvite(t, "127.0.0.3", dst, "d3")
	if got := statusLine(sendInvite(t, "127.0.0.3", dst, "d4", authz(res, "pw"))); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("right password: %q", got)
	}
	if got := h.last(); got != "authtrunk|+441632960001|Bob" {
		t.Fatalf("authenticated call seen as %q", got)
	}
	// From an address no trunk matches, with sip.unknown reject and a
	// digest trunk configured, the INVITE is challenged rather than
	// refused, and the right credentials identify the trunk.
	res = sendInvite(t, "127.0.0.4", dst, "d5")
	if statusLine(res) != "SIP/2.0 401 Unauthorized" {
		t.Fatalf("unmatched source: %q", res)
	}
	if got := statusLine(sendInvite(t, "127.0.0.4", dst, "d6", authz(res, "pw"))); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("unmatched source with credentials: %q", got)
	}
}

func TestPrivacyRequested(t *testing.T) {
	for v, want := range map[string]bool{"id": true, "none": false, "user;id": true, "header; critical": true, "ID": true, "": false, "session": false, "identity": false} {
		if got := PrivacyRequested(v); got != want {
			t.Errorf("PrivacyRequested(%q) = %v", v, got)
		}
	}
}

// TestTrunkFailover: a trunk's own failure moves the call to the next
// trunk; the callee's answer (busy, decline) and cloak's cancel do not.
func TestTrunkFailover(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&DialError{Err: context.DeadlineExceeded}, true},
		{&DialError{Status: 408}, true},
		{&DialError{Status: 500}, true},
		{&DialError{Status: 503}, true},
		{&DialError{Status: 486}, false},
		{&DialError{Status: 404}, false},
		{&DialError{Status: 603}, false},
		{&DialError{Status: 487, Err: ErrDialCanceled}, false},
		{&DialError{Err: ErrNoTLS}, false},
		{context.Canceled, false},
	} {
		if got := trunkFailover(tc.err); got != tc.want {
			t.Errorf("trunkFailover(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
