package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/cloak-voip/cloak/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/console.css static/console.js
var staticFS embed.FS

// CSP is the Content-Security-Policy of every console response: only
// cloak's own script, stylesheet, media and connections (fetch,
// EventSource); no inline script or style, no plugin, no framing, no
// <base>.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// ErrNoPrincipal: a page was reached without the Guard's principal (an
// unguarded mux); it answers 401 (fail closed).
var ErrNoPrincipal = errors.New("console: no principal (route not guarded)")

// page is one page of the console.
type page struct {
	Path    string // URL path in the navigation
	Pattern string // the route as registered (its auth.Rules row)
	Title   string
	File    string // template file under templates/
	Nav     bool   // listed in the navigation
}

// pages lists every page, in navigation order.
var pages = []page{
	{Path: "/desk", Pattern: "GET /desk", Title: "Agent desktop", File: "desk.html", Nav: true},
	{Path: "/live", Pattern: "GET /live", Title: "Live", File: "live.html", Nav: true},
	{Path: "/archive", Pattern: "GET /archive", Title: "Archive", File: "archive.html", Nav: true},
	{Path: "/archive/{id}", Pattern: "GET /archive/{id}", Title: "Interaction", File: "interaction.html"},
	{Path: "/anonymise", Pattern: "GET /anonymise", Title: "Anonymise", File: "anonymise.html", Nav: true},
	{Path: "/audit", Pattern: "GET /audit", Title: "Audit", File: "audit.html", Nav: true},
	{Path: "/holds", Pattern: "GET /holds", Title: "Fraud holds", File: "holds.html", Nav: true},
	{Path: "/fraud", Pattern: "GET /fraud", Title: "Fraud data", File: "fraud.html", Nav: true},
	{Path: "/users", Pattern: "GET /users", Title: "Users and tokens", File: "users.html", Nav: true},
}

// NavItem is one link of the navigation.
type NavItem struct {
	Path, Title string
	Current     bool
}

// view is what a page template gets.
type view struct {
	Title string
	Page  string // the template's name, also <body data-page>
	Nav   []NavItem
	User  string
	Role  string
	Agent string
	CSRF  string
	ID    string // the path's {id}, when the page has one
	// Can holds, per API action the page may offer, whether the
	// caller's role holds that route's permission (auth.Rules).
	Can map[string]bool
	// Cluster: the node shares calls with others (cluster.enabled); the
	// live page lists every node's (GET /api/cluster/calls).
	Cluster bool
	// Roles are the roles a user or token may have (the users page).
	Roles []auth.Role
}

// actions are the API routes whose buttons a page shows or hides: the
// key is what templates and the script test, the value the route's
// pattern in auth.Rules.
var actions = map[string]string{
	"payment":  "POST /api/calls/{id}/payments",
	"record":   "POST /api/calls/{id}/recording/{action}",
	"monitor":  "POST /api/calls/{id}/monitor",
	"play":     "GET /api/archive/interactions/{id}/recording/play",
	"download": "GET /api/archive/interactions/{id}/recording",
	"delete":   "DELETE /api/archive/interactions/{id}/recording",
	"export":   "GET /api/archive/export",
	"forget":   "POST /api/archive/anonymise",
	"audit":    "GET /api/archive/audit",
	"holds":    "POST /api/fraud/holds/{id}/release",
	"hold":     "POST /api/fraud/holds",
	"tokens":   "GET /api/tokens",
}

// Console serves the pages.
type Console struct {
	tmpl map[string]*template.Template
	opts Options
}

// Options are what the pages need to know of the node.
type Options struct {
	// Cluster: the node runs with cluster.enabled (docs/SCALE.md); the
	// live page then lists every node's calls with a node column.
	Cluster bool
}

// New parses the embedded templates.
func New(opts Options) (*Console, error) {
	c := &Console{tmpl: map[string]*template.Template{}, opts: opts}
	for _, f := range []string{"signin.html", "denied.html"} {
		t, err := template.ParseFS(templateFS, "templates/layout.html", "templates/"+f)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", f, err)
		}
		c.tmpl[f] = t
	}
	for _, p := range pages {
		t, err := template.ParseFS(templateFS, "templates/layout.html", "templates/"+p.File)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", p.File, err)
		}
		c.tmpl[p.File] = t
	}
	return c, nil
}

// Register adds the console's routes to m: "/", the sign-in page, the
// static files and every page. Each has its row in auth.Rules.
func (c *Console) Register(m *auth.Mux) {
	m.HandleFunc("GET /{$}", c.home)
	m.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, http.StatusOK, "signin.html", view{Title: "Sign in", Page: "signin"})
	})
	m.HandleFunc("GET /static/{file}", serveStatic)
	for _, p := range pages {
		m.HandleFunc(p.Pattern, c.pageHandler(p))
	}
}

