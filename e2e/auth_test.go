package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/auth"
)

// curlResult is one curl run: the HTTP status and the body.
type curlResult struct {
	code int
	body string
}

// curl runs the real curl binary against cloak's API: method, path, a
// JSON body ("" none), and extra arguments (headers, cookie jar).
func curl(t *testing.T, c *cloak, method, path, body string, extra ...string) curlResult {
	t.Helper()
	out := filepath.Join(t.TempDir(), "body")
	args := []string{"-s", "-o", out, "-w", "%{http_code}", "-X", method, "--max-time", "60"} // sign-in hashes argon2id: seconds under -race
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", body)
	}
	args = append(args, extra...)
	args = append(args, c.adminURL+path)
	code, err := exec.Command("curl", args...).Output()
	if err != nil {
		t.Fatalf("curl %s %s: %v", method, path, err)
	}
	b, _ := os.ReadFile(out)
	n, _ := strconv.Atoi(string(code))
	return curlResult{n, string(b)}
}

// deskUser is a user signed in through POST /api/session with curl: its
// cookie jar and CSRF token.
type deskUser struct {
	name, role, jar, csrf string
}

func (u deskUser) args() []string {
	return []string{"-b", u.jar, "-c", u.jar, "-H", auth.CSRFHeader + ": " + u.csrf}
}

func signIn(t *testing.T, c *cloak, name, password string) deskUser {
	t.Helper()
	u := deskUser{name: name, jar: filepath.Join(t.TempDir(), name+".jar")}
	r := curl(t, c, "POST", "/api/session", fmt.Sprintf(`{"name":%q,"password":%q}`, name, password), "-c", u.jar)
	var v map[string]any
	if r.code != 200 || json.Unmarshal([]byte(r.body), &v) != nil {
		t.Fatalf("sign in %s: %d %s", name, r.code, r.body)
	}
	u.csrf, _ = v["csrf_token"].(string)
	u.role, _ = v["role"].(string)
	jar, _ := os.ReadFile(u.jar)
	if !strings.Contains(string(jar), "#HttpOnly_") || !strings.Contains(string(jar), auth.SessionCookie) {
		t.Errorf("the session cookie is not HttpOnly: %s", jar)
	}
	return u
}

