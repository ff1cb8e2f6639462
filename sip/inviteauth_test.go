package sip

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/icholy/digest"

	"github.com/cloak-voip/cloak/authlimit"
)

// userHandler rejects every call with 486 and remembers the
// authenticated user of each ("-" for none).
type userHandler struct {
	mu   sync.Mutex
	seen []string
}

func (h *userHandler) HandleCall(s *Session) {
	u := s.Identity().User
	if u == "" {
		u = "-"
	}
	h.mu.Lock()
	h.seen = append(h.seen, u)
	h.mu.Unlock()
	_ = s.Reject(486, "Busy Here")
}

func (h *userHandler) all() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.seen, ",")
}

// inviteAuthz answers the first challenge of res (a 401) as user with
// password for an INVITE to dst, with nonce-count nc.
func inviteAuthz(t *testing.T, res string, dst netip.AddrPort, user, password string, nc int) string {
	t.Helper()
	if statusLine(res) != "SIP/2.0 401 Unauthorized" {
		t.Fatalf("want a 401 challenge, got %q", statusLine(res))
	}
	ch, err := digest.ParseChallenge(header(res, "WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	cr, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: "sip:ivr@" + dst.String(), Username: user, Password: password, Count: nc, Cnonce: "0a4f113b"})
	if err != nil {
		t.Fatal(err)
	}
	return "Authorization: " + cr.String()
}

// TestInviteUserDigest: with InviteAuth, an INVITE whose From is a user
// of the Registrar (RFC 3261 §22.2) is challenged with 401 and reaches
// the call layer only with that user's password, carrying the user; a
// wrong password is refused and counted by the same limiter as
// REGISTER, and locks; a replayed nonce-count is refused (RFC 7616
// §3.4); one user's password does not let From claim another; a caller
// whose From is no user is never challenged and carries no user; off,
// nobody is challenged.
func TestInviteUserDigest(t *testing.T) {
	lim, err := authlimit.New(authlimit.Config{MaxFailures: 3, Backoff: -1})
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{"sup1": "sup-pw", "alice": "alice-pw"}
	reg := &Registrar{Limiter: lim, Password: func(u string) (string, bool) { p, ok := pw[u]; return p, ok }}
	h := &userHandler{}
	dst := startTrunked(t, h, Config{Registrar: reg, InviteAuth: true})
	const sup = `"Sup" <sip:sup1@127.0.0.1>`

	// No credentials: 401 with WWW-Authenticate, the call layer sees nothing.
	res := sendInviteFrom(t, "127.0.0.1", dst, "a1", sup)
	if statusLine(res) != "SIP/2.0 401 Unauthorized" || !strings.Contains(header(res, "WWW-Authenticate"), `realm="cloak"`) {
		t.Fatalf("no credentials: %q", res)
	}
	if h.all() != "" {
		t.Fatalf("an unauthenticated INVITE reached the call layer: %s", h.all())
	}
	// Wrong password: 401 stale=false, one failure counted.
	if got := sendInviteFrom(t, "127.0.0.1", dst, "a2", sup, inviteAuthz(t, res, dst, "sup1", "guess", 1)); statusLine(got) != "SIP/2.0 401 Unauthorized" || staleOf(got) != "false" {
		t.Fatalf("wrong password: %q", statusLine(got))
	}
	if n := lim.Stats().Failures; n != 1 {
		t.Fatalf("failures counted %d, want 1", n)
	}
	// The right one: the call goes on as sup1.
	res = sendInviteFrom(t, "127.0.0.1", dst, "a3", sup)
	good := inviteAuthz(t, res, dst, "sup1", "sup-pw", 1)
	if got := statusLine(sendInviteFrom(t, "127.0.0.1", dst, "a4", sup, good)); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("right password: %q", got)
	}
	if h.all() != "sup1" {
		t.Fatalf("calls seen %q, want sup1", h.all())
	}
	// The same credentials again (a captured INVITE replayed): refused.
	if got := sendInviteFrom(t, "127.0.0.1", dst, "a5", sup, good); statusLine(got) != "SIP/2.0 401 Unauthorized" || staleOf(got) != "false" {
		t.Fatalf("replayed nonce-count: %q", statusLine(got))
	}
	// alice's password does not make a call from sup1.
	res = sendInviteFrom(t, "127.0.0.1", dst, "a6", sup)
	if got := statusLine(sendInviteFrom(t, "127.0.0.1", dst, "a7", sup, inviteAuthz(t, res, dst, "alice", "alice-pw", 1))); got != "SIP/2.0 403 Forbidden" {
		t.Fatalf("alice's credentials on sup1's From: %q", got)
	}
	// A caller whose From names no user: never challenged, no user.
	if got := statusLine(sendInvite(t, "127.0.0.1", dst, "a8")); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("ordinary caller: %q", got)
	}
	if got := statusLine(sendInviteFrom(t, "127.0.0.1", dst, "a9", `<sip:mallory@127.0.0.1>`)); got != "SIP/2.0 486 Busy Here" {
		t.Fatalf("caller named as no user: %q", got)
	}
	if h.all() != "sup1,-,-" {
		t.Fatalf("calls seen %q, want sup1,-,-", h.all())
	}
	// Three wrong passwords lock the source: 403 unchecked.
	for i := range 3 {
		res = sendInviteFrom(t, "127.0.0.1", dst, "b"+itoa(i), sup)
		sendInviteFrom(t, "127.0.0.1", dst, "c"+itoa(i), sup, inviteAuthz(t, res, dst, "sup1", "guess", 1))
	}
	if got := statusLine(sendInviteFrom(t, "127.0.0.1", dst, "d1", sup)); got != "SIP/2.0 403 Forbidden" {
		t.Fatalf("locked source: %q", got)
	}

	// Off: From sup1 is an ordinary caller.
	h2 := &userHandler{}
	dst2 := startTrunked(t, h2, Config{Registrar: &Registrar{Password: reg.Password}})
	if got := statusLine(sendInviteFrom(t, "127.0.0.1", dst2, "e1", sup)); got != "SIP/2.0 486 Busy Here" || h2.all() != "-" {
		t.Fatalf("invite_auth off: %q, seen %q", got, h2.all())
	}
}

// staleOf is the stale parameter of a raw 401's first challenge.
func staleOf(res string) string {
	v := strings.ToLower(header(res, "WWW-Authenticate"))
	switch {
	case strings.Contains(v, "stale=true"):
		return "true"
	case strings.Contains(v, "stale=false"):
		return "false"
	}
	return ""
}
