package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/auth"
)

// TestNoInlineScriptOrStyle: the CSP forbids inline script and style, so
// a template holding one would break in the browser; none may.
func TestNoInlineScriptOrStyle(t *testing.T) {
	bad := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`),      // a script with a body
		regexp.MustCompile(`(?i)<script\s*>`),                        // a script element without src
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),                     // onclick= and friends
		regexp.MustCompile(`(?i)\sstyle\s*=`),                        // inline style
		regexp.MustCompile(`(?i)<style`),                             // a style element
		regexp.MustCompile(`(?i)(?:src|href)\s*=\s*"(?:https?:)?//`), // another origin
		regexp.MustCompile(`(?i)javascript:`),
	}
	n := 0
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, path)
		if err != nil {
			return err
		}
		n++
		for _, re := range bad {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s: %q is not allowed under the CSP", path, b[loc[0]:min(loc[1]+20, len(b))])
			}
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("templates walked: %d, %v", n, err)
	}
	js, _ := fs.ReadFile(staticFS, "static/console.js")
	if strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), "eval(") {
		t.Error("console.js must build the DOM with textContent only (no innerHTML, no eval)")
	}
}

// rig is the console on a Mux behind a fake guard: the principal comes
// from the X-Test-Role header and every route is checked against
// auth.Rules, as auth.Service.Guard does.
func rig(t *testing.T) http.Handler { return rigWith(t, Options{}) }

// rigWith is rig for a node with opts.
func rigWith(t *testing.T, opts Options) http.Handler {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	m := auth.NewMux()
	c.Register(m)
	guard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := m.Handler(r)
		rule, ok := auth.RuleFor(pattern)
		if !ok {
			http.Error(w, `{"error":"no rule"}`, http.StatusForbidden)
			return
		}
		if rule.Perm == auth.Public {
			m.ServeHTTP(w, r)
			return
		}
		role := r.Header.Get("X-Test-Role")
		if role == "" {
			http.Error(w, `{"error":"authentication required"}`, http.StatusUnauthorized)
			return
		}
		p := auth.Principal{Name: "u", Kind: auth.KindSession, Role: auth.Role(role)}
		if p.Scope(rule.Perm) == auth.None {
			http.Error(w, `{"error":"your role may not do this"}`, http.StatusForbidden)
			return
		}
		m.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
	return c.Pages(guard)
}

func get(h http.Handler, path, role string, html bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if role != "" {
		req.Header.Set("X-Test-Role", role)
	}
	if html {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

var navLink = regexp.MustCompile(`<li><a href="(/[a-z]+)"`)

// TestNavigationFollowsTheTable: each role's navigation lists exactly the
// pages auth.Rules lets it open; every other page answers 403 (an HTML
// page to a browser), every page carries the CSP and friends.
func TestNavigationFollowsTheTable(t *testing.T) {
	h := rig(t)
	want := map[auth.Role][]string{
		auth.RoleAgent:      {"/desk"},
		auth.RoleSupervisor: {"/desk", "/live", "/archive", "/holds", "/fraud"},
		auth.RoleArchivist:  {"/archive", "/anonymise"},
		auth.RoleAuditor:    {"/archive", "/audit"},
		auth.RoleAdmin:      {"/desk", "/live", "/archive", "/anonymise", "/audit", "/holds", "/fraud", "/users"},
	}
	for _, role := range auth.Roles() {
		home := get(h, "/", string(role), true)
		if home.Code != http.StatusSeeOther || home.Header().Get("Location") != want[role][0] {
			t.Errorf("%s: / answered %d to %q, want %s", role, home.Code, home.Header().Get("Location"), want[role][0])
		}
		w := get(h, want[role][0], string(role), true)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %s: %d", role, want[role][0], w.Code)
		}
		var got []string
		for _, m := range navLink.FindAllStringSubmatch(w.Body.String(), -1) {
			got = append(got, m[1])
		}
		if strings.Join(got, " ") != strings.Join(want[role], " ") {
			t.Errorf("%s: navigation %v, want %v", role, got, want[role])
		}
		for _, pg := range []string{"/desk", "/live", "/archive", "/archive/x1", "/anonymise", "/audit", "/holds", "/fraud", "/users"} {
			w := get(h, pg, string(role), true)
			checkHeaders(t, pg, w)
			allowed := false
			for _, p := range want[role] {
				allowed = allowed || strings.HasPrefix(pg, p)
			}
			switch {
			case allowed && w.Code != http.StatusOK:
				t.Errorf("%s: %s: %d, want 200", role, pg, w.Code)
			case !allowed && (w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `id="denied"`)):
				t.Errorf("%s: %s: %d, want the 403 page", role, pg, w.Code)
			}
		}
	}
}

func checkHeaders(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Content-Security-Policy"); got != CSP {
		t.Errorf("%s: CSP %q", what, got)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("%s: headers %v", what, w.Header())
	}
}

