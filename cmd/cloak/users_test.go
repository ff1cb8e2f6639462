package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/auth"
)

// TestUsersAndTokensCLI: users add refuses weak passwords and unknown
// roles, stores an argon2id hash that verifies, lists without secrets;
// passwd removes the initial admin file; tokens create prints the token
// alone on stdout, list never shows it, revoke marks it; each change is
// audited.
func TestUsersAndTokensCLI(t *testing.T) {
	dataDir, cfgFile, s := archiveRig(t, "")
	users := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runUsers(append(args, "-config", cfgFile, "-data", dataDir), strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	const good = "correct horse battery"
	var shown bytes.Buffer
	if made, err := auth.EnsureAdmin(context.Background(), s, dataDir, &shown); !made || err != nil || !strings.Contains(shown.String(), "admin") {
		t.Fatalf("initial admin: %v %v %q", made, err, shown.String())
	}
	for _, tc := range []struct{ pw, role string }{{"short\n", "supervisor"}, {"password1234!\n", "supervisor"}, {"alice-is-me-1234\n", "supervisor"}, {good + "\n", "boss"}} {
		if code, _, errs := users(tc.pw, "add", "alice", "-role", tc.role, "-password-stdin"); code == 0 {
			t.Errorf("add with %q as %s: accepted (%s)", strings.TrimSpace(tc.pw), tc.role, errs)
		}
	}
	if code, _, errs := users(good+"\n", "add", "alice", "-role", "agent", "-agent", "demo", "-password-stdin"); code != 0 {
		t.Fatalf("add: %d %s", code, errs)
	}
	if code, _, _ := users(good+"\n", "add", "alice", "-role", "agent", "-password-stdin"); code != 1 {
		t.Errorf("add twice: %d, want 1", code)
	}
	u, err := s.UserByName(context.Background(), "alice")
	if err != nil || u.Role != "agent" || u.Agent != "demo" || !strings.HasPrefix(u.Hash, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("stored: %+v %v", u, err)
	}
	if ok, err := auth.VerifyPassword(good, u.Hash); !ok || err != nil {
		t.Errorf("hash does not verify: %v", err)
	}
	code, out, _ := users("", "list")
	if code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, "argon2") || strings.Contains(out, good) {
		t.Errorf("list: %d %q", code, out)
	}
	initial := filepath.Join(dataDir, auth.InitialAdminFile)
	if st, err := os.Stat(initial); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("initial admin password file: %v %v", st, err)
	}
	if code, _, errs := users("another good passphrase\n", "passwd", "admin", "-password-stdin"); code != 0 {
		t.Fatalf("passwd: %d %s", code, errs)
	}
	if _, err := os.Stat(initial); !os.IsNotExist(err) {
		t.Errorf("initial admin password file left after the change: %v", err)
	}
	if code, _, errs := users("", "role", "alice", "-role", "supervisor"); code != 0 {
		t.Errorf("role: %d %s", code, errs)
	}
	if code, _, errs := users("", "disable", "alice"); code != 0 {
		t.Errorf("disable: %d %s", code, errs)
	}
	if u, _ := s.UserByName(context.Background(), "alice"); !u.Disabled || u.Role != "supervisor" {
		t.Errorf("after role and disable: %+v", u)
	}

	code, out, errs := cli("tokens", "create", "-name", "ci", "-role", "auditor", "-expires", "30d", "-config", cfgFile, "-data", dataDir)
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, auth.TokenPrefix) || strings.Count(out, "\n") != 1 || len(tok) < 40 {
		t.Fatalf("tokens create: %d %q %s", code, out, errs)
	}
	code, out, _ = cli("tokens", "list", "-json", "-config", cfgFile, "-data", dataDir)
	if code != 0 || !strings.Contains(out, `"ci"`) || strings.Contains(out, tok) || strings.Contains(out, auth.HashSecret(tok)) {
		t.Errorf("tokens list: %d %s", code, out)
	}
	ts, _ := s.Tokens(context.Background())
	if len(ts) != 1 || ts[0].Expires.IsZero() {
		t.Fatalf("tokens: %+v", ts)
	}
	if code, _, errs := cli("tokens", "revoke", ts[0].ID, "-config", cfgFile, "-data", dataDir); code != 0 {
		t.Errorf("revoke: %d %s", code, errs)
	}
	if code, _, _ := cli("tokens", "revoke", "nope", "-config", cfgFile, "-data", dataDir); code != 1 {
		t.Errorf("revoke unknown: %d", code)
	}
	if ts, _ := s.Tokens(context.Background()); ts[0].Revoked.IsZero() {
		t.Error("not revoked")
	}
	log, _ := s.AuditLog(context.Background(), "", 0)
	var acts []string
	for _, e := range log {
		acts = append(acts, e.Action)
		if strings.Contains(e.Detail, good) || strings.Contains(e.Detail, tok) {
			t.Errorf("audit row holds a secret: %+v", e)
		}
	}
	want := "user_initial_admin user_add user_password user_role user_disable token_create token_revoke"
	if got := strings.Join(acts, " "); got != want {
		t.Errorf("audit: %s, want %s", got, want)
	}
}
