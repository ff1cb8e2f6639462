package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// NodeInfo is one row of the node registry.
type NodeInfo struct {
	ID        string    `json:"id"`
	SIPAddr   string    `json:"sip_addr"`
	AdminAddr string    `json:"admin_addr"`
	Version   string    `json:"version"`
	Calls     int       `json:"calls"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
	Lost      time.Time `json:"lost,omitempty"`
}

// Start joins the cluster: it cleans up what an earlier run of this node
// id left (claims, calls: that run is gone, whatever its heartbeat says),
// writes the node's row, then beats, syncs the live calls and looks for
// lost nodes every heartbeat, and listens for agent changes, until Stop.
func (n *Node) Start(ctx context.Context) error {
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cluster: join: %w", err)
	}
	defer tx.Rollback()
	freed, ended, err := release(ctx, tx, n.o.NodeID)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO cluster_nodes (id, sip_addr, admin_addr, version, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, `+nowMS+`, `+nowMS+`)
ON CONFLICT (id) DO UPDATE SET sip_addr = EXCLUDED.sip_addr, admin_addr = EXCLUDED.admin_addr, version = EXCLUDED.version,
  calls = 0, started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, lost_at = 0`,
		n.o.NodeID, n.o.SIPAddr, n.o.AdminAddr, n.o.Version); err != nil {
		return fmt.Errorf("cluster: join: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cluster: join: %w", err)
	}
	if freed+ended > 0 {
		n.o.Log.Warn().Int64("agents_freed", freed).Int64("calls_node_lost", ended).
			Msg("cluster: an earlier run of this node left claims and calls: cleaned up")
	}
	n.o.Log.Info().Str("node", n.o.NodeID).Str("heartbeat", n.o.Heartbeat.String()).Str("node_timeout", n.o.NodeTimeout.String()).Msg("cluster: joined")
	rctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.beatLoop(rctx) }()
	go func() { defer n.wg.Done(); n.listen(rctx) }()
	return nil
}

