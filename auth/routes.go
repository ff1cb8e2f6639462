package auth

import (
	"net/http"
	"slices"
	"sync"
)

// Rule is one row of the route table.
type Rule struct {
	// Pattern is the route exactly as registered on the mux.
	Pattern string
	// Perm is what a caller needs: Public, SignedIn or a permission.
	Perm Perm
	// Stream marks a long-lived response (Server-Sent Events): it ends
	// when the caller's session or token does.
	Stream bool
	// Forward marks a route another cluster node may call on a user's
	// behalf (PrincipalHeader with the node-to-node token): the live
	// calls and the actions on one. Any other route refuses a carried
	// principal, so a leaked node token reaches no archive, user or
	// token route.
	Forward bool
}

// Rules is THE table of routes: every route any package registers on the
// node's Mux has its row here (see the package doc to add one).
var Rules = []Rule{
	{Pattern: "GET /healthz", Perm: Public},

	{Pattern: "POST /api/session", Perm: Public}, // signing in
	{Pattern: "GET /api/session", Perm: SignedIn},
	{Pattern: "DELETE /api/session", Perm: SignedIn},

	{Pattern: "GET /api/calls", Perm: PermCallsView, Forward: true},
	{Pattern: "GET /api/calls/{id}", Perm: PermCallsView, Forward: true},
	{Pattern: "GET /api/calls/{id}/events", Perm: PermCallsView, Stream: true, Forward: true},
	{Pattern: "POST /api/calls/{id}/secure", Perm: PermCallsAct, Forward: true},
	{Pattern: "POST /api/calls/{id}/recording/{action}", Perm: PermCallsAct, Forward: true},
	{Pattern: "POST /api/calls/{id}/monitor", Perm: PermMonitor, Forward: true},
	{Pattern: "PATCH /api/calls/{id}/monitor/{mid}", Perm: PermMonitor, Forward: true},
	{Pattern: "POST /api/calls/{id}/monitor/{mid}", Perm: PermMonitor, Forward: true},
	{Pattern: "DELETE /api/calls/{id}/monitor/{mid}", Perm: PermMonitor, Forward: true},
	{Pattern: "POST /api/calls/{id}/payments", Perm: PermPayment, Forward: true},
	{Pattern: "GET /api/calls/{id}/payments/{pid}", Perm: PermPayment, Forward: true},
	{Pattern: "DELETE /api/calls/{id}/payments/{pid}", Perm: PermPayment, Forward: true},
	{Pattern: "POST /api/calls/{id}/payments/{pid}/{action}", Perm: PermPayment, Forward: true},
	{Pattern: "GET /api/agents", Perm: PermAgentsView},
	{Pattern: "GET /api/trunks", Perm: PermTrunksView},
	{Pattern: "GET /api/stats", Perm: PermStats},
	{Pattern: "GET /api/cluster/nodes", Perm: PermStats},
	{Pattern: "GET /api/cluster/calls", Perm: PermCallsView},

	{Pattern: "GET /metrics", Perm: PermMetrics},

	{Pattern: "GET /debug/pprof/", Perm: PermPprof},
	{Pattern: "GET /debug/pprof/cmdline", Perm: PermPprof},
	{Pattern: "GET /debug/pprof/profile", Perm: PermPprof},
	{Pattern: "GET /debug/pprof/symbol", Perm: PermPprof},
	{Pattern: "GET /debug/pprof/trace", Perm: PermPprof},

	{Pattern: "GET /api/archive/interactions", Perm: PermArchiveSearch},
	{Pattern: "GET /api/archive/interactions/{id}", Perm: PermArchiveSearch},
	{Pattern: "GET /api/archive/interactions/{id}/recording", Perm: PermArchiveDownload},
	{Pattern: "GET /api/archive/interactions/{id}/recording/play", Perm: PermArchivePlay},
	{Pattern: "DELETE /api/archive/interactions/{id}/recording", Perm: PermArchiveDelete},
	{Pattern: "POST /api/archive/recordings/delete", Perm: PermArchiveDelete},
	{Pattern: "POST /api/archive/anonymise", Perm: PermArchiveAnonymise},
	{Pattern: "GET /api/archive/audit", Perm: PermAuditRead},
	{Pattern: "GET /api/archive/purge", Perm: PermArchivePurge},
	{Pattern: "GET /api/archive/export", Perm: PermArchiveExport},

	{Pattern: "GET /api/fraud/holds", Perm: PermFraudHolds},
	{Pattern: "GET /api/fraud/holds/{id}", Perm: PermFraudHolds},
	{Pattern: "POST /api/fraud/holds", Perm: PermFraudHold},
	{Pattern: "POST /api/fraud/holds/{id}/release", Perm: PermFraudHolds},
	{Pattern: "POST /api/fraud/holds/{id}/reject", Perm: PermFraudHolds},
	{Pattern: "POST /api/fraud/holds/{id}/comments", Perm: PermFraudHold},
	{Pattern: "GET /api/fraud/data", Perm: PermFraudData},
	{Pattern: "POST /api/fraud/data", Perm: PermFraudData},
	{Pattern: "DELETE /api/fraud/data", Perm: PermFraudData},
	{Pattern: "POST /api/fraud/data/import", Perm: PermFraudData},
	{Pattern: "GET /api/fraud/rules", Perm: PermFraudData},
	{Pattern: "PUT /api/fraud/rules", Perm: PermFraudData},
	{Pattern: "GET /api/fraud/rules/history", Perm: PermFraudData},

	{Pattern: "GET /api/users", Perm: PermUsers},
	{Pattern: "POST /api/users", Perm: PermUsers},
	{Pattern: "POST /api/users/{name}/{action}", Perm: PermUsers},
	{Pattern: "GET /api/tokens", Perm: PermTokens},
	{Pattern: "POST /api/tokens", Perm: PermTokens},
	{Pattern: "POST /api/tokens/{id}/revoke", Perm: PermTokens},

	// The web console (package console): its pages read and act only
	// through the API routes above, so a page's row is the permission
	// its main API route needs; the navigation shows a page to a role
	// holding it.
	{Pattern: "GET /{$}", Perm: SignedIn},
	{Pattern: "GET /signin", Perm: Public},
	{Pattern: "GET /static/{file}", Perm: Public}, // the stylesheet and the script: no data
	{Pattern: "GET /desk", Perm: PermPayment},
	{Pattern: "GET /live", Perm: PermAgentsView},
	{Pattern: "GET /archive", Perm: PermArchiveSearch},
	{Pattern: "GET /archive/{id}", Perm: PermArchiveSearch},
	{Pattern: "GET /anonymise", Perm: PermArchiveAnonymise},
	{Pattern: "GET /audit", Perm: PermAuditRead},
	{Pattern: "GET /holds", Perm: PermFraudHolds},
	{Pattern: "GET /fraud", Perm: PermFraudData},
	{Pattern: "GET /users", Perm: PermUsers},
}

