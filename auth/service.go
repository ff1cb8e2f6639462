package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/rs/zerolog"
)

// Store is what the service needs of the archive database
// (*archive.Store implements it).
type Store interface {
	UserByName(ctx context.Context, name string) (archive.User, error)
	CountUsers(ctx context.Context) (int, error)
	AddUser(ctx context.Context, u archive.User) error
	TokenByHash(ctx context.Context, hash string) (archive.APIToken, error)
	AddSession(ctx context.Context, s archive.Session) error
	SessionByHash(ctx context.Context, hash string) (archive.Session, error)
	TouchSession(ctx context.Context, hash string, at time.Time) error
	DeleteSession(ctx context.Context, hash string) error
	DeleteStaleSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error)
	Audit(ctx context.Context, e archive.AuditEntry) (archive.AuditEntry, error)
}

// Defaults of Config.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	DefaultStreamCheck = 5 * time.Second
	// MaxConcurrentHashes bounds argon2id verifications running at once.
	MaxConcurrentHashes = 2
	// SessionCookie is the session cookie's name.
	SessionCookie = "cloak_session"
	// CSRFHeader carries the session's CSRF token on state-changing
	// requests made with the cookie.
	CSRFHeader = "X-CSRF-Token"
	// InitialAdminFile is, under the data directory, where the first
	// start writes the initial admin's password (mode 0600).
	InitialAdminFile = "initial-admin-password"
)

// Sentinel errors.
var (
	// ErrUnauthenticated: no credentials, or ones that are unknown,
	// revoked, expired or of a disabled user.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrForbidden: the caller's role does not hold the route's permission.
	ErrForbidden = errors.New("your role may not do this")
	// ErrCSRF: a state-changing request made with the session cookie
	// lacks the session's CSRF token.
	ErrCSRF = errors.New("missing or wrong " + CSRFHeader + " header (GET /api/session gives it)")
	// ErrNoRule: the route has no row in the table (refused to all).
	ErrNoRule = errors.New("route has no permission rule: refused")
	// ErrLocked: too many failed sign-ins from this source or for this user.
	ErrLocked = errors.New("too many failed sign-ins: try again later")
	// ErrBadCredentials: wrong name or password (which, never said).
	ErrBadCredentials = errors.New("wrong name or password")
)

// Config configures a Service.
type Config struct {
	// Store holds users, tokens and sessions, and the audit log.
	Store Store
	// Limiter counts failed sign-ins per source ("ip:ADDR", the key SIP
	// REGISTER uses, so a source guessing either is locked for both) and
	// per user ("web-user:NAME"). Nil: a private one with the defaults.
	Limiter *authlimit.Limiter
	// Log receives sign-in failures and locks (for fail2ban).
	Log zerolog.Logger
	// IdleTimeout ends a session unused this long (0: DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxAge ends a session this long after sign-in (0: DefaultMaxAge).
	MaxAge time.Duration
	// SecureCookie marks the cookie Secure (the API is served over TLS).
	SecureCookie bool
	// Static are fixed tokens (metrics.token_file).
	Static []StaticToken
	// StreamCheck is how often a stream re-checks its credentials (0:
	// DefaultStreamCheck).
	StreamCheck time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Service authenticates requests and guards a Mux.
type Service struct {
	cfg    Config
	hashes chan struct{} // semaphore of argon2id verifications
	// dummy is a hash verified for unknown users (the same cost as a
	// real one), made at the first such sign-in, not at start.
	dummy func() string
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: no store")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.StreamCheck <= 0 {
		cfg.StreamCheck = DefaultStreamCheck
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limiter == nil {
		l, err := authlimit.New(authlimit.Config{})
		if err != nil {
			return nil, err
		}
		cfg.Limiter = l
	}
	dummy := sync.OnceValue(func() string {
		h, _ := HashPassword("not a password of anyone", DefaultParams) // a failure verifies nothing either
		return h
	})
	return &Service{cfg: cfg, hashes: make(chan struct{}, MaxConcurrentHashes), dummy: dummy}, nil
}

// Authenticate returns who made r: an Authorization: Bearer token (a
// static one or one from the store), else the session cookie. A request
// whose Authorization header is present but wrong is refused even with a
// good cookie.
func (s *Service) Authenticate(r *http.Request) (Principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := bearer(h)
		if !ok {
			return Principal{}, fmt.Errorf("%w: want Authorization: Bearer TOKEN", ErrUnauthenticated)
		}
		return s.token(ctx, tok)
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Principal{}, ErrUnauthenticated
	}
	return s.session(ctx, HashSecret(c.Value), true)
}