// TestAPIRolesEndToEnd is issue 22's acceptance run against the binary:
// users of each role made with `cloak users add` beside the running node;
// curl, signed in as each, is allowed or refused on every route exactly as
// auth.Rules and the grant table say; an agent sees and acts on only the
// call bridged to them (a live sipp call through the sales queue); a
// token works until `cloak tokens revoke`; 20 wrong passwords lock the
// user, and the lock is logged for fail2ban; the signed audit log has
// every action with who did it.
func TestAPIRolesEndToEnd(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp", "curl")
	// alice is linked to her user by agents[].user; bob by users add -agent.
	agentPort, agentMedia, callerMedia := freePorts(t, 1, true), freePorts(t, 4, false), freePorts(t, 4, false)
	// Every sign-in hashes a password with argon2id (64 MiB, t=3), which
	// under -race on two cores once lifted cloak's CPU share past
	// limits.max_cpu for seconds, and admission control refused the
	// test's call (CI, 2026-12-07). The hashing is now exempt from that
	// signal (overload.ExemptCPU), so max_cpu is turned on here (the
	// harness turns the load's signals off, withoutLoadLimits) at its
	// default; the machine's share is the test run's, so max_system_cpu
	// stays off.
	c := startCloak(t, ivrOpts(fmt.Sprintf(`limits: {max_cpu: 0.85}
agents:
  - {name: alice, uri: "sip:agent@127.0.0.1:%d", queues: [sales], user: alice}
  - {name: bob, uri: "sip:bob@127.0.0.1:9", queues: []}
`, agentPort)))

	// The first start made admin with a random password, printed once
	// and kept in a 0600 file.
	if !c.waitLog(`cloak created user "admin"`, 60*time.Second) {
		t.Fatal("no initial admin")
	}
	st, err := os.Stat(filepath.Join(c.dataDir, auth.InitialAdminFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("initial admin password file: %v %v", st, err)
	}
	initial, _ := os.ReadFile(filepath.Join(c.dataDir, auth.InitialAdminFile))
	if !strings.Contains(c.log(), strings.TrimSpace(string(initial))) {
		t.Error("the initial admin password was not shown at start")
	}

	const pw = "a long test passphrase 7"
	for _, u := range []struct{ name, role, agent string }{
		{"sue", "supervisor", ""}, {"archie", "archivist", ""}, {"audrey", "auditor", ""},
		{"ada", "admin", ""}, {"alice", "agent", ""}, {"bob", "agent", "bob"},
	} {
		args := []string{"users", "add", u.name, "-role", u.role, "-password-stdin"}
		if u.agent != "" {
			args = append(args, "-agent", u.agent)
		}
		if _, errs, err := c.cli(pw+"\n", args...); err != nil {
			t.Fatalf("cloak users add %s: %v %s", u.name, err, errs)
		}
	}
	if _, errs, err := c.cli("password\n", "users", "add", "weak", "-role", "admin", "-password-stdin"); err == nil {
		t.Errorf("a weak password was accepted: %s", errs)
	}

	// Open routes and no credentials.
	if res := curl(t, c, "GET", "/healthz", ""); res.code != 200 {
		t.Errorf("/healthz: %d", res.code)
	}
	if res := curl(t, c, "GET", "/api/calls", ""); res.code != 401 || !strings.Contains(res.body, `"error"`) {
		t.Errorf("no credentials: %d %s", res.code, res.body)
	}

	users := map[string]deskUser{}
	for _, n := range []string{"sue", "archie", "audrey", "ada", "alice", "bob"} {
		users[n] = signIn(t, c, n, pw)
	}
	admin := signIn(t, c, "admin", strings.TrimSpace(string(initial)))

	// Admission control may still be refusing when the sign-ins end: on
	// this 2-core machine under -race the node's share stayed past
	// max_cpu for 4 s after its start and for ~15 s during the seven
	// sign-ins (peak 0.99, also on the commit before session 13, where
	// the landing CI had passed): the race detector's cost of everything
	// around the exempted hashing. The call below is about roles, so it
	// waits for the node to take calls (at most 60 s); the exemption
	// itself is auth's TestHashCostExemptFromAdmission.
	for deadline := time.Now().Add(60 * time.Second); ; {
		res := curl(t, c, "GET", "/api/stats", "", admin.args()...)
		var st map[string]any
		if res.code == 200 && json.Unmarshal([]byte(res.body), &st) == nil && st["overload_state"] == float64(0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cloak still refusing calls 60 s after the sign-ins: %d %s", res.code, res.body)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The agent's own call: bridged to alice, not bob.
	agent := startSipp(t, c, sippArgs{scenario: "agent.xml", uas: true, localPort: agentPort, mediaPort: agentMedia,
		timeout: 60 * time.Second, keys: map[string]string{"pcap": scenario("pcap/agent-talk.pcap")}})
	time.Sleep(300 * time.Millisecond) // sipp UAS listening
	caller := startSipp(t, c, sippArgs{scenario: "ivr-hangup.xml", service: "main", mediaPort: callerMedia,
		pause: 29 * time.Second, timeout: 60 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/caller-agent-inband.pcap"), "fmts": "0"}})
	if !c.waitLog("agent answered: bridging", 20*time.Second) {
		t.Fatal("the agent was never bridged")
	}
	var aliceCalls, bobCalls []apiCall
	res := curl(t, c, "GET", "/api/calls", "", users["alice"].args()...)
	if err := json.Unmarshal([]byte(res.body), &aliceCalls); err != nil || len(aliceCalls) != 1 || aliceCalls[0].Agent != "alice" {
		t.Fatalf("alice's calls: %d %s", res.code, res.body)
	}
	id := aliceCalls[0].ID
	res = curl(t, c, "GET", "/api/calls", "", users["bob"].args()...)
	if err := json.Unmarshal([]byte(res.body), &bobCalls); err != nil || len(bobCalls) != 0 {
		t.Errorf("bob sees %s", res.body)
	}
	for _, tc := range []struct {
		user, method, path, body string
		want                     int
	}{
		{"bob", "GET", "/api/calls/" + id, "", 403},
		{"bob", "GET", "/api/calls/" + id + "/events", "", 403},
		{"bob", "POST", "/api/calls/" + id + "/secure", `{"flow":"secure-pay"}`, 403},
		{"bob", "POST", "/api/calls/" + id + "/recording/pause", "", 403},
		{"alice", "GET", "/api/calls/" + id, "", 200},
		{"sue", "GET", "/api/calls/" + id, "", 200},
	} {
		if res := curl(t, c, tc.method, tc.path, tc.body, users[tc.user].args()...); res.code != tc.want {
			t.Errorf("%s %s %s: %d %s, want %d", tc.user, tc.method, tc.path, res.code, res.body, tc.want)
		}
	}
	if res := curl(t, c, "POST", "/api/calls/"+id+"/recording/pause", "", users["alice"].args()...); res.code != 200 && res.code != 409 {
		t.Errorf("alice pauses her call's recording: %d %s", res.code, res.body)
	}
	// alice's event stream ends when she signs out (elsewhere: her
	// session row goes).
	stream := exec.Command("curl", "-sN", "-b", users["alice"].jar, "--max-time", "40", c.adminURL+"/api/calls/"+id+"/events")
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	streamDone := make(chan error, 1)
	go func() { streamDone <- stream.Wait() }()
	time.Sleep(time.Second)
	select {
	case err := <-streamDone:
		t.Fatalf("alice's event stream ended at once: %v", err)
	default:
	}
	// Without the CSRF header the cookie alone changes nothing.
	if res := curl(t, c, "POST", "/api/calls/"+id+"/recording/resume", "", "-b", users["alice"].jar); res.code != 403 {
		t.Errorf("no CSRF header: %d %s", res.code, res.body)
	}

	if res := curl(t, c, "DELETE", "/api/session", "", users["alice"].args()...); res.code != 200 {
		t.Errorf("alice signs out: %d %s", res.code, res.body)
	}
	select {
	case <-streamDone:
	case <-time.After(10 * time.Second): // the call itself lasts longer
		t.Error("alice's event stream still open 10 s after she signed out")
		_ = stream.Process.Kill()
	}
	users["alice"] = signIn(t, c, "alice", pw)

	// The role × route matrix: every rule but pprof (off) and sign-out
	// (last), on ids that do not exist, so nothing is changed and an
	// allowed request answers 2xx/4xx other than 401 and the role 403.
	body := map[string]string{"POST /api/calls/{id}/secure": `{"flow":"secure-pay"}`, "POST /api/archive/anonymise": `{"number":"+10000000000"}`}
	checked := 0
	for _, rule := range auth.Rules {
		if strings.HasPrefix(rule.Pattern, "GET /debug/pprof") || rule.Pattern == "DELETE /api/session" || rule.Pattern == "POST /api/session" {
			continue
		}
		method, path, _ := strings.Cut(rule.Pattern, " ")
		path = strings.NewReplacer("{id}", "nonexistent", "{action}", "pause").Replace(path)
		for _, u := range append(mapValues(users), admin) {
			res := curl(t, c, method, path, body[rule.Pattern], u.args()...)
			refused := res.code == 403 && strings.Contains(res.body, "your role may not")
			want := auth.Grant(auth.Role(u.role), rule.Perm) == auth.None
			if refused != want || res.code == 401 {
				t.Errorf("%s as %s (%s): %d %.100s, want refused=%v", rule.Pattern, u.name, u.role, res.code, res.body, want)
			}
			checked++
		}
	}
	t.Logf("%d route × user checks", checked)

	// A token works until revoked.
	tok, errs, err := c.cli("", "tokens", "create", "-name", "wallboard", "-role", "supervisor", "-expires", "1d")
	tok = strings.TrimSpace(tok)
	if err != nil || !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("tokens create: %v %s", err, errs)
	}
	bearer := []string{"-H", "Authorization: Bearer " + tok}
	if res := curl(t, c, "GET", "/api/agents", "", bearer...); res.code != 200 {
		t.Errorf("token: %d %s", res.code, res.body)
	}
	list, _, _ := c.cli("", "tokens", "list", "-json")
	var toks []struct{ ID, Name string }
	_ = json.Unmarshal([]byte(list), &toks)
	var wallboard string
	for _, x := range toks {
		if x.Name == "wallboard" {
			wallboard = x.ID
		}
	}
	if strings.Contains(list, tok) || wallboard == "" {
		t.Fatalf("tokens list: %s", list)
	}
	if _, errs, err := c.cli("", "tokens", "revoke", wallboard); err != nil {
		t.Fatalf("revoke: %v %s", err, errs)
	}
	if res := curl(t, c, "GET", "/api/agents", "", bearer...); res.code != 401 {
		t.Errorf("revoked token: %d", res.code)
	}

	// Disabling a user ends their session at once.
	if _, errs, err := c.cli("", "users", "disable", "archie"); err != nil {
		t.Fatalf("disable: %v %s", err, errs)
	}
	if res := curl(t, c, "GET", "/api/archive/interactions", "", users["archie"].args()...); res.code != 401 {
		t.Errorf("disabled user's session: %d", res.code)
	}
	if res := curl(t, c, "DELETE", "/api/session", "", users["sue"].args()...); res.code != 200 {
		t.Errorf("sign out: %d %s", res.code, res.body)
	}
	if res := curl(t, c, "GET", "/api/calls", "", users["sue"].args()...); res.code != 401 {
		t.Errorf("after sign-out: %d", res.code)
	}

	// 20 wrong passwords: the user (and this source) locked, logged once.
	codes := map[int]int{}
	for range 20 {
		codes[curl(t, c, "POST", "/api/session", `{"name":"audrey","password":"not her password at all"}`).code]++
	}
	if codes[401] == 0 || codes[429] == 0 || codes[200] != 0 {
		t.Errorf("20 wrong passwords answered %v", codes)
	}
	if res := curl(t, c, "POST", "/api/session", fmt.Sprintf(`{"name":"audrey","password":%q}`, pw)); res.code != 429 {
		t.Errorf("right password while locked: %d", res.code)
	}
	if !c.waitLog(`http auth locked source=127.0.0.1 user=\"audrey\"`, 5*time.Second) {
		t.Error("the lock was not logged in the fail2ban line")
	}
	if strings.Contains(c.log(), "not her password") || strings.Contains(c.log(), pw) {
		t.Error("a password reached the log")
	}

	caller.wait(t)
	agent.wait(t)
	if !c.waitLog(`"message":"call ended"`, 10*time.Second) {
		t.Fatal("the call did not end")
	}
	c.stop()

	out, errs, err := c.cli("", "archive", "audit", "-json", "-verify")
	if err != nil {
		t.Fatalf("archive audit -verify: %v %s", err, errs)
	}
	var rows []struct{ Actor, Action, Interaction, Detail string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("audit: %v", err)
	}
	seen := map[string]bool{}
	for _, e := range rows {
		seen[e.Action] = true
		seen[e.Actor+" "+e.Action] = true
		if strings.Contains(e.Detail, tok) || strings.Contains(e.Detail, pw) {
			t.Errorf("a secret in the audit: %+v", e)
		}
	}
	for _, want := range []string{"user_initial_admin", "user_add", "sign_in", "sign_out", "sign_in_failed", "sign_in_locked",
		"token_create", "token_revoke", "user_disable", "user:alice call_recording", "user:sue call_secure"} {
		if !seen[want] {
			t.Errorf("audit lacks %q", want)
		}
	}
}

func mapValues(m map[string]deskUser) []deskUser {
	var out []deskUser
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
