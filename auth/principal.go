package auth

import (
	"context"
	"time"
)

// Kinds of Principal.
const (
	KindSession = "session" // a browser session (cookie)
	KindToken   = "token"   // an API token (Authorization: Bearer)
	KindStatic  = "static"  // a token from a file (metrics.token_file)
)

// Principal is who made a request: a user through a session, or a token.
type Principal struct {
	// Name is the user's name, or the token's name.
	Name string `json:"name"`
	// Kind is KindSession, KindToken or KindStatic.
	Kind string `json:"kind"`
	// Role is the user's or token's role (empty for a static token).
	Role Role `json:"role,omitempty"`
	// Agent is the agent this user is (agents[].user), for role agent.
	Agent string `json:"agent,omitempty"`
	// TokenID is the token's public id (KindToken).
	TokenID string `json:"token_id,omitempty"`
	// Expires is when the credential ends at the latest (zero: never).
	Expires time.Time `json:"expires,omitzero"`
	// Via is the cluster node that forwarded the request on this
	// principal's behalf (empty: the caller reached this node itself).
	Via string `json:"via,omitempty"`

	session string         // session id hash (KindSession)
	csrf    string         // the session's CSRF token
	perms   map[Perm]Scope // a static token's permissions
	peer    bool           // the node-to-node token (StaticToken.Peer)
}

// Scope returns how far p holds perm.
func (p Principal) Scope(perm Perm) Scope {
	if p.Kind == KindStatic {
		if perm == Public {
			return All
		}
		return p.perms[perm]
	}
	return Grant(p.Role, perm)
}

// Can reports whether p holds perm at all (own or all).
func (p Principal) Can(perm Perm) bool { return p.Scope(perm) != None }

// Owns reports whether p may act on a call bridged to agent under perm:
// All always; Own only when the call's agent is p's agent.
func (p Principal) Owns(perm Perm, agent string) bool {
	switch p.Scope(perm) {
	case All:
		return true
	case Own:
		return p.Agent != "" && agent == p.Agent
	}
	return false
}

// CSRFToken is the CSRF token of p's session ("" for a token): the
// console puts it in its pages so their scripts can send it in the
// CSRFHeader of every state-changing request.
func (p Principal) CSRFToken() string { return p.csrf }

// Actor is how the audit log names p: "user:NAME", "token:NAME#ID" or
// "static:NAME".
// A forwarded request's principal is named with the node that forwarded
// it: "user:NAME via node:ID".
func (p Principal) Actor() string {
	a := "user:" + p.Name
	switch p.Kind {
	case KindToken:
		a = "token:" + p.Name + "#" + p.TokenID
	case KindStatic:
		a = "static:" + p.Name
	}
	if p.Via != "" {
		a += " via node:" + p.Via
	}
	return a
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p (Guard does it; tests too).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal Guard attached to a request's context.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// StaticToken is a fixed token read from a file (metrics.token_file,
// cluster.token_file), holding only Perms.
type StaticToken struct {
	Name  string
	Token string
	Perms []Perm
	// Peer marks the node-to-node token (cluster.token_file): a request
	// made with it may carry, in PrincipalHeader, the principal another
	// node authenticated, and is then served with that principal's
	// rights and nothing more (see Carry).
	Peer bool
}
