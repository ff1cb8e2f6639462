package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/config"
)

// UserStore is what the users and tokens routes need of the user store
// (*archive.Store implements it).
type UserStore interface {
	Users(ctx context.Context) ([]archive.User, error)
	UserByName(ctx context.Context, name string) (archive.User, error)
	AddUser(ctx context.Context, u archive.User) error
	AddToken(ctx context.Context, t archive.APIToken) error
	SetDisabled(ctx context.Context, name string, disabled bool) error
	Tokens(ctx context.Context) ([]archive.APIToken, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	Audit(ctx context.Context, e archive.AuditEntry) (archive.AuditEntry, error)
}

// ErrSelfDisable: an admin may not disable the user they are signed in
// as (the last admin would lock everyone out).
var ErrSelfDisable = errors.New("you may not disable yourself")

// UserOptions are what adding a user checks against the node's
// configuration.
type UserOptions struct {
	// KnownAgent reports whether name is one of agents[] (an agent user
	// links to one); nil accepts none.
	KnownAgent func(name string) bool
	// Demo: admin.auth.demo (any non-empty password).
	Demo bool
}

// RegisterUsers adds the users and tokens routes to mux (the console's
// Users page; the CLI's `cloak users add` and `cloak tokens create` do
// the same):
//
//	GET  /api/users                  users, never a password hash   (users.manage)
//	POST /api/users                  {"name","role","agent","password"} → 201 (users.manage)
//	POST /api/users/{name}/disable   sign-ins refused, sessions end (users.manage)
//	POST /api/users/{name}/enable                                   (users.manage)
//	GET  /api/tokens                 tokens, never a token or hash  (tokens.manage)
//	POST /api/tokens                 {"name","role","expires"} → 201 with the token, shown only then (tokens.manage)
//	POST /api/tokens/{id}/revoke                                    (tokens.manage)
//
// Each change is audited with who made it, as the CLI's are; no answer
// or error echoes a password.
func RegisterUsers(mux *auth.Mux, s UserStore, o UserOptions) {
	audit := func(r *http.Request, action, detail string) error {
		_, err := s.Audit(r.Context(), archive.AuditEntry{Actor: actor(r), Action: action, Address: address(r), Detail: detail})
		return err
	}
	mux.HandleFunc("GET /api/users", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		us, err := s.Users(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		if us == nil {
			us = []archive.User{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"users": us})
	}))
	mux.HandleFunc("POST /api/users", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name     string `json:"name"`
			Role     string `json:"role"`
			Agent    string `json:"agent"`
			Password string `json:"password"`
		}
		if !jsonBody(w, r, &req, `want {"name","role","agent","password"}`) {
			return
		}
		role, err := auth.ParseRole(req.Role)
		if err == nil {
			err = auth.ValidUserName(req.Name)
		}
		switch {
		case err != nil:
		case req.Agent != "" && role != auth.RoleAgent:
			err = errors.New("agent is for role agent")
		case req.Agent != "" && (o.KnownAgent == nil || !o.KnownAgent(req.Agent)):
			err = errors.New("agent is not in agents[] of the configuration")
		default:
			err = auth.CheckPassword(req.Name, req.Password, o.Demo)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if _, err := s.UserByName(r.Context(), req.Name); err == nil { // before the costly hash
			writeError(w, http.StatusConflict, errors.New("a user of that name exists"))
			return
		}
		hash, err := auth.HashPassword(req.Password, auth.DefaultParams)
		req.Password = ""
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		now := time.Now()
		if err := s.AddUser(r.Context(), archive.User{Name: req.Name, Role: string(role), Agent: req.Agent, Hash: hash,
			Created: now, PasswordChanged: now}); err != nil {
			writeError(w, http.StatusConflict, errors.New("user not added (the name is taken?)"))
			return
		}
		if err := audit(r, archive.ActionUserAdd, "user="+req.Name+" role="+string(role)); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "role": string(role), "agent": req.Agent})
	}))
	mux.HandleFunc("POST /api/tokens", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name    string `json:"name"`
			Role    string `json:"role"`
			Expires string `json:"expires"`
		}
		if !jsonBody(w, r, &req, `want {"name","role","expires"}`) {
			return
		}
		role, err := auth.ParseRole(req.Role)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if req.Name == "" || len(req.Name) > 64 || strings.ContainsFunc(req.Name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			writeError(w, http.StatusBadRequest, errors.New("name must be 1 to 64 characters on one line"))
			return
		}
		if req.Expires == "" {
			req.Expires = "90d" // as the CLI's default
		}
		life, err := config.ParseRetention(req.Expires)
		if err != nil {
			writeError(w, http.StatusBadRequest, errors.New("expires: want days (90d), a duration (36h) or 0 for never"))
			return
		}
		tok, id, err := auth.NewToken()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		now := time.Now()
		t := archive.APIToken{ID: id, Name: req.Name, Role: string(role), Hash: auth.HashSecret(tok), CreatedBy: actor(r), Created: now}
		if life > 0 {
			t.Expires = now.Add(life)
		}
		if err := s.AddToken(r.Context(), t); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		if err := audit(r, archive.ActionTokenCreate, "token="+id+" name="+auditSafe(req.Name)+" role="+string(role)); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		// The token itself, this once: only its hash is kept.
		writeJSON(w, http.StatusCreated, map[string]any{"id": id, "name": req.Name, "role": role, "expires": t.Expires, "token": tok})
	}))
	mux.HandleFunc("POST /api/users/{name}/{action}", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		if action != "disable" && action != "enable" {
			writeError(w, http.StatusNotFound, errors.New("want disable or enable"))
			return
		}
		if p, _ := auth.FromContext(r.Context()); action == "disable" && p.Kind == auth.KindSession && p.Name == name {
			writeError(w, http.StatusConflict, ErrSelfDisable)
			return
		}
		err := s.SetDisabled(r.Context(), name, action == "disable")
		switch {
		case errors.Is(err, archive.ErrNoUser):
			writeError(w, http.StatusNotFound, err)
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		if err := audit(r, archive.ActionUserDisable, fmt.Sprintf("user=%s disabled=%v", auditSafe(name), action == "disable")); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "disabled": action == "disable"})
	}))
	mux.HandleFunc("GET /api/tokens", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		ts, err := s.Tokens(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		if ts == nil {
			ts = []archive.APIToken{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
	}))
	mux.HandleFunc("POST /api/tokens/{id}/revoke", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		err := s.RevokeToken(r.Context(), id, time.Now())
		switch {
		case errors.Is(err, archive.ErrNoToken):
			writeError(w, http.StatusNotFound, err)
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		// id named a stored token (its public hex id): safe to audit as is.
		if err := audit(r, archive.ActionTokenRevoke, "token="+id); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": "revoked"})
	}))
}
