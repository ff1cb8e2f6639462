package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/admin"
	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/console"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/metrics"
)

// userStore is the database users, tokens and sessions live in: the
// archive's, opened here for them alone when archive.enabled is false.
func (a *nodeArchive) userStore(ctx context.Context, cfg config.Config) (*archive.Store, error) {
	if a.store != nil {
		a.users.Store(a.store)
		return a.store, nil
	}
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, true)
	if err != nil {
		return nil, fmt.Errorf("archive.key_file (users and tokens are in the archive database): %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := archive.Open(octx, o)
	if err != nil {
		return nil, fmt.Errorf("archive.dsn (%s, users and tokens): %w", archive.Describe(o.DSN), err)
	}
	a.usersOnly = s
	a.users.Store(s)
	return s, nil
}

// authSetup builds the API's authentication over the user store: failed
// sign-ins share REGISTER's limiter, metrics.token_file becomes a token
// that may read /metrics alone, and the first start (no user yet)
// creates "admin" with a random password printed once to stderr.
func (a *nodeArchive) authSetup(ctx context.Context, cfg config.Config, lim *authlimit.Limiter, met metrics.Access) (*auth.Service, error) {
	st, err := a.userStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var static []auth.StaticToken
	if met.Token != "" {
		static = append(static, auth.StaticToken{Name: "metrics.token_file", Token: met.Token, Perms: []auth.Perm{auth.PermMetrics}})
	}
	if cfg.Cluster.Enabled {
		tok, err := clusterToken(cfg.Cluster)
		if err != nil {
			return nil, err
		}
		if tok != "" { // the other nodes' forwarded requests (server/clusterview.go)
			static = append(static, auth.StaticToken{Name: "cluster.token_file", Token: tok, Peer: true})
		}
	}
	svc, err := auth.New(auth.Config{
		Store: userStore{st, cfg}, Limiter: lim, Log: a.log,
		IdleTimeout: cfg.Admin.Auth.SessionIdle, MaxAge: cfg.Admin.Auth.SessionMax,
		SecureCookie: cfg.Admin.TLS.CertFile != "", Static: static,
	})
	if err != nil {
		return nil, fmt.Errorf("admin.auth: %w", err)
	}
	// The initial admin's argon2id hash takes a while (seconds on a busy
	// machine): made beside the start, not in its way; close waits for it.
	a.adminDone = make(chan struct{})
	go func() {
		defer close(a.adminDone)
		ectx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := auth.EnsureAdmin(ectx, st, cfg.Data.Dir, os.Stderr); err != nil {
			// A shared database down at start: the API answers 503 until
			// it is back; the calls go on.
			a.log.Error().Err(err).Msg("initial admin user not created (the user store is unavailable)")
		}
		if n, _ := st.DeleteStaleSessions(ectx, time.Now().Add(-cfg.Admin.Auth.SessionIdle), time.Now().Add(-cfg.Admin.Auth.SessionMax)); n > 0 {
			a.log.Info().Int64("sessions", n).Msg("expired API sessions removed")
		}
	}()
	return svc, nil
}

// userStore is the archive store as auth.Store, with the agent a user is
// taken from agents[].user when the user's own record links none.
type userStore struct {
	*archive.Store
	cfg config.Config
}

func (u userStore) UserByName(ctx context.Context, name string) (archive.User, error) {
	usr, err := u.Store.UserByName(ctx, name)
	if err == nil && usr.Agent == "" {
		usr.Agent = u.cfg.AgentOfUser(usr.Name)
	}
	return usr, err
}

// archiveRoutes registers the archive's API (/api/archive/…) on m when
// the archive is on.
func (a *nodeArchive) archiveRoutes(m *auth.Mux, cfg config.Config, calls admin.Backend) {
	if a.store == nil {
		return
	}
	var ret archive.Retention
	r := cfg.Archive.Retention
	ret.Interactions, _ = config.ParseRetention(r.Interactions) // validated
	ret.Recordings, _ = config.ParseRetention(r.Recordings)
	ret.ParticipantData, _ = config.ParseRetention(r.ParticipantData)
	ret.Traces, _ = config.ParseRetention(r.Traces)
	recDir := cfg.Recording.Dir
	if recDir == "" {
		recDir = filepath.Join(cfg.Data.Dir, "recordings")
	}
	admin.RegisterArchive(m, a.store, admin.ArchiveOptions{RecordingsDir: recDir, Retention: ret})
	// The fraud holds workbench; release and reject capture or void at
	// the flows' payment gateway, else the demo one.
	gw := archive.HTTPGateway(func() (string, error) {
		if u := cfg.Flows.Endpoints["payment_gateway"]; u != "" {
			return u, nil
		}
		b, err := os.ReadFile(filepath.Join(cfg.Data.Dir, DemoGatewayURLFile))
		if err != nil {
			return "", fmt.Errorf("no flows.endpoints.payment_gateway and no demo gateway: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	})
	admin.RegisterFraud(m, a.store, admin.FraudOptions{Gateway: gw, Calls: calls,
		Normaliser: fraud.Normaliser{CountryCode: cfg.Fraud.DefaultCountryCode}, OnChange: a.fraudChanged})
	a.log.Info().Str("admin.listen", cfg.Admin.Listen).Msg("archive API at /api/archive/ for signed-in users per role; every view, play, download, delete, anonymisation and export is audited")
}

// apiHandler assembles the node's HTTP API on one Mux — the call API,
// the archive's, the session routes, /metrics (met nil: off) and the web
// console's pages — and guards it with the permission table.
func apiHandler(svc *auth.Service, b admin.Backend, cfg config.Config, a *nodeArchive, met *metrics.Metrics, trunks *nodeTrunks, clu *nodeCluster) (http.Handler, *auth.Mux) {
	m := auth.NewMux()
	m.Use(clu.forwarder(b)) // actions on a call another node holds go there
	admin.Register(m, b, admin.Options{Pprof: cfg.Admin.Pprof, Auth: svc})
	a.archiveRoutes(m, cfg, b)
	trunks.routes(m)
	clu.routes(m)
	clu.clusterCallsRoute(m, b)
	svc.Register(m)
	if us := a.users.Load(); us != nil { // the user store userStore opened
		admin.RegisterUsers(m, us, admin.UserOptions{Demo: cfg.Admin.Auth.Demo, KnownAgent: cfg.HasAgent})
	}
	if met != nil {
		m.Handle("GET /metrics", met.Handler(metrics.Access{Authorised: true}))
	}
	con, err := console.New(console.Options{Cluster: cfg.Cluster.Enabled})
	if err != nil { // embedded templates: only a broken build fails here; the API goes on
		a.log.Error().Err(err).Msg("web console not served")
		return svc.Guard(m), m
	}
	con.Register(m)
	return con.Pages(svc.Guard(m)), m
}
