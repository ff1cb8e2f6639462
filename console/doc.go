// Package console is cloak's web console: server-rendered pages (Go
// html/template, embedded) and one stylesheet and one script, served on
// the admin listener at "/" beside the API (/api/…).
//
// The console holds no policy and no data path of its own. Every page is
// a route on the node's auth.Mux with its row in auth.Rules, so the
// Guard that protects the API decides who may open it (401, 403, fail
// closed), and the navigation shows a page only to a role the same table
// lets in. Everything a page shows or does goes through the API routes
// from the browser (fetch and EventSource with the session cookie, and
// the session's CSRF token in the X-CSRF-Token header of every
// state-changing request), so a page can never do what the API would
// refuse, and what the API masks or audits stays masked and audited.
//
// Pages send a strict Content-Security-Policy (no inline script, no
// inline style, nothing from another origin), X-Content-Type-Options,
// Referrer-Policy: no-referrer and frame-ancestors 'none'. The script
// builds the DOM with textContent only, never innerHTML, so a value from
// the wire (a caller's display name, participant data) cannot become
// markup. docs/CONSOLE.md shows the pages.
package console
