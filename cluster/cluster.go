package cluster

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/rs/zerolog"
)

// Channel is the LISTEN/NOTIFY channel of agent and queue changes. Its
// payload names the queues whose waiting callers may now claim an agent,
// comma-separated: the queues of an agent that became available, or the
// queue of a caller who left the line; "" when any queue may (a node's
// clean-up freed several agents). A node wakes only those queues'
// callers (docs/SCALE.md, "The wake-up herd").
const Channel = "cloak_agents"

// EndReason is the end reason a survivor archives for the calls of a
// lost node.
const EndReason = "node-lost"

// Sentinel errors.
var (
	// ErrOptions: a required option is missing or out of range.
	ErrOptions = errors.New("cluster: bad options")
	// ErrNoCall: no node of the registry holds the call (it ended, or
	// started less than a heartbeat ago).
	ErrNoCall = errors.New("cluster: no node holds the call")
)

// nowMS is the database's clock in Unix milliseconds: every node compares
// heartbeats on one clock.
const nowMS = `(extract(epoch from clock_timestamp())*1000)::bigint`

// Call is one live call of this node, as the registry keeps it.
type Call struct {
	ID        string // interaction id (the archive's)
	SIPCallID string
	Caller    string
	Called    string
	Offered   time.Time
}

// Options configure a Node.
type Options struct {
	// NodeID names the node (config cluster.node_id).
	NodeID string
	// SIPAddr and AdminAddr are where the node takes SIP and the API.
	SIPAddr, AdminAddr string
	// Version is the node's software version.
	Version string
	// Heartbeat is the interval of heartbeats, call syncs and lost-node
	// checks; NodeTimeout the age of a heartbeat that makes a node lost.
	Heartbeat, NodeTimeout time.Duration
	// DSN is the postgres:// URL LISTEN connects to (its own connection).
	DSN string
	// Calls lists the node's live calls (synced each heartbeat); nil: none.
	Calls func() []Call
	// OnChange is called when another node (or this one) changed an agent
	// that may now be available, or a caller left a queue's line, with
	// the queues concerned (nil: any queue); nil: nothing.
	OnChange func(queues []string)
	// Log is the node's logger.
	Log zerolog.Logger
}

