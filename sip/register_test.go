package sip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/rs/zerolog"

	"github.com/cloak-voip/cloak/authlimit"
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
		OnBinding: func(u, c string, _ []string, e time.Duration) {
			mu.Lock()
			got = append(got, binding{u, c, e})
			mu.Unlock()
		},
	}
	addr, cli, ctx := startRegistrar(t, reg)
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

// startRegistrar runs a UDP server with reg on a free loopback port for
// the test's length and returns its address, a client and a context that
// ends with the test (10 s at most).
func startRegistrar(t *testing.T, reg *Registrar) (netip.AddrPort, *sipgo.Client, context.Context) {
	t.Helper()
	addr := freeUDP(t)
	srv, err := NewServer(Config{Listen: addr, Transports: []string{"udp"}, Registrar: reg, Log: zerolog.Nop()}, nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	t.Cleanup(func() { ua.Close() })
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	return addr, cli, ctx
}

// syncBuf is a log sink safe for the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testClock is a manual clock shared by the registrar and the limiter.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// regEnv is a registrar on loopback and a client that builds its own
// Authorization headers, so tests can replay and forge them.
type regEnv struct {
	t     *testing.T
	ctx   context.Context
	addr  netip.AddrPort
	cli   *sipgo.Client
	reg   *Registrar
	clock *testClock
	log   *syncBuf
}

func newRegEnv(t *testing.T, lim *authlimit.Config) *regEnv {
	t.Helper()
	e := &regEnv{t: t, clock: &testClock{t: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)}, log: &syncBuf{}}
	e.reg = &Registrar{
		Password: func(u string) (string, bool) { return "s3cret", u == "alice" },
		Now:      e.clock.now,
	}
	if lim != nil {
		lim.Now = e.clock.now
		l, err := authlimit.New(*lim)
		if err != nil {
			t.Fatal(err)
		}
		e.reg.Limiter = l
	}
	e.addr = freeUDP(t)
	srv, err := NewServer(Config{Listen: e.addr, Transports: []string{"udp"}, Registrar: e.reg, Log: zerolog.New(e.log)}, nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	e.ctx = ctx
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	t.Cleanup(func() { _ = ua.Close() })
	e.cli, _ = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	return e
}

func (e *regEnv) uri() siplib.Uri {
	return siplib.Uri{Host: e.addr.Addr().String(), Port: int(e.addr.Port())}
}

// send sends one REGISTER for user with the given Authorization value
// ("" for none) in a new transaction.
func (e *regEnv) send(user, auth string) *siplib.Response {
	e.t.Helper()
	req := siplib.NewRequest(siplib.REGISTER, e.uri())
	req.AppendHeader(&siplib.ToHeader{Address: siplib.Uri{User: user, Host: "127.0.0.1"}})
	req.AppendHeader(&siplib.ContactHeader{Address: siplib.Uri{User: user, Host: "127.0.0.1", Port: 5099}})
	req.AppendHeader(siplib.NewHeader("Expires", "300"))
	if auth != "" {
		req.AppendHeader(siplib.NewHeader("Authorization", auth))
	}
	res, err := e.cli.Do(e.ctx, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// challenges sends a REGISTER without credentials and returns the
// WWW-Authenticate values of its 401.
func (e *regEnv) challenges() []*digest.Challenge {
	e.t.Helper()
	res := e.send("alice", "")
	if res.StatusCode != 401 {
		e.t.Fatalf("no 401 challenge: %d", res.StatusCode)
	}
	var out []*digest.Challenge
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			e.t.Fatalf("challenge %q: %v", h.Value(), err)
		}
		out = append(out, c)
	}
	return out
}

// authorization computes the Authorization value for a challenge.
func (e *regEnv) authorization(c *digest.Challenge, user, password string, nc int) string {
	e.t.Helper()
	cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: e.uriString(),
		Username: user, Password: password, Count: nc, Cnonce: "0a4f113b"})
	if err != nil {
		e.t.Fatal(err)
	}
	return cred.String()
}