var ruleIndex = sync.OnceValue(func() map[string]Rule {
	m := make(map[string]Rule, len(Rules))
	for _, r := range Rules {
		m[r.Pattern] = r
	}
	return m
})

// RuleFor returns the rule of a registered pattern.
func RuleFor(pattern string) (Rule, bool) {
	r, ok := ruleIndex()[pattern]
	return r, ok
}

// Mux is an http.ServeMux that remembers the patterns registered on it,
// so Guard and the tests know every route.
type Mux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
	wrap     []func(pattern string, h http.Handler) http.Handler
}

// Use wraps every handler registered from now on in mw, given the
// route's pattern (the cluster's forwarding of actions on calls held by
// another node uses it).
func (m *Mux) Use(mw func(pattern string, h http.Handler) http.Handler) {
	m.mu.Lock()
	m.wrap = append(m.wrap, mw)
	m.mu.Unlock()
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	wrap := slices.Clone(m.wrap)
	m.mu.Unlock()
	for _, mw := range wrap {
		h = mw(pattern, h)
	}
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers f for pattern.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Patterns returns the registered patterns, sorted.
func (m *Mux) Patterns() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.patterns)
	slices.Sort(out)
	return out
}

// Unruled returns the registered patterns that have no rule (refused to
// everyone by Guard); serve logs them as an error at start.
func (m *Mux) Unruled() []string {
	var out []string
	for _, p := range m.Patterns() {
		if _, ok := RuleFor(p); !ok {
			out = append(out, p)
		}
	}
	return out
}
