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
func (s *Store) Insert(ctx context.Context, batch []Interaction) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback()
	stmts := map[string]*sql.Stmt{}
	prep := func(q string) (*sql.Stmt, error) {
		if st, ok := stmts[q]; ok {
			return st, nil
		}
		st, err := tx.PrepareContext(ctx, s.q(q))
		if err != nil {
			return nil, err
		}
		stmts[q] = st
		return st, nil
	}
	for i := range batch {
		if err := s.insertOne(ctx, prep, &batch[i]); err != nil {
			return fmt.Errorf("archive: insert %s: %w", batch[i].ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: commit: %w", err)
	}
	return nil
}

const (
	insInteraction = `INSERT INTO interactions (id, sip_call_id, caller, caller_name, called, route, queue, agent,
 offered_at, answered_at, queued_at, agent_answered_at, ended_at, wait_ms, talk_ms, ended_by, end_reason, consent, node,
 asserted_id, asserted_name)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	insData      = `INSERT INTO participant_data (interaction_id, key, value, token, policy) VALUES (?, ?, ?, ?, ?)`
	insSegment   = `INSERT INTO secure_segments (interaction_id, seq, flow, kind, started_at, ended_at, outputs) VALUES (?, ?, ?, ?, ?, ?, ?)`
	insTrace     = `INSERT INTO trace_steps (interaction_id, seq, at, flow, step, action, branch, detail, secure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insRecording = `INSERT INTO recordings (interaction_id, file, sidecar, sha256, duration_ms, markers, status) VALUES (?, ?, ?, ?, ?, ?, ?)`
	insQuality   = `INSERT INTO leg_quality (interaction_id, seq, leg, agent, received, lost, loss_pct, jitter_ms, rtt_ms, mos,
 peer_loss_pct, peer_jitter_ms, dropped_stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

func (s *Store) insertOne(ctx context.Context, prep func(string) (*sql.Stmt, error), in *Interaction) error {
	st, err := prep(insInteraction)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, in.ID, in.SIPCallID, in.Caller, in.CallerName, in.Called, in.Route, in.Queue, in.Agent,
		ms(in.Offered), ms(in.Answered), ms(in.Queued), ms(in.AgentAnswered), ms(in.Ended),
		in.Wait.Milliseconds(), in.Talk.Milliseconds(), in.EndedBy, in.EndReason, in.Consent, in.Node, in.AssertedID, in.AssertedName)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return nil // stored already
	}
	for _, d := range in.Data {
		if st, err = prep(insData); err == nil {
			_, err = st.ExecContext(ctx, in.ID, d.Key, d.Value, d.Token, d.Policy)
		}
		if err != nil {
			return err
		}
	}
	for i, seg := range in.Segments {
		out, _ := json.Marshal(seg.Outputs)
		if seg.Outputs == nil {
			out = []byte("{}")
		}
		if st, err = prep(insSegment); err == nil {
			_, err = st.ExecContext(ctx, in.ID, i, seg.Flow, seg.Kind, ms(seg.Start), ms(seg.End), string(out))
		}
		if err != nil {
			return err
		}
	}
	for i, t := range in.Trace {
		if st, err = prep(insTrace); err == nil {
			_, err = st.ExecContext(ctx, in.ID, i, ms(t.At), t.Flow, t.Step, t.Action, t.Branch, t.Detail, t.Secure)
		}
		if err != nil {
			return err
		}
	}
	if r := in.Recording; r != nil {
		markers := string(r.Markers)
		if markers == "" || markers == "null" {
			markers = "[]"
		}
		if st, err = prep(insRecording); err == nil {
			_, err = st.ExecContext(ctx, in.ID, r.File, r.Sidecar, r.SHA256, r.Duration.Milliseconds(), markers, r.Status)
		}
		if err != nil {
			return err
		}
	}
	for i, q := range in.Quality {
		if st, err = prep(insQuality); err == nil {
			_, err = st.ExecContext(ctx, in.ID, i, q.Leg, q.Agent, int64(q.Received), int64(q.Lost), q.LossPct, q.JitterMs,
				q.RTTMs, q.MOS, q.PeerLossPct, q.PeerJitterMs, int64(min(q.DroppedStale, math.MaxInt64)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

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