// stale returns the stale parameter of a 401 ("" when absent), and fails
// unless every challenge agrees.
func stale(t *testing.T, res *siplib.Response) string {
	t.Helper()
	var out []string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		v := strings.ToLower(h.Value())
		switch {
		case strings.Contains(v, "stale=true"):
			out = append(out, "true")
		case strings.Contains(v, "stale=false"):
			out = append(out, "false")
		default:
			out = append(out, "")
		}
	}
	if len(out) != 2 || out[0] != out[1] {
		t.Fatalf("challenges %v, want two that agree", res.GetHeaders("WWW-Authenticate"))
	}
	return out[0]
}

// TestRegisterOffersSHA256AndMD5: the 401 carries two challenges sharing a
// nonce, SHA-256 first (RFC 7616 §3.7, RFC 8760), and both are verified.
func TestRegisterOffersSHA256AndMD5(t *testing.T) {
	e := newRegEnv(t, nil)
	chals := e.challenges()
	if len(chals) != 2 || chals[0].Algorithm != "SHA-256" || chals[1].Algorithm != "MD5" ||
		chals[0].Nonce != chals[1].Nonce || !chals[0].SupportsQOP("auth") || !chals[1].SupportsQOP("auth") {
		t.Fatalf("challenges %+v %+v", chals[0], chals[1])
	}
	for _, i := range []int{0, 1} {
		c := e.challenges()[i]
		if res := e.send("alice", e.authorization(c, "alice", "s3cret", 1)); res.StatusCode != 200 {
			t.Fatalf("%s, right password: %d", c.Algorithm, res.StatusCode)
		}
		c = e.challenges()[i]
		if res := e.send("alice", e.authorization(c, "alice", "wrong", 1)); res.StatusCode != 401 || stale(t, res) != "false" {
			t.Fatalf("%s, wrong password: %d", c.Algorithm, res.StatusCode)
		}
	}
	// An algorithm not offered is not accepted.
	c := e.challenges()[0]
	c.Algorithm = "SHA-512"
	if res := e.send("alice", e.authorization(c, "alice", "s3cret", 1)); res.StatusCode != 401 {
		t.Fatalf("SHA-512: %d, want 401", res.StatusCode)
	}
}

// TestRegisterReplay: a nonce-count at or below the highest seen on a
// nonce is refused with a fresh challenge, stale=false (RFC 7616 §3.4,
// RFC 2617 §3.2.2); a higher one is accepted.
func TestRegisterReplay(t *testing.T) {
	e := newRegEnv(t, nil)
	c := e.challenges()[1] // MD5: the replay check is the same for both
	auth3 := e.authorization(c, "alice", "s3cret", 3)
	if res := e.send("alice", auth3); res.StatusCode != 200 {
		t.Fatalf("first use: %d", res.StatusCode)
	}
	if res := e.send("alice", auth3); res.StatusCode != 401 || stale(t, res) != "false" {
		t.Fatalf("same nonce, nc and response again: %d, want 401 stale=false", res.StatusCode)
	}
	if res := e.send("alice", e.authorization(c, "alice", "s3cret", 2)); res.StatusCode != 401 || stale(t, res) != "false" {
		t.Fatalf("lower nc: %d, want 401 stale=false", res.StatusCode)
	}
	if res := e.send("alice", e.authorization(c, "alice", "s3cret", 4)); res.StatusCode != 200 {
		t.Fatalf("higher nc: %d, want 200", res.StatusCode)
	}
	if strings.Contains(e.log.String(), "s3cret") || strings.Contains(e.log.String(), "response=") {
		t.Fatalf("log holds credentials:\n%s", e.log.String())
	}
}