// SecurityHeaders sets the console's response headers on w.
func SecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w)
	var ctype string
	switch r.PathValue("file") {
	case "console.css":
		ctype = "text/css; charset=utf-8"
	case "console.js":
		ctype = "text/javascript; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(staticFS, "static/"+r.PathValue("file"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write(b)
}

// Landing returns the first page of the navigation p may open ("" when
// none).
func Landing(p auth.Principal) string {
	for _, pg := range pages {
		if rule, ok := auth.RuleFor(pg.Pattern); ok && pg.Nav && p.Can(rule.Perm) {
			return pg.Path
		}
	}
	return ""
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	if to := Landing(p); to != "" {
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusForbidden, "denied.html", c.viewFor(p, page{Title: "No page"}, r))
}

// viewFor builds a page's view for p: the navigation and the actions its
// role holds, both from auth.Rules.
func (c *Console) viewFor(p auth.Principal, pg page, r *http.Request) view {
	v := view{Title: pg.Title, Page: strings.TrimSuffix(pg.File, ".html"), User: p.Name, Role: string(p.Role),
		Agent: p.Agent, CSRF: p.CSRFToken(), ID: r.PathValue("id"), Can: map[string]bool{}, Cluster: c.opts.Cluster,
		Roles: auth.Roles()}
	for _, n := range pages {
		if rule, ok := auth.RuleFor(n.Pattern); ok && n.Nav && p.Can(rule.Perm) {
			v.Nav = append(v.Nav, NavItem{Path: n.Path, Title: n.Title, Current: n.Path == pg.Path ||
				(pg.Path == "/archive/{id}" && n.Path == "/archive")})
		}
	}
	for k, pattern := range actions {
		rule, ok := auth.RuleFor(pattern)
		v.Can[k] = ok && p.Can(rule.Perm)
	}
	return v
}

func (c *Console) pageHandler(pg page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			SecurityHeaders(w)
			http.Error(w, ErrNoPrincipal.Error(), http.StatusUnauthorized)
			return
		}
		c.render(w, http.StatusOK, pg.File, c.viewFor(p, pg, r))
	}
}

func (c *Console) render(w http.ResponseWriter, status int, file string, v view) {
	SecurityHeaders(w)
	t := c.tmpl[file]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		http.Error(w, "console: page not rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// isPage reports whether path is a console page (not the API, metrics,
// profiler, health check or a static file).
func isPage(p string) bool {
	for _, pre := range []string{"/api/", "/debug/", "/metrics", "/healthz", "/static/"} {
		if strings.HasPrefix(p, pre) {
			return false
		}
	}
	return true
}

// wantsHTML reports whether r is a browser's navigation (Accept names
// text/html), which gets pages rather than JSON errors.
func wantsHTML(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// Pages wraps the guarded node handler so a browser opening a console
// page gets a page for the Guard's refusals: 401 becomes a redirect to
// the sign-in page (with the page to come back to), 403 an HTML page
// saying the role may not use it (still status 403). Everything else,
// and every request that is not a browser's navigation to a page (the
// API, curl), passes untouched.
func (c *Console) Pages(guarded http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !wantsHTML(r) || !isPage(r.URL.Path) {
			guarded.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(&pageWriter{ResponseWriter: w, c: c, r: r}, r)
	})
}

// pageWriter replaces the Guard's JSON 401 and 403 with pages.
type pageWriter struct {
	http.ResponseWriter
	c        *Console
	r        *http.Request
	replaced bool
}

func (pw *pageWriter) WriteHeader(code int) {
	switch code {
	case http.StatusUnauthorized:
		pw.replaced = true
		next := path.Clean(pw.r.URL.Path)
		h := pw.ResponseWriter.Header()
		h.Del("WWW-Authenticate")
		h.Del("Content-Type")
		SecurityHeaders(pw.ResponseWriter)
		to := "/signin"
		if next != "/" && next != "/signin" {
			to += "?next=" + url.QueryEscape(next)
		}
		h.Set("Location", to)
		pw.ResponseWriter.WriteHeader(http.StatusSeeOther)
	case http.StatusForbidden:
		pw.replaced = true
		pw.ResponseWriter.Header().Del("Content-Type")
		pw.c.render(pw.ResponseWriter, http.StatusForbidden, "denied.html", view{Title: "Not for your role", Page: "denied"})
	default:
		pw.ResponseWriter.WriteHeader(code)
	}
}

func (pw *pageWriter) Write(b []byte) (int, error) {
	if pw.replaced {
		return len(b), nil
	}
	return pw.ResponseWriter.Write(b)
}
