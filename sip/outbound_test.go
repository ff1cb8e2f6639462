package sip

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// answerHandler answers every call and hands its session to the test,
// returning when the call ends.
type answerHandler struct{ sessions chan *Session }

func (h answerHandler) HandleCall(s *Session) {
	if _, err := s.Answer(LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 40000}); err != nil {
		return
	}
	h.sessions <- s
	<-s.Done()
}

func startServer(t *testing.T, h Handler) (*Server, netip.AddrPort) {
	t.Helper()
	addr := freeUDP(t)
	srv, err := NewServer(Config{Listen: addr, Transports: []string{"udp"}, Log: zerolog.Nop()}, h)
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

func legCount(s *Server) int {
	n := 0
	s.legs.Range(func(_, _ any) bool { n++; return true })
	return n
}

// waitLegs waits for the server's leg table to hold n legs: the table is
// pruned from a context.AfterFunc, which runs just after the dialog ends.
func waitLegs(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for legCount(s) != n {
		if time.Now().After(deadline) {
			t.Fatalf("legs: %d, want %d", legCount(s), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLegForgottenWhenDialogEnds: an outbound leg is looked up while its
// dialog is up and dropped from the table once it ends, whichever side
// hangs up; its Context ends with it.
func TestLegForgottenWhenDialogEnds(t *testing.T) {
	far := answerHandler{sessions: make(chan *Session, 2)}
	_, farAddr := startServer(t, far)
	near, nearAddr := startServer(t, nopHandler{})
	target := "sip:agent@" + farAddr.String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, farHangsUp := range []bool{true, false} {
		leg, err := near.Dial(ctx, target, DialOptions{Local: LocalSDP{Addr: nearAddr.Addr(), Port: 40002}, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		sess := <-far.sessions
		if got := legCount(near); got != 1 {
			t.Fatalf("legs while up: %d, want 1", got)
		}
		if leg.Context().Err() != nil {
			t.Fatal("leg context ended while the call is up")
		}
		if farHangsUp {
			if err := sess.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := leg.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-leg.Done():
		case <-ctx.Done():
			t.Fatal("leg did not end")
		}
		if leg.Context().Err() == nil {
			t.Fatal("leg context still up after Done")
		}
		select {
		case <-sess.Context().Done():
		case <-ctx.Done():
			t.Fatal("far session did not end")
		}
		waitLegs(t, near, 0)
		want := "bye"
		if !farHangsUp {
			want = "hangup"
		}
		if got := leg.EndReason(); got != want {
			t.Errorf("end reason %q, want %q", got, want)
		}
	}
}

// TestReinviteOfferAnswer: a re-INVITE is answered from its own offer (RFC
// 3264 §8). One whose only codec cloak lacks (G.729) is refused with 488
// and the session keeps its media; one offering sendonly is answered
// recvonly (§6.1) and the session's media says so.
func TestReinviteOfferAnswer(t *testing.T) {
	far := answerHandler{sessions: make(chan *Session, 1)}
	_, farAddr := startServer(t, far)
	near, nearAddr := startServer(t, nopHandler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leg, err := near.Dial(ctx, "sip:agent@"+farAddr.String(), DialOptions{Local: LocalSDP{Addr: nearAddr.Addr(), Port: 40002}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = leg.Hangup(ctx) }()
	sess := <-far.sessions
	before := sess.Media()

	reinvite := func(version int, codecLines, dir string) *siplib.Response {
		t.Helper()
		body := fmt.Sprintf("v=0\r\no=- 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n%sa=%s\r\n", version, codecLines, dir)
		req := siplib.NewRequest(siplib.INVITE, leg.d.InviteResponse.Contact().Address)
		req.AppendHeader(siplib.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte(body))
		res, err := leg.d.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.IsSuccess() {
			ack := siplib.NewRequest(siplib.ACK, leg.d.InviteResponse.Contact().Address)
			if err := leg.d.WriteRequest(ack); err != nil {
				t.Fatal(err)
			}
		}
		return res
	}

	res := reinvite(2, "m=audio 40010 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n", "sendrecv")
	if res.StatusCode != 488 {
		t.Fatalf("G.729-only re-INVITE: %d, want 488", res.StatusCode)
	}
	if got := sess.Media(); got != before {
		t.Fatalf("refused re-INVITE changed the media: %+v, was %+v", got, before)
	}

	res = reinvite(3, "m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", "sendonly")
	if res.StatusCode != 200 {
		t.Fatalf("sendonly re-INVITE: %d, want 200", res.StatusCode)
	}
	if !strings.Contains(string(res.Body()), "a=recvonly\r\n") {
		t.Fatalf("answer to sendonly lacks a=recvonly:\n%s", res.Body())
	}
	if got := sess.Media().Direction; got != audio.RecvOnly {
		t.Fatalf("session direction %v, want recvonly", got)
	}
}
