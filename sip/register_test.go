package sip

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

type nopHandler struct{}

func (nopHandler) HandleCall(s *Session) { _ = s.Reject(480, "Temporarily Unavailable") }

func freeUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestRegisterDigest: REGISTER is challenged (401, qop=auth), accepted with
// the right password (RFC 3261 §22.4, RFC 2617), refused with a wrong one,
// and Expires: 0 logs the agent out.
func TestRegisterDigest(t *testing.T) {
	var mu sync.Mutex
	type binding struct {
		user, contact string
		exp           time.Duration
	}
	var got []binding
	reg := &Registrar{
		Password: func(u string) (string, bool) { return "s3cret", u == "alice" },
		OnBinding: func(u, c string, e time.Duration) {
			mu.Lock()
			got = append(got, binding{u, c, e})
			mu.Unlock()
		},
	}
	addr := freeUDP(t)
	srv, err := NewServer(Config{Listen: addr, Transports: []string{"udp"}, Registrar: reg, Log: zerolog.Nop()}, nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	ua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	defer ua.Close()
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	register := func(user, password string, expires string) int {
		t.Helper()
		req := siplib.NewRequest(siplib.REGISTER, siplib.Uri{Host: addr.Addr().String(), Port: int(addr.Port())})
		req.AppendHeader(&siplib.ToHeader{Address: siplib.Uri{User: user, Host: "127.0.0.1"}})
		req.AppendHeader(&siplib.ContactHeader{Address: siplib.Uri{User: user, Host: "127.0.0.1", Port: 5099}})
		req.AppendHeader(siplib.NewHeader("Expires", expires))
		res, err := cli.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 401 {
			t.Fatalf("first REGISTER got %d, want a 401 challenge", res.StatusCode)
		}
		if h := res.GetHeader("WWW-Authenticate"); h == nil {
			t.Fatal("401 without WWW-Authenticate")
		}
		res, err = cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	if code := register("alice", "s3cret", "300"); code != 200 {
		t.Fatalf("right password: %d", code)
	}
	if code := register("alice", "wrong", "300"); code != 401 {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	if code := register("mallory", "s3cret", "300"); code != 401 {
		t.Fatalf("unknown user: %d, want 401", code)
	}
	if code := register("alice", "s3cret", "0"); code != 200 {
		t.Fatalf("unregister: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].user != "alice" || got[0].exp != 300*time.Second || got[0].contact == "" || got[1].exp != 0 {
		t.Fatalf("bindings %+v", got)
	}
}
