package auth

import (
	"errors"
	"fmt"
	"slices"
)

// Role is a user's or token's role.
type Role string

// The roles (docs/SECURITY.md has the table).
const (
	// RoleAgent: own calls only.
	RoleAgent Role = "agent"
	// RoleSupervisor: all live calls and agents, archive search and play.
	RoleSupervisor Role = "supervisor"
	// RoleArchivist: supervisor's archive rights plus download, delete,
	// export, anonymise.
	RoleArchivist Role = "archivist"
	// RoleAuditor: the audit log and flow traces; no audio.
	RoleAuditor Role = "auditor"
	// RoleAdmin: users and tokens, and everything else.
	RoleAdmin Role = "admin"
)

// Roles lists every role, least to most privileged.
func Roles() []Role {
	return []Role{RoleAgent, RoleSupervisor, RoleArchivist, RoleAuditor, RoleAdmin}
}

// ErrRole is an unknown role name.
var ErrRole = errors.New("auth: unknown role")

// ParseRole returns the role named s, or an error wrapping ErrRole.
func ParseRole(s string) (Role, error) {
	if slices.Contains(Roles(), Role(s)) {
		return Role(s), nil
	}
	return "", fmt.Errorf("%w %q (want agent, supervisor, archivist, auditor or admin)", ErrRole, s)
}

// Perm is one permission a route needs.
type Perm string

// Permissions. Public and SignedIn are not granted: Public needs nobody,
// SignedIn anybody who authenticated.
const (
	Public   Perm = "public"    // no credentials (/healthz, signing in)
	SignedIn Perm = "signed-in" // any user or token (who am I, sign out)

	PermCallsView  Perm = "calls.view"  // live calls, their events and streams
	PermCallsAct   Perm = "calls.act"   // secure flow, recording pause/resume
	PermAgentsView Perm = "agents.view" // agents and their states
	PermStats      Perm = "stats.view"  // /api/stats counters
	PermMetrics    Perm = "metrics.view"
	PermPprof      Perm = "debug.pprof"

	PermArchiveSearch    Perm = "archive.search" // search and show interactions (data masked, trace)
	PermArchivePlay      Perm = "archive.play"
	PermArchiveDownload  Perm = "archive.download"
	PermArchiveDelete    Perm = "archive.delete"
	PermArchiveExport    Perm = "archive.export"
	PermArchiveAnonymise Perm = "archive.anonymise"
	PermArchivePurge     Perm = "archive.purge" // the retention dry run
	PermAuditRead        Perm = "audit.read"

	PermUsers  Perm = "users.manage"
	PermTokens Perm = "tokens.manage"

	// Declared for routes other branches add (rows land at merge).
	PermMonitor    Perm = "calls.monitor" // listen, coach, barge
	PermPayment    Perm = "calls.payment" // agent-assisted payment
	PermFraudHolds Perm = "fraud.holds"   // view and decide holds
	// PermFraudHold: hold a call's payment by hand (fraud-manual) and
	// comment on its hold; agents only on their own calls, current or
	// past (the handler checks), as calls.payment.
	PermFraudHold Perm = "fraud.hold"
	// PermFraudData: read and change the static fraud data and the fraud
	// rules (supervisor, admin), as `cloak fraud data` and `cloak fraud
	// rules` do beside the node.
	PermFraudData  Perm = "fraud.data"
	PermTrunksView Perm = "trunks.view" // trunks' registration and keep-alive state
)

// Scope is how far a granted permission reaches.
type Scope int

const (
	// None: not granted.
	None Scope = iota
	// Own: only the caller's own calls (the handler filters).
	Own
	// All: every object.
	All
)

func (s Scope) String() string {
	switch s {
	case Own:
		return "own"
	case All:
		return "all"
	}
	return "none"
}

// grants is THE table of what each role may do. A permission missing
// from a role's row is None. Admin gets every permission (allPerms).
var grants = map[Role]map[Perm]Scope{
	RoleAgent: {
		PermCallsView: Own, PermCallsAct: Own, PermPayment: Own, PermFraudHold: Own,
	},
	RoleSupervisor: {
		PermCallsView: All, PermCallsAct: All, PermAgentsView: All, PermStats: All, PermMetrics: All,
		PermArchiveSearch: All, PermArchivePlay: All,
		PermMonitor: All, PermPayment: All, PermFraudHolds: All, PermFraudHold: All, PermFraudData: All, PermTrunksView: All,
	},
	RoleArchivist: {
		PermArchiveSearch: All, PermArchivePlay: All, PermArchiveDownload: All, PermArchiveDelete: All,
		PermArchiveExport: All, PermArchiveAnonymise: All, PermArchivePurge: All,
	},
	RoleAuditor: {
		PermAuditRead: All, PermArchiveSearch: All, PermStats: All, PermMetrics: All,
	},
	RoleAdmin: allPerms(),
}

// AllPerms lists every grantable permission.
func AllPerms() []Perm {
	return []Perm{PermCallsView, PermCallsAct, PermAgentsView, PermStats, PermMetrics, PermPprof,
		PermArchiveSearch, PermArchivePlay, PermArchiveDownload, PermArchiveDelete, PermArchiveExport,
		PermArchiveAnonymise, PermArchivePurge, PermAuditRead, PermUsers, PermTokens,
		PermMonitor, PermPayment, PermFraudHolds, PermFraudHold, PermFraudData, PermTrunksView}
}

func allPerms() map[Perm]Scope {
	m := map[Perm]Scope{}
	for _, p := range AllPerms() {
		m[p] = All
	}
	return m
}

// Grant returns how far role holds perm: Public is All for everyone
// (even no role), SignedIn All for every role, and an unknown role or
// permission None.
func Grant(role Role, perm Perm) Scope {
	switch perm {
	case Public:
		return All
	case SignedIn:
		if _, ok := grants[role]; ok {
			return All
		}
		return None
	}
	return grants[role][perm]
}
