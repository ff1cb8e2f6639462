package sip

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// forcedAdmission refuses while reason is set: the node forced overloaded.
type forcedAdmission struct{ reason atomic.Pointer[string] }

func (f *forcedAdmission) set(r string) { f.reason.Store(&r) }

func (f *forcedAdmission) Refusing() (string, time.Duration) {
	if p := f.reason.Load(); p != nil {
		return *p, 7 * time.Second
	}
	return "", 0
}

func startAdmitted(t *testing.T, h Handler, adm Admission) (*Server, netip.AddrPort) {
	t.Helper()
	addr := freeUDP(t)
	srv, err := NewServer(Config{Listen: addr, Transports: []string{"udp"}, Log: zerolog.Nop(), Admission: adm}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(); cancel() })
	return srv, addr
}

// rawRequest sends one out-of-dialog request over UDP and returns the
// first final response (provisional ones skipped).
func rawRequest(t *testing.T, dst netip.AddrPort, method, callID string) string {
	t.Helper()
	c, err := net.Dial("udp", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sdp := ""
	extra := ""
	if method == "INVITE" {
		sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
		extra = "Contact: <sip:a@" + c.LocalAddr().String() + ">\r\nContent-Type: application/sdp\r\n"
	}
	msg := method + " sip:ivr@" + dst.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-" + callID + "\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: " + callID + "\r\nCSeq: 1 " + method + "\r\n" +
		extra + "Max-Forwards: 70\r\n" + "Content-Length: " + itoa(len(sdp)) + "\r\n\r\n" + sdp
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for range 5 {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%s: no response: %v", method, err)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, "SIP/2.0 1") {
			return got
		}
	}
	t.Fatalf("%s: no final response", method)
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestAdmissionRefusesNewCallsOnly: with the node forced overloaded, a new
// INVITE gets 503 with Retry-After (RFC 3261 §21.5.4, §20.33) and an
// OPTIONS outside a dialog 503 too (so a dispatcher's probe takes the
// node out), each counted under the reason; the call already up carries
// on: an in-dialog OPTIONS and a re-INVITE are answered 200 and it hangs
// up normally. Once the admission clears, OPTIONS get 200 again.
func TestAdmissionRefusesNewCallsOnly(t *testing.T) {
	adm := &forcedAdmission{}
	far := answerHandler{sessions: make(chan *Session, 1)}
	srv, farAddr := startAdmitted(t, far, adm)
	near, nearAddr := startServer(t, nopHandler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if got := rawRequest(t, farAddr, "OPTIONS", "probe-ok-1"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS before overload: %q", firstLine(got))
	}
	leg, err := near.Dial(ctx, "sip:agent@"+farAddr.String(), DialOptions{Local: LocalSDP{Addr: nearAddr.Addr(), Port: 40002}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	sess := <-far.sessions

	adm.set("lag")
	got := rawRequest(t, farAddr, "INVITE", "refused-1")
	if !strings.HasPrefix(got, "SIP/2.0 503 ") || header(got, "Retry-After") != "7" {
		t.Fatalf("INVITE while overloaded: %q (Retry-After %q), want 503 with Retry-After 7", firstLine(got), header(got, "Retry-After"))
	}
	got = rawRequest(t, farAddr, "OPTIONS", "probe-refused-1")
	if !strings.HasPrefix(got, "SIP/2.0 503 ") || header(got, "Retry-After") != "7" {
		t.Fatalf("OPTIONS while overloaded: %q (Retry-After %q), want 503 with Retry-After 7", firstLine(got), header(got, "Retry-After"))
	}

	// The call already up is untouched.
	contact := leg.d.InviteResponse.Contact().Address
	opt := siplib.NewRequest(siplib.OPTIONS, contact)
	res, err := leg.d.Do(ctx, opt)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("in-dialog OPTIONS while overloaded: %v %v, want 200", res, err)
	}
	body := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
	re := siplib.NewRequest(siplib.INVITE, contact)
	re.AppendHeader(siplib.NewHeader("Content-Type", "application/sdp"))
	re.SetBody([]byte(body))
	res, err = leg.d.Do(ctx, re)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE while overloaded: %v %v, want 200", res, err)
	}
	if err := leg.d.WriteRequest(siplib.NewRequest(siplib.ACK, contact)); err != nil {
		t.Fatal(err)
	}
	if sess.Context().Err() != nil {
		t.Fatal("the call already up ended during the overload")
	}
	if err := leg.Hangup(ctx); err != nil {
		t.Fatalf("BYE of the call already up: %v", err)
	}
	select {
	case <-sess.Done():
	case <-ctx.Done():
		t.Fatal("the call did not end on BYE")
	}

	st := srv.Stats()
	if st.RefusedBy["lag"] != 1 || st.ProbesRefused != 1 || st.Overloaded != 2 {
		t.Fatalf("stats: refused by %v, probes refused %d, overloaded %d; want lag:1, 1, 2", st.RefusedBy, st.ProbesRefused, st.Overloaded)
	}

	adm.reason.Store(nil)
	if got := rawRequest(t, farAddr, "OPTIONS", "probe-ok-2"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS after the overload: %q", firstLine(got))
	}
}

// TestRefusedByCountsEveryReason: the drain's and the call layer's 503s
// are split by reason too.
func TestRefusedByCountsEveryReason(t *testing.T) {
	srv, addr := startAdmitted(t, portsGone{}, nil)
	if got := rawRequest(t, addr, "INVITE", "ports-1"); !strings.HasPrefix(got, "SIP/2.0 503 ") {
		t.Fatalf("INVITE without ports: %q", firstLine(got))
	}
	srv.Drain()
	got := rawRequest(t, addr, "INVITE", "drain-1")
	if !strings.HasPrefix(got, "SIP/2.0 503 ") || header(got, "Retry-After") != "30" {
		t.Fatalf("INVITE while draining: %q", firstLine(got))
	}
	st := srv.Stats()
	if st.RefusedBy[RefusedCall] != 1 || st.RefusedBy[RefusedDraining] != 1 || st.Overloaded != 2 {
		t.Fatalf("refused by %v, overloaded %d", st.RefusedBy, st.Overloaded)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

func TestRetryAfterValue(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 500 * time.Millisecond: "1", 5 * time.Second: "5", 5100 * time.Millisecond: "6"} {
		if got := retryAfterValue(d); got != want {
			t.Errorf("retryAfterValue(%v) = %q, want %q", d, got, want)
		}
	}
}

// pacingAdmission paces: Admit refuses as "pacing" while Refusing takes
// every call, as overload.Monitor does between limits.pace_at and a limit.
type pacingAdmission struct{ admits atomic.Int32 }

func (p *pacingAdmission) Refusing() (string, time.Duration) { return "", 0 }
func (p *pacingAdmission) Admit() (string, time.Duration) {
	p.admits.Add(1)
	return "pacing", 4 * time.Second
}

// TestPacingRefusesInvitesNotProbes: a Pacer's Admit decides each new
// INVITE (503, Retry-After, counted under its reason), while an OPTIONS
// probe asks Refusing and gets 200: a pacing node still takes calls, and
// a dispatcher that took it out would move all its traffic away.
func TestPacingRefusesInvitesNotProbes(t *testing.T) {
	adm := &pacingAdmission{}
	srv, addr := startAdmitted(t, nopHandler{}, adm)
	got := rawRequest(t, addr, "INVITE", "paced-1")
	if !strings.HasPrefix(got, "SIP/2.0 503 ") || header(got, "Retry-After") != "4" {
		t.Fatalf("INVITE while pacing: %q (Retry-After %q), want 503 with Retry-After 4", firstLine(got), header(got, "Retry-After"))
	}
	if got := rawRequest(t, addr, "OPTIONS", "paced-probe-1"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS while pacing: %q, want 200", firstLine(got))
	}
	if n := adm.admits.Load(); n != 1 {
		t.Errorf("Admit asked %d times: want once, for the INVITE only", n)
	}
	st := srv.Stats()
	if st.RefusedBy["pacing"] != 1 || st.ProbesRefused != 0 {
		t.Errorf("stats: refused by %v, probes refused %d: want pacing 1, probes 0", st.RefusedBy, st.ProbesRefused)
	}
}
