package archive

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Query selects interactions; zero fields select everything. Every
// condition must hold.
type Query struct {
	Caller string // exact caller number
	// From and To bound the time the interaction was offered: From
	// inclusive, To exclusive.
	From, To time.Time
	Queue    string
	Agent    string
	Route    string // exact route ("flow:main")
	// Data are key=value conditions on participant data: an exact match
	// of a kept value, or of a masked value through its token.
	Data map[string]string
	// Recorded selects interactions whose recording is still kept.
	Recorded bool
	// Limit is the most rows returned, newest first (0: 100).
	Limit int
	// Offset skips that many rows first (paging; Count has the total).
	Offset int
	// After, when set, starts the page after this row of the order
	// (keyset paging): the database seeks to it in the (offered_at, id)
	// index instead of reading and dropping Offset rows, so a deep page
	// costs what the first does. Offset then counts from it. Count
	// ignores it.
	After *Cursor
}

// Cursor is a row's place in Search's order: its offered time (to the
// millisecond, as stored) and its id.
type Cursor struct {
	Offered time.Time
	ID      string
}

// CursorOf is the cursor of in, for the page that follows it.
func CursorOf(in Interaction) Cursor { return Cursor{Offered: in.Offered, ID: in.ID} }

// String is the cursor as the API carries it: "UNIXMS,ID".
func (c Cursor) String() string { return fmt.Sprintf("%d,%s", c.Offered.UnixMilli(), c.ID) }

// ErrCursor: a cursor that does not parse.
var ErrCursor = errors.New("archive: bad cursor (want UNIXMS,ID)")

// ParseCursor reads a Cursor's String.
func ParseCursor(s string) (Cursor, error) {
	ms, id, ok := strings.Cut(s, ",")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || id == "" || len(id) > 200 {
		return Cursor{}, ErrCursor
	}
	return Cursor{Offered: time.UnixMilli(n), ID: id}, nil
}

// Search returns the interactions Query selects, newest first, with
// their general information only (Get has the rest).
func (s *Store) Search(ctx context.Context, q Query) ([]Interaction, error) {
	cond, args := s.where(q)
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if a := q.After; a != nil {
		// A row value: both engines seek the (offered_at, id) index to
		// it (an OR of the two columns would not).
		c := "(offered_at, id) < (?, ?)"
		if cond == "" {
			cond = " WHERE " + c
		} else {
			cond += " AND " + c
		}
		args = append(args, a.Offered.UnixMilli(), a.ID)
	}
	query := `SELECT ` + interactionCols + ` FROM interactions` + cond + " ORDER BY offered_at DESC, id DESC LIMIT ? OFFSET ?"
	args = append(args, limit, max(q.Offset, 0))
	return queryAll(ctx, s, "search", query, args, scanInteraction)
}

