package archive

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cloak-voip/cloak/call"
)

// FromSummary turns what a finished call left (call.Summary) into the
// archived Interaction: participant data under the store's policy (the
// clear value of a masked or dropped key goes no further than this
// function), trace details and secure-segment outputs under the same
// policy.
func (s *Store) FromSummary(sum call.Summary, node string) Interaction {
	in := Interaction{
		ID: sum.ID, SIPCallID: sum.SIPCallID, Caller: sum.Caller, Called: sum.Called, Route: sum.Target,
		Queue: sum.Queue, Agent: sum.Agent, Offered: sum.Offered.UTC(), Answered: utc(sum.Answered),
		Queued: utc(sum.Queued), AgentAnswered: utc(sum.AgentAnswered), Ended: sum.Ended.UTC(),
		EndReason: sum.EndReason, Consent: sum.Consent, Node: node,
		CallerName: sum.CallerName, AssertedID: sum.AssertedID, AssertedName: sum.AssertedName,
	}
	switch {
	case sum.SIPEndReason == "bye":
		in.EndedBy = "caller"
	case sum.EndReason == "agent hung up":
		in.EndedBy = "agent"
	default:
		in.EndedBy = "cloak"
	}
	if !in.Queued.IsZero() {
		until := in.AgentAnswered
		if until.IsZero() {
			until = in.Ended
		}
		in.Wait = until.Sub(in.Queued)
	}
	if from := in.AgentAnswered; !from.IsZero() {
		in.Talk = in.Ended.Sub(from)
	} else if !in.Answered.IsZero() {
		in.Talk = in.Ended.Sub(in.Answered)
	}
	keys := make([]string, 0, len(sum.Data))
	for k := range sum.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var hidden []string // clear values the archive must not show, and their masks
	for _, k := range keys {
		v := sum.Data[k]
		item, ok := s.policy.apply(s.key, k, v)
		if ok {
			in.Data = append(in.Data, item)
		}
		if (!ok || item.Policy != Keep) && len(v) >= 4 {
			mask := "****"
			if ok {
				mask = item.Value
			}
			hidden = append(hidden, v, mask)
		}
	}
	scrub := strings.NewReplacer(hidden...)
	for _, seg := range sum.Segments {
		// A secure flow's outputs also become participant data
		// (LeaveSecure): the segment keeps them under the same policy,
		// or it would show what the participant data masks.
		var outs map[string]string
		for k, v := range seg.Outputs {
			item, ok := s.policy.apply(s.key, k, v)
			if !ok {
				continue
			}
			if outs == nil {
				outs = map[string]string{}
			}
			outs[k] = item.Value
		}
		in.Segments = append(in.Segments, Segment{Flow: seg.Flow, Kind: seg.Kind, Start: seg.Start.UTC(), End: utc(seg.End), Outputs: outs})
	}
	for _, ev := range sum.Trace {
		in.Trace = append(in.Trace, TraceStep{At: ev.Time.UTC(), Flow: ev.Flow, Step: ev.Step, Action: ev.Action,
			Branch: ev.Branch, Detail: scrub.Replace(ev.Detail), Secure: ev.Secure})
	}
	if r := sum.Recording; r != nil {
		markers, _ := json.Marshal(r.Meta.Markers)
		// Absolute: the CLI (purge, delete-recording) may run elsewhere.
		in.Recording = &Recording{File: absPath(r.WAV), Sidecar: absPath(r.Sidecar), SHA256: r.Meta.SHA256,
			Duration: msDuration(r.Meta.DurationMS), Markers: markers, Status: r.Meta.Status}
	}
	for _, q := range sum.Quality {
		in.Quality = append(in.Quality, LegQuality{Leg: q.Leg, Agent: q.Agent, Received: q.Received, Lost: q.Lost,
			LossPct: q.LossPercent, JitterMs: q.JitterMs, RTTMs: q.RTTMs, MOS: q.MOS,
			PeerLossPct: q.PeerFractionLostPct, PeerJitterMs: q.PeerJitterMs, DroppedStale: q.DroppedStale})
	}
	return in
}

