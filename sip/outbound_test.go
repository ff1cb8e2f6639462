package sip

import (
	"context"
	"net/netip"
	"testing"
	"time"

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