// TestRegisterStaleNonce: a right response on an expired nonce, or on one
// we did not issue (as after a restart), gets stale=true (RFC 7616 §3.3);
// a wrong one gets stale=false whatever the nonce.
func TestRegisterStaleNonce(t *testing.T) {
	e := newRegEnv(t, nil)
	c := e.challenges()[0]
	e.clock.add(defaultNonceLifetime + time.Second)
	if res := e.send("alice", e.authorization(c, "alice", "s3cret", 1)); res.StatusCode != 401 || stale(t, res) != "true" {
		t.Fatalf("expired nonce, right password: %d, want 401 stale=true", res.StatusCode)
	}
	if res := e.send("alice", e.authorization(c, "alice", "wrong", 1)); res.StatusCode != 401 || stale(t, res) != "false" {
		t.Fatalf("expired nonce, wrong password: %d, want 401 stale=false", res.StatusCode)
	}
	forged := *c
	forged.Nonce = strings.Repeat("ab", nonceLen)
	if res := e.send("alice", e.authorization(&forged, "alice", "s3cret", 1)); res.StatusCode != 401 || stale(t, res) != "true" {
		t.Fatalf("nonce not ours, right password: %d, want 401 stale=true", res.StatusCode)
	}
	forged.Nonce = "garbled"
	if res := e.send("alice", e.authorization(&forged, "alice", "badpass9", 1)); res.StatusCode != 401 || stale(t, res) != "false" {
		t.Fatalf("nonce not ours, wrong password: %d, want 401 stale=false", res.StatusCode)
	}
	// The challenge the stale 401 carried works at once.
	if res := e.send("alice", e.authorization(e.challenges()[0], "alice", "s3cret", 1)); res.StatusCode != 200 {
		t.Fatalf("fresh nonce: %d", res.StatusCode)
	}
}

// TestNonceTableBounded: challenges cost no memory; used nonces are capped,
// and one forgotten early is answered stale, never accepted again.
func TestNonceTableBounded(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	r := &Registrar{MaxNonces: 8, Now: func() time.Time { return now }}
	for range 10000 {
		r.challenge(now, "")
	}
	if len(r.used) != 0 {
		t.Fatalf("%d nonces remembered after challenges alone", len(r.used))
	}
	var nonces []string
	for range 100 {
		now = now.Add(time.Millisecond)
		n := r.newNonce(now)
		issued, ok := r.nonceIssued(n)
		if !ok || !issued.Equal(now) {
			t.Fatalf("own nonce not recognised: %v %v", issued, ok)
		}
		if got := r.useNonce(n, issued, 1, now); got != authOK {
			t.Fatalf("first use: %v", got)
		}
		nonces = append(nonces, n)
		if len(r.used) > 8 || len(r.order)-r.head > 8 {
			t.Fatalf("%d used nonces, cap 8", len(r.used))
		}
	}
	issued, _ := r.nonceIssued(nonces[0])
	if got := r.useNonce(nonces[0], issued, 2, now); got != authStale {
		t.Fatalf("forgotten nonce: %v, want stale", got)
	}
	issued, _ = r.nonceIssued(nonces[99])
	if got := r.useNonce(nonces[99], issued, 1, now); got != authReplay {
		t.Fatalf("remembered nonce, same nc: %v, want replay", got)
	}
	if _, ok := r.nonceIssued(strings.ToUpper(nonces[99])); ok {
		t.Fatal("upper-cased nonce accepted as ours")
	}
}

