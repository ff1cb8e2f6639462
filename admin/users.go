package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
)

// UserStore is what the users and tokens routes need of the user store
// (*archive.Store implements it).
type UserStore interface {
	Users(ctx context.Context) ([]archive.User, error)
	SetDisabled(ctx context.Context, name string, disabled bool) error
	Tokens(ctx context.Context) ([]archive.APIToken, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	Audit(ctx context.Context, e archive.AuditEntry) (archive.AuditEntry, error)
}

// ErrSelfDisable: an admin may not disable the user they are signed in
// as (the last admin would lock everyone out).
var ErrSelfDisable = errors.New("you may not disable yourself")

// RegisterUsers adds the users and tokens routes to mux (the console's
// Users page; adding users and creating tokens, which show a secret, stay
// with the CLI, `cloak users add` and `cloak tokens create`):
//
//	GET  /api/users                  users, never a password hash   (users.manage)
//	POST /api/users/{name}/disable   sign-ins refused, sessions end (users.manage)
//	POST /api/users/{name}/enable                                   (users.manage)
//	GET  /api/tokens                 tokens, never a token or hash  (tokens.manage)
//	POST /api/tokens/{id}/revoke                                    (tokens.manage)
//
// Each change is audited with who made it, as the CLI's are.
func RegisterUsers(mux *auth.Mux, s UserStore) {
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
