package e2e

import (
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawUA speaks REGISTER over a bare UDP socket, building every header and
// digest itself, so a test can replay and forge what a library would not.
type rawUA struct {
	t      *testing.T
	conn   *net.UDPConn
	server string // host:port of cloak
	port   int    // our local port
	via    string // the host our Via names
	cseq   int
}

// rawRes is a response as read off the wire.
type rawRes struct {
	status int
	branch string
	auth   []string // WWW-Authenticate values, in order
}

// newRawUA binds a socket on the loopback address ip; its Via names via.
func newRawUA(t *testing.T, c *cloak, ip, via string) *rawUA {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawUA{t: t, conn: conn, server: fmt.Sprintf("127.0.0.1:%d", c.sipPort), port: conn.LocalAddr().(*net.UDPAddr).Port, via: via}
}

func (u *rawUA) uri() string { return "sip:" + u.server }

// send writes one REGISTER for demo in a new transaction and returns its
// branch. contactPort names the binding; auth is the Authorization value
// ("" for none).
func (u *rawUA) send(contactPort int, auth string) string {
	u.t.Helper()
	u.cseq++
	branch := fmt.Sprintf("z9hG4bK-e2e-%d-%d", u.cseq, rand.Uint64())
	var b strings.Builder
	fmt.Fprintf(&b, "REGISTER %s SIP/2.0\r\n", u.uri())
	// rport (RFC 3581) brings the response back to the socket whatever
	// the Via says.
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s:%d;branch=%s;rport\r\n", u.via, u.port, branch)
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: <sip:demo@127.0.0.1>;tag=e2e1\r\n")
	b.WriteString("To: <sip:demo@127.0.0.1>\r\n")
	fmt.Fprintf(&b, "Call-ID: hostile-register-%d@127.0.0.1\r\n", u.port)
	fmt.Fprintf(&b, "CSeq: %d REGISTER\r\n", u.cseq)
	fmt.Fprintf(&b, "Contact: <sip:demo@%s:%d>\r\n", u.via, contactPort)
	b.WriteString("Expires: 60\r\n")
	if auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", auth)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	dst, err := net.ResolveUDPAddr("udp4", u.server)
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.conn.WriteToUDP([]byte(b.String()), dst); err != nil {
		u.t.Fatal(err)
	}
	return branch
}

// read returns the next response, or an error after the deadline.
func (u *rawUA) read(deadline time.Time) (rawRes, error) {
	buf := make([]byte, 65536)
	_ = u.conn.SetReadDeadline(deadline)
	n, _, err := u.conn.ReadFromUDP(buf)
	if err != nil {
		return rawRes{}, err
	}
	return parseRawRes(string(buf[:n]))
}

var errNotResponse = errors.New("not a SIP response")

func parseRawRes(msg string) (rawRes, error) {
	var r rawRes
	sc := bufio.NewScanner(strings.NewReader(msg))
	if !sc.Scan() {
		return r, errNotResponse
	}
	f := strings.Fields(sc.Text())
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return r, fmt.Errorf("%w: %q", errNotResponse, sc.Text())
	}
	r.status, _ = strconv.Atoi(f[1])
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "www-authenticate":
			r.auth = append(r.auth, value)
		case "via", "v":
			if i := strings.Index(value, "branch="); i >= 0 {
				r.branch, _, _ = strings.Cut(value[i+len("branch="):], ";")
			}
		}
	}
	return r, nil
}

// do sends one REGISTER and waits for its response.
func (u *rawUA) do(contactPort int, auth string) rawRes {
	u.t.Helper()
	branch := u.send(contactPort, auth)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := u.read(deadline)
		if err != nil {
			u.t.Fatalf("no response to REGISTER %s: %v", branch, err)
		}
		if r.branch == branch {
			return r
		}
	}
}

// challenge is one parsed WWW-Authenticate.
type challenge struct{ realm, nonce, algorithm string }

var (
	realmRE = regexp.MustCompile(`realm="([^"]*)"`)
	nonceRE = regexp.MustCompile(`nonce="([^"]*)"`)
	algRE   = regexp.MustCompile(`algorithm=([A-Za-z0-9-]+)`)
)