// TestRegisterLimiter: failures back off, then lock the source with one
// log line fail2ban can match; during the lock even the right password is
// refused; the lock expires and a success resets the count.
func TestRegisterLimiter(t *testing.T) {
	e := newRegEnv(t, &authlimit.Config{MaxFailures: 3, LockFor: time.Minute, Backoff: time.Second})
	wrong := func() int {
		return e.send("alice", e.authorization(e.challenges()[0], "alice", "badpass9", 1)).StatusCode
	}
	right := func() int {
		return e.send("alice", e.authorization(e.challenges()[0], "alice", "s3cret", 1)).StatusCode
	}
	if code := wrong(); code != 401 {
		t.Fatalf("first failure: %d", code)
	}
	if code := right(); code != 403 {
		t.Fatalf("right password inside the 1 s back-off: %d, want 403", code)
	}
	e.clock.add(10 * time.Second)
	spare := e.challenges()[1] // taken before the lock, for the right password during it
	if code := wrong(); code != 403 {
		t.Fatalf("third failure: %d, want 403 (locked)", code)
	}
	for nc := range 5 {
		if code := e.send("alice", e.authorization(spare, "alice", "s3cret", nc+1)).StatusCode; code != 403 {
			t.Fatalf("right password during the lock: %d, want 403", code)
		}
		if res := e.send("alice", ""); res.StatusCode != 403 {
			t.Fatalf("locked source without credentials: %d, want 403", res.StatusCode)
		}
	}
	log := e.log.String()
	if n := strings.Count(log, "auth locked"); n != 1 {
		t.Fatalf("%d lock lines, want 1:\n%s", n, log)
	}
	if !strings.Contains(log, `"message":"auth locked source=127.0.0.1 user=\"alice\" failures=3 lock_for=1m0s scope=ip,user"`) {
		t.Fatalf("lock line not in the format docs/fail2ban expects:\n%s", log)
	}
	if strings.Contains(log, "s3cret") || strings.Contains(log, "badpass9") || strings.Contains(log, "Digest") {
		t.Fatalf("log holds credentials:\n%s", log)
	}
	e.clock.add(time.Minute)
	if code := right(); code != 200 {
		t.Fatalf("after the lock: %d, want 200", code)
	}
	// The success reset the count: two failures in a row do not lock.
	if code := wrong(); code != 401 {
		t.Fatalf("failure after success: %d", code)
	}
	e.clock.add(2 * time.Second)
	if code := wrong(); code != 401 {
		t.Fatalf("second failure after success: %d, want 401 (count reset)", code)
	}
	if st := e.reg.Limiter.Stats(); st.Locks != 2 { // source and user, one line
		t.Fatalf("limiter stats %+v", st)
	}
}

func (e *regEnv) uriString() string { u := e.uri(); return u.String() }

// TestRegisterAlgorithmsConfigured: only the algorithms configured are
// offered, in their order, and only they are accepted.
func TestRegisterAlgorithmsConfigured(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	r := &Registrar{Algorithms: []string{"MD5"}, Now: func() time.Time { return now },
		Password: func(u string) (string, bool) { return "s3cret", u == "alice" }}
	hs := r.challenge(now, "")
	if len(hs) != 1 || !strings.Contains(hs[0].Value(), "algorithm=MD5") {
		t.Fatalf("challenges %v, want one MD5", hs)
	}
	c, err := digest.ParseChallenge(hs[0].Value())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		alg  string
		want authResult
	}{{"SHA-256", authNone}, {"MD5", authOK}, {"", authReplay}} {
		c.Algorithm = tt.alg
		cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1", Username: "alice",
			Password: "s3cret", Count: 1, Cnonce: "x1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.check(cred, "REGISTER", now); got != tt.want {
			t.Errorf("algorithm %q: %v, want %v", tt.alg, got, tt.want)
		}
	}
}

// TestLogSafeUser: a username cannot forge the fields fail2ban reads.
func TestLogSafeUser(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                        "alice",
		"a.b-c_d+e@x":                  "a.b-c_d+e@x",
		`x" source=6.6.6.6 user="`:     "x__source_6.6.6.6_user__",
		"auth locked source=6.6.6.6\n": "auth_locked_source_6.6.6.6_",
		"caf\xc3\xa9":                  "caf__",
	} {
		if got := logSafeUser(in); got != want {
			t.Errorf("logSafeUser(%q) = %q, want %q", in, got, want)
		}
	}
}

