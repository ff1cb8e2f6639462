package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
)

// TestUsersAndTokensRoutes: the list shows users and tokens without a
// hash; disable, enable and revoke change the store and are audited
// with who did it; an admin cannot disable themselves; unknown names
// and ids are 404.
func TestUsersAndTokensRoutes(t *testing.T) {
	ctx := context.Background()
	s, err := archive.Open(ctx, archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: archKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	RegisterUsers(m, s)
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