func parseChallenges(t *testing.T, r rawRes) []challenge {
	t.Helper()
	var out []challenge
	for _, v := range r.auth {
		m1, m2, m3 := realmRE.FindStringSubmatch(v), nonceRE.FindStringSubmatch(v), algRE.FindStringSubmatch(v)
		if m1 == nil || m2 == nil || m3 == nil || !strings.Contains(v, `qop="auth"`) {
			t.Fatalf("challenge %q lacks realm, nonce, algorithm or qop=auth", v)
		}
		out = append(out, challenge{m1[1], m2[1], m3[1]})
	}
	return out
}

// digestAuth computes an Authorization value by RFC 7616 §3.4.1 (qop=auth),
// independently of the digest library cloak uses.
func (u *rawUA) digestAuth(c challenge, user, password string, nc int) string {
	var h func() hash.Hash
	switch c.algorithm {
	case "MD5":
		h = md5.New
	case "SHA-256":
		h = sha256.New
	default:
		u.t.Fatalf("algorithm %q", c.algorithm)
	}
	H := func(s string) string { x := h(); x.Write([]byte(s)); return hex.EncodeToString(x.Sum(nil)) }
	cnonce := "e2ecnonce"
	ncs := fmt.Sprintf("%08x", nc)
	ha1 := H(user + ":" + c.realm + ":" + password)
	ha2 := H("REGISTER:" + u.uri())
	resp := H(ha1 + ":" + c.nonce + ":" + ncs + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="%s", qop=auth, nc=%s`,
		user, c.realm, c.nonce, u.uri(), resp, c.algorithm, cnonce, ncs)
}

// staleOf returns "true", "false" or "" for a 401's challenges, failing
// unless they agree.
func staleOf(t *testing.T, r rawRes) string {
	t.Helper()
	got := ""
	for i, v := range r.auth {
		s := ""
		switch {
		case strings.Contains(v, "stale=true"):
			s = "true"
		case strings.Contains(v, "stale=false"):
			s = "false"
		}
		if i > 0 && s != got {
			t.Fatalf("challenges disagree on stale: %q", r.auth)
		}
		got = s
	}
	return got
}

// fail2banRegex turns the failregex of docs/fail2ban/cloak-sip.conf into a
// Go regexp, <HOST> becoming a capture of an IPv4 or IPv6 address.
func fail2banRegex(t *testing.T) *regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "fail2ban", "cloak-sip.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var fr string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "failregex"); ok {
			fr = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "="))
		}
	}
	if fr == "" || !strings.Contains(fr, "<HOST>") {
		t.Fatalf("no failregex with <HOST> in cloak-sip.conf: %q", fr)
	}
	host := `(?P<host>(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+)`
	return regexp.MustCompile(strings.ReplaceAll(fr, "<HOST>", host))
}

// fail2banCheck runs the real fail2ban-regex over cloak's log when it is
// installed (it is not among the test tools: the package brings a daemon),
// and requires exactly one match, on 127.0.0.1.
func fail2banCheck(t *testing.T, c *cloak) {
	t.Helper()
	bin, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		t.Log("fail2ban-regex not installed: the filter was checked by its converted failregex only")
		return
	}
	out, err := exec.Command(bin, c.logFile, filepath.Join(root, "docs", "fail2ban", "cloak-sip.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^Lines: \d+ lines, 0 ignored, 1 matched`).Match(out) {
		t.Fatalf("fail2ban-regex did not match the lock line once:\n%s", out)
	}
	t.Logf("%s matched the lock line once", bin)
}

// TestHostileRegister plays REGISTER attacks against a real cloak: a
// replayed digest (same nonce, nc and response) and a lower nc are refused,
// SHA-256 and MD5 both verify, 300 wrong passwords lock the source and the
// user at once (the right password is refused during the lock except from
// the agent's own phone; one lock line, which the fail2ban filter matches),
// and once the lock expires sipp registers from the locked source.
func TestHostileRegister(t *testing.T) {
	requireTools(t, "sipp")
	const lockFor = 4 * time.Second
	// MD5 first: sipp 3.6 answers only the first challenge and knows only
	// MD5. The raw client below answers the SHA-256 one.
	c := startCloak(t, cloakOpts{admin: true, sipExtra: "  auth:\n    max_failures: 10\n    lock_for: 4s\n    backoff: 1s\n    algorithms: [MD5, SHA-256]\n"})
	// The agent's phone, an attacker whose Via names another address (the
	// limiter must key on the packet's source, never on what the message
	// says), and a source that never registered.
	agent := newRawUA(t, c, "127.0.0.5", "127.0.0.5")
	attacker := newRawUA(t, c, "127.0.0.1", "127.0.0.2")
	stranger := newRawUA(t, c, "127.0.0.6", "127.0.0.6")
	const password = "demo" // the demo agent's, from the default config
	const agentPort, attackerPort = 5099, 6666

	chals := parseChallenges(t, agent.do(agentPort, ""))
	if len(chals) != 2 || chals[0].algorithm != "MD5" || chals[1].algorithm != "SHA-256" || chals[0].nonce != chals[1].nonce {
		t.Fatalf("challenges %+v, want MD5 then SHA-256 on one nonce", chals)
	}
	sha := chals[1]

	// Replay: the agent registers with SHA-256; an attacker who captured
	// that REGISTER sends the same Authorization with its own Contact.
	auth1 := agent.digestAuth(sha, "demo", password, 1)
	if r := agent.do(agentPort, auth1); r.status != 200 {
		t.Fatalf("SHA-256, nc=1: %d, want 200", r.status)
	}
	if r := attacker.do(attackerPort, auth1); r.status != 401 || staleOf(t, r) != "false" {
		t.Fatalf("replayed nonce+nc+response: %d stale=%q, want 401 stale=false", r.status, staleOf(t, r))
	}
	if r := agent.do(agentPort, agent.digestAuth(sha, "demo", password, 2)); r.status != 200 {
		t.Fatalf("SHA-256, nc=2: %d, want 200", r.status)
	}
	if r := attacker.do(attackerPort, agent.digestAuth(sha, "demo", password, 1)); r.status != 401 || staleOf(t, r) != "false" {
		t.Fatalf("lower nc: %d, want 401 stale=false", r.status)
	}
	md5c := parseChallenges(t, agent.do(agentPort, ""))[0]
	if r := agent.do(agentPort, agent.digestAuth(md5c, "demo", password, 1)); r.status != 200 {
		t.Fatalf("MD5: %d, want 200", r.status)
	}
	if n := strings.Count(c.log(), "REGISTER refused: nonce-count replayed"); n != 2 {
		t.Errorf("%d replay lines in the log, want 2", n)
	}

	// Nonces taken before the flood, for the right password during it.
	spare := parseChallenges(t, agent.do(agentPort, ""))[0]
	flood := parseChallenges(t, attacker.do(attackerPort, ""))[0]

	// 300 wrong passwords, as fast as cloak answers them: bursts of 50,
	// each sent at once (a burst of 300 can overflow a loaded cloak's UDP
	// receive buffer, and a lost request proves nothing).
	const wrongPassword = "not-the-pw-7"
	start := time.Now()
	counts := map[int]int{}
	deadline := time.Now().Add(20 * time.Second)
	for burst := range 6 {
		for i := range 50 {
			attacker.send(attackerPort, attacker.digestAuth(flood, "demo", wrongPassword, 50*burst+i+1))
		}
		for range 50 {
			r, err := attacker.read(deadline)
			if err != nil {
				t.Fatalf("burst %d: responses so far %v: %v", burst+1, counts, err)
			}
			counts[r.status]++
		}
	}
	floodDone := time.Now()
	t.Logf("300 wrong passwords answered in %v: %v", floodDone.Sub(start), counts)
	if counts[200] != 0 || counts[401] < 1 || counts[401] > 10 || counts[401]+counts[403] != 300 {
		t.Fatalf("responses %v: want at most 10 401s (max_failures), the rest 403, no 200", counts)
	}

	// Locked: the right password and a bare REGISTER from the attacker's
	// source are refused, and so is the right password from a source that
	// never registered demo (the user is locked too); the agent's own
	// phone still registers.
	if r := attacker.do(attackerPort, attacker.digestAuth(spare, "demo", password, 1)); r.status != 403 {
		t.Fatalf("right password from the locked source: %d, want 403", r.status)
	}
	if r := attacker.do(attackerPort, ""); r.status != 403 {
		t.Fatalf("REGISTER without credentials from a locked source: %d, want 403", r.status)
	}
	if r := stranger.do(agentPort, stranger.digestAuth(spare, "demo", password, 2)); r.status != 403 {
		t.Fatalf("right password from a new source while demo is locked: %d, want 403", r.status)
	}
	if r := agent.do(agentPort, agent.digestAuth(spare, "demo", password, 3)); r.status != 200 {
		t.Fatalf("right password from demo's own phone during the lock: %d, want 200", r.status)
	}
	var stats map[string]any
	if err := apiGet(t, c, "/api/stats", &stats); err != nil {
		t.Fatal(err)
	}
	if stats["sip_auth_locks"] != float64(2) { // the source and the user
		t.Errorf("/api/stats sip_auth_locks = %v, want 2", stats["sip_auth_locks"])
	}

	// One lock line, in the format the fail2ban filter expects.
	if !c.waitLog("auth locked", 5*time.Second) {
		t.Fatal("no lock line in the log")
	}
	log := c.log()
	var lockLines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "auth locked") {
			lockLines = append(lockLines, l)
		}
	}
	if len(lockLines) != 1 {
		t.Fatalf("%d lock lines, want 1:\n%s", len(lockLines), strings.Join(lockLines, "\n"))
	}
	want := regexp.MustCompile(` WRN auth locked source=127\.0\.0\.1 user="demo" failures=10 lock_for=4s scope=ip,user$`)
	if !want.MatchString(lockLines[0]) {
		t.Fatalf("lock line %q does not match %v", lockLines[0], want)
	}
	f2b := fail2banRegex(t)
	m := f2b.FindStringSubmatch(lockLines[0])
	if m == nil || m[f2b.SubexpIndex("host")] != "127.0.0.1" {
		t.Fatalf("fail2ban failregex %v does not take 127.0.0.1 from %q", f2b, lockLines[0])
	}
	// A lock of the username alone bans nobody (same format, scope=user).
	if userOnly := strings.Replace(lockLines[0], "scope=ip,user", "scope=user", 1); f2b.MatchString(userOnly) {
		t.Fatalf("fail2ban failregex %v matches a user-only lock %q", f2b, userOnly)
	}
	if strings.Contains(log, "source=127.0.0.2") || strings.Contains(log, "source=127.0.0.5") {
		t.Fatal("lock keyed on the Via address, not the packet's source")
	}
	fail2banCheck(t, c)
	for _, secret := range []string{wrongPassword, "response=", "Digest ", "cnonce", flood.nonce} {
		if strings.Contains(log, secret) {
			t.Fatalf("log holds %q", secret)
		}
	}

	// After the lock, the real peer registers with its own digest code.
	time.Sleep(time.Until(floodDone.Add(lockFor + 300*time.Millisecond)))
	before := strings.Count(c.log(), "agent registered")
	runSipp(t, c, sippArgs{scenario: "register-auth.xml", timeout: 10 * time.Second})
	// cloak logs the binding just after it answers: wait for the line.
	after := 0
	for range 100 {
		if after = strings.Count(c.log(), "agent registered"); after > before {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after != before+1 {
		t.Fatalf("agent registered %d times after sipp, want %d", after, before+1)
	}
	c.stop()
}

// TestHostileRegisterJSONLog: with log.format json the lock line is one
// JSON object whose message the same fail2ban filter matches.
func TestHostileRegisterJSONLog(t *testing.T) {
	requireTools(t)
	c := startCloak(t, cloakOpts{json: true, sipExtra: "  auth:\n    max_failures: 3\n    backoff: 0s\n"})
	attacker := newRawUA(t, c, "127.0.0.1", "127.0.0.1")
	chal := parseChallenges(t, attacker.do(6666, ""))[0]
	for i := range 3 {
		attacker.do(6666, attacker.digestAuth(chal, "demo", "not-the-pw-7", i+1))
	}
	if !c.waitLog("auth locked", 5*time.Second) {
		t.Fatal("no lock line in the log")
	}
	var line string
	for _, l := range strings.Split(c.log(), "\n") {
		if strings.Contains(l, "auth locked") {
			line = l
		}
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil || obj["level"] != "warn" ||
		obj["message"] != `auth locked source=127.0.0.1 user="demo" failures=3 lock_for=5m0s scope=ip,user` {
		t.Fatalf("lock line %q (%v)", line, err)
	}
	f2b := fail2banRegex(t)
	if m := f2b.FindStringSubmatch(line); m == nil || m[f2b.SubexpIndex("host")] != "127.0.0.1" {
		t.Fatalf("fail2ban failregex %v does not take 127.0.0.1 from %q", f2b, line)
	}
	fail2banCheck(t, c)
	c.stop()
}
