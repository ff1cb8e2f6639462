package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/metrics"
	"github.com/rs/zerolog"
)

// oneCall is a Backend with call c1 bridged to agent alice.
type oneCall struct{}

func (oneCall) Calls() []call.Info { return []call.Info{{ID: "c1", Agent: "alice"}} }
func (oneCall) Call(id string) (call.Info, []call.Event, bool) {
	return call.Info{ID: id, Agent: "alice"}, nil, id == "c1"
}
func (oneCall) Secure(id, flow string) error { return nil }
func (oneCall) Subscribe(id string) ([]call.Event, <-chan call.Event, func(), bool) {
	return []call.Event{{Type: "ended"}}, nil, func() {}, true
}
func (oneCall) Agents() []acd.AgentInfo           { return nil }
func (oneCall) Recording(id, action string) error { return nil }
func (oneCall) Stats() map[string]any             { return map[string]any{} }

// oneCall also takes monitors (admin.MonitorBackend), so the monitor
// routes are registered and walked too.
func (oneCall) StartMonitor(context.Context, string, call.MonitorRequest) (string, error) {
	return "m1", nil
}
func (oneCall) SetMonitorMode(string, string, call.MonitorMode) error { return nil }
func (oneCall) StopMonitor(string, string) error                      { return nil }

// and payments (admin.PaymentBackend), for the payment routes.
func (oneCall) StartPayment(string, call.PaymentRequest) (*call.PaymentSession, error) {
	return nil, call.ErrNotBridged
}
func (oneCall) PaymentSession(string, string) (*call.PaymentSession, error) {
	return nil, call.ErrNotBridged
}

// TestEveryRouteHasARule walks every route the node registers (the call
// API with pprof, the archive's, the session routes, /metrics) × no
// credentials and every role (an API token each): every pattern has a
// rule; without credentials only Public routes answer, the rest 401; a
// role without the rule's permission gets 403 with a JSON error, a role
// with it is let through. A new route without a row fails here.
func TestEveryRouteHasARule(t *testing.T) {
	ctx := context.Background()
	s, err := archive.Open(ctx, archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := config.Default()
	cfg.Admin.Pprof = true
	cfg.Data.Dir = t.TempDir()
	met, err := metrics.New(metrics.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a := &nodeArchive{store: s, log: zerolog.New(&logs)}
	svc, err := a.authSetup(ctx, cfg, nil, metrics.Access{})
	if err != nil {
		t.Fatal(err)
	}
	<-a.adminDone // the initial admin (its hash) is made beside the start
	h, m := apiHandler(svc, oneCall{}, cfg, a, met, &nodeTrunks{}, &nodeCluster{})
	if un := m.Unruled(); len(un) > 0 {
		t.Fatalf("routes without a rule in auth.Rules: %v", un)
	}
	registered := map[string]bool{}
	for _, p := range m.Patterns() {
		registered[p] = true
	}
	for _, r := range auth.Rules {
		if !registered[r.Pattern] {
			t.Errorf("rule %q names no registered route (stale row?)", r.Pattern)
		}
	}
	tokens := map[auth.Role]string{}
	for _, role := range auth.Roles() {
		tok, id, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddToken(ctx, archive.APIToken{ID: id, Name: "t-" + string(role), Role: string(role), Hash: auth.HashSecret(tok)}); err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok
	}
	do := func(pattern, tok string) *httptest.ResponseRecorder {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{id}", "c1", "{action}", "pause").Replace(path)
		if strings.HasPrefix(path, "/debug/pprof/profile") || strings.HasPrefix(path, "/debug/pprof/trace") {
			path += "?seconds=0"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(`{}`))
		req.RemoteAddr = "127.0.0.1:5000"
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.WithContext(cctx))
		return w
	}
	jsonError := func(w *httptest.ResponseRecorder) bool {
		var e map[string]string
		return json.Unmarshal(w.Body.Bytes(), &e) == nil && e["error"] != ""
	}
	for _, pattern := range m.Patterns() {
		rule, _ := auth.RuleFor(pattern)
		w := do(pattern, "")
		if rule.Perm == auth.Public {
			if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Errorf("%s is public, yet %d without credentials", pattern, w.Code)
			}
		} else if w.Code != http.StatusUnauthorized || !jsonError(w) {
			t.Errorf("%s without credentials: %d %q, want 401 with a JSON error", pattern, w.Code, w.Body)
		}
		for _, role := range auth.Roles() {
			w := do(pattern, tokens[role])
			refused := w.Code == http.StatusForbidden && strings.Contains(w.Body.String(), "your role may not")
			if want := auth.Grant(role, rule.Perm) == auth.None; refused != want {
				t.Errorf("%s as %s: %d %.80q, want refused=%v (table: %s)", pattern, role, w.Code, w.Body, want, rule.Perm)
			}
			if w.Code == http.StatusUnauthorized {
				t.Errorf("%s as %s: 401 with a good token", pattern, role)
			}
			if refused && !jsonError(w) {
				t.Errorf("%s as %s: 403 without a JSON error", pattern, role)
			}
		}
	}
	if !strings.Contains(logs.String(), "archive API at /api/archive/") {
		t.Errorf("start log: %s", logs.String())
	}
}
