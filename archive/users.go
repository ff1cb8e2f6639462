package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Users, API tokens and browser sessions of the HTTP API live in the
// archive's database (migration 00005) so the CLI beside serve and every
// node sharing PostgreSQL see a change at once: the auth package reads
// them per request, without a cache. This file stores records; the auth
// package decides what a role may do, hashes passwords and draws tokens.

// Audit actions of users, tokens and sessions (the interaction column is
// empty; Detail names the user or token, never a secret).
const (
	ActionSignIn         = "sign_in"
	ActionSignOut        = "sign_out"
	ActionSignInFailed   = "sign_in_failed"
	ActionSignInLocked   = "sign_in_locked"
	ActionUserAdd        = "user_add"
	ActionUserRole       = "user_role"
	ActionUserDisable    = "user_disable"
	ActionUserPassword   = "user_password"
	ActionTokenCreate    = "token_create"
	ActionTokenRevoke    = "token_revoke"
	ActionCallSecure     = "call_secure"
	ActionCallRecording  = "call_recording"
	ActionInitialAdmin   = "user_initial_admin"
	ActionSessionExpired = "session_expired"
)

// Sentinel errors of users and tokens.
var (
	// ErrNoUser: no user has that name.
	ErrNoUser = errors.New("archive: no such user")
	// ErrUserExists: a user of that name exists.
	ErrUserExists = errors.New("archive: user exists")
	// ErrNoToken: no token has that id (or hash).
	ErrNoToken = errors.New("archive: no such token")
	// ErrNoSession: no session has that id.
	ErrNoSession = errors.New("archive: no such session")
)

// User is one person who signs in to the API.
type User struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Agent string `json:"agent,omitempty"` // agents[].name this user is, for role agent
	// Hash is the password's argon2id PHC string (auth.HashPassword).
	Hash            string    `json:"-"`
	Disabled        bool      `json:"disabled"`
	Created         time.Time `json:"created"`
	PasswordChanged time.Time `json:"password_changed"`
}

// APIToken is an API token's record; the token itself is never stored.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      string    `json:"-"` // hex SHA-256 of the token
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitempty"` // zero: never
	Revoked   time.Time `json:"revoked,omitempty"` // zero: live
}

// Session is a browser session's record; the cookie value is never stored.
type Session struct {
	IDHash   string // hex SHA-256 of the cookie value
	User     string
	CSRF     string // the session's CSRF token (sent in X-CSRF-Token)
	Address  string // where it signed in from
	Created  time.Time
	LastSeen time.Time
}

const userCols = `name, role, agent, password_hash, disabled, created_at, password_changed`

func scanUser(r rowScanner) (User, error) {
	var u User
	var dis int
	var created, changed int64
	err := r.Scan(&u.Name, &u.Role, &u.Agent, &u.Hash, &dis, &created, &changed)
	u.Disabled, u.Created, u.PasswordChanged = dis != 0, fromMS(created), fromMS(changed)
	return u, err
}

// AddUser stores a new user (ErrUserExists when the name is taken).
func (s *Store) AddUser(ctx context.Context, u User) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if u.Created.IsZero() {
		u.Created = time.Now()
	}
	if _, err := s.UserByName(ctx, u.Name); err == nil {
		return fmt.Errorf("%w: %q", ErrUserExists, u.Name)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		u.Name, u.Role, u.Agent, u.Hash, boolInt(u.Disabled), ms(u.Created), ms(u.PasswordChanged))
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "unique") || strings.Contains(err.Error(), "duplicate") {
			return fmt.Errorf("%w: %q", ErrUserExists, u.Name)
		}
		return fmt.Errorf("archive: add user: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// UserByName returns one user, or ErrNoUser.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	if err := s.ensure(ctx); err != nil {
		return User{}, err
	}
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userCols+` FROM users WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	if err != nil {
		return User{}, fmt.Errorf("archive: user: %w", err)
	}
	return u, nil
}

// Users returns every user, by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "users", `SELECT `+userCols+` FROM users ORDER BY name`, nil, scanUser)
}

// CountUsers returns how many users exist.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	if err := s.ensure(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("archive: count users: %w", err)
	}
	return n, nil
}

// updateUser runs one UPDATE on a user and ends their sessions when
// endSessions, in one transaction; ErrNoUser when nobody has that name.
func (s *Store) updateUser(ctx context.Context, name, set string, endSessions bool, args ...any) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: update user: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET `+set+` WHERE name = ?`), append(args, name)...)
	if err != nil {
		return fmt.Errorf("archive: update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	if endSessions {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE user_name = ?`), name); err != nil {
			return fmt.Errorf("archive: end sessions: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: update user: %w", err)
	}
	return nil
}

