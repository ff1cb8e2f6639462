package archive

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestUsersTokensSessions: users, tokens and sessions round-trip on both
// engines; a password, role or disable change ends the user's sessions;
// a revoked token keeps its first revocation time; stale sessions go.
func TestUsersTokensSessions(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.UnixMilli(time.Now().UnixMilli()).UTC()
		if n, err := s.CountUsers(ctx); n != 0 || err != nil {
			t.Fatalf("count: %d %v", n, err)
		}
		u := User{Name: "alice", Role: "agent", Agent: "alice", Hash: "$argon2id$x", Created: now, PasswordChanged: now}
		if err := s.AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUser(ctx, u); !errors.Is(err, ErrUserExists) {
			t.Errorf("twice: %v", err)
		}
		got, err := s.UserByName(ctx, "alice")
		if err != nil || got != u {
			t.Fatalf("got %+v %v, want %+v", got, err, u)
		}
		if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, ErrNoUser) {
			t.Errorf("unknown user: %v", err)
		}
		session := func(id string) {
			if err := s.AddSession(ctx, Session{IDHash: id, User: "alice", CSRF: "c", Created: now, LastSeen: now}); err != nil {
				t.Fatal(err)
			}
		}
		alive := func(id string) bool {
			_, err := s.SessionByHash(ctx, id)
			if err != nil && !errors.Is(err, ErrNoSession) {
				t.Fatal(err)
			}
			return err == nil
		}
		session("s1")
		if err := s.SetPassword(ctx, "alice", "$argon2id$y", now.Add(time.Minute)); err != nil || alive("s1") {
			t.Errorf("password change: %v, session alive %v", err, alive("s1"))
		}
		session("s2")
		if err := s.SetRole(ctx, "alice", "supervisor", ""); err != nil || alive("s2") {
			t.Errorf("role change: %v, session alive %v", err, alive("s2"))
		}
		session("s3")
		if err := s.SetDisabled(ctx, "alice", true); err != nil || alive("s3") {
			t.Errorf("disable: %v, session alive %v", err, alive("s3"))
		}
		if err := s.SetDisabled(ctx, "nobody", true); !errors.Is(err, ErrNoUser) {
			t.Errorf("disable unknown: %v", err)
		}
		got, _ = s.UserByName(ctx, "alice")
		if got.Role != "supervisor" || got.Agent != "" || !got.Disabled || got.Hash != "$argon2id$y" {
			t.Errorf("after changes: %+v", got)
		}
		if err := s.SetDisabled(ctx, "alice", false); err != nil {
			t.Fatal(err)
		}
		session("old")
		if err := s.TouchSession(ctx, "old", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteStaleSessions(ctx, now.Add(30*time.Minute), now.Add(-time.Hour)); n != 0 || err != nil {
			t.Errorf("a touched session went: %d %v", n, err)
		}
		if n, err := s.DeleteStaleSessions(ctx, now.Add(2*time.Hour), now.Add(-time.Hour)); n != 1 || err != nil {
			t.Errorf("stale: %d %v", n, err)
		}

		tok := APIToken{ID: "t1", Name: "ci", Role: "auditor", Hash: "h1", CreatedBy: "cli:x", Created: now, Expires: now.Add(time.Hour)}
		if err := s.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TokenByHash(ctx, "h1"); err != nil || got != tok {
			t.Errorf("token %+v %v", got, err)
		}
		if _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, ErrNoToken) {
			t.Errorf("unknown token: %v", err)
		}
		if err := s.RevokeToken(ctx, "t1", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "t1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "t9", now); !errors.Is(err, ErrNoToken) {
			t.Errorf("revoke unknown: %v", err)
		}
		ts, err := s.Tokens(ctx)
		if err != nil || len(ts) != 1 || !ts[0].Revoked.Equal(now.Add(time.Minute)) {
			t.Errorf("tokens %+v %v", ts, err)
		}
	})
}