// Stop leaves the cluster after the node's calls have drained: it stops
// the loops, frees whatever the node still claims and removes its row.
func (n *Node) Stop(ctx context.Context) error {
	if n.cancel != nil {
		n.cancel()
		n.wg.Wait()
	}
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	defer tx.Rollback()
	if _, _, err := release(ctx, tx, n.o.NodeID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM cluster_nodes WHERE id = $1`, n.o.NodeID); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

func (n *Node) beatLoop(ctx context.Context) {
	t := time.NewTicker(n.o.Heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, n.o.Heartbeat)
		err := n.Beat(bctx)
		if err == nil {
			var lost []string
			lost, err = n.Reap(bctx)
			for _, id := range lost {
				n.o.Log.Warn().Str("lost_node", id).Msg("cluster: node lost (no heartbeat): its agents freed, its calls archived node-lost")
			}
		}
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			n.o.Log.Error().Err(err).Msg("cluster: heartbeat failed; retrying every heartbeat")
			failing = true
		case err == nil && failing:
			n.o.Log.Info().Msg("cluster: heartbeat restored")
			failing = false
		}
	}
}

// Beat writes the node's heartbeat and live-call count, and syncs its
// live calls (new ones added, ended ones removed). A node a survivor
// declared lost meanwhile (cut off from the database longer than the
// node timeout) is told so in the log: its claims were freed.
func (n *Node) Beat(ctx context.Context) error {
	calls := n.o.Calls()
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	defer tx.Rollback()
	var wasLost int64
	err = tx.QueryRowContext(ctx, `UPDATE cluster_nodes n SET heartbeat_at = `+nowMS+`, calls = $2, lost_at = 0
FROM (SELECT lost_at FROM cluster_nodes WHERE id = $1 FOR UPDATE) old
WHERE n.id = $1 RETURNING old.lost_at`, n.o.NodeID, len(calls)).Scan(&wasLost)
	if err == sql.ErrNoRows { // removed by hand: join again
		_, err = tx.ExecContext(ctx, `INSERT INTO cluster_nodes (id, sip_addr, admin_addr, version, calls, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, $5, `+nowMS+`, `+nowMS+`)`, n.o.NodeID, n.o.SIPAddr, n.o.AdminAddr, n.o.Version, len(calls))
	}
	if err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	if wasLost != 0 {
		n.o.Log.Error().Msg("cluster: this node was declared lost by a survivor (heartbeat too old): its agent claims were freed and its calls archived node-lost")
	}
	// One statement for all the live calls (not one per call: a node
	// with 1,000 calls spent 0.1-0.3 s of round trips each heartbeat;
	// docs/SCALE.md, "Sizing on paper").
	ids, sipIDs, callers, called := make([]string, len(calls)), make([]string, len(calls)), make([]string, len(calls)), make([]string, len(calls))
	offered := make([]int64, len(calls))
	for i, c := range calls {
		ids[i], sipIDs[i], callers[i], called[i], offered[i] = c.ID, c.SIPCallID, c.Caller, c.Called, c.Offered.UnixMilli()
	}
	if len(calls) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cluster_calls (id, node, sip_call_id, caller, called, offered_at)
SELECT u.id, $1, u.sip_call_id, u.caller, u.called, u.offered_at
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS u(id, sip_call_id, caller, called, offered_at)
ON CONFLICT (id) DO NOTHING`, n.o.NodeID, ids, sipIDs, callers, called, offered); err != nil {
			return fmt.Errorf("cluster: sync calls: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM cluster_calls WHERE node = $1 AND NOT (id = ANY($2))`, n.o.NodeID, ids); err != nil {
		return fmt.Errorf("cluster: sync calls: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	return nil
}

// Reap declares lost every other node whose heartbeat is older than the
// node timeout and cleans up after it: its agents (ringing, busy,
// reserved) become available again, or logged out without a contact; its
// live calls are archived as ended node-lost at its last heartbeat. The
// conditional update (lost_at = 0) makes exactly one survivor do it even
// when several look at once. It returns the ids it declared lost.
func (n *Node) Reap(ctx context.Context) ([]string, error) {
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster: reap: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE cluster_nodes SET lost_at = `+nowMS+`
WHERE lost_at = 0 AND id <> $1 AND heartbeat_at < `+nowMS+` - $2 RETURNING id`, n.o.NodeID, n.o.NodeTimeout.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("cluster: reap: %w", err)
	}
	var lost []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cluster: reap: %w", err)
		}
		lost = append(lost, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster: reap: %w", err)
	}
	for _, id := range lost {
		if _, _, err := release(ctx, tx, id); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cluster: reap: %w", err)
	}
	return lost, nil
}

// release frees node's agents, archives its live calls as node-lost
// (ended at its last heartbeat, or now without one) and removes its
// waiting callers, in tx, and notifies.
func release(ctx context.Context, tx *sql.Tx, node string) (freed, ended int64, err error) {
	res, err := tx.ExecContext(ctx, `UPDATE cluster_agents SET
  state = CASE WHEN contact = '' THEN 'logged-out' ELSE 'available' END,
  node = '', call_id = '', idle_since = `+nowMS+`, changed_at = `+nowMS+`
WHERE node = $1`, node)
	if err != nil {
		return 0, 0, fmt.Errorf("cluster: free agents of node %q: %w", node, err)
	}
	freed, _ = res.RowsAffected()
	res, err = tx.ExecContext(ctx, `INSERT INTO interactions (id, sip_call_id, caller, called, offered_at, ended_at, ended_by, end_reason, node)
SELECT c.id, c.sip_call_id, c.caller, c.called, c.offered_at,
  GREATEST(c.offered_at, COALESCE((SELECT heartbeat_at FROM cluster_nodes WHERE id = $1), `+nowMS+`)),
  'cloak', '`+EndReason+`', $1
FROM cluster_calls c WHERE c.node = $1
ON CONFLICT (id) DO NOTHING`, node)
	if err != nil {
		return 0, 0, fmt.Errorf("cluster: archive calls of node %q: %w", node, err)
	}
	ended, _ = res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM cluster_calls WHERE node = $1`, node); err != nil {
		return 0, 0, fmt.Errorf("cluster: archive calls of node %q: %w", node, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM cluster_waiting WHERE node = $1`, node); err != nil {
		return 0, 0, fmt.Errorf("cluster: remove waiting callers of node %q: %w", node, err)
	}
	if freed > 0 {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+Channel+`', '')`); err != nil {
			return 0, 0, fmt.Errorf("cluster: notify: %w", err)
		}
	}
	return freed, ended, nil
}

// Nodes lists the registry, by id.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT id, sip_addr, admin_addr, version, calls, started_at, heartbeat_at, lost_at
FROM cluster_nodes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	defer rows.Close()
	out := []NodeInfo{}
	for rows.Next() {
		var ni NodeInfo
		var started, beat, lost int64
		if err := rows.Scan(&ni.ID, &ni.SIPAddr, &ni.AdminAddr, &ni.Version, &ni.Calls, &started, &beat, &lost); err != nil {
			return nil, fmt.Errorf("cluster: nodes: %w", err)
		}
		ni.Started, ni.Heartbeat = time.UnixMilli(started).UTC(), time.UnixMilli(beat).UTC()
		if lost != 0 {
			ni.Lost = time.UnixMilli(lost).UTC()
		}
		out = append(out, ni)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	return out, nil
}

// listen holds a LISTEN connection of its own and calls OnChange on every
// notification with the queues it names; after a lost connection it
// reconnects (once a second at most) and calls OnChange once for every
// queue, for what it may have missed. Callers
// waiting for an agent also retry on their own once a second
// (acd.Directory.RetryEvery), so a lost notification delays, never loses.
func (n *Node) listen(ctx context.Context) {
	failing := false
	for ctx.Err() == nil {
		err := n.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if !failing {
			n.o.Log.Warn().Err(err).Msg("cluster: LISTEN connection lost; reconnecting (waiting callers poll once a second meanwhile)")
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (n *Node) listenOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, n.o.DSN)
	cancel()
	if err != nil {
		return fmt.Errorf("cluster: listen: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("cluster: listen: %w", err)
	}
	n.o.OnChange(nil)
	for {
		nt, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("cluster: listen: %w", err)
		}
		n.o.OnChange(Queues(nt.Payload))
	}
}

// Queues parses a notification's payload (Channel): the queues it names,
// nil for any queue ("").
func Queues(payload string) []string {
	if payload == "" {
		return nil
	}
	return strings.Split(payload, ",")
}

// CallNode returns the registry row of the node holding live call id
// (the interaction id, as synced each heartbeat), or ErrNoCall.
func (n *Node) CallNode(ctx context.Context, id string) (NodeInfo, error) {
	var ni NodeInfo
	var started, beat, lost int64
	err := n.db.QueryRowContext(ctx, `SELECT n.id, n.sip_addr, n.admin_addr, n.version, n.calls, n.started_at, n.heartbeat_at, n.lost_at
FROM cluster_calls c JOIN cluster_nodes n ON n.id = c.node WHERE c.id = $1`, id).
		Scan(&ni.ID, &ni.SIPAddr, &ni.AdminAddr, &ni.Version, &ni.Calls, &started, &beat, &lost)
	if errors.Is(err, sql.ErrNoRows) {
		return NodeInfo{}, ErrNoCall
	}
	if err != nil {
		return NodeInfo{}, fmt.Errorf("cluster: node of call: %w", err)
	}
	ni.Started, ni.Heartbeat = time.UnixMilli(started).UTC(), time.UnixMilli(beat).UTC()
	if lost != 0 {
		ni.Lost = time.UnixMilli(lost).UTC()
	}
	return ni, nil
}