// SetPassword replaces a user's password hash and ends their sessions.
func (s *Store) SetPassword(ctx context.Context, name, hash string, at time.Time) error {
	return s.updateUser(ctx, name, `password_hash = ?, password_changed = ?`, true, hash, ms(at))
}

// SetRole changes a user's role (and agent link) and ends their sessions,
// so no session keeps the old role's rights.
func (s *Store) SetRole(ctx context.Context, name, role, agent string) error {
	return s.updateUser(ctx, name, `role = ?, agent = ?`, true, role, agent)
}

// SetDisabled disables (ending their sessions) or enables a user.
func (s *Store) SetDisabled(ctx context.Context, name string, disabled bool) error {
	return s.updateUser(ctx, name, `disabled = ?`, disabled, boolInt(disabled))
}

const tokenCols = `id, name, role, hash, created_by, created_at, expires_at, revoked_at`

func scanToken(r rowScanner) (APIToken, error) {
	var t APIToken
	var c, e, rv int64
	err := r.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &t.CreatedBy, &c, &e, &rv)
	t.Created, t.Expires, t.Revoked = fromMS(c), fromMS(e), fromMS(rv)
	return t, err
}

// AddToken stores a token's record.
func (s *Store) AddToken(ctx context.Context, t APIToken) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if t.Created.IsZero() {
		t.Created = time.Now()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO api_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		t.ID, t.Name, t.Role, t.Hash, t.CreatedBy, ms(t.Created), ms(t.Expires), ms(t.Revoked))
	if err != nil {
		return fmt.Errorf("archive: add token: %w", err)
	}
	return nil
}

// TokenByHash returns the token whose hash is hash (revoked and expired
// ones too: the caller decides), or ErrNoToken.
func (s *Store) TokenByHash(ctx context.Context, hash string) (APIToken, error) {
	if err := s.ensure(ctx); err != nil {
		return APIToken{}, err
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, ErrNoToken
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("archive: token: %w", err)
	}
	return t, nil
}

// Tokens returns every token's record, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]APIToken, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "tokens", `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at, id`, nil, scanToken)
}

// RevokeToken marks a token revoked at at (ErrNoToken when no token has
// that id; revoking twice keeps the first time).
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE api_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`), ms(at), id)
	if err != nil {
		return fmt.Errorf("archive: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNoToken, id)
	}
	return nil
}

// AddSession stores a new session.
func (s *Store) AddSession(ctx context.Context, se Session) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (id_hash, user_name, csrf, address, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)`),
		se.IDHash, se.User, se.CSRF, se.Address, ms(se.Created), ms(se.LastSeen))
	if err != nil {
		return fmt.Errorf("archive: add session: %w", err)
	}
	return nil
}

// SessionByHash returns a session, or ErrNoSession.
func (s *Store) SessionByHash(ctx context.Context, hash string) (Session, error) {
	if err := s.ensure(ctx); err != nil {
		return Session{}, err
	}
	var se Session
	var c, l int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id_hash, user_name, csrf, address, created_at, last_seen FROM sessions WHERE id_hash = ?`), hash).
		Scan(&se.IDHash, &se.User, &se.CSRF, &se.Address, &c, &l)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("archive: session: %w", err)
	}
	se.Created, se.LastSeen = fromMS(c), fromMS(l)
	return se, nil
}

// TouchSession sets a session's last use.
func (s *Store) TouchSession(ctx context.Context, hash string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE sessions SET last_seen = ? WHERE id_hash = ?`), ms(at), hash); err != nil {
		return fmt.Errorf("archive: touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session (no error when it is already gone).
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE id_hash = ?`), hash); err != nil {
		return fmt.Errorf("archive: delete session: %w", err)
	}
	return nil
}

// DeleteStaleSessions removes sessions idle since before idleBefore or
// created before createdBefore, and returns how many went.
func (s *Store) DeleteStaleSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	if err := s.ensure(ctx); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE last_seen < ? OR created_at < ?`), ms(idleBefore), ms(createdBefore))
	if err != nil {
		return 0, fmt.Errorf("archive: delete stale sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
