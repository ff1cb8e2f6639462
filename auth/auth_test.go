package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/overload"
	"github.com/rs/zerolog"
)

var cheap = Params{Memory: 1024, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("a long enough secret", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword("a long enough secret", h); !ok || err != nil {
		t.Errorf("right password: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword("a long enough secreT", h); ok {
		t.Error("wrong password verified")
	}
	h2, _ := HashPassword("a long enough secret", cheap)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=1024,t=1,p=1$!!$??"} {
		if _, err := VerifyPassword("x", bad); !errors.Is(err, ErrHash) {
			t.Errorf("%q: %v, want ErrHash", bad, err)
		}
	}
}

// A sign-in's argon2id cost is handed to admission control as exempt
// CPU (overload.ExemptCPU), never more than the process spent on it, so a
// burst of sign-ins cannot make the node refuse calls.
func TestHashCostExemptFromAdmission(t *testing.T) {
	p := Params{Memory: 16 * 1024, Time: 2, Threads: 2}
	h, err := HashPassword("a long enough secret", p)
	if err != nil {
		t.Fatal(err)
	}
	e0, c0 := overload.Exempted(), overload.ProcessCPU()
	if ok, _ := VerifyPassword("a long enough secret", h); !ok {
		t.Fatal("right password not verified")
	}
	spent, got := overload.ProcessCPU()-c0, overload.Exempted()-e0
	if spent <= 0 {
		t.Skip("getrusage reports no CPU here")
	}
	if got <= 0 || got > spent {
		t.Fatalf("verification exempted %v of the %v the process spent", got, spent)
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		user, pw string
		demo, ok bool
	}{
		{"alice", "correct horse battery", false, true},
		{"alice", "short", false, false},
		{"alice", "Password1234!", false, false},
		{"alice", "demo12345678", false, false},
		{"alice", "cloak-cloak-2026", false, true}, // not a single stem
		{"alice", "CLOAK123456!!", false, false},
		{"alice", "xxAlice-is-here", false, false},
		{"alice", "aaaaaaaaaaaaaa", false, false},
		{"alice", "abababababab", false, false},
		{"alice", "123456789012", false, false},
		{"alice", "zyxwvutsrqpo", false, false},
		{"alice", "demo", true, true},
		{"alice", "", true, false},
	} {
		err := CheckPassword(tc.user, tc.pw, tc.demo)
		if (err == nil) != tc.ok {
			t.Errorf("%q demo=%v: %v, want ok=%v", tc.pw, tc.demo, err, tc.ok)
		}
	}
}

func TestGrantTable(t *testing.T) {
	// Pinned cells (the role descriptions).
	for _, c := range []struct {
		r    Role
		p    Perm
		want Scope
	}{
		{RoleAgent, PermCallsView, Own}, {RoleAgent, PermCallsAct, Own}, {RoleAgent, PermAgentsView, None},
		{RoleAgent, PermArchiveSearch, None}, {RoleSupervisor, PermArchivePlay, All},
		{RoleSupervisor, PermArchiveDownload, None}, {RoleArchivist, PermArchiveDelete, All},
		{RoleArchivist, PermCallsView, None}, {RoleAuditor, PermAuditRead, All}, {RoleAuditor, PermArchivePlay, None},
		{RoleSupervisor, PermAuditRead, None}, {RoleAdmin, PermPprof, All}, {RoleSupervisor, PermPprof, None},
		{RoleAdmin, PermUsers, All}, {Role("root"), PermCallsView, None}, {Role("root"), SignedIn, None},
		{Role(""), Public, All},
		{RoleAgent, PermFraudHold, Own}, {RoleAgent, PermFraudHolds, None}, {RoleSupervisor, PermFraudHold, All},
		{RoleArchivist, PermFraudHold, None}, {RoleAuditor, PermFraudHold, None},
	} {
		if got := Grant(c.r, c.p); got != c.want {
			t.Errorf("Grant(%s, %s) = %s, want %s", c.r, c.p, got, c.want)
		}
	}
	// Public: the health check, signing in, and the console's sign-in
	// page and its two static files (no data in any).
	public := map[string]bool{"GET /healthz": true, "POST /api/session": true, "GET /signin": true, "GET /static/{file}": true}
	for _, r := range Rules {
		if r.Perm == Public && !public[r.Pattern] {
			t.Errorf("%s is public: only /healthz, signing in and the console's sign-in page may be", r.Pattern)
		}
	}
}

// rig is a Service over a real SQLite archive with user bob (agent
// linked to agent "bob"), a fake clock and a captured log.
type rig struct {
	s    *archive.Store
	svc  *Service
	h    http.Handler
	logs *bytes.Buffer

	mu  sync.Mutex
	now time.Time
}

func (r *rig) advance(d time.Duration) { r.mu.Lock(); r.now = r.now.Add(d); r.mu.Unlock() }
func (r *rig) clock() time.Time        { r.mu.Lock(); defer r.mu.Unlock(); return r.now }

const bobPassword = "bob's long passphrase"

func newRig(t *testing.T, lc authlimit.Config) *rig {
	t.Helper()
	s, err := archive.Open(context.Background(), archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hash, _ := HashPassword(bobPassword, cheap)
	if err := s.AddUser(context.Background(), archive.User{Name: "bob", Role: "agent", Agent: "bob", Hash: hash}); err != nil {
		t.Fatal(err)
	}
	r := &rig{s: s, logs: &bytes.Buffer{}, now: time.Now()}
	lc.Now = r.clock
	lim, err := authlimit.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	r.svc, err = New(Config{Store: s, Limiter: lim, Log: zerolog.New(syncWriter{r.logs, &r.mu}), Now: r.clock, StreamCheck: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux()
	r.svc.Register(m)
	m.HandleFunc("GET /api/calls", func(w http.ResponseWriter, req *http.Request) {
		p, _ := FromContext(req.Context())
		writeJSON(w, 200, p.view())
	})
	m.HandleFunc("POST /api/calls/{id}/secure", func(w http.ResponseWriter, req *http.Request) { w.WriteHeader(202) })
	m.HandleFunc("GET /api/calls/{id}/events", func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-req.Context().Done()
	})
	m.HandleFunc("GET /api/unruled", func(w http.ResponseWriter, req *http.Request) { w.WriteHeader(200) })
	r.h = r.svc.Guard(m)
	return r
}

type syncWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (r *rig) log() string { r.mu.Lock(); defer r.mu.Unlock(); return r.logs.String() }

func (r *rig) do(method, path, body string, hdr map[string]string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.7:5555"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w
}

func (r *rig) signIn(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	w := r.do("POST", "/api/session", `{"name":"bob","password":"`+bobPassword+`"}`, nil, nil)
	if w.Code != 200 {
		t.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	var v map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &v)
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Name != SessionCookie || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode || c[0].Path != "/" {
		t.Fatalf("cookie: %+v", c)
	}
	csrf, _ := v["csrf_token"].(string)
	if csrf == "" || v["role"] != "agent" || v["agent"] != "bob" {
		t.Fatalf("sign-in answer: %v", v)
	}
	return c[0], csrf
}

// TestSessionLifecycle: a session works with its cookie; a state change
// needs the CSRF token; it ends after the idle timeout, after the
// absolute one however active, at sign-out, and when the user is
// disabled; a route without a rule is refused to all.
func TestSessionLifecycle(t *testing.T) {
	r := newRig(t, authlimit.Config{})
	if w := r.do("GET", "/api/calls", "", nil, nil); w.Code != 401 || !strings.Contains(w.Body.String(), `"error"`) {
		t.Errorf("no credentials: %d %s", w.Code, w.Body)
	}
	if w := r.do("POST", "/api/session", `{"name":"bob","password":"`+bobPassword+`"}`, map[string]string{"Content-Type": "text/plain"}, nil); w.Code != 415 {
		t.Errorf("sign-in as a cross-site form (text/plain): %d", w.Code)
	}
	if w := r.do("POST", "/api/session", `{"name":"bob","password":"wrong one entirely"}`, nil, nil); w.Code != 401 {
		t.Errorf("wrong password: %d", w.Code)
	}
	r.advance(2 * time.Second) // past the back-off of that failure
	c, csrf := r.signIn(t)
	if w := r.do("GET", "/api/calls", "", nil, c); w.Code != 200 {
		t.Errorf("with the cookie: %d %s", w.Code, w.Body)
	}
	if w := r.do("GET", "/api/unruled", "", nil, c); w.Code != 403 || !strings.Contains(w.Body.String(), "no permission rule") {
		t.Errorf("route without a rule: %d %s", w.Code, w.Body)
	}
	if w := r.do("POST", "/api/calls/c1/secure", "{}", nil, c); w.Code != 403 || !strings.Contains(w.Body.String(), CSRFHeader) {
		t.Errorf("no CSRF token: %d %s", w.Code, w.Body)
	}
	if w := r.do("POST", "/api/calls/c1/secure", "{}", map[string]string{CSRFHeader: csrf + "x"}, c); w.Code != 403 {
		t.Errorf("wrong CSRF token: %d", w.Code)
	}
	if w := r.do("POST", "/api/calls/c1/secure", "{}", map[string]string{CSRFHeader: csrf}, c); w.Code != 202 {
		t.Errorf("with the CSRF token: %d %s", w.Code, w.Body)
	}
	if w := r.do("GET", "/api/session", "", nil, c); w.Code != 200 || !strings.Contains(w.Body.String(), csrf) {
		t.Errorf("who am I: %d %s", w.Code, w.Body)
	}
	r.advance(DefaultIdleTimeout + time.Second)
	if w := r.do("GET", "/api/calls", "", nil, c); w.Code != 401 {
		t.Errorf("idle %v: %d", DefaultIdleTimeout, w.Code)
	}
	c, _ = r.signIn(t)
	for range int(DefaultMaxAge/(20*time.Minute)) - 1 {
		r.advance(20 * time.Minute)
		if w := r.do("GET", "/api/calls", "", nil, c); w.Code != 200 {
			t.Fatalf("active session at %v: %d", r.clock(), w.Code)
		}
	}
	r.advance(20*time.Minute + time.Second)
	if w := r.do("GET", "/api/calls", "", nil, c); w.Code != 401 {
		t.Errorf("past the absolute timeout: %d", w.Code)
	}
	c, csrf = r.signIn(t)
	if w := r.do("DELETE", "/api/session", "", map[string]string{CSRFHeader: csrf}, c); w.Code != 200 {
		t.Errorf("sign out: %d %s", w.Code, w.Body)
	}
	if w := r.do("GET", "/api/calls", "", nil, c); w.Code != 401 {
		t.Errorf("after sign-out: %d", w.Code)
	}
	c, _ = r.signIn(t)
	if err := r.s.SetDisabled(context.Background(), "bob", true); err != nil {
		t.Fatal(err)
	}
	if w := r.do("GET", "/api/calls", "", nil, c); w.Code != 401 {
		t.Errorf("disabled user's session: %d", w.Code)
	}
	if w := r.do("POST", "/api/session", `{"name":"bob","password":"`+bobPassword+`"}`, nil, nil); w.Code != 401 {
		t.Errorf("disabled user signs in: %d", w.Code)
	}
	log, _ := r.s.AuditLog(context.Background(), "", 0)
	var acts []string
	for _, e := range log {
		acts = append(acts, e.Action)
	}
	if got := strings.Join(acts, " "); !strings.HasPrefix(got, "sign_in_failed sign_in sign_in sign_in sign_out sign_in sign_in_failed") {
		t.Errorf("audit: %s", got)
	}
	if strings.Contains(r.log(), bobPassword) {
		t.Error("the log holds the password")
	}
}

// TestTokens: a bearer token works until revoked or expired; a wrong
// Authorization header is 401 even with a good cookie; tokens need no
// CSRF token.
func TestTokens(t *testing.T) {
	r := newRig(t, authlimit.Config{})
	tok, id, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.s.AddToken(ctx, archive.APIToken{ID: id, Name: "ci", Role: "supervisor", Hash: HashSecret(tok), Expires: r.clock().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + tok}
	if w := r.do("POST", "/api/calls/c1/secure", "{}", auth, nil); w.Code != 202 {
		t.Errorf("token: %d %s", w.Code, w.Body)
	}
	if w := r.do("GET", "/api/calls", "", map[string]string{"Authorization": "bearer " + tok}, nil); w.Code != 200 {
		t.Errorf("lower-case scheme: %d", w.Code)
	}
	c, _ := r.signIn(t)
	if w := r.do("GET", "/api/calls", "", map[string]string{"Authorization": "Bearer nope"}, c); w.Code != 401 {
		t.Errorf("bad token with a good cookie: %d", w.Code)
	}
	r.advance(time.Hour)
	if w := r.do("GET", "/api/calls", "", auth, nil); w.Code != 401 || !strings.Contains(w.Body.String(), "expired") {
		t.Errorf("expired: %d %s", w.Code, w.Body)
	}
	if err := r.s.AddToken(ctx, archive.APIToken{ID: "b", Name: "b", Role: "admin", Hash: HashSecret("other")}); err != nil {
		t.Fatal(err)
	}
	auth["Authorization"] = "Bearer other"
	if w := r.do("GET", "/api/calls", "", auth, nil); w.Code != 200 {
		t.Errorf("never-expiring token: %d", w.Code)
	}
	if err := r.s.RevokeToken(ctx, "b", r.clock()); err != nil {
		t.Fatal(err)
	}
	if w := r.do("GET", "/api/calls", "", auth, nil); w.Code != 401 || !strings.Contains(w.Body.String(), "revoked") {
		t.Errorf("revoked: %d %s", w.Code, w.Body)
	}
	// A name that is no user (a password typed into the name field) is
	// neither logged nor audited.
	if w := r.do("POST", "/api/session", `{"name":"MyS3cretPassw0rd","password":"x"}`, nil, nil); w.Code != 401 {
		t.Errorf("unknown name: %d", w.Code)
	}
	if log := r.log(); strings.Contains(log, "MyS3cret") || !strings.Contains(log, `user=\"(unknown)\"`) {
		t.Errorf("unknown name logged:\n%s", log)
	}
	entries, _ := r.s.AuditLog(context.Background(), "", 0)
	for _, e := range entries {
		if strings.Contains(e.Actor, "MyS3cret") {
			t.Errorf("unknown name audited: %+v", e)
		}
	}
}

// TestSignInLock: failures lock the user and the source through the
// shared limiter; the lock is logged once in the fail2ban line and
// audited; a locked user is refused even with the right password.
func TestSignInLock(t *testing.T) {
	r := newRig(t, authlimit.Config{MaxFailures: 5, LockFor: time.Minute, Backoff: -1})
	lim := r.svc.cfg.Limiter
	codes := map[int]int{}
	for range 20 {
		w := r.do("POST", "/api/session", `{"name":"bob","password":"guess guess guess"}`, nil, nil)
		codes[w.Code]++
	}
	if codes[401] != 4 || codes[429] != 16 {
		t.Errorf("answers to 20 wrong passwords: %v, want 4×401 then 429", codes)
	}
	if w := r.do("POST", "/api/session", `{"name":"bob","password":"`+bobPassword+`"}`, nil, nil); w.Code != 429 {
		t.Errorf("right password while locked: %d", w.Code)
	}
	log := r.log()
	if n := strings.Count(log, "http auth locked"); n != 1 || !strings.Contains(log, `http auth locked source=192.0.2.7 user=\"bob\" failures=5 lock_for=1m0s scope=ip,web-user`) {
		t.Errorf("lock lines: %d\n%s", n, log)
	}
	if strings.Contains(log, "guess guess") || strings.Contains(log, bobPassword) {
		t.Error("a password in the log")
	}

	if lim.Check("ip:192.0.2.7").Verdict != authlimit.Locked {
		t.Error("the source is not locked in the shared limiter (REGISTER would not see it)")
	}
	entries, _ := r.s.AuditLog(context.Background(), "", 0)
	var locked int
	for _, e := range entries {
		if e.Action == archive.ActionSignInLocked {
			locked++
		}
	}
	if locked != 1 {
		t.Errorf("%d lock rows in the audit", locked)
	}
}

// TestStreamEndsWithSession: an event stream ends soon after its session
// is signed out elsewhere.
func TestStreamEndsWithSession(t *testing.T) {
	r := newRig(t, authlimit.Config{})
	c, _ := r.signIn(t)
	srv := httptest.NewServer(r.h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/calls/c1/events", nil)
	req.AddCookie(c)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stream: %v %v", res, err)
	}
	done := make(chan struct{})
	go func() {
		_, _ = io_ReadAll(res)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("stream ended while signed in")
	case <-time.After(100 * time.Millisecond):
	}
	if err := r.s.DeleteSession(context.Background(), HashSecret(c.Value)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("stream still open 3s after its session ended")
	}
}

func io_ReadAll(res *http.Response) ([]byte, error) {
	defer res.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(res.Body)
	return b.Bytes(), err
}

// BenchmarkVerifyPassword is what one sign-in costs in argon2id at
// DefaultParams (docs/SECURITY.md quotes it).
func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("a long enough secret", DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := VerifyPassword("a long enough secret", h); !ok {
			b.Fatal("no match")
		}
	}
}