// Insert writes interactions in one transaction. An interaction whose
// id is already stored is left as it is (a batch retried after a lost
// commit acknowledgement writes nothing twice).
//
// Rows go in multi-row INSERTs, one statement per table per chunk of
// rows (bounded by the engines' parameter limits): on PostgreSQL every
// statement is a network round trip, and one per row capped the writer
// near 500 interactions/s on a busy machine. The interactions go first,
// ON CONFLICT DO NOTHING RETURNING id, and only the returned (new) ones
// get their child rows.
func (s *Store) Insert(ctx context.Context, batch []Interaction) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback()
	rows := make([][]any, 0, len(batch))
	for i := range batch {
		in := &batch[i]
		rows = append(rows, []any{in.ID, in.SIPCallID, in.Caller, in.CallerName, in.Called, in.Route, in.Queue, in.Agent,
			ms(in.Offered), ms(in.Answered), ms(in.Queued), ms(in.AgentAnswered), ms(in.Ended),
			in.Wait.Milliseconds(), in.Talk.Milliseconds(), in.EndedBy, in.EndReason, in.Consent, in.Node, in.AssertedID, in.AssertedName})
	}
	fresh := make(map[string]bool, len(batch))
	err = s.insertRows(ctx, tx, insInteraction, 21, rows, " ON CONFLICT (id) DO NOTHING RETURNING id", func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		fresh[id] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive: insert interactions: %w", err)
	}
	var data, segs, trace, recs, qual [][]any
	for i := range batch {
		in := &batch[i]
		if !fresh[in.ID] {
			continue // stored already (or twice in this batch: the first wins)
		}
		delete(fresh, in.ID)
		for _, d := range in.Data {
			data = append(data, []any{in.ID, d.Key, d.Value, d.Token, d.Policy})
		}
		for i, seg := range in.Segments {
			out, _ := json.Marshal(seg.Outputs)
			if seg.Outputs == nil {
				out = []byte("{}")
			}
			segs = append(segs, []any{in.ID, i, seg.Flow, seg.Kind, ms(seg.Start), ms(seg.End), string(out)})
		}
		for i, t := range in.Trace {
			trace = append(trace, []any{in.ID, i, ms(t.At), t.Flow, t.Step, t.Action, t.Branch, t.Detail, t.Secure})
		}
		if r := in.Recording; r != nil {
			markers := string(r.Markers)
			if markers == "" || markers == "null" {
				markers = "[]"
			}
			recs = append(recs, []any{in.ID, r.File, r.Sidecar, r.SHA256, r.Duration.Milliseconds(), markers, r.Status})
		}
		for i, q := range in.Quality {
			qual = append(qual, []any{in.ID, i, q.Leg, q.Agent, int64(q.Received), int64(q.Lost), q.LossPct, q.JitterMs,
				q.RTTMs, q.MOS, q.PeerLossPct, q.PeerJitterMs, int64(min(q.DroppedStale, math.MaxInt64))})
		}
	}
	for _, t := range []struct {
		head string
		cols int
		rows [][]any
	}{{insData, 5, data}, {insSegment, 7, segs}, {insTrace, 9, trace}, {insRecording, 7, recs}, {insQuality, 13, qual}} {
		if err := s.insertRows(ctx, tx, t.head, t.cols, t.rows, "", nil); err != nil {
			return fmt.Errorf("archive: insert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: commit: %w", err)
	}
	return nil
}

// maxParams is the most bound parameters one statement carries: under
// SQLite's limit (32,766 since 3.32) and PostgreSQL's (65,535).
const maxParams = 30_000

// insertRows runs head (an INSERT … VALUES without its rows) for rows,
// each of cols values, as multi-row statements of at most maxParams
// parameters, with suffix after the rows; when each is set, it reads the
// rows the statement returns (suffix's RETURNING).
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, head string, cols int, rows [][]any, suffix string, each func(*sql.Rows) error) error {
	one := "(" + placeholders(cols) + ")"
	per := maxParams / cols
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		b.Grow(len(head) + len(chunk)*(len(one)+2) + len(suffix))
		b.WriteString(head)
		args := make([]any, 0, len(chunk)*cols)
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(one)
			args = append(args, r...)
		}
		b.WriteString(suffix)
		if each == nil {
			if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
				return err
			}
			continue
		}
		rs, err := tx.QueryContext(ctx, s.q(b.String()), args...)
		if err != nil {
			return err
		}
		for rs.Next() {
			if err := each(rs); err != nil {
				rs.Close()
				return err
			}
		}
		if err := rs.Close(); err != nil {
			return err
		}
		if err := rs.Err(); err != nil {
			return err
		}
	}
	return nil
}

// The INSERTs of Insert, without their VALUES rows.
const (
	insInteraction = `INSERT INTO interactions (id, sip_call_id, caller, caller_name, called, route, queue, agent,
 offered_at, answered_at, queued_at, agent_answered_at, ended_at, wait_ms, talk_ms, ended_by, end_reason, consent, node,
 asserted_id, asserted_name) VALUES `
	insData      = `INSERT INTO participant_data (interaction_id, key, value, token, policy) VALUES `
	insSegment   = `INSERT INTO secure_segments (interaction_id, seq, flow, kind, started_at, ended_at, outputs) VALUES `
	insTrace     = `INSERT INTO trace_steps (interaction_id, seq, at, flow, step, action, branch, detail, secure) VALUES `
	insRecording = `INSERT INTO recordings (interaction_id, file, sidecar, sha256, duration_ms, markers, status) VALUES `
	insQuality   = `INSERT INTO leg_quality (interaction_id, seq, leg, agent, received, lost, loss_pct, jitter_ms, rtt_ms, mos,
 peer_loss_pct, peer_jitter_ms, dropped_stale) VALUES `
)

// absPath is p made absolute against the working directory (p itself if
// that fails, or when empty).
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