// Count is how many interactions Query selects, Limit and Offset aside.
func (s *Store) Count(ctx context.Context, q Query) (int, error) {
	cond, args := s.where(q)
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM interactions`+cond), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("archive: count: %w", err)
	}
	return n, nil
}

// where is Query's WHERE clause (empty, or starting with a space) and
// its arguments.
func (s *Store) where(q Query) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.Caller != "" {
		add("caller = ?", q.Caller)
	}
	if !q.From.IsZero() {
		add("offered_at >= ?", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		add("offered_at < ?", q.To.UnixMilli())
	}
	if q.Queue != "" {
		add("queue = ?", q.Queue)
	}
	if q.Agent != "" {
		add("agent = ?", q.Agent)
	}
	if q.Route != "" {
		add("route = ?", q.Route)
	}
	for k, v := range q.Data {
		// A token (masked value) or a kept value. On PostgreSQL two
		// index lookups joined by UNION ALL: with the OR, at 1,000,000
		// rows it misjudged the matches as thousands and walked the whole
		// offered_at index for the newest 100 (6.4 s against 5 ms). SQLite
		// plans the OR as two lookups already, and faster than the union
		// (docs/PERFORMANCE.md).
		cond := `id IN (SELECT interaction_id FROM participant_data WHERE token = ? OR (policy = ? AND key = ? AND value = ?))`
		if s.engine == Postgres {
			cond = `id IN (SELECT interaction_id FROM participant_data WHERE token = ?
 UNION ALL SELECT interaction_id FROM participant_data WHERE policy = ? AND key = ? AND value = ?)`
		}
		add(cond, Token(s.key, k, v), Keep, k, v)
	}
	if q.Recorded {
		add(`EXISTS (SELECT 1 FROM recordings r WHERE r.interaction_id = interactions.id AND r.deleted_at = 0)`)
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

const interactionCols = `id, sip_call_id, caller, caller_name, called, route, queue, agent, offered_at, answered_at,
 queued_at, agent_answered_at, ended_at, wait_ms, talk_ms, ended_by, end_reason, consent, node, asserted_id, asserted_name`

func scanInteraction(r rowScanner) (Interaction, error) {
	var in Interaction
	var off, ans, que, aga, end, wait, talk int64
	err := r.Scan(&in.ID, &in.SIPCallID, &in.Caller, &in.CallerName, &in.Called, &in.Route, &in.Queue, &in.Agent,
		&off, &ans, &que, &aga, &end, &wait, &talk, &in.EndedBy, &in.EndReason, &in.Consent, &in.Node, &in.AssertedID, &in.AssertedName)
	in.Offered, in.Answered, in.Queued, in.AgentAnswered, in.Ended = fromMS(off), fromMS(ans), fromMS(que), fromMS(aga), fromMS(end)
	in.Wait, in.Talk = msDuration(wait), msDuration(talk)
	return in, err
}

// Get returns one interaction with its participant data, secure
// segments, trace, recording and leg quality; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (Interaction, error) {
	in, err := scanInteraction(s.db.QueryRowContext(ctx, s.q(`SELECT `+interactionCols+` FROM interactions WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return in, fmt.Errorf("archive: get %s: %w", id, err)
	}
	each := func(query string, scan func(*sql.Rows) error) {
		if err != nil {
			return
		}
		var rows *sql.Rows
		if rows, err = s.db.QueryContext(ctx, s.q(query), id); err != nil {
			return
		}
		defer rows.Close()
		for rows.Next() && err == nil {
			err = scan(rows)
		}
		if err == nil {
			err = rows.Err()
		}
	}
	each(`SELECT key, value, token, policy FROM participant_data WHERE interaction_id = ? ORDER BY key`, func(r *sql.Rows) error {
		var d DataItem
		err := r.Scan(&d.Key, &d.Value, &d.Token, &d.Policy)
		in.Data = append(in.Data, d)
		return err
	})
	each(`SELECT flow, kind, started_at, ended_at, outputs FROM secure_segments WHERE interaction_id = ? ORDER BY seq`, func(r *sql.Rows) error {
		var g Segment
		var st, en int64
		var out string
		if err := r.Scan(&g.Flow, &g.Kind, &st, &en, &out); err != nil {
			return err
		}
		g.Start, g.End = fromMS(st), fromMS(en)
		if err := json.Unmarshal([]byte(out), &g.Outputs); err != nil {
			return fmt.Errorf("segment outputs: %w", err)
		}
		in.Segments = append(in.Segments, g)
		return nil
	})
	each(`SELECT at, flow, step, action, branch, detail, secure FROM trace_steps WHERE interaction_id = ? ORDER BY seq`, func(r *sql.Rows) error {
		var t TraceStep
		var at int64
		err := r.Scan(&at, &t.Flow, &t.Step, &t.Action, &t.Branch, &t.Detail, &t.Secure)
		t.At = fromMS(at)
		in.Trace = append(in.Trace, t)
		return err
	})
	each(`SELECT file, sidecar, sha256, duration_ms, markers, status, deleted_at, deleted_by FROM recordings WHERE interaction_id = ?`, func(r *sql.Rows) error {
		var rec Recording
		var dur, del int64
		var markers string
		err := r.Scan(&rec.File, &rec.Sidecar, &rec.SHA256, &dur, &markers, &rec.Status, &del, &rec.DeletedBy)
		rec.Duration, rec.DeletedAt, rec.Markers = msDuration(dur), fromMS(del), json.RawMessage(markers)
		in.Recording = &rec
		return err
	})
	each(`SELECT leg, agent, received, lost, loss_pct, jitter_ms, rtt_ms, mos, peer_loss_pct, peer_jitter_ms, dropped_stale
 FROM leg_quality WHERE interaction_id = ? ORDER BY seq`, func(r *sql.Rows) error {
		var q LegQuality
		var recv, lost, stale int64
		err := r.Scan(&q.Leg, &q.Agent, &recv, &lost, &q.LossPct, &q.JitterMs, &q.RTTMs, &q.MOS, &q.PeerLossPct, &q.PeerJitterMs, &stale)
		q.Received, q.Lost, q.DroppedStale = uint32(recv), int32(lost), uint64(max(stale, 0))
		in.Quality = append(in.Quality, q)
		return err
	})
	if err != nil {
		return in, fmt.Errorf("archive: get %s: %w", id, err)
	}
	return in, nil
}