// TestSignedOutBrowserGoesToSignIn: a browser without a session is sent
// to the sign-in page (and back after); a client that is not a browser
// keeps the API's JSON 401.
func TestSignedOutBrowserGoesToSignIn(t *testing.T) {
	h := rig(t)
	w := get(h, "/archive", "", true)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/signin?next=%2Farchive" {
		t.Errorf("signed-out browser: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = get(h, "/archive", "", false)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "authentication required") {
		t.Errorf("signed-out API client: %d %s", w.Code, w.Body)
	}
	w = get(h, "/signin", "", true)
	checkHeaders(t, "/signin", w)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="signin-form"`) || strings.Contains(w.Body.String(), "<nav") {
		t.Errorf("/signin: %d", w.Code)
	}
	for _, f := range []string{"console.js", "console.css"} {
		w := get(h, "/static/"+f, "", false)
		checkHeaders(t, f, w)
		if w.Code != http.StatusOK || w.Body.Len() < 500 {
			t.Errorf("/static/%s: %d %d bytes", f, w.Code, w.Body.Len())
		}
	}
	if w := get(h, "/static/..%2fconsole.go", "", false); w.Code != http.StatusNotFound {
		t.Errorf("/static/ outside its files: %d", w.Code)
	}
}

// TestActionsFollowTheTable: a page offers an action's button only to a
// role holding that API route's permission.
func TestActionsFollowTheTable(t *testing.T) {
	h := rig(t)
	sup := get(h, "/archive/x1", "supervisor", true).Body.String()
	arch := get(h, "/archive/x1", "archivist", true).Body.String()
	aud := get(h, "/archive/x1", "auditor", true).Body.String()
	if !strings.Contains(sup, `id="ix-audio"`) || strings.Contains(sup, `id="ix-delete"`) || strings.Contains(sup, `data-can-delete`) {
		t.Error("a supervisor may play, not delete")
	}
	if !strings.Contains(arch, `id="ix-delete"`) || !strings.Contains(arch, `data-can-delete="1"`) {
		t.Error("an archivist may delete")
	}
	if strings.Contains(aud, `id="ix-audio"`) || strings.Contains(aud, `id="ix-download"`) {
		t.Error("an auditor hears no audio")
	}
	if desk := get(h, "/desk", "agent", true).Body.String(); !strings.Contains(desk, `id="take-payment"`) || !strings.Contains(desk, `name="csrf-token"`) {
		t.Error("the agent's desk has the payment button and the CSRF meta")
	}
}

// TestDeskRiskBannerAndHold: the desk carries the fraud-risk banner
// (role="alert") for every role that opens it, and the "Hold payment…"
// form (a labelled, required comment) only where the role holds
// fraud.hold — the permission of POST /api/fraud/holds in auth.Rules.
func TestDeskRiskBannerAndHold(t *testing.T) {
	h := rig(t)
	for _, role := range []string{"agent", "supervisor", "admin"} {
		desk := get(h, "/desk", role, true).Body.String()
		for _, want := range []string{`id="risk" class="risk" role="alert" hidden`, `id="risk-text"`, `id="risk-criteria"`,
			`data-can-hold="1"`, `<form id="hold-form">`, `<label for="hold-comment">`,
			`<textarea id="hold-comment" name="comment" required`, `id="hold-result" role="status"`} {
			if !strings.Contains(desk, want) {
				t.Errorf("%s's desk lacks %s", role, want)
			}
		}
	}
	// No role opens the desk without fraud.hold today; render it for one
	// that lacks the permission, as viewFor would.
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/desk", nil)
	c.render(rec, http.StatusOK, "desk.html", c.viewFor(auth.Principal{Name: "u", Role: auth.RoleArchivist}, pages[0], req))
	desk := rec.Body.String()
	if !strings.Contains(desk, `id="risk"`) {
		t.Error("the risk banner is part of every desk")
	}
	if strings.Contains(desk, `hold-form`) || strings.Contains(desk, `data-can-hold`) {
		t.Error("a role without fraud.hold is offered the hold form")
	}
	js, _ := fs.ReadFile(staticFS, "static/console.js")
	for _, want := range []string{`addEventListener("fraud_risk"`, `api("POST", "/api/fraud/holds"`, `"Fraud risk: score "`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("console.js lacks %s", want)
		}
	}
}

// TestLivePageClusterWide: on a node with cluster.enabled the live page
// tells its script so (data-cluster, which then reads GET
// /api/cluster/calls) and has a node column; a single node's page has
// neither.
func TestLivePageClusterWide(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		w := get(rigWith(t, Options{Cluster: cluster}), "/live", string(auth.RoleSupervisor), true)
		if w.Code != http.StatusOK {
			t.Fatalf("cluster %v: /live %d", cluster, w.Code)
		}
		b := w.Body.String()
		if got := strings.Contains(b, `data-cluster="1"`); got != cluster {
			t.Errorf("cluster %v: data-cluster shown %v", cluster, got)
		}
		if got := strings.Contains(b, `<th scope="col">Node</th>`); got != cluster {
			t.Errorf("cluster %v: node column shown %v", cluster, got)
		}
	}
}