// Node is this node's membership of the cluster. It implements
// acd.Shared.
type Node struct {
	db *sql.DB
	o  Options

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ acd.Shared = (*Node)(nil)

// New returns a Node over db, the archive's PostgreSQL with its
// migrations applied. Start joins the cluster.
func New(db *sql.DB, o Options) (*Node, error) {
	switch {
	case o.NodeID == "":
		return nil, fmt.Errorf("%w: no node id", ErrOptions)
	case o.Heartbeat <= 0 || o.NodeTimeout < o.Heartbeat:
		return nil, fmt.Errorf("%w: heartbeat %v, node timeout %v", ErrOptions, o.Heartbeat, o.NodeTimeout)
	}
	if o.Calls == nil {
		o.Calls = func() []Call { return nil }
	}
	if o.OnChange == nil {
		o.OnChange = func([]string) {}
	}
	return &Node{db: db, o: o}, nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.o.NodeID }

// Seed writes the agents' configuration (order, queues, static URIs) to
// the shared table, keeping their registrations and states: every node
// runs it at start with the same configuration.
func (n *Node) Seed(ctx context.Context, agents []acd.AgentConfig) error {
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cluster: seed agents: %w", err)
	}
	defer tx.Rollback()
	for i, a := range agents {
		static := a.URI != ""
		_, err := tx.ExecContext(ctx, `INSERT INTO cluster_agents (name, ord, queues, static, contact, state, idle_since, changed_at)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 THEN 'available' ELSE 'logged-out' END, `+nowMS+`, `+nowMS+`)
ON CONFLICT (name) DO UPDATE SET ord = EXCLUDED.ord, queues = EXCLUDED.queues, static = EXCLUDED.static,
  contact = CASE WHEN EXCLUDED.static AND cluster_agents.expires_at = 0 THEN EXCLUDED.contact ELSE cluster_agents.contact END,
  state = CASE WHEN EXCLUDED.static AND cluster_agents.state = 'logged-out' THEN 'available' ELSE cluster_agents.state END`,
			a.Name, i, strings.Join(a.Queues, ","), static, a.URI)
		if err != nil {
			return fmt.Errorf("cluster: seed agent %q: %w", a.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cluster: seed agents: %w", err)
	}
	return nil
}

// Register implements acd.Shared: the binding any node took, for every
// node to dial. A new binding makes a logged-out agent available.
func (n *Node) Register(ctx context.Context, name, contact string, path []string, expires time.Duration) error {
	if path == nil {
		path = []string{}
	}
	pj, err := json.Marshal(path)
	if err != nil {
		return fmt.Errorf("cluster: register: %w", err)
	}
	var q string
	var args []any
	if expires > 0 && contact != "" {
		q = `WITH u AS (
INSERT INTO cluster_agents (name, state, contact, path, expires_at, registered_by, idle_since, changed_at)
VALUES ($1, 'available', $2, $3, ` + nowMS + ` + $4, $5, ` + nowMS + `, ` + nowMS + `)
ON CONFLICT (name) DO UPDATE SET contact = EXCLUDED.contact, path = EXCLUDED.path, expires_at = EXCLUDED.expires_at,
  registered_by = EXCLUDED.registered_by, changed_at = EXCLUDED.changed_at,
  idle_since = CASE WHEN cluster_agents.state = 'logged-out' THEN EXCLUDED.idle_since ELSE cluster_agents.idle_since END,
  state = CASE WHEN cluster_agents.state = 'logged-out' THEN 'available' ELSE cluster_agents.state END
RETURNING queues, state)
SELECT pg_notify('` + Channel + `', queues) FROM u WHERE state = 'available'`
		args = []any{name, contact, string(pj), expires.Milliseconds(), n.o.NodeID}
	} else {
		// Unbound: back to the configured URI (contact), or logged out
		// unless on a call (the call ends first).
		q = `UPDATE cluster_agents SET contact = $2, path = '[]', expires_at = 0, registered_by = $3, changed_at = ` + nowMS + `,
  state = CASE WHEN $2 = '' AND state IN ('available', 'ringing') THEN 'logged-out' ELSE state END
WHERE name = $1`
		args = []any{name, contact, n.o.NodeID}
	}
	if _, err := n.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("cluster: register %q: %w", name, err)
	}
	return nil
}

// Claim implements acd.Shared: one statement picks the longest-idle
// available agent among names whose registration has not expired, locks
// its row skipping rows another node holds locked (FOR UPDATE SKIP
// LOCKED), and marks it ringing for this node — so of two nodes racing
// for one agent exactly one wins, and neither waits for the other. It
// takes none while a caller of queue who joined earlier, on any node, is
// still waiting without an offer: the longest-waiting caller goes first.
func (n *Node) Claim(ctx context.Context, queue string, names []string, callID string) (acd.Claimed, error) {
	if len(names) == 0 {
		return acd.Claimed{}, acd.ErrNoAgent
	}
	var cl acd.Claimed
	var pj string
	err := n.db.QueryRowContext(ctx, `WITH me AS (SELECT joined_at FROM cluster_waiting WHERE call_id = $2),
c AS (
UPDATE cluster_agents SET state = 'ringing', node = $1, call_id = $2, changed_at = `+nowMS+`
WHERE name = (
  SELECT name FROM cluster_agents
  WHERE name = ANY($3) AND state = 'available' AND contact <> '' AND (static OR expires_at > `+nowMS+`)
  ORDER BY idle_since, array_position($3, name)
  LIMIT 1 FOR UPDATE SKIP LOCKED)
AND state = 'available'
AND NOT EXISTS (SELECT 1 FROM cluster_waiting w, me
  WHERE w.queue = $4 AND NOT w.offering AND w.call_id <> $2 AND (w.joined_at, w.call_id) < (me.joined_at, $2))
RETURNING name, contact, path),
w AS (UPDATE cluster_waiting SET offering = TRUE WHERE call_id = $2 AND EXISTS (SELECT 1 FROM c))
SELECT name, contact, path FROM c`, n.o.NodeID, callID, names, queue).Scan(&cl.Name, &cl.Contact, &pj)
	if errors.Is(err, sql.ErrNoRows) {
		return acd.Claimed{}, acd.ErrNoAgent
	}
	if err != nil {
		return acd.Claimed{}, fmt.Errorf("cluster: claim: %w", err)
	}
	if err := json.Unmarshal([]byte(pj), &cl.Path); err != nil {
		return acd.Claimed{}, fmt.Errorf("cluster: claim %q: path: %w", cl.Name, err)
	}
	return cl, nil
}

// Join implements acd.Shared: callID waits in queue from now (the
// database's clock, in milliseconds, returned), on this node.
func (n *Node) Join(ctx context.Context, queue, callID string) (time.Time, error) {
	var ms int64
	err := n.db.QueryRowContext(ctx, `INSERT INTO cluster_waiting (call_id, node, queue, joined_at) VALUES ($1, $2, $3, `+nowMS+`)
ON CONFLICT (call_id) DO UPDATE SET node = EXCLUDED.node, queue = EXCLUDED.queue, joined_at = EXCLUDED.joined_at, offering = FALSE
RETURNING joined_at`,
		callID, n.o.NodeID, queue).Scan(&ms)
	if err != nil {
		return time.Time{}, fmt.Errorf("cluster: join queue %q: %w", queue, err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// Leave implements acd.Shared; a caller who leaves while waiting may
// have held the line up, so the nodes are woken for that queue.
func (n *Node) Leave(ctx context.Context, callID string) error {
	_, err := n.db.ExecContext(ctx, `WITH d AS (DELETE FROM cluster_waiting WHERE call_id = $1 RETURNING offering, queue)
SELECT pg_notify('`+Channel+`', queue) FROM d WHERE NOT offering`, callID)
	if err != nil {
		return fmt.Errorf("cluster: leave queue: %w", err)
	}
	return nil
}

// Set implements acd.Shared: only the node that claimed the agent moves
// it. Available restarts the idle time unless it was only ringing (a
// missed offer does not), and notifies the other nodes.
func (n *Node) Set(ctx context.Context, name string, s acd.AgentState, callID string) error {
	st := s.String()
	_, err := n.db.ExecContext(ctx, `WITH u AS (
UPDATE cluster_agents SET
  state = CASE WHEN $2 = 'available' AND contact = '' THEN 'logged-out' ELSE $2 END,
  idle_since = CASE WHEN $2 = 'available' AND state <> 'ringing' THEN `+nowMS+` ELSE idle_since END,
  node = CASE WHEN $2 IN ('available', 'logged-out') THEN '' ELSE node END,
  call_id = CASE WHEN $2 IN ('available', 'logged-out') THEN '' ELSE $4 END,
  changed_at = `+nowMS+`
WHERE name = $1 AND node = $3
RETURNING queues, state),
w AS (UPDATE cluster_waiting SET offering = FALSE WHERE $2 = 'available' AND call_id = $4 AND EXISTS (SELECT 1 FROM u))
SELECT pg_notify('`+Channel+`', queues) FROM u WHERE state = 'available'`, name, st, n.o.NodeID, callID)
	if err != nil {
		return fmt.Errorf("cluster: set %q %s: %w", name, st, err)
	}
	return nil
}

// Agents implements acd.Shared: every agent's shared state, by name. A
// registration past its expiry shows as logged out.
func (n *Node) Agents(ctx context.Context) ([]acd.AgentInfo, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT name, queues, contact, call_id, idle_since,
  CASE WHEN NOT static AND state IN ('available') AND expires_at <= `+nowMS+` THEN 'logged-out' ELSE state END
FROM cluster_agents ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("cluster: agents: %w", err)
	}
	defer rows.Close()
	out := []acd.AgentInfo{}
	for rows.Next() {
		var a acd.AgentInfo
		var queues string
		var idle int64
		if err := rows.Scan(&a.Name, &queues, &a.Contact, &a.Call, &idle, &a.State); err != nil {
			return nil, fmt.Errorf("cluster: agents: %w", err)
		}
		if queues != "" {
			a.Queues = strings.Split(queues, ",")
		}
		if idle > 0 {
			a.IdleSince = time.UnixMilli(idle).UTC()
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster: agents: %w", err)
	}
	return out, nil
}
