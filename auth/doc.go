// Package auth decides who may call which route of the HTTP API: users
// with a role, API tokens, browser sessions, and the one table that maps
// each route to the permission it needs (docs/SECURITY.md, "Users and
// roles").
//
// # The tables
//
// Two tables in this package are the whole policy, the way call/gate.go
// is the one table for the sinks of call data:
//
//   - grants (roles.go): role × permission → scope (none, own, all). A
//     permission granted "own" is limited by the handler to the caller's
//     own calls (an agent's, through agents[].user).
//   - Rules (routes.go): route pattern, exactly as registered on the
//     http.ServeMux ("GET /api/calls/{id}"), → the permission it needs, or
//     Public (only /healthz, signing in and the
//     console's sign-in page and static files) or SignedIn (any user).
//
// Every route is registered through a Mux, which records its pattern;
// Guard looks up the pattern the mux chose for a request and refuses one
// without a rule (403, fail closed), so a route nobody thought about is
// never open. TestEveryRouteHasARule (server) walks every pattern the
// node registers × every role against the table, so a new route without
// a row fails the tests.
//
// # Adding a route
//
// Register it on the Mux as usual, then add ONE row to Rules:
//
//	{Pattern: "POST /api/calls/{id}/monitor", Perm: PermMonitor},
//
// and, for a new permission, a constant below and a column in grants.
// Mark a long-lived response (Server-Sent Events) Stream: true so it ends
// when the session does.
//
// # Credentials
//
// Passwords are hashed with argon2id (RFC 9106; HashPassword documents
// the parameters). API tokens are 32 random bytes shown once and stored as
// their SHA-256; browser sessions are a random id in an HttpOnly,
// SameSite=Strict cookie (Secure over TLS) with idle and absolute
// timeouts, stored hashed in the archive database, and a per-session CSRF
// token that every state-changing request made with the cookie must echo
// in the X-CSRF-Token header. Failed sign-ins go through the authlimit
// limiter REGISTER uses.
package auth