// token resolves a bearer token.
func (s *Service) token(ctx context.Context, tok string) (Principal, error) {
	hash := HashSecret(tok)
	for _, st := range s.cfg.Static {
		if subtle.ConstantTimeCompare([]byte(HashSecret(st.Token)), []byte(hash)) == 1 {
			p := Principal{Name: st.Name, Kind: KindStatic, perms: map[Perm]Scope{}, peer: st.Peer}
			for _, perm := range st.Perms {
				p.perms[perm] = All
			}
			return p, nil
		}
	}
	t, err := s.cfg.Store.TokenByHash(ctx, hash)
	if errors.Is(err, archive.ErrNoToken) {
		return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, err
	}
	now := s.cfg.Now()
	switch {
	case !t.Revoked.IsZero():
		return Principal{}, fmt.Errorf("%w: token revoked", ErrUnauthenticated)
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return Principal{}, fmt.Errorf("%w: token expired", ErrUnauthenticated)
	}
	role, err := ParseRole(t.Role)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return Principal{Name: t.Name, Kind: KindToken, Role: role, TokenID: t.ID, Expires: t.Expires}, nil
}

// touchEvery: a session's last use is written at most this often (a
// write per request would serialise SQLite for nothing).
const touchEvery = time.Minute

// session resolves a session by its id hash; touch records the use.
func (s *Service) session(ctx context.Context, hash string, touch bool) (Principal, error) {
	se, err := s.cfg.Store.SessionByHash(ctx, hash)
	if errors.Is(err, archive.ErrNoSession) {
		return Principal{}, fmt.Errorf("%w: session ended", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, err
	}
	now := s.cfg.Now()
	end := se.Created.Add(s.cfg.MaxAge)
	if !now.Before(end) || now.Sub(se.LastSeen) >= s.cfg.IdleTimeout {
		_ = s.cfg.Store.DeleteSession(ctx, hash)
		return Principal{}, fmt.Errorf("%w: session expired", ErrUnauthenticated)
	}
	u, err := s.cfg.Store.UserByName(ctx, se.User)
	if err != nil || u.Disabled {
		_ = s.cfg.Store.DeleteSession(ctx, hash)
		return Principal{}, fmt.Errorf("%w: user disabled or removed", ErrUnauthenticated)
	}
	role, err := ParseRole(u.Role)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if touch && now.Sub(se.LastSeen) >= touchEvery {
		if err := s.cfg.Store.TouchSession(ctx, hash, now); err != nil {
			return Principal{}, err
		}
	}
	return Principal{Name: u.Name, Kind: KindSession, Role: role, Agent: u.Agent, Expires: end,
		session: hash, csrf: se.CSRF}, nil
}

// still reports whether p's credential is still good (for streams).
func (s *Service) still(ctx context.Context, p Principal, tok string) bool {
	if p.Via != "" { // the forwarding node watches the user's credential
		return true
	}
	switch p.Kind {
	case KindSession:
		_, err := s.session(ctx, p.session, false)
		return err == nil
	case KindToken:
		_, err := s.token(ctx, tok)
		return err == nil
	}
	return true
}

// Guard authorises every request to m against Rules: no rule 403 (fail
// closed), Public served, no or bad credentials 401, a role without the
// permission 403, a cookie request that changes state without the CSRF
// token 403; otherwise m serves it with the Principal in the context. A
// Stream route's request is cancelled when its credential ends.
func (s *Service) Guard(m *Mux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, pattern := m.Handler(r)
		rule, ok := RuleFor(pattern)
		if pattern != "" && !ok {
			s.cfg.Log.Error().Str("route", pattern).Msg("HTTP route without a permission rule refused (add it to auth.Rules)")
			writeError(w, http.StatusForbidden, ErrNoRule)
			return
		}
		if ok && rule.Perm == Public {
			m.ServeHTTP(w, r)
			return
		}
		p, err := s.Authenticate(r)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				s.cfg.Log.Error().Err(err).Msg("authentication failed on a store error")
				writeError(w, http.StatusServiceUnavailable, errors.New("user store unavailable"))
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="cloak"`)
			writeError(w, http.StatusUnauthorized, err)
			return
		}
		if p.peer && r.Header.Get(PrincipalHeader) != "" {
			// Forwarded by another node, which authenticated the user
			// and checked the rule: served as that user, never more, and
			// only on a route nodes forward.
			c, err := uncarry(r.Header.Get(PrincipalHeader))
			if err == nil && !rule.Forward {
				err = fmt.Errorf("%w: %s is not forwarded between nodes", ErrCarried, pattern)
			}
			if err != nil {
				s.cfg.Log.Warn().Err(err).Str("source", sourceIP(r)).Msg("forwarded request refused")
				writeError(w, http.StatusForbidden, ErrCarried)
				return
			}
			p = c
		}
		if !ok { // no route: the mux says 404 or 405, to the signed in only
			m.ServeHTTP(w, r)
			return
		}
		if p.Scope(rule.Perm) == None {
			writeError(w, http.StatusForbidden, fmt.Errorf("%w (%s needs %s; you are %s)", ErrForbidden, pattern, rule.Perm, p.roleName()))
			return
		}
		if p.Kind == KindSession && p.Via == "" && !safeMethod(r.Method) { // a forwarded one was checked where it came in
			got := r.Header.Get(CSRFHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.csrf)) != 1 {
				writeError(w, http.StatusForbidden, ErrCSRF)
				return
			}
		}
		ctx := WithPrincipal(r.Context(), p)
		if rule.Stream {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			tok, _ := bearer(r.Header.Get("Authorization"))
			go s.watch(ctx, cancel, p, tok)
		}
		m.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (p Principal) roleName() string {
	if p.Role == "" {
		return p.Kind + " " + p.Name
	}
	return string(p.Role)
}

// watch cancels a stream once its credential ends (signed out, expired,
// idle, revoked, user disabled), checked every StreamCheck and at the
// credential's end.
func (s *Service) watch(ctx context.Context, cancel context.CancelFunc, p Principal, tok string) {
	t := time.NewTicker(s.cfg.StreamCheck)
	defer t.Stop()
	var end <-chan time.Time
	if !p.Expires.IsZero() {
		timer := time.NewTimer(time.Until(p.Expires))
		defer timer.Stop()
		end = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			cancel()
			return
		case <-t.C:
			cctx, c := context.WithTimeout(ctx, 5*time.Second)
			ok := s.still(cctx, p, tok)
			c()
			if !ok && ctx.Err() == nil {
				cancel()
				return
			}
		}
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Register adds the session routes (sign in, who am I, sign out) to m.
func (s *Service) Register(m *Mux) {
	m.HandleFunc("POST /api/session", s.signIn)
	m.HandleFunc("GET /api/session", s.whoAmI)
	m.HandleFunc("DELETE /api/session", s.signOut)
}

// sourceIP is the address part of r.RemoteAddr (no proxy header is
// trusted: cloak is not behind one of its own).
func sourceIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// maxNameLen bounds a user name (and the limiter key made of it).
const maxNameLen = 64

func (s *Service) signIn(w http.ResponseWriter, r *http.Request) {
	// JSON only: a cross-site form (text/plain, no CORS preflight) cannot
	// sign a browser in as someone else (login CSRF).
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("want Content-Type: application/json"))
		return
	}
	var req struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Name == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, errors.New(`body must be {"name": "…", "password": "…"}`))
		return
	}
	ctx := r.Context()
	ip := sourceIP(r)
	name := req.Name
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	keys := []string{"ip:" + ip, "web-user:" + name}
	lim := s.cfg.Limiter
	switch d := lim.Check(keys...); d.Verdict {
	case authlimit.Locked:
		w.Header().Set("Retry-After", fmt.Sprint(int(time.Until(d.Until).Seconds())+1))
		writeError(w, http.StatusTooManyRequests, ErrLocked)
		return
	case authlimit.Backoff:
		// Too soon after a failure: refused unchecked, and counted, so a
		// flood reaches the lock at once (as REGISTER does).
		s.logLocks(ctx, lim.Fail(keys...), ip, s.knownName(ctx, name))
		w.Header().Set("Retry-After", fmt.Sprint(int(time.Until(d.Until).Seconds())+1))
		writeError(w, http.StatusTooManyRequests, ErrLocked)
		return
	}
	u, ok, err := s.verify(ctx, name, req.Password)
	// A name that is no user is not logged or audited: people type their
	// password (or worse) into the name field.
	shown := logSafe(name)
	if u.Name == "" {
		shown = "(unknown)"
	}
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("sign-in failed on a store error")
		writeError(w, http.StatusServiceUnavailable, errors.New("user store unavailable"))
		return
	}
	if !ok {
		locks := lim.Fail(keys...)
		s.cfg.Log.Info().Msg(fmt.Sprintf("http sign-in failed source=%s user=%q", ip, shown))
		s.audit(ctx, "user:"+shown, archive.ActionSignInFailed, ip, "")
		s.logLocks(ctx, locks, ip, shown)
		if len(locks) > 0 {
			writeError(w, http.StatusTooManyRequests, ErrLocked)
			return
		}
		writeError(w, http.StatusUnauthorized, ErrBadCredentials)
		return
	}
	lim.Succeed(keys...)
	id, err := newSecret()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	csrf, err := newSecret()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	now := s.cfg.Now()
	// Sessions abandoned without signing out go as others sign in (and
	// at start), so the table holds live sessions only.
	if _, err := s.cfg.Store.DeleteStaleSessions(ctx, now.Add(-s.cfg.IdleTimeout), now.Add(-s.cfg.MaxAge)); err != nil {
		s.cfg.Log.Warn().Err(err).Msg("stale sessions not removed")
	}
	se := archive.Session{IDHash: HashSecret(id), User: u.Name, CSRF: csrf, Address: ip, Created: now, LastSeen: now}
	if err := s.cfg.Store.AddSession(ctx, se); err != nil {
		s.cfg.Log.Error().Err(err).Msg("sign-in: session not stored")
		writeError(w, http.StatusServiceUnavailable, errors.New("user store unavailable"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.SecureCookie || r.TLS != nil,
		MaxAge: int(s.cfg.MaxAge.Seconds())})
	s.audit(ctx, "user:"+u.Name, archive.ActionSignIn, ip, "")
	p := Principal{Name: u.Name, Kind: KindSession, Role: Role(u.Role), Agent: u.Agent, Expires: now.Add(s.cfg.MaxAge), csrf: csrf}
	writeJSON(w, http.StatusOK, p.view())
}

// knownName is name when it is a user's, else "(unknown)" (for logs).
func (s *Service) knownName(ctx context.Context, name string) string {
	if _, err := s.cfg.Store.UserByName(ctx, name); err != nil {
		return "(unknown)"
	}
	return logSafe(name)
}

// verify checks a password, at the same cost whether the user exists,
// is disabled or not (no user enumeration by timing).
func (s *Service) verify(ctx context.Context, name, password string) (archive.User, bool, error) {
	u, err := s.cfg.Store.UserByName(ctx, name)
	hash := u.Hash
	switch {
	case errors.Is(err, archive.ErrNoUser):
		hash = s.dummy()
	case err != nil:
		return u, false, err
	}
	select {
	case s.hashes <- struct{}{}:
	case <-ctx.Done():
		return u, false, ctx.Err()
	}
	ok, verr := VerifyPassword(password, hash)
	<-s.hashes
	if err != nil || verr != nil || u.Disabled {
		return u, false, nil
	}
	return u, ok, nil
}

// logLocks writes the one line per lock fail2ban matches (the source
// first, then the quoted name: a user's, sanitised, or "(unknown)"), and
// audits it.
func (s *Service) logLocks(ctx context.Context, locks []authlimit.Lock, ip, name string) {
	if len(locks) == 0 {
		return
	}
	var scope []string
	for _, l := range locks {
		scope = append(scope, strings.SplitN(l.Key, ":", 2)[0])
	}
	lockFor := locks[0].Until.Sub(s.cfg.Now()).Round(time.Second)
	s.cfg.Log.Warn().Msg(fmt.Sprintf("http auth locked source=%s user=%q failures=%d lock_for=%s scope=%s",
		ip, name, locks[0].Failures, lockFor, strings.Join(scope, ",")))
	s.audit(ctx, "user:"+name, archive.ActionSignInLocked, ip, "scope="+strings.Join(scope, ","))
}

// logSafe keeps a client-chosen name from forging log fields: any byte
// but letters, digits and "._@+-" becomes "_".
func logSafe(u string) string {
	b := []byte(u)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("._@+-", c) >= 0:
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// view is what the session routes answer: who, which role, and (for a
// session) the CSRF token.
func (p Principal) view() map[string]any {
	v := map[string]any{"name": p.Name, "kind": p.Kind, "role": p.Role}
	if p.Agent != "" {
		v["agent"] = p.Agent
	}
	if !p.Expires.IsZero() {
		v["expires"] = p.Expires.UTC()
	}
	if p.csrf != "" {
		v["csrf_token"] = p.csrf
	}
	return v
}

func (s *Service) whoAmI(w http.ResponseWriter, r *http.Request) {
	p, ok := FromContext(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, ErrUnauthenticated)
		return
	}
	writeJSON(w, http.StatusOK, p.view())
}

func (s *Service) signOut(w http.ResponseWriter, r *http.Request) {
	p, ok := FromContext(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, ErrUnauthenticated)
		return
	}
	if p.Kind != KindSession {
		writeError(w, http.StatusBadRequest, errors.New("not a session: a token ends with cloak tokens revoke"))
		return
	}
	if err := s.cfg.Store.DeleteSession(r.Context(), p.session); err != nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("user store unavailable"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.SecureCookie || r.TLS != nil, MaxAge: -1})
	s.audit(r.Context(), p.Actor(), archive.ActionSignOut, sourceIP(r), "")
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed out"})
}

// Audit writes a signed audit row for p's action from r (admin's
// handlers use it for actions on calls); a failure is logged.
func (s *Service) Audit(r *http.Request, p Principal, action, interaction, detail string) {
	_, err := s.cfg.Store.Audit(r.Context(), archive.AuditEntry{Actor: p.Actor(), Action: action,
		Interaction: interaction, Address: sourceIP(r), Detail: detail})
	if err != nil {
		s.cfg.Log.Error().Err(err).Str("action", action).Msg("audit row not written")
	}
}

func (s *Service) audit(ctx context.Context, actor, action, addr, detail string) {
	_, err := s.cfg.Store.Audit(context.WithoutCancel(ctx), archive.AuditEntry{Actor: actor, Action: action, Address: addr, Detail: detail})
	if err != nil {
		s.cfg.Log.Error().Err(err).Str("action", action).Msg("audit row not written")
	}
}

// EnsureAdmin creates user "admin" (role admin) with a random password
// when the store has no user at all: the password is printed once to
// out and written to DATA/initial-admin-password (mode 0600), which
// `cloak users passwd admin` removes. It returns whether it created it.
func EnsureAdmin(ctx context.Context, st Store, dataDir string, out interface{ Write([]byte) (int, error) }) (bool, error) {
	n, err := st.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	pw, err := RandomPassword()
	if err != nil {
		return false, err
	}
	hash, err := HashPassword(pw, DefaultParams)
	if err != nil {
		return false, err
	}
	if err := st.AddUser(ctx, archive.User{Name: "admin", Role: string(RoleAdmin), Hash: hash}); err != nil {
		if errors.Is(err, archive.ErrUserExists) { // another node was first
			return false, nil
		}
		return false, err
	}
	path := filepath.Join(dataDir, InitialAdminFile)
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return true, fmt.Errorf("auth: %s: %w", path, err)
	}
	_, werr := f.WriteString(pw + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return true, fmt.Errorf("auth: %s: %w", path, werr)
	}
	_, _ = st.Audit(ctx, archive.AuditEntry{Actor: "system", Action: archive.ActionInitialAdmin, Detail: "user=admin"})
	fmt.Fprintf(out, "\n*** cloak created user \"admin\" with password %s (shown once; also in %s until changed with: cloak users passwd admin) ***\n\n", pw, path)
	return true, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
