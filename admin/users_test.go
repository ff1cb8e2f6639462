package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
)

// TestUsersAndTokensRoutes: the list shows users and tokens without a
// hash; disable, enable and revoke change the store and are audited
// with who did it; an admin cannot disable themselves; unknown names
// and ids are 404.
func TestUsersAndTokensRoutes(t *testing.T) {
	ctx := context.Background()
	s := newUserStore(t)
	const hash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
	for _, u := range []archive.User{{Name: "ada", Role: "admin", Hash: hash}, {Name: "sue", Role: "supervisor", Hash: hash}} {
		if err := s.AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	tokHash := strings.Repeat("cd", 32)
	if err := s.AddToken(ctx, archive.APIToken{ID: "0011223344556677", Name: "ci", Role: "auditor", Hash: tokHash, CreatedBy: "cli:root"}); err != nil {
		t.Fatal(err)
	}
	m := auth.NewMux()
	RegisterUsers(m, s, UserOptions{KnownAgent: func(n string) bool { return n == "alice" }})
	ada := auth.Principal{Name: "ada", Kind: auth.KindSession, Role: auth.RoleAdmin}
	h := as(ada, m)
	do := func(method, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := do("GET", "/api/users")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"sue"`) || strings.Contains(w.Body.String(), "argon2") {
		t.Errorf("GET /api/users: %d %s", w.Code, w.Body)
	}
	w = do("GET", "/api/tokens")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"0011223344556677"`) || strings.Contains(w.Body.String(), tokHash) {
		t.Errorf("GET /api/tokens: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/api/users/sue/disable"); w.Code != 200 {
		t.Errorf("disable sue: %d %s", w.Code, w.Body)
	}
	if u, _ := s.UserByName(ctx, "sue"); !u.Disabled {
		t.Error("sue is not disabled")
	}
	if w := do("POST", "/api/users/sue/enable"); w.Code != 200 {
		t.Errorf("enable sue: %d %s", w.Code, w.Body)
	}
	if u, _ := s.UserByName(ctx, "sue"); u.Disabled {
		t.Error("sue is still disabled")
	}
	if w := do("POST", "/api/users/ada/disable"); w.Code != http.StatusConflict {
		t.Errorf("ada disabling herself: %d, want 409", w.Code)
	}
	if u, _ := s.UserByName(ctx, "ada"); u.Disabled {
		t.Error("ada disabled herself")
	}
	if w := do("POST", "/api/users/nobody/disable"); w.Code != http.StatusNotFound {
		t.Errorf("unknown user: %d", w.Code)
	}
	if w := do("POST", "/api/users/sue/delete"); w.Code != http.StatusNotFound {
		t.Errorf("unknown action: %d", w.Code)
	}
	if w := do("POST", "/api/tokens/0011223344556677/revoke"); w.Code != 200 {
		t.Errorf("revoke: %d %s", w.Code, w.Body)
	}
	if tk, err := s.TokenByHash(ctx, tokHash); err != nil || tk.Revoked.IsZero() {
		t.Errorf("the token is not revoked: %+v %v", tk, err)
	}
	if w := do("POST", "/api/tokens/ffff/revoke"); w.Code != http.StatusNotFound {
		t.Errorf("unknown token: %d", w.Code)
	}
	log, err := s.AuditLog(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Actor+" "+e.Action+" "+e.Detail)
	}
	want := []string{"user:ada user_disable user=sue disabled=true", "user:ada user_disable user=sue disabled=false",
		"user:ada token_revoke token=0011223344556677"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit %q, want %q", got, want)
	}
}

// TestAddUserAndCreateToken: an admin adds a user (the password checked
// and stored only as a hash, the agent link checked against agents[])
// and creates a token, shown in the answer once and stored as a hash;
// bad input is 400 without echoing the password; both are audited.
func TestAddUserAndCreateToken(t *testing.T) {
	ctx := context.Background()
	s := newUserStore(t)
	m := auth.NewMux()
	RegisterUsers(m, s, UserOptions{KnownAgent: func(n string) bool { return n == "alice" }})
	h := as(auth.Principal{Name: "ada", Kind: auth.KindSession, Role: auth.RoleAdmin}, m)
	do := func(target, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "127.0.0.1:40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	const pw = "a long enough passphrase 6"
	if w := do("/api/users", `{"name":"al","role":"agent","agent":"alice","password":"`+pw+`"}`); w.Code != http.StatusCreated || strings.Contains(w.Body.String(), pw) {
		t.Fatalf("add al: %d %s", w.Code, w.Body)
	}
	u, err := s.UserByName(ctx, "al")
	if err != nil || u.Role != "agent" || u.Agent != "alice" || !strings.HasPrefix(u.Hash, "$argon2id$") {
		t.Fatalf("al stored as %+v (%v)", u, err)
	}
	if ok, err := auth.VerifyPassword(pw, u.Hash); err != nil || !ok {
		t.Errorf("the stored hash does not verify the password: %v %v", ok, err)
	}
	for name, body := range map[string]string{
		"taken":         `{"name":"al","role":"agent","password":"` + pw + `"}`,
		"weak":          `{"name":"bo","role":"admin","password":"short"}`,
		"bad name":      `{"name":"bo b","role":"admin","password":"` + pw + `"}`,
		"bad role":      `{"name":"bo","role":"root","password":"` + pw + `"}`,
		"unknown agent": `{"name":"bo","role":"agent","agent":"zed","password":"` + pw + `"}`,
		"agent for sup": `{"name":"bo","role":"supervisor","agent":"alice","password":"` + pw + `"}`,
		"unknown field": `{"name":"bo","role":"admin","password":"` + pw + `","x":1}`,
	} {
		w := do("/api/users", body)
		if w.Code != http.StatusBadRequest && w.Code != http.StatusConflict || strings.Contains(w.Body.String(), pw) || strings.Contains(w.Body.String(), "short") {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	if _, err := s.UserByName(ctx, "bo"); err == nil {
		t.Error("a refused user was stored")
	}
	w := do("/api/tokens", `{"name":"ci","role":"auditor","expires":"7d"}`)
	var tok struct{ ID, Token string }
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &tok) != nil || tok.Token == "" {
		t.Fatalf("create token: %d %s", w.Code, w.Body)
	}
	stored, err := s.TokenByHash(ctx, auth.HashSecret(tok.Token))
	if err != nil || stored.ID != tok.ID || stored.Role != "auditor" || stored.CreatedBy != "user:ada" || stored.Expires.Before(time.Now().Add(6*24*time.Hour)) {
		t.Errorf("the token is stored as %+v (%v)", stored, err)
	}
	if list := listTokens(t, s); strings.Contains(list, tok.Token) {
		t.Error("the token list shows the token")
	}
	for _, body := range []string{`{"name":"","role":"auditor"}`, `{"name":"x","role":"god"}`, `{"name":"x","role":"admin","expires":"soon"}`} {
		if w := do("/api/tokens", body); w.Code != http.StatusBadRequest {
			t.Errorf("token %s: %d", body, w.Code)
		}
	}
	log, _ := s.AuditLog(ctx, "", 0)
	var got []string
	for _, e := range log {
		got = append(got, e.Actor+" "+e.Action+" "+e.Detail)
	}
	want := []string{"user:ada user_add user=al role=agent", "user:ada token_create token=" + tok.ID + " name=ci role=auditor"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit %q, want %q", got, want)
	}
}

func listTokens(t *testing.T, s *archive.Store) string {
	t.Helper()
	ts, err := s.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ts)
	return string(b)
}

// newUserStore is an empty archive (SQLite) holding the users, closed at
// the test's end.
func newUserStore(t *testing.T) *archive.Store {
	t.Helper()
	s, err := archive.Open(context.Background(), archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: archKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