// rawRegister sends one REGISTER for user from conn (any loopback address)
// and returns the status of its response.
func (e *regEnv) rawRegister(conn *net.UDPConn, user, auth string) int {
	e.t.Helper()
	local := conn.LocalAddr().(*net.UDPAddr)
	branch := fmt.Sprintf("z9hG4bK-raw-%d", time.Now().UnixNano())
	msg := fmt.Sprintf("REGISTER %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=r1\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: raw-%s\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:%s@%s>\r\nExpires: 60\r\nAuthorization: %s\r\nContent-Length: 0\r\n\r\n",
		e.uriString(), local, branch, user, user, branch, user, local, auth)
	if _, err := conn.WriteToUDP([]byte(msg), net.UDPAddrFromAddrPort(e.addr)); err != nil {
		e.t.Fatal(err)
	}
	buf := make([]byte, 65536)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		e.t.Fatalf("no response from %v: %v", local, err)
	}
	var code int
	if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &code); err != nil {
		e.t.Fatalf("response %q: %v", buf[:n], err)
	}
	return code
}

// TestRegisterUserLockSparesItsPhone: guesses from one source lock the
// username, yet the source that last registered it with the right password
// still registers (an attacker cannot keep an agent logged out); a source
// that never did is refused.
func TestRegisterUserLockSparesItsPhone(t *testing.T) {
	e := newRegEnv(t, &authlimit.Config{MaxFailures: 3, LockFor: time.Minute, Backoff: -1})
	bind := func(ip string) *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	phone, attacker, stranger := bind("127.0.0.5"), bind("127.0.0.6"), bind("127.0.0.7")
	if code := e.rawRegister(phone, "alice", e.authorization(e.challenges()[0], "alice", "s3cret", 1)); code != 200 {
		t.Fatalf("phone: %d", code)
	}
	spare := e.challenges()[0]
	for i := range 3 {
		if code := e.rawRegister(attacker, "alice", e.authorization(e.challenges()[0], "alice", "badpass9", 1)); code != 401 && i < 2 || code != 403 && i == 2 {
			t.Fatalf("guess %d: %d", i+1, code)
		}
	}
	if code := e.rawRegister(stranger, "alice", e.authorization(spare, "alice", "s3cret", 1)); code != 403 {
		t.Fatalf("right password from a new source while the user is locked: %d, want 403", code)
	}
	if code := e.rawRegister(phone, "alice", e.authorization(spare, "alice", "s3cret", 2)); code != 200 {
		t.Fatalf("right password from the user's own phone while the user is locked: %d, want 200", code)
	}
	if code := e.rawRegister(attacker, "alice", e.authorization(spare, "alice", "s3cret", 3)); code != 403 {
		t.Fatalf("right password from the locked source: %d, want 403", code)
	}
	if n := strings.Count(e.log.String(), "auth locked source=127.0.0.6 "); n != 1 {
		t.Fatalf("%d lock lines for the attacker, want 1:\n%s", n, e.log.String())
	}
}

// FuzzRegisterCredentials: any Authorization value is parsed and checked
// without a panic, and never authenticates without the password.
func FuzzRegisterCredentials(f *testing.F) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	r := &Registrar{Now: func() time.Time { return now },
		Password: func(u string) (string, bool) { return "s3cret", u == "alice" }}
	nonce := r.newNonce(now)
	f.Add(`Digest username="alice", realm="cloak", nonce="` + nonce + `", uri="sip:x", response="00", algorithm=MD5, cnonce="c", qop=auth, nc=00000001`)
	f.Add(`Digest username="alice", realm="cloak", nonce="` + nonce + `", uri="sip:x", response="00", algorithm=SHA-256, cnonce="c", qop=auth, nc=ffffffff`)
	f.Add(`Digest username="", nc=-1, qop=auth-int, userhash=true`)
	f.Add(`Basic YWxpY2U6czNjcmV0`)
	f.Fuzz(func(t *testing.T, v string) {
		creds, err := digest.ParseCredentials(v)
		if err != nil {
			return
		}
		if got := r.check(creds, "REGISTER", now); got == authOK || got == authReplay || got == authStale {
			t.Fatalf("%q: %v without the password", v, got)
		}
	})
}
